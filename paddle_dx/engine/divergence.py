"""A training loss that is no longer finite ends the run (engine/trainer.py): every later step
would only carry NaN weights forward, and their evaluation is meaningless."""

import math

import numpy as np
import paddle


def divergence(train: dict, epoch: int, lr: float) -> str | None:
    """Why the epoch's training diverged (the first non-finite step loss, else a non-finite
    mean), or None. ``train``: the trainer's epoch result (loss, step_losses); ``epoch``: 0-based."""
    steps = [float(v) for v in train.get("step_losses") or []]
    bad = next((i for i, v in enumerate(steps) if not math.isfinite(v)), None)
    if bad is not None:
        return f"the training loss became {steps[bad]} at step {bad + 1} of epoch {epoch + 1} (lr {lr:g})"
    if train.get("loss") is not None and not math.isfinite(float(train["loss"])):
        return f"the training loss of epoch {epoch + 1} is {float(train['loss'])} (lr {lr:g})"
    return None


def weights_divergence(model: paddle.nn.Layer, epoch: int, lr: float) -> str | None:
    """Why the weights after the epoch are unusable (a tensor holding NaN/inf), or None. A last
    step can blow the weights up while its own loss, computed before the update, was finite:
    evaluating them would give NaN probabilities, and keeping them a NaN "best" model."""
    bad = next((n for n, t in model.state_dict().items() if not bool(paddle.isfinite(t).all())), None)
    if bad is None:
        return None
    return f"the weights became non-finite ({bad}) in epoch {epoch + 1} (lr {lr:g})"


def outputs_divergence(probs: np.ndarray, epoch: int, lr: float) -> str | None:
    """Why the epoch's validation outputs are unusable (NaN/inf probabilities), or None: finite
    but huge weights overflow in the forward pass."""
    if np.isfinite(probs).all():
        return None
    return f"the validation outputs after epoch {epoch + 1} are not finite (lr {lr:g})"
