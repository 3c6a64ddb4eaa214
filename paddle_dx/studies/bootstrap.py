"""95 % bootstrap confidence intervals for a test set's headline metrics.

Papers on a few hundred images print single numbers; the interval says how much those numbers
could move with another draw of the same size. All resamples are scored at once with NumPy
(confusion counts by ``bincount``, AUC as the Mann-Whitney statistic on ``scipy`` ranks): the
per-resample scikit-learn calls took ~15 s per run on a busy 2-core machine. The point values
in the tables still come from ``paddle_dx.metrics`` (scikit-learn); a test checks both agree.
"""
import warnings

import numpy as np
from scipy.stats import rankdata

HEADLINE = ("accuracy", "sensitivity", "specificity", "auc")


def headline(metrics, positive=None):
    """Accuracy, sensitivity, specificity, AUC from a metrics dict: of the positive class for a
    binary study, macro averages otherwise."""
    if positive is not None:
        cls = metrics["per_class"][metrics["class_names"][positive]]
        sens, spec = cls["sensitivity"], cls["specificity"]
    else:
        sens, spec = metrics["macro"]["sensitivity"], metrics["macro"]["specificity"]
    return {"accuracy": metrics["accuracy"], "sensitivity": sens, "specificity": spec, "auc": metrics["auc"]}


def _ovr_auc(labels, scores):
    """[B, K] one-vs-rest AUC per resample and class; NaN where a class is absent."""
    n = labels.shape[1]
    out = np.full((labels.shape[0], scores.shape[2]), np.nan)
    for c in range(scores.shape[2]):
        ranks = rankdata(scores[:, :, c], axis=1)  # ties get their average rank, as in sklearn
        pos = labels == c
        p = pos.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, c] = ((ranks * pos).sum(axis=1) - p * (p + 1) / 2) / (p * (n - p))
        out[(p == 0) | (p == n), c] = np.nan
    return out


def scores(labels, probs, positive=None):
    """Headline metrics of each row of ``labels`` [B, N] / ``probs`` [B, N, K] (B resamples)."""
    b, _, k = probs.shape
    preds = probs.argmax(axis=2)
    flat = (np.arange(b)[:, None] * k * k + labels * k + preds).ravel()
    cm = np.bincount(flat, minlength=b * k * k).reshape(b, k, k).astype(float)
    tp, support, predicted = np.diagonal(cm, axis1=1, axis2=2), cm.sum(axis=2), cm.sum(axis=1)
    total = cm.sum(axis=(1, 2))[:, None]
    fp, tn = predicted - tp, total - support - (predicted - tp)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        spec = np.where(tn + fp > 0, tn / (tn + fp), 0.0)
    auc = _ovr_auc(labels, probs)
    present = (support > 0).sum(axis=1)
    if positive is not None:
        sens, spec, auc = recall[:, positive], spec[:, positive], auc[:, positive]
    else:
        sens, spec = recall.mean(axis=1), spec.mean(axis=1)
        with warnings.catch_warnings():  # all-NaN rows (one class drawn) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            auc = np.nanmean(auc, axis=1) if k > 2 else auc[:, 1]
    auc = np.where(present < 2, np.nan, auc)
    return {"accuracy": tp.sum(axis=1) / total[:, 0], "sensitivity": sens, "specificity": spec, "auc": auc}


def bootstrap_ci(labels, probs, positive=None, n_resamples=1000, seed=0, level=0.95):
    """{metric: (low, high)} percentile intervals over ``n_resamples`` draws with replacement
    (fixed seed); draws where a metric is undefined (AUC with one class) are left out."""
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    idx = np.random.RandomState(seed).randint(0, len(labels), size=(n_resamples, len(labels)))
    draws = scores(labels[idx], probs[idx], positive)
    tail = (1.0 - level) / 2 * 100
    out = {}
    for metric in HEADLINE:
        values = draws[metric][~np.isnan(draws[metric])]
        out[metric] = (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))) \
            if len(values) else (None, None)
    return out
