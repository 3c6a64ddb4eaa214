"""Small-sample intervals and paired tests: published values (Newcombe 1998), DeLong against a
brute-force placement computation and a bootstrap, and no zero-width interval at the bounds."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from paddle_dx.metrics.intervals import (
    accuracy_interval,
    clopper_pearson,
    delong_auc,
    delong_one_vs_rest,
    exact_mcnemar,
    paired_bootstrap_difference,
    wilson,
)


@pytest.mark.parametrize(
    ("k", "n", "wilson_ci", "exact_ci"),
    [  # Newcombe (1998), Stat Med 17:857, Table II: methods 3 (Wilson) and 5 (Clopper-Pearson)
        (81, 263, (0.2553, 0.3662), (0.2527, 0.3676)),
        (15, 148, (0.0624, 0.1605), (0.0578, 0.1617)),
        (0, 20, (0.0, 0.1611), (0.0, 0.1684)),
        (1, 29, (0.0061, 0.1718), (0.0009, 0.1776)),
    ],
)
def test_binomial_intervals_match_newcombes_published_table(k, n, wilson_ci, exact_ci):
    assert wilson(k, n) == pytest.approx(wilson_ci, abs=1e-4)
    assert clopper_pearson(k, n) == pytest.approx(exact_ci, abs=1e-4)


def test_an_accuracy_without_errors_still_has_an_interval_below_one():
    low, high = accuracy_interval(np.ones(27, dtype=bool))
    assert high == 1.0 and 0.8 < low < 1.0  # 27 of 27: the lower bound is (0.025)^(1/27) = 0.872
    assert low == pytest.approx(0.025 ** (1 / 27))
    w_low, w_high = accuracy_interval(np.ones(27, dtype=bool), method="wilson")
    assert w_high == 1.0 and w_low < 1.0
    assert accuracy_interval(np.zeros(11, dtype=bool))[1] > 0


def test_exact_mcnemar_counts_only_discordant_pairs():
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0, 1, 1], bool)
    b = np.array([0, 0, 0, 0, 0, 1, 0, 1, 1, 1], bool)
    test = exact_mcnemar(a, b)
    assert (test["a_only"], test["b_only"]) == (5, 1)
    # two-sided exact binomial: P(X <= 1) + P(X >= 5) for X ~ Bin(6, 1/2) = 14 / 64
    assert test["p_value"] == pytest.approx(14 / 64)
    assert exact_mcnemar(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError):
        exact_mcnemar(a, b[:5])


def test_paired_bootstrap_difference_covers_the_observed_difference_and_never_has_zero_width():
    rng = np.random.default_rng(0)
    a, b = rng.random(60) < 0.8, rng.random(60) < 0.6
    diff, (low, high) = paired_bootstrap_difference(a, b, n_resamples=500, seed=1)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert low < diff < high
    same, (low, high) = paired_bootstrap_difference(np.ones(11, bool), np.ones(11, bool))
    assert same == 0.0 and low < 0 < high
    assert high == pytest.approx(clopper_pearson(0, 11)[1])
    all_better, (low, high) = paired_bootstrap_difference(np.ones(11, bool), np.zeros(11, bool))
    assert all_better == 1.0 and low < 1.0 == high


def brute_force_delong(labels, scores):
    """DeLong et al. (1988) written from the definition: psi over every (positive, negative) pair."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = np.array([[1.0 if x > y else 0.5 if x == y else 0.0 for y in neg] for x in pos])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))


def test_delong_matches_the_pairwise_definition_sklearn_and_a_bootstrap():
    rng = np.random.default_rng(3)
    labels = np.r_[np.ones(40, int), np.zeros(50, int)]
    scores = np.round(labels * 0.8 + rng.normal(size=90), 1)  # rounded: ties between classes
    out = delong_auc(labels, scores)
    auc, se = brute_force_delong(labels, scores)
    assert out["auc"] == pytest.approx(auc) == pytest.approx(roc_auc_score(labels, scores))
    assert out["se"] == pytest.approx(se)
    boot = []
    for _ in range(400):  # stratified bootstrap of the same AUC
        i = np.r_[rng.choice(40, 40), 40 + rng.choice(50, 50)]
        boot.append(roc_auc_score(labels[i], scores[i]))
    assert out["se"] == pytest.approx(np.std(boot), rel=0.2)
    assert out["ci"][0] < out["auc"] < out["ci"][1]


def test_a_perfect_auc_has_an_interval_of_nonzero_width_and_a_missing_class_none():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    out = delong_auc(labels, labels + 0.1)
    assert out["auc"] == 1.0 and out["se"] == 0.0
    assert out["ci"] == pytest.approx(clopper_pearson(3, 3)) and out["ci"][0] < 1.0
    assert delong_auc(np.ones(4), np.arange(4))["auc"] is None


def test_one_vs_rest_gives_each_class_its_own_binary_auc():
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], 12)
    probs = rng.dirichlet(np.ones(3), size=36) + np.eye(3)[labels] * 0.3
    per_class = delong_one_vs_rest(labels, probs)
    for k, out in enumerate(per_class):
        assert out["auc"] == pytest.approx(roc_auc_score(labels == k, probs[:, k]))
        assert (out["n_pos"], out["n_neg"]) == (12, 24)
    assert len(per_class) == 3
