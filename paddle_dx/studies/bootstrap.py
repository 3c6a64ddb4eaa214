"""95 % bootstrap confidence intervals for a test set's headline metrics.

Papers on a few hundred images print single numbers; the interval says how much those numbers
could move with another draw of the same size. The headline metrics are the registry's
(``Metric.headline``) and every resample is scored by the same definition as the point value:
all resamples at once, as one batch of ``Predictions``.
"""

import numpy as np
import numpy.typing as npt

from paddle_dx.metrics.intervals import clopper_pearson, delong_auc
from paddle_dx.metrics.predictions import Predictions
from paddle_dx.metrics.registry import headline_metrics
from paddle_dx.utils.registry import LiveNames

HEADLINE = LiveNames(lambda: [m.name for m in headline_metrics()])


def headline(metrics: dict, positive: int | None = None) -> dict[str, float | None]:
    """The headline metrics from a metrics dict: of the positive class for a binary study,
    macro averages otherwise."""
    return {m.name: m.read(metrics, positive) for m in headline_metrics()}


def scores(labels: np.ndarray, probs: np.ndarray, positive: int | None = None) -> dict[str, np.ndarray]:
    """Headline metrics of each row of ``labels`` [B, N] / ``probs`` [B, N, K] (B resamples)."""
    pred = Predictions(labels, probs)
    return {m.name: m.summary(pred, positive) for m in headline_metrics()}


def bootstrap_ci(
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    positive: int | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float | None, float | None]]:
    """{metric: (low, high)} percentile intervals over ``n_resamples`` draws with replacement
    (fixed seed); draws where a metric is undefined (AUC with one class) are left out."""
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    idx = np.random.RandomState(seed).randint(0, len(labels), size=(n_resamples, len(labels)))
    draws = scores(labels[idx], probs[idx], positive)
    tail = (1.0 - level) / 2 * 100
    out = {}
    for metric, values in draws.items():
        values = values[~np.isnan(values)]
        out[metric] = (
            (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
            if len(values)
            else (None, None)
        )
    return out


def small_n_intervals(
    labels: npt.ArrayLike,
    probs: npt.ArrayLike,
    positive: int | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float | None, float | None]]:
    """{metric: (low, high)} that hold at a few dozen images and never have zero width: accuracy
    by Clopper-Pearson; for a binary study (``positive``) sensitivity and specificity by
    Clopper-Pearson of their counts and AUC by DeLong. Macro averages keep the bootstrap."""
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    out = bootstrap_ci(labels, probs, positive, n_resamples, seed, level)
    predicted = probs.argmax(axis=1)
    exact = {"accuracy": (predicted == labels, np.ones(len(labels), bool))}
    if positive is not None:
        exact["sensitivity"] = (predicted == positive, labels == positive)
        exact["specificity"] = (predicted != positive, labels != positive)
        auc = delong_auc(labels == positive, probs[:, positive], level)
        if auc["auc"] is not None:
            out["auc"] = auc["ci"]
    for metric, (hit, among) in exact.items():
        if metric in out and among.any():
            out[metric] = clopper_pearson(int((hit & among).sum()), int(among.sum()), level)
    return out
