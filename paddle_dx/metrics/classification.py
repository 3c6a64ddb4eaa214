"""Diagnostic metrics from scikit-learn: accuracy, per-class precision / sensitivity /
specificity / F1, macro averages, ROC-AUC (binary or one-vs-rest) and the confusion matrix."""
import numpy as np
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
                             roc_auc_score, roc_curve)


def specificity_per_class(cm):
    """TN / (TN + FP) for each class, one-vs-rest, from a confusion matrix."""
    cm = np.asarray(cm, dtype=float)
    total = cm.sum()
    fp = cm.sum(axis=0) - np.diag(cm)
    tn = total - cm.sum(axis=1) - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tn + fp > 0, tn / (tn + fp), 0.0)


def roc_auc(labels, probs, class_num):
    """Binary AUC on the positive class (label 1), else macro one-vs-rest; None if undefined."""
    labels = np.asarray(labels)
    present = np.unique(labels)
    if len(present) < 2:
        return None
    if class_num == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    if len(present) < class_num:
        # one-vs-rest over the classes that occur, each against all others
        scores = [roc_auc_score(labels == c, probs[:, c]) for c in present]
        return float(np.mean(scores))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))


def roc_points(labels, probs, class_num):
    """{class name index: (fpr, tpr)} for plotting; binary gives only the positive class."""
    labels = np.asarray(labels)
    classes = [1] if class_num == 2 else range(class_num)
    out = {}
    for c in classes:
        if 0 < (labels == c).sum() < len(labels):
            fpr, tpr, _ = roc_curve(labels == c, probs[:, c])
            out[c] = (fpr, tpr)
    return out


def classification_metrics(labels, probs, class_names, loss=None):
    """All metrics as plain JSON-able Python values.

    Keys: accuracy, per_class {name: precision, sensitivity, specificity, f1, support}, macro
    {precision, sensitivity, specificity, f1}, auc, confusion_matrix (rows = true, cols = predicted),
    n, and loss when given.
    """
    labels = np.asarray(labels, dtype=int)
    probs = np.asarray(probs, dtype=float)
    class_num = len(class_names)
    preds = probs.argmax(axis=1)
    ids = list(range(class_num))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, preds, labels=ids, zero_division=0)
    cm = confusion_matrix(labels, preds, labels=ids)
    spec = specificity_per_class(cm)
    per_class = {
        name: {"precision": float(precision[i]), "sensitivity": float(recall[i]),
               "specificity": float(spec[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(class_names)
    }
    result = {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, preds)),
        "per_class": per_class,
        "macro": {"precision": float(np.mean(precision)), "sensitivity": float(np.mean(recall)),
                  "specificity": float(np.mean(spec)),
                  "f1": float(f1_score(labels, preds, labels=ids, average="macro", zero_division=0))},
        "auc": roc_auc(labels, probs, class_num),
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
    }
    if loss is not None:
        result["loss"] = float(loss)
    return result


def key_metric(metrics, name):
    """The number used to pick the best epoch (higher is better; loss is negated)."""
    if name == "loss":
        return -metrics["loss"]
    if name == "macro_f1":
        return metrics["macro"]["f1"]
    value = metrics.get(name)
    return float("-inf") if value is None else value
