"""The report's PNG figures: training curves, confusion matrix, ROC curve, test-image grid."""
import math
from pathlib import Path

import cv2
import numpy as np

from paddle_dx.data.io import read_image
from paddle_dx.engine.stages import stage_bounds
from paddle_dx.metrics.classification import roc_points
from paddle_dx.metrics.report import confusion_matrix_figure


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    _plt().close(fig)
    return path


def training_curves(history, stages, title, path):
    """Loss and accuracy per epoch, train and validation; dotted lines mark stage boundaries."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = [h["epoch"] for h in history]
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        val = [(h["epoch"], h[f"val_{key}"]) for h in history if f"val_{key}" in h]
        if val:
            ax.plot(*zip(*val), "s-", label="validation")
        for start, _ in stage_bounds(stages)[1:]:
            ax.axvline(start + 0.5, color="grey", linestyle=":")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def confusion(metrics, title, path):
    return _save(confusion_matrix_figure(metrics, title), path)


def roc_curve_figure(labels, probs, class_names, title, path):
    """One ROC curve per class (one-vs-rest); the positive class only for a binary task."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    for c, (fpr, tpr) in roc_points(labels, probs, len(class_names)).items():
        ax.plot(fpr, tpr, label=class_names[c])
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def prediction_grid(paths, labels, probs, class_names, title, path, count=16, thumb=128):
    """Test images titled "true / predicted", green when right and red when wrong (evenly
    spaced through the test list so every class shows)."""
    plt = _plt()
    picks = np.unique(np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int))
    cols = min(4, len(picks))
    rows = math.ceil(len(picks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    preds = np.asarray(probs).argmax(axis=1)
    for ax, i in zip(axes.ravel(), picks):
        ax.imshow(cv2.resize(read_image(paths[i]), (thumb, thumb), interpolation=cv2.INTER_AREA))
        right = preds[i] == labels[i]
        ax.set_title(f"{class_names[labels[i]]} / {class_names[preds[i]]}", fontsize=8,
                     color="green" if right else "red")
    fig.suptitle(f"{title}\n(true / predicted)", fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.86, hspace=0.3, wspace=0.1)
    return _save(fig, path)
