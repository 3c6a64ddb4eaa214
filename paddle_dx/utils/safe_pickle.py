"""Read Paddle's ``.pdparams`` / ``.pdopt`` pickles without running code from the file.

``paddle.load`` is ``pickle.load``: a file handed to it can import and call anything (the classic
``os.system`` pickle). Paddle's own weight files contain only dicts, lists, tuples, strings,
numbers and NumPy arrays, so an unpickler that admits those NumPy constructors and nothing else
reads every genuine file (paddle.save from Paddle 2.x and 3.x, PaddleClas's ImageNet weights)
and refuses a hostile one before any of its code runs.
"""

import pickle

import numpy as np

from paddle_dx.errors import WeightsError

# (module, name) pairs a genuine Paddle weights file references: NumPy's array reconstruction
# (module renamed numpy.core -> numpy._core in NumPy 2), dtypes and scalars, and the two
# harmless builtins older pickles use (latin-1 bytes via _codecs.encode; OrderedDict).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
    ("builtins", "tuple"),
}


_NAME_TABLE = "StructuredToParameterName@@"  # paddle.save's structured -> parameter names, dropped by paddle.load


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something a weights file never contains."""


class _WeightsUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"refers to {module}.{name}, which no Paddle weights file contains")

    def persistent_load(self, pid):
        raise _Refused("uses persistent ids, which no Paddle weights file contains")


def load_pickled_state(path):
    """The object pickled in ``path`` (a dict for weights and optimizer files), NumPy arrays
    as arrays; WeightsError naming the file when it is not a plain Paddle weights pickle."""
    try:
        with open(path, "rb") as fh:
            state = _WeightsUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise WeightsError(f"{path}: weights file not found") from None
    except _Refused as exc:
        raise WeightsError(
            f"{path}: refused to load: the file {exc} (weights files are pickles, and this "
            f"one could run code; only plain Paddle weights files are loaded)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - truncated or foreign files all need the same message
        raise WeightsError(f"{path}: not a readable Paddle weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict):
        from paddle.framework.io import _pack_loaded_dict  # re-joins tensors paddle.save split at 4 GB

        state = _pack_loaded_dict(state)
        state.pop(_NAME_TABLE, None)
    return state


def to_tensors(obj):
    """NumPy arrays -> Paddle tensors, recursively through dicts, lists and tuples, as
    ``paddle.load`` returns them (Paddle 2.1's ``(name, array)`` pairs become the array's tensor)."""
    import paddle

    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, dict):
        return {key: to_tensors(value) for key, value in obj.items()}
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        return paddle.to_tensor(obj[1])
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_tensors(value) for value in obj)
    return obj


def safe_load(path):
    """``paddle.load(path)`` for weights and optimizer files, without unpickling code."""
    return to_tensors(load_pickled_state(path))
