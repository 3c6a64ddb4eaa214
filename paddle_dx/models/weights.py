"""Weight files (``.pdparams``, ``.pdopt``, and PyTorch ``.pth`` state dicts to start from):
written atomically, read with one clear error and without running code: they are pickles, so
they are read by utils/safe_pickle.py's restricted, bounded unpickler (NumPy arrays, dicts,
lists, strings, numbers), never by ``paddle.load`` or ``torch.load``.

The models layer owns them so that everything serving a trained model (export, prediction,
Grad-CAM) reads and writes weights without importing the training engine; checkpoints
(engine/checkpoint.py) use the same two functions.
"""

import re
from pathlib import Path

import numpy as np
import paddle

from paddle_dx.errors import WeightsError
from paddle_dx.utils.files import atomic_path
from paddle_dx.utils.pause import pause_point
from paddle_dx.utils.safe_pickle import load_pickled_state, to_tensors
from paddle_dx.utils.torch_pickle import is_torch_file, load_torch_state


def resolve_weights(path: str | Path) -> Path:
    """``output/x/best_model.pdparams`` or the PaddleClas-style prefix ``output/x/best_model``
    (``Global.pretrained_model`` names a prefix in every PaddleClas tool): the file to read."""
    path = Path(path)
    if path.is_file():
        return path
    with_suffix = path.with_name(path.name + ".pdparams")
    if with_suffix.is_file():
        return with_suffix
    if path.is_dir():  # a checkpoint or run folder: which file inside is meant is for the user to say
        inside = sorted(p.name for p in path.glob("*.pdparams"))
        choice = f"name one of its weights files: {', '.join(inside)}" if inside else "it holds no .pdparams file"
        raise WeightsError(f"weights not found: {path} is a folder; {choice}")
    raise WeightsError(f"weights not found: {path} (nor {with_suffix.name})")


def save_weights(path: str | Path, model: paddle.nn.Layer) -> None:
    """Save just the model weights (e.g. best_model.pdparams) atomically."""
    with atomic_path(path) as tmp:
        paddle.save(model.state_dict(), str(tmp))
        pause_point("weights_write")  # fault tests kill the run here, the file written under its temporary name


def load_state(path: str | Path) -> dict:
    """The dict of tensors in a Paddle (or PyTorch) weights file; WeightsError naming the file otherwise."""
    torch = Path(path).is_file() and is_torch_file(path)
    state = to_tensors(load_torch_state(path) if torch else load_pickled_state(path))
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state


def tensor_problem(name: str, value: object, own: paddle.Tensor, cast_floats: bool = False) -> str | None:
    """Why ``value`` (from a weights file) cannot stand for the model tensor ``own``, or None when
    it can. Paddle's own ``set_state_dict`` would warn and skip a shape mismatch, raise a bare
    AssertionError on another dtype and load NaN without a word. ``cast_floats``: another float
    width is fine (the caller casts it, checking the range)."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or dtype is None:
        return f"tensor {name} is a {type(value).__name__}, not an array"
    if list(shape) != list(own.shape):
        return f"tensor {name} has shape {list(shape)}, model expects {list(own.shape)}"
    have, want = _dtype_name(dtype), _dtype_name(own.dtype)
    floats = {have, want} <= {"float16", "float32", "float64"}
    if have != want and not (cast_floats and floats):
        return f"tensor {name} is {have}, model expects {want} (convert the file, e.g. with numpy astype)"
    values = np.asarray(value)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        return f"tensor {name} holds NaN or infinite values (weights of a diverged run?)"
    return None


def _dtype_name(dtype):
    """'float32' for a NumPy dtype or ``paddle.float32``."""
    return str(dtype).replace("paddle.", "")


_TORCH_BUFFERS = {"running_mean": "_mean", "running_var": "_variance"}


def from_torch_layout(state: dict, layer: paddle.nn.Layer) -> dict:
    """A PyTorch state dict renamed and laid out for ``layer`` (same module names): BatchNorm's
    running statistics are Paddle's ``_mean`` / ``_variance``, ``num_batches_tracked`` has no
    counterpart, and Linear weights are (out, in) in PyTorch, (in, out) in Paddle."""
    linear = {f"{name}.weight" for name, sub in layer.named_sublayers() if isinstance(sub, paddle.nn.Linear)}
    converted = {}
    for name, value in state.items():
        if name.endswith(".num_batches_tracked"):
            continue
        name = re.sub(r"(running_mean|running_var)$", lambda m: _TORCH_BUFFERS[m.group(1)], name)
        converted[name] = paddle.transpose(value, [1, 0]) if name in linear and value.ndim == 2 else value
    return converted
