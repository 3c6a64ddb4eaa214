"""A training loss that is no longer finite ends the run (engine/trainer.py): every later step
would only carry NaN weights forward, and their evaluation is meaningless."""

import math


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
