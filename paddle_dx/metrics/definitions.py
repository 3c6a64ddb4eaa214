"""The built-in metrics. Each is one class; registering it is all it takes for it to appear in
reports, per-epoch history, VisualDL, ``Metric.best_metric`` choices and (with ``headline``)
the study tables and bootstrap intervals."""

import warnings

import numpy as np

from paddle_dx.metrics.predictions import Predictions
from paddle_dx.metrics.registry import CountRatio, Metric, register


@register
class Accuracy(Metric):
    name, label, headline = "accuracy", "accuracy", 1

    def values(self, pred: Predictions) -> np.ndarray:
        return pred.one_vs_rest["tp"].sum(axis=1) / pred.n


@register
class Precision(CountRatio):
    """TP / (TP + FP): of the images called this class, the share that are."""

    name, label = "precision", "precision"
    numerator, denominator = {"tp": 1}, {"tp": 1, "fp": 1}


@register
class Sensitivity(CountRatio):
    """TP / (TP + FN), recall: of the images of this class, the share found."""

    name, label, headline = "sensitivity", "sensitivity", 2
    numerator, denominator = {"tp": 1}, {"tp": 1, "fn": 1}


@register
class Specificity(CountRatio):
    """TN / (TN + FP): of the images not of this class, the share not called it."""

    name, label, headline = "specificity", "specificity", 3
    numerator, denominator = {"tn": 1}, {"tn": 1, "fp": 1}


@register
class F1(CountRatio):
    """2 TP / (2 TP + FP + FN), the harmonic mean of precision and sensitivity."""

    name, label = "f1", "F1"
    numerator, denominator = {"tp": 2}, {"tp": 2, "fp": 1, "fn": 1}


@register
class AUC(Metric):
    """ROC-AUC: of the positive class (label 1, or ``positive``) for two classes, else the mean
    one-vs-rest AUC over the classes present; undefined with fewer than two classes present."""

    name, label, headline = "auc", "AUC", 4

    def values(self, pred: Predictions) -> np.ndarray:
        return self.summary(pred)

    def summary(self, pred: Predictions, positive: int | None = None) -> np.ndarray:
        ovr = pred.ovr_auc
        if positive is not None or pred.class_num == 2:
            auc = ovr[:, 1 if positive is None else positive]
        else:
            with warnings.catch_warnings():  # all-NaN rows (one class drawn) stay NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                auc = np.nanmean(ovr, axis=1)
        return np.where((pred.support > 0).sum(axis=1) < 2, np.nan, auc)


@register
class Loss(Metric):
    """The Loss.Eval value the evaluator passes in (not computable from probabilities alone)."""

    name, label, higher_is_better = "loss", "loss", False

    def values(self, pred: Predictions) -> np.ndarray:
        return np.full(pred.sets, np.nan if pred.loss is None else float(pred.loss))

    def record(self, pred: Predictions, report: dict) -> None:
        if pred.loss is not None:
            report["loss"] = float(pred.loss)


@register
class ConfusionMatrix(Metric):
    """Counts, rows = true class, columns = predicted; logged as an image, not a scalar."""

    name, label = "confusion_matrix", "confusion matrix"

    def values(self, pred: Predictions) -> np.ndarray:
        raise TypeError("the confusion matrix is not a scalar metric")

    def scalar_names(self) -> list[str]:
        return []

    def record(self, pred: Predictions, report: dict) -> None:
        report["confusion_matrix"] = pred.confusion[0].tolist()

    def read(self, report: dict, positive: int | None = None) -> None:
        return None

    def logged(self, report: dict) -> tuple[dict, dict]:
        return {}, {}
