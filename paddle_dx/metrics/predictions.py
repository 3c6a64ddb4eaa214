"""One or many prediction sets as arrays, with the counts every metric is defined on.

A single evaluation is a batch of one; a bootstrap is a batch of resamples. Metrics are written
once against this batch form (NumPy over the leading axis), so the value in a table and the
values behind its confidence interval come from the same definition. Scoring resamples one at a
time with scikit-learn took ~15 s per run on a busy 2-core machine; the tests check the batch
definitions against scikit-learn instead.
"""

from functools import cached_property

import numpy as np
from scipy.stats import rankdata


class Predictions:
    """``labels`` [B, N] (or [N]) and softmax ``probs`` [B, N, K] (or [N, K]); ``loss`` optional."""

    def __init__(self, labels, probs, loss=None) -> None:
        labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
        if labels.ndim == 1:
            labels, probs = labels[None], probs[None]
        self.labels, self.probs, self.loss = labels, probs, loss
        self.sets, self.n, self.class_num = probs.shape

    @cached_property
    def confusion(self) -> np.ndarray:
        """[B, K, K] confusion counts, rows = true class, columns = predicted (argmax)."""
        b, k = self.sets, self.class_num
        flat = (np.arange(b)[:, None] * k * k + self.labels * k + self.probs.argmax(axis=2)).ravel()
        return np.bincount(flat, minlength=b * k * k).reshape(b, k, k)

    @cached_property
    def one_vs_rest(self) -> dict[str, np.ndarray]:
        """{"tp", "fp", "tn", "fn"}: counts per set and class, each [B, K] float."""
        cm = self.confusion.astype(float)
        tp, support, predicted = np.diagonal(cm, axis1=1, axis2=2), cm.sum(axis=2), cm.sum(axis=1)
        fp, fn = predicted - tp, support - tp
        return {"tp": tp, "fp": fp, "tn": cm.sum(axis=(1, 2))[:, None] - tp - fp - fn, "fn": fn}

    @cached_property
    def support(self) -> np.ndarray:
        """[B, K] number of samples of each class."""
        return self.confusion.sum(axis=2)

    @cached_property
    def ovr_auc(self) -> np.ndarray:
        """[B, K] one-vs-rest ROC-AUC as the Mann-Whitney statistic (ties count 1/2, as in
        scikit-learn); NaN where the class is absent or the only one present."""
        out = np.full((self.sets, self.class_num), np.nan)
        for c in range(self.class_num):
            ranks = rankdata(self.probs[:, :, c], axis=1)
            pos = self.labels == c
            p = pos.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, c] = ((ranks * pos).sum(axis=1) - p * (p + 1) / 2) / (p * (self.n - p))
            out[(p == 0) | (p == self.n), c] = np.nan
        return out


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den is 0 (scikit-learn's zero_division=0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
