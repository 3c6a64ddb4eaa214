"""Write PyTorch state-dict files (legacy and zip layouts) without torch, for reader tests.

The pickles name ``torch.FloatStorage`` and ``torch._utils._rebuild_tensor_v2`` exactly as
``torch.save`` does; stand-in ``torch`` modules are put in ``sys.modules`` only while pickling
(pickle checks that a global it writes can be imported). ``numel``: storage sizes to declare
instead of the true ones, for files that lie.
"""

import contextlib
import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np

from paddle_dx.utils.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL

_STORAGES = {np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage"}


class _Storage:
    def __init__(self, key, array):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage, rebuild):
        self.storage, self.rebuild = storage, rebuild

    def __reduce__(self):
        a = self.storage.array
        stride = tuple(s // a.itemsize for s in a.strides)
        return self.rebuild, (self.storage, 0, a.shape, stride, False, OrderedDict())


@contextlib.contextmanager
def _stand_in_torch():
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in _STORAGES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _pickle_state(state, legacy, numel):
    """(pickle bytes of ``state`` with arrays as tensors, storages in order of first use)."""
    storages = []
    with _stand_in_torch() as torch:

        def as_tensor(value):
            if not isinstance(value, np.ndarray):
                return value
            storage = _Storage(str(len(storages)), np.array(value, order="C"))
            storages.append(storage)
            return _Tensor(storage, torch._utils._rebuild_tensor_v2)

        tensors = OrderedDict((k, as_tensor(v)) for k, v in state.items())

        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if not isinstance(obj, _Storage):
                    return None
                kind = getattr(torch, _STORAGES[obj.array.dtype])
                size = numel.get(obj.key, obj.array.size)
                return ("storage", kind, obj.key, "cpu", size, *((None,) if legacy else ()))

        out = io.BytesIO()
        Pickler(out, protocol=2).dump(tensors)
    return out.getvalue(), storages


def write_torch(path, state, layout="legacy", numel=None):
    """Write ``state`` ({name: ndarray or any picklable}) as ``torch.save`` would."""
    numel = numel or {}
    data, storages = _pickle_state(state, layout == "legacy", numel)
    if layout == "legacy":
        out = io.BytesIO()
        for head in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(head, out, protocol=2)
        out.write(data)
        pickle.dump([s.key for s in storages], out, protocol=2)
        for s in storages:
            out.write(numel.get(s.key, s.array.size).to_bytes(8, "little") + s.array.tobytes())
        path.write_bytes(out.getvalue())
        return path
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", s.array.tobytes())
        archive.writestr("archive/version", "3\n")
    return path
