"""The report's PNG figures: training curves, confusion matrix, ROC curve, test-image grid
(drawn by paddle_dx.metrics.figures, off pyplot, so the user's matplotlib backend is kept)."""
import math

import cv2
import numpy as np

from paddle_dx.data.io import read_image
from paddle_dx.engine.stages import stage_bounds
from paddle_dx.metrics.figures import (confusion_matrix_figure, curves_figure, new_figure, roc_figure,
                                       save_figure)

DPI = 80


def training_curves(history, stages, title, path):
    """Loss and accuracy per epoch, train and validation; dotted lines mark stage boundaries."""
    ends = [end for _, end in stage_bounds(stages)[:-1]]
    return save_figure(curves_figure(history, ("loss", "accuracy"), title, ends), path, DPI)


def confusion(metrics, title, path):
    return save_figure(confusion_matrix_figure(metrics, title), path, DPI)


def roc_curve_figure(labels, probs, class_names, title, path):
    """One ROC curve per class (one-vs-rest); the positive class only for a binary task."""
    return save_figure(roc_figure(labels, probs, class_names, title), path, DPI)


def prediction_grid(paths, labels, probs, class_names, title, path, count=16, thumb=128):
    """Test images titled "true / predicted", green when right and red when wrong (evenly
    spaced through the test list so every class shows)."""
    picks = np.unique(np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int))
    cols = min(4, len(picks))
    rows = math.ceil(len(picks) / cols)
    fig = new_figure(2.6 * cols, 2.8 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
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
    return save_figure(fig, path, DPI)
