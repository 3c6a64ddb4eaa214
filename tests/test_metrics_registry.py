"""The metric registry: a metric registered once shows up everywhere metrics are read, and
``Metric.Eval`` chooses what each epoch logs."""

import numpy as np
import pytest
from conftest import tiny_config
from sklearn.metrics import confusion_matrix

from paddle_dx.config import load_config
from paddle_dx.errors import ConfigError
from paddle_dx.metrics import METRICS, CountRatio, classification_metrics, history_entry, key_metric
from paddle_dx.studies.bootstrap import HEADLINE, bootstrap_ci, headline

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
PREDS = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2, 2])
PROBS = np.eye(3)[PREDS] * 0.6 + 0.4 / 3
NAMES = ["normal", "polyp", "ulcer"]


class NPV(CountRatio):
    """Negative predictive value TN / (TN + FN): registered by the tests only."""

    name, label, headline = "npv", "NPV", 5
    numerator, denominator = {"tn": 1}, {"tn": 1, "fn": 1}


@pytest.fixture
def npv(monkeypatch):
    monkeypatch.setitem(METRICS._items, "npv", NPV)  # undone after the test
    return NPV


def npv_by_hand(labels, preds, k):
    cm = confusion_matrix(labels, preds, labels=range(k))
    out = []
    for c in range(k):
        tn = np.delete(np.delete(cm, c, 0), c, 1).sum()
        fn = cm[c].sum() - cm[c, c]
        out.append(tn / (tn + fn))
    return out


def test_a_newly_registered_metric_reaches_report_history_best_metric_and_bootstrap(monkeypatch):
    with pytest.raises(ConfigError, match="not one of"):  # not a choice while unregistered
        load_config(raw={}, overrides=["Metric.best_metric=macro_npv"])
    assert "npv" not in HEADLINE
    monkeypatch.setitem(METRICS._items, "npv", NPV)  # all it takes; undone after the test

    config = load_config(raw={}, overrides=["Metric.best_metric=macro_npv"])
    report = classification_metrics(LABELS, PROBS, NAMES, loss=0.3)
    expected = npv_by_hand(LABELS, PREDS, 3)
    assert [report["per_class"][n]["npv"] for n in NAMES] == pytest.approx(expected)
    assert report["macro"]["npv"] == pytest.approx(np.mean(expected))
    assert key_metric(report, config["Metric"]["best_metric"]) == pytest.approx(np.mean(expected))

    entry = history_entry(report, config["Metric"], prefix="val")
    assert entry["val_macro_npv"] == pytest.approx(np.mean(expected))
    assert entry["val_per_class"]["ulcer"]["npv"] == pytest.approx(expected[2])
    assert {"val_loss", "val_accuracy", "val_auc", "val_macro_f1"} <= set(entry)

    assert list(HEADLINE)[-1] == "npv"
    assert headline(report, positive=1)["npv"] == pytest.approx(expected[1])
    low, high = bootstrap_ci(LABELS, PROBS, positive=1, n_resamples=200, seed=1)["npv"]
    assert low <= expected[1] <= high and low < high


def test_eval_selection_changes_what_is_logged():
    report = classification_metrics(LABELS, PROBS, NAMES, loss=0.3)
    only_accuracy = history_entry(report, {"Eval": [{"accuracy": {}}], "best_metric": "accuracy"})
    assert set(only_accuracy) == {"val_loss", "val_accuracy"}  # the loss is always logged
    with_best = history_entry(report, {"Eval": ["accuracy"], "best_metric": "macro_sensitivity"})
    assert set(with_best) == {"val_loss", "val_accuracy", "val_macro_sensitivity", "val_per_class"}
    assert with_best["val_per_class"]["polyp"] == {"sensitivity": pytest.approx(2 / 3)}

    paddleclas = history_entry(
        report, {"Eval": ["Accuracy", "PerClass", "AUC", "ConfusionMatrix"], "best_metric": "accuracy"}
    )
    assert paddleclas == history_entry(report, {"Eval": None, "best_metric": "accuracy"})
    assert paddleclas["val_macro_f1"] == report["macro"]["f1"] and paddleclas["val_auc"] == report["auc"]
    assert set(paddleclas["val_per_class"]["ulcer"]) == {"precision", "sensitivity", "specificity", "f1"}
    assert paddleclas["val_per_class"]["ulcer"]["f1"] == report["per_class"]["ulcer"]["f1"]


def test_unknown_metric_names_are_config_errors_listing_the_registered_ones():
    with pytest.raises(ConfigError) as err:
        load_config(raw={}, overrides=["Metric.Eval=[{accuracy: {}}, {acuracy: {}}]"])
    message = str(err.value)
    assert "Metric.Eval[1]" in message and "'acuracy'" in message and "did you mean 'accuracy'" in message
    assert all(name in message for name in METRICS.names())
    with pytest.raises(ConfigError, match="auc: unknown parameter 'average'"):
        load_config(raw={}, overrides=["Metric.Eval=[{auc: {average: micro}}]"])
    with pytest.raises(ConfigError, match="not one of .*macro_f1"):
        load_config(raw={}, overrides=["Metric.best_metric=f1"])  # per-class: choose its macro mean
    assert load_config(raw={}, overrides=["Metric.Eval=[sensitivity, {auc: {}}]"])["Metric"]["Eval"] == [
        "sensitivity",
        {"auc": {}},
    ]


def test_best_metric_choices_are_the_registered_scalars():
    from paddle_dx.config.schema import SCHEMA

    choices = list(SCHEMA["Metric"]["best_metric"].choices)
    assert {"accuracy", "auc", "loss", "macro_f1", "macro_sensitivity", "macro_specificity"} <= set(choices)
    assert "confusion_matrix" not in choices and "f1" not in choices
    report = classification_metrics(LABELS, PROBS, NAMES, loss=0.3)
    for name in choices:  # every choice can rank epochs
        assert np.isfinite(key_metric(report, name)), name
    assert key_metric(report, "loss") == -0.3


def test_training_logs_what_metric_eval_selects(tiny_dataset, tmp_path, npv):
    from visualdl import LogReader

    from paddle_dx.engine.trainer import Trainer

    images, lists = tiny_dataset
    narrow = Trainer(
        tiny_config(
            images,
            lists,
            tmp_path / "narrow",
            **{
                "Global.epochs": 1,
                "Global.use_visualdl": True,
                "Metric.Eval": "[accuracy]",
                "Metric.best_metric": "macro_npv",
            },
        )
    ).fit()
    record = narrow["history"][0]
    assert {"val_loss", "val_accuracy", "val_macro_npv", "val_per_class"} <= set(record)
    assert "val_auc" not in record and "val_macro_f1" not in record
    assert set(record["val_per_class"]["lesion"]) == {"npv"}
    assert narrow["val"]["macro"]["npv"] == record["val_macro_npv"]  # reports keep every metric
    tags = LogReader(file_path=str(next((tmp_path / "narrow" / "vdl").glob("vdlrecords.*.log")))).get_tags()
    assert {"val/accuracy", "val/macro_npv", "val/npv/lesion", "val/loss"} <= set(tags["scalar"])
    assert "val/auc" not in tags["scalar"] and "image" not in tags  # no confusion matrix / ROC asked for

    full = Trainer(tiny_config(images, lists, tmp_path / "full", **{"Global.epochs": 1})).fit()["history"][0]
    assert {"val_auc", "val_macro_f1", "val_macro_npv", "val_macro_precision"} <= set(full)
    assert set(full["val_per_class"]["normal"]) == {"precision", "sensitivity", "specificity", "f1", "npv"}
