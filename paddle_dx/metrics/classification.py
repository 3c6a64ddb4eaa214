"""Diagnostic metrics of one evaluation as plain JSON-able values, built from the registry:
accuracy, per-class precision / sensitivity / specificity / F1, macro averages, ROC-AUC (binary
or one-vs-rest) and the confusion matrix."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from paddle_dx.metrics.predictions import Predictions
from paddle_dx.metrics.registry import all_metrics, scalar_metric


def roc_points(labels: npt.ArrayLike, probs: np.ndarray, class_num: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{class name index: (fpr, tpr)} for plotting; binary gives only the positive class."""
    labels = np.asarray(labels)
    classes = [1] if class_num == 2 else range(class_num)
    out = {}
    for c in classes:
        if 0 < (labels == c).sum() < len(labels):
            fpr, tpr, _ = roc_curve(labels == c, probs[:, c])
            out[c] = (fpr, tpr)
    return out


def classification_metrics(
    labels: npt.ArrayLike, probs: npt.ArrayLike, class_names: Sequence[str], loss: float | None = None
) -> dict:
    """Every registered metric of one prediction set.

    Keys: n, class_names, per_class {name: {precision, sensitivity, specificity, f1, ..., support}},
    macro {precision, sensitivity, specificity, f1, ...}, accuracy, auc, confusion_matrix
    (rows = true, cols = predicted), loss when given, and any other registered scalar.
    """
    pred = Predictions(labels, probs, loss)
    report = {
        "n": pred.n,
        "class_names": list(class_names),
        "per_class": {name: {} for name in class_names},
        "macro": {},
    }
    for metric in all_metrics():
        metric.record(pred, report)
    for name, count in zip(class_names, pred.support[0]):
        report["per_class"][name]["support"] = int(count)
    return report


def key_metric(metrics: dict, name: str) -> float:
    """The number used to pick the best epoch: higher is better (the loss is negated)."""
    metric = scalar_metric(name)
    value = metric.read(metrics)
    if value is None:
        return float("-inf")
    return value if metric.higher_is_better else -value
