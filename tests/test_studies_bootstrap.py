"""Bootstrap intervals: the vectorised scores agree with paddle_dx.metrics (scikit-learn)."""
import numpy as np
import pytest

from paddle_dx.metrics.classification import classification_metrics
from paddle_dx.studies.bootstrap import bootstrap_ci, headline, scores


def _tied(probs):
    """Round to one decimal (many ties) and renormalise so rows still sum to 1."""
    probs = np.round(probs, 1) + 1e-3
    return probs / probs.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("class_num,positive", [(2, 1), (3, None), (4, None)])
def test_vectorised_scores_match_scikit_learn_including_ties_and_absent_classes(class_num, positive):
    rng = np.random.default_rng(class_num)
    for trial in range(12):
        labels = rng.integers(0, class_num, 25)
        probs = rng.dirichlet([1.0] * class_num, 25)
        if trial % 3 == 0:
            probs = _tied(probs)
        if trial % 4 == 0:
            labels[labels == class_num - 1] = 0  # the last class absent
        expected = headline(classification_metrics(labels, probs, [str(c) for c in range(class_num)]), positive)
        got = scores(labels[None], probs[None], positive)
        for metric, value in expected.items():
            if value is None:  # undefined (AUC with one class present)
                assert np.isnan(got[metric][0]), (trial, metric)
            else:
                assert got[metric][0] == pytest.approx(value, abs=1e-12), (trial, metric)


def test_intervals_are_reproducible_contain_the_estimate_and_shrink_with_more_data():
    rng = np.random.default_rng(0)

    def sample(n):
        labels = rng.integers(0, 2, n)
        probs = np.clip(0.5 + (labels - 0.5) * 0.4 + rng.normal(0, 0.3, n), 0.01, 0.99)
        return labels, np.stack([1 - probs, probs], axis=1)

    small, large = sample(40), sample(1000)
    ci = bootstrap_ci(*small, positive=1, seed=3)
    assert ci == bootstrap_ci(*small, positive=1, seed=3)
    point = headline(classification_metrics(small[0], small[1], ["0", "1"]), 1)
    for metric, (low, high) in ci.items():
        assert low <= point[metric] <= high
    wide = ci["accuracy"][1] - ci["accuracy"][0]
    narrow = bootstrap_ci(*large, positive=1, seed=3)["accuracy"]
    assert narrow[1] - narrow[0] < wide / 2
