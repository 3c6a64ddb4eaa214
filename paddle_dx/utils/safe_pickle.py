"""Read weights pickles (Paddle's ``.pdparams`` / ``.pdopt``, PyTorch's ``.pth`` through
utils/torch_pickle.py) without running code from the file and without letting a small file
build something huge.

``paddle.load`` and ``torch.load`` are ``pickle.load``: a file handed to them can import and
call anything (the classic ``os.system`` pickle). Weight files only contain dicts, lists,
tuples, strings, numbers and arrays, so one unpickler that admits a short allow-list of
constructors per format (each wrapped to check what it is given) reads every genuine file and
refuses a hostile one before any of its code runs.

Pickles also share objects through their memo: a few hundred bytes can reference one list from
a list, ten times over, thirty levels deep (a "billion laughs"). Unpickling that is cheap, but
anything that walks the result (converting arrays to tensors, copying a state dict) visits 10**30
elements. So what a file builds is bounded twice: while unpickling (elements the allowed
constructors copy, bytes of arrays) and then along every path of the result, shared references
counted each time they are reached, cycles refused, before anything walks it.
"""

import io
import math
import pickle
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paddle_dx.errors import WeightsError

MAX_FILE_BYTES = 4 << 30  # Paddle splits larger tensors across files anyway
MAX_ITEMS = 10_000_000  # container elements (a ResNet-152 optimizer state has a few thousand)
MAX_DEPTH = 100  # nesting levels (weights and optimizer files have at most five)
SLACK_BYTES = 16 << 20  # array bytes a file may build beyond twice its own size

_NAME_TABLE = "StructuredToParameterName@@"  # paddle.save's structured -> parameter names, dropped by paddle.load
_NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: what weights are made of


class Refused(pickle.UnpicklingError):
    """The pickle asks for something a weights file never contains, or builds too much."""


@dataclass
class Budget:
    """What one file may build: ``items`` container elements and ``nbytes`` bytes of arrays."""

    max_items: int
    max_bytes: int
    items: int = 0
    nbytes: int = 0

    @classmethod
    def for_file(cls, file_bytes: int) -> "Budget":
        return cls(MAX_ITEMS, 2 * file_bytes + SLACK_BYTES)

    def spend(self, items: int = 0, nbytes: int = 0) -> None:
        self.items += items
        self.nbytes += nbytes
        if self.items > self.max_items:
            raise Refused(f"builds more than {self.max_items:,} elements (shared references repeated?)")
        if self.nbytes > self.max_bytes:
            raise Refused(f"builds more than {self.max_bytes:,} bytes of arrays, far more than the file holds")


