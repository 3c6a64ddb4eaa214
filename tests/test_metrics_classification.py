"""Diagnostic metrics against values worked out by hand."""

import itertools

import numpy as np
import pytest

from paddle_dx.metrics import classification_metrics, format_table, key_metric


def one_hot_probs(preds, class_num, confidence=0.8):
    probs = np.full((len(preds), class_num), (1 - confidence) / (class_num - 1))
    probs[np.arange(len(preds)), preds] = confidence
    return probs


def pairwise_auc(positive_scores, negative_scores):
    """AUC by its definition: P(score of a positive > score of a negative), ties count 1/2."""
    pairs = list(itertools.product(positive_scores, negative_scores))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def test_three_class_metrics_match_the_hand_computed_confusion_matrix():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
    preds = [0, 1, 0, 1, 1, 2, 0, 2, 2, 2]
    m = classification_metrics(labels, one_hot_probs(preds, 3), ["normal", "polyp", "ulcer"])
    # rows = true class, columns = predicted class
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 2, 1], [1, 0, 3]]
    assert m["accuracy"] == pytest.approx(7 / 10)
    expected = {  # precision = TP / column, sensitivity = TP / row, specificity = TN / (TN + FP)
        "normal": dict(precision=2 / 3, sensitivity=2 / 3, specificity=6 / 7, support=3),
        "polyp": dict(precision=2 / 3, sensitivity=2 / 3, specificity=6 / 7, support=3),
        "ulcer": dict(precision=3 / 4, sensitivity=3 / 4, specificity=5 / 6, support=4),
    }
    for name, values in expected.items():
        got = m["per_class"][name]
        for key, value in values.items():
            assert got[key] == pytest.approx(value), (name, key)
        p, r = values["precision"], values["sensitivity"]
        assert got["f1"] == pytest.approx(2 * p * r / (p + r))
    assert m["macro"]["sensitivity"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)
    assert m["macro"]["specificity"] == pytest.approx((6 / 7 + 6 / 7 + 5 / 6) / 3)
    assert m["macro"]["f1"] == pytest.approx((2 / 3 + 2 / 3 + 3 / 4) / 3)
    assert m["n"] == 10 and m["class_names"] == ["normal", "polyp", "ulcer"]


def test_binary_sensitivity_specificity_and_auc():
    labels = np.array([0, 0, 1, 1])
    p_lesion = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - p_lesion, p_lesion], axis=1)
    m = classification_metrics(labels, probs, ["normal", "lesion"], loss=0.5)
    # argmax predicts [0, 0, 0, 1]: one lesion missed
    assert m["confusion_matrix"] == [[2, 0], [1, 1]]
    assert m["per_class"]["lesion"]["sensitivity"] == pytest.approx(0.5)
    assert m["per_class"]["lesion"]["specificity"] == pytest.approx(1.0)
    assert m["per_class"]["lesion"]["precision"] == pytest.approx(1.0)
    assert m["per_class"]["lesion"]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["normal"]["specificity"] == pytest.approx(0.5)
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    assert m["auc"] == pytest.approx(0.75) == pytest.approx(pairwise_auc([0.35, 0.8], [0.1, 0.4]))
    assert m["loss"] == 0.5
    assert key_metric(m, "loss") == -0.5 and key_metric(m, "macro_f1") == m["macro"]["f1"]


def test_multiclass_auc_is_the_mean_of_one_vs_rest_aucs():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2] * 6)
    probs = rng.dirichlet(np.ones(3), size=len(labels))
    probs[np.arange(len(labels)), labels] += rng.uniform(0, 0.6, len(labels))  # informative but imperfect
    probs /= probs.sum(axis=1, keepdims=True)
    m = classification_metrics(labels, probs, ["a", "b", "c"])
    by_hand = np.mean([pairwise_auc(probs[labels == c, c], probs[labels != c, c]) for c in range(3)])
    assert 0.5 < m["auc"] < 1.0
    assert m["auc"] == pytest.approx(by_hand)


def test_auc_with_an_absent_class_uses_the_present_ones_and_single_class_has_none():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.2, 0.6, 0.2], [0.4, 0.4, 0.2]])
    m = classification_metrics(labels, probs, ["a", "b", "c"])
    by_hand = np.mean([pairwise_auc(probs[labels == c, c], probs[labels != c, c]) for c in (0, 1)])
    assert m["auc"] == pytest.approx(by_hand)
    assert m["per_class"]["c"]["support"] == 0 and m["per_class"]["c"]["sensitivity"] == 0.0
    assert classification_metrics([1, 1], [[0.2, 0.8], [0.6, 0.4]], ["a", "b"])["auc"] is None


def test_table_shows_every_class_and_the_matrix():
    m = classification_metrics([0, 1, 1], one_hot_probs([0, 1, 0], 2), ["normal-cecum", "polyp"])
    table = format_table(m)
    assert "normal-cecum" in table and "polyp" in table and "accuracy 0.6667" in table
    assert "sensitivity" in table and "specificity" in table
