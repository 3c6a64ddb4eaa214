"""Weight files (``.pdparams``, ``.pdopt``): written atomically, read with one clear error.

The models layer owns them so that everything serving a trained model (export, prediction,
Grad-CAM) reads and writes weights without importing the training engine; checkpoints
(engine/checkpoint.py) use the same two functions.
"""
import paddle

from paddle_dx.errors import WeightsError
from paddle_dx.utils.files import atomic_path


def save_weights(path, model):
    """Save just the model weights (e.g. best_model.pdparams) atomically."""
    with atomic_path(path) as tmp:
        paddle.save(model.state_dict(), str(tmp))


def load_state(path):
    """The dict of tensors in a Paddle weights file; WeightsError naming the file otherwise."""
    try:
        state = paddle.load(str(path))
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign files all need the same message
        raise WeightsError(f"{path}: not a readable Paddle weights file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    return state
