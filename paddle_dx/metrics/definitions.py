"""The built-in metrics. Each is one class; registering it is all it takes for it to appear in
reports, per-epoch history, VisualDL, ``Metric.best_metric`` choices and (with ``headline``)
the study tables and bootstrap intervals."""
import warnings

import numpy as np

from paddle_dx.metrics.predictions import ratio
from paddle_dx.metrics.registry import ClassMetric, Metric, register


@register
class Accuracy(Metric):
    name, label, headline = "accuracy", "accuracy", 1

    def values(self, pred):
        return pred.one_vs_rest[0].sum(axis=1) / pred.n


@register
class Precision(ClassMetric):
    """TP / (TP + FP): of the images called this class, the share that are."""
    name, label = "precision", "precision"

    def values(self, pred):
        tp, fp, _, _ = pred.one_vs_rest
        return ratio(tp, tp + fp)


@register
class Sensitivity(ClassMetric):
    """TP / (TP + FN), recall: of the images of this class, the share found."""
    name, label, headline = "sensitivity", "sensitivity", 2

    def values(self, pred):
        tp, _, _, fn = pred.one_vs_rest
        return ratio(tp, tp + fn)


@register
class Specificity(ClassMetric):
    """TN / (TN + FP): of the images not of this class, the share not called it."""
    name, label, headline = "specificity", "specificity", 3

    def values(self, pred):
        _, fp, tn, _ = pred.one_vs_rest
        return ratio(tn, tn + fp)


@register
class F1(ClassMetric):
    """2 TP / (2 TP + FP + FN), the harmonic mean of precision and sensitivity."""
    name, label = "f1", "F1"

    def values(self, pred):
        tp, fp, _, fn = pred.one_vs_rest
        return ratio(2 * tp, 2 * tp + fp + fn)


@register
class AUC(Metric):
    """ROC-AUC: of the positive class (label 1, or ``positive``) for two classes, else the mean
    one-vs-rest AUC over the classes present; undefined with fewer than two classes present."""
    name, label, headline = "auc", "AUC", 4

    def values(self, pred):
        return self.summary(pred)

    def summary(self, pred, positive=None):
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

    def values(self, pred):
        return np.full(pred.sets, np.nan if pred.loss is None else float(pred.loss))

    def record(self, pred, report):
        if pred.loss is not None:
            report["loss"] = float(pred.loss)


@register
class ConfusionMatrix(Metric):
    """Counts, rows = true class, columns = predicted; logged as an image, not a scalar."""
    name, label = "confusion_matrix", "confusion matrix"

    def values(self, pred):
        raise TypeError("the confusion matrix is not a scalar metric")

    def scalar_names(self):
        return []

    def record(self, pred, report):
        report["confusion_matrix"] = pred.confusion[0].tolist()

    def read(self, report, positive=None):
        return None

    def logged(self, report):
        return {}, {}
