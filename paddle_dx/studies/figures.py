"""The report's PNG figures: training curves, confusion matrix, ROC curve, test-image grid, and
the papers' own figures (models overlaid per stage, per-class curves, accuracy vs data size)
(drawn by paddle_dx.metrics.figures, off pyplot, so the user's matplotlib backend is kept)."""

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from paddle_dx.data.io import read_image
from paddle_dx.engine.stage_schedule import stage_bounds
from paddle_dx.metrics.figures import confusion_matrix_figure, curves_figure, new_figure, roc_figure, save_figure

DPI = 80


def training_curves(history: list[dict], stages: list[dict] | None, title: str, path: Path | str) -> Path:
    """Loss and accuracy per epoch, train and validation; dotted lines mark stage boundaries."""
    ends = [end for _, end in stage_bounds(stages)[:-1]]
    return save_figure(curves_figure(history, ("loss", "accuracy"), title, ends), path, DPI)


def confusion(metrics: dict, title: str, path: Path | str) -> Path:
    return save_figure(confusion_matrix_figure(metrics, title), path, DPI)


def roc_curve_figure(
    labels: npt.ArrayLike, probs: npt.ArrayLike, class_names: Sequence[str], title: str, path: Path | str
) -> Path:
    """One ROC curve per class (one-vs-rest); the positive class only for a binary task."""
    return save_figure(roc_figure(labels, probs, class_names, title), path, DPI)


def prediction_grid(
    paths: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    probs: npt.ArrayLike,
    class_names: Sequence[str],
    title: str,
    path: Path | str,
    count: int = 16,
    thumb: int = 128,
) -> Path:
    """Test images titled "true / predicted", green when right and red when wrong (evenly
    spaced through the test list so every class shows)."""
    picks = np.unique(np.linspace(0, len(paths) - 1, num=min(count, len(paths))).round().astype(int))
    preds = np.asarray(probs).argmax(axis=1)

    def caption(i):
        return (f"{class_names[labels[i]]} / {class_names[preds[i]]}", "green" if preds[i] == labels[i] else "red")

    return _image_grid(paths, picks, caption, f"{title}\n(true / predicted)", path, 4, thumb, top=0.86)


def _image_grid(paths, picks, caption, title, path, max_cols, thumb, top):
    """Thumbnails of ``paths[picks]``, each titled ``caption(i)`` = (text, colour)."""
    cols = min(max_cols, len(picks))
    rows = math.ceil(len(picks) / cols)
    fig = new_figure(2.6 * cols, 2.8 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), picks):
        ax.imshow(cv2.resize(read_image(paths[i]), (thumb, thumb), interpolation=cv2.INTER_AREA))
        text, color = caption(i)
        ax.set_title(text, fontsize=8, color=color)
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=top, hspace=0.3, wspace=0.1)
    return save_figure(fig, path, DPI)


def _line_panel(ax, series, title, ylabel):
    """One panel: {label: [(x, y), ...]} as lines with markers."""
    for label, points in series.items():
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, "o-", markersize=3, label=label)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if any(series.values()):
        ax.legend(fontsize=7)


def models_overlay(
    histories: dict[str, list[dict]], bounds: tuple[int, int | None], title: str, path: Path | str
) -> Path:
    """The gastric paper's Figures 2-3: train/val accuracy and loss of every model overlaid, over
    the epochs [start, end) of one stage (``histories``: {model: metrics.json history})."""
    start, end = bounds
    fig = new_figure(10, 7)
    axes = fig.subplots(2, 2).ravel()
    panels = (
        ("train_accuracy", "A: training accuracy"),
        ("train_loss", "B: training loss"),
        ("val_accuracy", "C: validation accuracy"),
        ("val_loss", "D: validation loss"),
    )
    for ax, (key, label) in zip(axes, panels):
        series = {
            model: [(h["epoch"], h[key]) for h in history[start:end] if h.get(key) is not None]
            for model, history in histories.items()
        }
        _line_panel(ax, series, label, key.split("_")[1])
        ax.set_xlabel("epoch")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, DPI)


def per_class_curves(
    history: list[dict],
    title: str,
    path: Path | str,
    keys: Sequence[tuple[str, str]] = (
        ("precision", "A: precision"),
        ("sensitivity", "B: sensitivity"),
        ("f1", "C: F1-score"),
    ),
) -> Path | None:
    """The gastric paper's Figure 4: per-class validation precision, sensitivity and F1 per epoch
    from the history's ``val_per_class``; None when the history has none."""
    records = [h for h in history if h.get("val_per_class")]
    if not records:
        return None
    classes = list(records[0]["val_per_class"])
    fig = new_figure(12, 3.8)
    for ax, (key, label) in zip(fig.subplots(1, len(keys)), keys):
        series = {
            c: [(h["epoch"], h["val_per_class"][c][key]) for h in records if key in h["val_per_class"].get(c, {})]
            for c in classes
        }
        _line_panel(ax, series, label, key)
        ax.set_xlabel("epoch")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, DPI)


def size_curve(sizes: dict[str, list[tuple[int, float]]], title: str, path: Path | str) -> Path:
    """Accuracy vs number of training images, one curve per model ({model: [(n, accuracy)]})."""
    fig = new_figure(6, 4.2)
    ax = fig.add_subplot()
    _line_panel(ax, {m: sorted(points) for m, points in sizes.items()}, title, "test accuracy")
    ax.set_xlabel("training images")
    fig.tight_layout()
    return save_figure(fig, path, DPI)


def random_images(
    paths: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    title: str,
    path: Path | str,
    count: int = 20,
    seed: int = 0,
    thumb: int = 128,
) -> Path:
    """``count`` test images drawn at random (seeded), titled with their true class (the brain
    paper's Figure 1)."""
    picks = np.sort(np.random.default_rng(seed).choice(len(paths), size=min(count, len(paths)), replace=False))
    return _image_grid(paths, picks, lambda i: (class_names[labels[i]], "black"), title, path, 5, thumb, top=0.88)