class RestrictedUnpickler(pickle.Unpickler):
    """``find_class`` answers only from ``allowed`` ((module, name) -> object to use instead);
    persistent ids go to ``persistent`` (PyTorch's storages) or are refused."""

    def __init__(self, file, allowed: dict, persistent: Callable | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self._allowed = allowed
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise Refused(f"refers to {module}.{name}, which no weights file contains")
        return found

    def persistent_load(self, pid: object) -> Any:
        if self._persistent is None:
            raise Refused("uses persistent ids, which no Paddle weights file contains")
        return self._persistent(pid)


def numeric_dtype(dtype: object) -> np.dtype:
    """``dtype`` if it is a plain number type (no objects, records or sub-arrays), else Refused."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS or dtype.subdtype is not None:
        raise Refused(f"holds an array of type {dtype!r}, not numbers")
    return dtype


def element_count(shape: object) -> int:
    """The number of elements of ``shape`` (a tuple of non-negative ints), else Refused."""
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
        raise Refused(f"holds an array of shape {shape!r}")
    return math.prod(shape)


def bounded_ordered_dict(budget: Budget) -> Callable:
    """``OrderedDict`` for a pickle: charges the elements it copies."""

    def build(items=()):
        budget.spend(items=len(items))
        return OrderedDict(items)

    return build


class _BoundedArray(np.ndarray):
    """An ndarray whose ``__setstate__`` (pickle's BUILD) checks type and size before
    allocating; ``to_tensors`` turns it back into a plain array."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise Refused("holds a malformed array")
        shape, dtype = state[-4], state[-3]
        self._budget.spend(nbytes=element_count(shape) * numeric_dtype(dtype).itemsize)
        super().__setstate__(state)


def _numpy_globals(budget: Budget) -> dict:
    try:
        from numpy._core.multiarray import _reconstruct, scalar  # NumPy 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct, scalar  # NumPy 1

    ndarray = object()  # stands for numpy.ndarray: only usable as _reconstruct's first argument

    def reconstruct(subtype, shape, dtype):
        if subtype is not ndarray:
            raise Refused("rebuilds an array of an unknown type")
        budget.spend(nbytes=element_count(shape) * np.dtype(dtype).itemsize)  # allocated before __setstate__
        array = _reconstruct(_BoundedArray, shape, dtype)
        array._budget = budget
        return array

    def number(dtype, data):
        if not isinstance(data, bytes) or len(data) != numeric_dtype(dtype).itemsize:
            raise Refused(f"holds a malformed {dtype} number")
        return scalar(dtype, data)

    def latin1(text, encoding="latin1"):  # how protocol-2 pickles spell bytes
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise Refused(f"encodes text with {encoding!r}")
        budget.spend(items=len(text))
        return text.encode("latin1")

    def empty_bytes(*args):  # protocol 2 writes b"" as bytes()
        if args:
            raise Refused("calls bytes() with arguments")
        return b""

    def tuple_of(items=()):
        budget.spend(items=len(items))
        return tuple(items)

    allowed = {("numpy", "ndarray"): ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):  # renamed in NumPy 2
        allowed[(core, "_reconstruct")] = reconstruct
        allowed[(core, "scalar")] = number
    allowed[("_codecs", "encode")] = latin1
    allowed[("collections", "OrderedDict")] = bounded_ordered_dict(budget)
    allowed[("builtins", "tuple")] = tuple_of
    allowed[("builtins", "bytes")] = allowed[("__builtin__", "bytes")] = empty_bytes
    return allowed


def _children(node):
    if isinstance(node, dict):
        return [*node.keys(), *node.values()]
    if isinstance(node, (list, tuple, set, frozenset)):
        return list(node)
    return []


def check_bounds(root: object, budget: Budget, nbytes: Callable = lambda node: 0) -> None:
    """Refuse ``root`` unless walking it as a tree (every path, shared references counted each
    time they are reached) stays within ``budget`` and MAX_DEPTH, and it has no cycle.
    ``nbytes(node)``: the array bytes a leaf will become. Linear in the distinct objects."""
    done = {}  # id -> (items, bytes, depth) of the tree below
    open_ = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        key = id(node)
        if key in done:
            continue
        children = _children(node)
        if not expanded:
            if key in open_:
                raise Refused("contains itself (a reference cycle)")
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in done)
            continue
        sizes = [done[id(child)] for child in children]
        items = len(children) + sum(s[0] for s in sizes)
        total = nbytes(node) + sum(s[1] for s in sizes)
        depth = 1 + max((s[2] for s in sizes), default=0)
        if items > budget.max_items:
            raise Refused(f"expands to more than {budget.max_items:,} elements (shared references repeated?)")
        if total > budget.max_bytes:
            raise Refused(f"expands to more than {budget.max_bytes:,} bytes of arrays (shared references repeated?)")
        if depth > MAX_DEPTH:
            raise Refused(f"is nested more than {MAX_DEPTH} levels deep")
        done[key] = (items, total, depth)
        open_.discard(key)


def read_bounded(path: Path | str) -> bytes:
    """The bytes of weights file ``path``; WeightsError when missing or larger than MAX_FILE_BYTES."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WeightsError(
                f"{path}: {size:,} bytes, larger than any weights file paddle_dx reads ({MAX_FILE_BYTES:,})"
            )
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise WeightsError(f"{path}: weights file not found") from None


def refusal(path: Path | str, exc: Exception, kind: str) -> WeightsError:
    """The one-line error for a file that ``exc`` stopped reading."""
    if isinstance(exc, Refused):
        return WeightsError(
            f"{path}: refused to load: the file {exc} (weights files are pickles, and this one could "
            f"run code or exhaust memory; only plain weights files are loaded)"
        )
    return WeightsError(f"{path}: not a readable {kind} weights file ({type(exc).__name__}: {exc})")


def unpickle_paddle(data: bytes, budget: Budget) -> Any:
    """The object a Paddle pickle holds (arrays as arrays), bounded by ``budget``."""
    state = RestrictedUnpickler(io.BytesIO(data), _numpy_globals(budget)).load()
    check_bounds(state, Budget(budget.max_items, budget.max_bytes), lambda node: getattr(node, "nbytes", 0))
    return state


def load_pickled_state(path: Path | str) -> Any:
    """The object pickled in Paddle weights file ``path`` (a dict for weights and optimizer
    files), NumPy arrays as arrays; WeightsError naming the file when it is not a plain Paddle
    weights pickle."""
    data = read_bounded(path)
    try:
        state = unpickle_paddle(data, Budget.for_file(len(data)))
    except Exception as exc:  # noqa: BLE001 - refused, truncated or foreign files all need one line
        raise refusal(path, exc, "Paddle") from None
    if isinstance(state, dict):
        from paddle.framework.io import _pack_loaded_dict  # re-joins tensors paddle.save split at 4 GB

        state = _pack_loaded_dict(state)
        state.pop(_NAME_TABLE, None)
    return state


def to_tensors(obj: Any) -> Any:
    """NumPy arrays -> Paddle tensors, recursively through dicts, lists and tuples, as
    ``paddle.load`` returns them (Paddle 2.1's ``(name, array)`` pairs become the array's tensor)."""
    import paddle

    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(np.asarray(obj))
    if isinstance(obj, dict):
        return {key: to_tensors(value) for key, value in obj.items()}
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        return paddle.to_tensor(np.asarray(obj[1]))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_tensors(value) for value in obj)
    return obj


def safe_load(path: Path | str) -> Any:
    """``paddle.load(path)`` for weights and optimizer files, without unpickling code."""
    return to_tensors(load_pickled_state(path))
