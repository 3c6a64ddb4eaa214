"""Bootstrap intervals: the registry's batch definitions agree with scikit-learn, and each
resample is scored by the very definition that gives the single-set value."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score, roc_auc_score

from paddle_dx.metrics import METRICS, classification_metrics
from paddle_dx.studies.bootstrap import HEADLINE, bootstrap_ci, headline, scores


def _tied(probs):
    """Round to one decimal (many ties) and renormalise so rows still sum to 1."""
    probs = np.round(probs, 1) + 1e-3
    return probs / probs.sum(axis=1, keepdims=True)


def sklearn_headline(labels, probs, positive):
    """Accuracy, sensitivity, specificity, AUC straight from scikit-learn (None where undefined)."""
    k = probs.shape[1]
    preds = probs.argmax(axis=1)
    recall = recall_score(labels, preds, labels=range(k), average=None, zero_division=0)
    cm = confusion_matrix(labels, preds, labels=range(k))
    fp = cm.sum(axis=0) - np.diag(cm)
    tn = cm.sum() - cm.sum(axis=1) - fp
    spec = np.where(tn + fp > 0, tn / np.maximum(tn + fp, 1), 0.0)
    present = np.unique(labels)
    if len(present) < 2:
        auc = None
    elif k == 2:
        auc = roc_auc_score(labels, probs[:, 1])
    else:
        auc = np.mean([roc_auc_score(labels == c, probs[:, c]) for c in present])
    pick = (lambda v: v[positive]) if positive is not None else np.mean
    return {
        "accuracy": accuracy_score(labels, preds),
        "sensitivity": pick(recall),
        "specificity": pick(spec),
        "auc": auc,
    }


@pytest.mark.parametrize("class_num,positive", [(2, 1), (3, None), (4, None)])
def test_batch_scores_match_scikit_learn_including_ties_and_absent_classes(class_num, positive):
    rng = np.random.default_rng(class_num)
    for trial in range(12):
        labels = rng.integers(0, class_num, 25)
        probs = rng.dirichlet([1.0] * class_num, 25)
        if trial % 3 == 0:
            probs = _tied(probs)
        if trial % 4 == 0:
            labels[labels == class_num - 1] = 0  # the last class absent
        expected = sklearn_headline(labels, probs, positive)
        got = scores(labels[None], probs[None], positive)
        point = headline(classification_metrics(labels, probs, [str(c) for c in range(class_num)]), positive)
        for metric, value in expected.items():
            if value is None:  # undefined (AUC with one class)
                assert np.isnan(got[metric][0]) and point[metric] is None, (trial, metric)
            else:
                assert got[metric][0] == pytest.approx(value, abs=1e-12), (trial, metric)
                assert point[metric] == pytest.approx(value, abs=1e-12), (trial, metric)


def test_each_resample_is_scored_by_the_single_set_definition():
    """The interval equals the percentiles of the metric computed on one resample at a time."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 60)
    probs = rng.dirichlet([1.0] * 3, 60)
    probs[np.arange(60), labels] += 0.3
    probs /= probs.sum(axis=1, keepdims=True)
    n_resamples, seed = 150, 11
    idx = np.random.RandomState(seed).randint(0, len(labels), size=(n_resamples, len(labels)))
    ci = bootstrap_ci(labels, probs, positive=2, n_resamples=n_resamples, seed=seed)
    assert list(ci) == list(HEADLINE) == ["accuracy", "sensitivity", "specificity", "auc"]
    for name, (low, high) in ci.items():
        metric = METRICS.get(name)()
        one_by_one = [metric(labels[i], probs[i], positive=2) for i in idx]
        values = [v for v in one_by_one if v is not None]
        assert (low, high) == pytest.approx((np.percentile(values, 2.5), np.percentile(values, 97.5)), abs=1e-12)


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
