"""A run that collapsed is not a result: it predicted one class for every test image, or stalled
at one class (``STALLED`` of the images or more) with no skill (balanced accuracy at or below
chance), or its training loss diverged (NaN/inf, or above ``DIVERGED`` times where it started).
Reports flag such runs with the cause and leave them out of every comparison; they are never
averaged in. A weak classifier that spreads its predictions stays a (poor) result."""

import math
import warnings

import numpy as np
import numpy.typing as npt
from sklearn.metrics import balanced_accuracy_score

DIVERGED = 10.0  # a training loss above this multiple of its first value has diverged
STALLED = 0.9  # share of test images given one class that, with chance-level skill, is a stall
# metrics key of a run whose loss diverged before its first evaluation (studies/runner.py): why
BEFORE_EVALUATION = "diverged_before_evaluation"
# a --source row whose source pretraining diverged before its first evaluation: it trained on from
# that run's random start, not from source pretraining
SOURCE_DIVERGED = "source_diverged_before_evaluation"


def _losses(history: list[dict]) -> list[float]:
    """Every training loss recorded, in order: each step's when logged, else each epoch's mean."""
    out = []
    for h in history:
        out += list(h.get("step_losses") or []) or [h.get("train_loss")]
    return [float("nan") if v is None else float(v) for v in out]


def loss_cause(history: list[dict]) -> str | None:
    """Why the training of ``history`` (metrics.json) diverged, or None: the trainer's own
    verdict (an epoch marked ``stopped_diverged``, engine/divergence.py) or the losses."""
    stopped = next((h["stopped_diverged"] for h in history if h.get("stopped_diverged")), None)
    if stopped:
        return f"training stopped: {stopped}"
    losses = _losses(history)
    if not losses:
        return None
    bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    if bad is not None:
        return f"training loss became {losses[bad]} (step {bad + 1})"
    start = losses[0]
    epochs = [float(h["train_loss"]) for h in history if h.get("train_loss") is not None]
    worst = max(epochs, default=start)
    if start > 0 and worst > DIVERGED * start:
        return f"training loss diverged: an epoch's mean {worst:.4g} > {DIVERGED:g} x its start {start:.4g}"
    return None


def prediction_cause(
    predicted: npt.ArrayLike, class_names: list[str], labels: npt.ArrayLike | None = None
) -> str | None:
    """Why the test predictions are degenerate, or None: one class for every image, or (with
    ``labels``) one class for nearly every image and a balanced accuracy no better than chance."""
    predicted = np.asarray(predicted, dtype=int)
    if len(predicted) < 2 or len(class_names) < 2:
        return None
    counts = np.bincount(predicted, minlength=len(class_names))
    top = int(counts.argmax())
    name = class_names[top]
    if counts[top] == len(predicted):
        share = (
            "" if labels is None else f", the accuracy of always guessing it: {np.mean(np.asarray(labels) == top):.0%}"
        )
        return f"predicts '{name}' for every test image (stalled at one class{share})"
    if labels is None or counts[top] < STALLED * len(predicted):
        return None
    labels = np.asarray(labels, dtype=int)
    chance = 1.0 / len(np.unique(labels))
    with warnings.catch_warnings():  # predicted classes absent from the labels are still wrong answers
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(labels, predicted)
    if balanced > chance:
        return None
    return (
        f"predicts '{name}' for {counts[top]} of {len(predicted)} test images with no skill "
        f"(balanced accuracy {balanced:.1%}, chance {chance:.1%}: stalled at one class)"
    )


def collapse_cause(
    history: list[dict], probs: npt.ArrayLike, labels: npt.ArrayLike | None, class_names: list[str]
) -> str | None:
    """The cause of a run's collapse (loss first, then predictions), or None for a usable run."""
    return loss_cause(history) or prediction_cause(np.asarray(probs).argmax(axis=1), class_names, labels)


def before_evaluation_cause(metrics: dict) -> str | None:
    """Why a run has no trained model to test (its loss diverged before its first evaluation), or
    why it is not what its row claims (its --source pretraining did), or None."""
    why, source = metrics.get(BEFORE_EVALUATION), metrics.get(SOURCE_DIVERGED)
    if why:
        return f"{why}, before any usable evaluation: no trained model, its numbers are its untrained start's"
    if source:
        return (
            f"its source pretraining diverged before any usable evaluation ({source}): it trained from that run's "
            "random start, not from source pretraining"
        )
    return None
