"""The evaluation loop: a model (or what stands for it) over a loader, batch by batch, into
probabilities, labels and diagnostic metrics. Which forward runs is eval_backend.py's choice."""

from collections.abc import Callable, Iterable

import numpy as np
import paddle
import paddle.nn.functional as F

from paddle_dx.metrics import classification_metrics


@paddle.no_grad()
def predict(
    model: Callable, loader: Iterable, loss_fn: Callable | None = None, progress: Callable | None = None
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Return (probabilities [N, C], labels [N], mean loss or None), in the loader's order."""
    was_training = model.training
    model.eval()
    probs, labels, loss_sum = [], [], 0.0
    try:
        for images, targets in progress(loader) if progress else loader:
            logits = model(images)
            if loss_fn is not None:
                loss_sum += float(loss_fn(logits, targets)) * len(targets)
            probs.append(F.softmax(logits, axis=1).numpy())
            labels.append(targets.numpy().reshape(-1))
    finally:
        if was_training:
            model.train()
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    return probs, labels, (loss_sum / len(labels) if loss_fn is not None else None)


def evaluate(
    model: Callable,
    loader: Iterable,
    class_names: list[str],
    loss_fn: Callable | None = None,
    progress: Callable | None = None,
) -> tuple[dict, np.ndarray, np.ndarray]:
    """Metrics dict (see paddle_dx.metrics.classification_metrics) plus raw ``probs``/``labels``."""
    probs, labels, loss = predict(model, loader, loss_fn, progress)
    metrics = classification_metrics(labels, probs, class_names, loss=loss)
    return metrics, probs, labels
