"""Weight files (``.pdparams``, ``.pdopt``): written atomically, read with one clear error and
without running code: they are pickles, so they are read by utils/safe_pickle.py's restricted
unpickler (NumPy arrays, dicts, lists, strings, numbers), never by ``paddle.load``.

The models layer owns them so that everything serving a trained model (export, prediction,
Grad-CAM) reads and writes weights without importing the training engine; checkpoints
(engine/checkpoint.py) use the same two functions.
"""

from pathlib import Path

import paddle

from paddle_dx.errors import WeightsError
from paddle_dx.utils.files import atomic_path
from paddle_dx.utils.safe_pickle import safe_load


def resolve_weights(path):
    """``output/x/best_model.pdparams`` or the PaddleClas-style prefix ``output/x/best_model``
    (``Global.pretrained_model`` names a prefix in every PaddleClas tool): the file to read."""
    path = Path(path)
    if path.is_file():
        return path
    with_suffix = path.with_name(path.name + ".pdparams")
    if with_suffix.is_file():
        return with_suffix
    raise WeightsError(f"weights not found: {path} (nor {with_suffix.name})")


def save_weights(path, model):
    """Save just the model weights (e.g. best_model.pdparams) atomically."""
    with atomic_path(path) as tmp:
        paddle.save(model.state_dict(), str(tmp))


def load_state(path):
    """The dict of tensors in a Paddle weights file; WeightsError naming the file otherwise."""
    state = safe_load(path)
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state
