"""Intervals and paired tests that hold on small test sets (tens of images).

A percentile bootstrap of 27 test images gives a zero-width interval at 100 % accuracy and a
normal approximation leaves [0, 1]; the exact and rank-based forms below do not:

- accuracy: Clopper-Pearson (exact binomial) or Wilson score intervals;
- two classifiers on the same images: exact McNemar test (a binomial test on the discordant
  pairs) and a paired bootstrap interval of the accuracy difference;
- AUC: DeLong's variance (placement values from midranks, Sun & Xu 2014), binary or one class
  against the rest.

Where an estimate sits on its bound (no errors, no discordant pairs, AUC 1), the interval falls
back to the exact binomial bound of that count, so no interval has zero width.
"""

import numpy as np
import numpy.typing as npt
from scipy import stats


def _binomial_interval(successes: int, n: int, level: float, method: str) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method=method)
    return (float(ci.low), float(ci.high))


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of ``successes / n`` (conservative: covers at least ``level``)."""
    return _binomial_interval(successes, n, level, "exact")


def wilson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` (shorter than Clopper-Pearson, near nominal)."""
    return _binomial_interval(successes, n, level, "wilson")


def accuracy_interval(
    correct: npt.ArrayLike, level: float = 0.95, method: str = "clopper-pearson"
) -> tuple[float, float]:
    """Interval of the accuracy of a 0/1 ``correct`` vector (one entry per test image)."""
    correct = np.asarray(correct, dtype=bool)
    rule = {"clopper-pearson": clopper_pearson, "wilson": wilson}[method]
    return rule(int(correct.sum()), len(correct), level)


def exact_mcnemar(correct_a: npt.ArrayLike, correct_b: npt.ArrayLike) -> dict:
    """Exact McNemar test of two classifiers on the same images: ``a_only`` images only A gets
    right, ``b_only`` only B; two-sided binomial p-value of a_only in a_only + b_only at 1/2."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same images: {a.shape} vs {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    p = float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue) if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def paired_bootstrap_difference(
    correct_a: npt.ArrayLike, correct_b: npt.ArrayLike, n_resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, tuple[float, float]]:
    """(accuracy of A - accuracy of B, percentile interval) over images resampled in pairs.

    When every image has the same difference (e.g. no discordant pair) the resamples are all
    equal; the interval is then that value +/- the Clopper-Pearson upper bound of 0 events in
    n, the largest share of images that could still disagree the other way."""
    a, b = np.asarray(correct_a, dtype=float), np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"paired difference needs the same, non-empty images: {a.shape} vs {b.shape}")
    d = a - b
    diff = float(d.mean())
    if np.all(d == d[0]):
        margin = clopper_pearson(0, len(d), level)[1]
        return diff, (max(-1.0, diff - margin), min(1.0, diff + margin))
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_resamples, len(d)))
    draws = d[idx].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    return diff, (float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail)))


def _placements(pos, neg):
    """DeLong's placement values from midranks: V10 (each positive), V01 (each negative)."""
    m, n = len(pos), len(neg)
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - stats.rankdata(pos)) / n
    v01 = 1.0 - (ranks[m:] - stats.rankdata(neg)) / m
    return v10, v01


def delong_auc(labels: npt.ArrayLike, scores: npt.ArrayLike, level: float = 0.95) -> dict:
    """Binary AUC (``labels`` 1 = positive) with DeLong's standard error and a normal interval
    clipped to [0, 1]; ``auc`` is None when a class is missing. With zero variance (AUC 0 or 1,
    all scores tied) the interval is Clopper-Pearson of AUC x min(positives, negatives) in that
    many, the smaller class bounding how many independent orderings were seen."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=float)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return {"auc": None, "se": None, "ci": (None, None), "n_pos": len(pos), "n_neg": len(neg)}
    v10, v01 = _placements(pos, neg)
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / len(pos) if len(pos) > 1 else 0.0) + (v01.var(ddof=1) / len(neg) if len(neg) > 1 else 0.0)
    se = float(np.sqrt(var))
    if se > 0:
        z = float(stats.norm.ppf(0.5 + level / 2))
        ci = (max(0.0, auc - z * se), min(1.0, auc + z * se))
    else:
        k = min(len(pos), len(neg))
        ci = clopper_pearson(int(round(auc * k)), k, level)
    return {"auc": auc, "se": se, "ci": ci, "n_pos": len(pos), "n_neg": len(neg)}


def delong_one_vs_rest(labels: npt.ArrayLike, probs: npt.ArrayLike, level: float = 0.95) -> list[dict]:
    """DeLong AUC of each class against the rest (``probs`` [N, K]), one dict per class."""
    labels, probs = np.asarray(labels, dtype=int), np.asarray(probs, dtype=float)
    return [delong_auc(labels == k, probs[:, k], level) for k in range(probs.shape[1])]
