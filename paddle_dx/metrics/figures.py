"""Metrics as matplotlib figures: confusion matrix, ROC curves, training curves.

Figures are built with the object-oriented API (``matplotlib.figure.Figure`` on an Agg canvas)
and never through pyplot, so drawing them leaves the user's backend alone: Jupyter's inline
plots keep working after a run in the same kernel.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay, auc

from paddle_dx.metrics.classification import roc_points
from paddle_dx.metrics.registry import METRICS
from paddle_dx.utils.files import atomic_path

DPI = 100
SPLIT_NAMES = {"val": "validation", "test": "test"}


def new_figure(width: float, height: float) -> Figure:
    """A Figure on its own Agg canvas (``width`` x ``height`` inches)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path | str, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (a crash never leaves half a PNG); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        FigureCanvasAgg(fig)
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Render ``fig`` to an HxWx3 uint8 array (for VisualDL's add_image)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def figure_title(split: str, epoch: int | None = None, weights: Path | str | None = None, what: str = "") -> str:
    """A title saying which data and which model, e.g. "test: ROC, epoch 7, best_model.pdparams"."""
    parts = [f"{SPLIT_NAMES.get(split, split)}: {what}".rstrip(": ")]
    if epoch is not None:
        parts.append(f"epoch {epoch}")
    if weights:
        parts.append(Path(str(weights)).name)
    return ", ".join(parts)


def confusion_matrix_figure(metrics: Mapping, title: str = "Confusion matrix") -> Figure:
    """The confusion matrix of a metrics dict (rows = true class), counts in the cells."""
    names = metrics["class_names"]
    size = 1.1 * len(names) + 2.5
    fig = new_figure(size + 0.5, size)
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(np.asarray(metrics["confusion_matrix"]), display_labels=names).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=30, values_format="d"
    )
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def roc_figure(labels: npt.ArrayLike, probs: npt.ArrayLike, class_names: Sequence[str], title: str = "ROC") -> Figure:
    """ROC curve of the positive class (label 1) for two classes, else one curve per class
    (one-vs-rest); each legend entry carries its AUC, the title the overall AUC."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=float)
    fig = new_figure(5.2, 5.0)
    ax = fig.add_subplot()
    curves = roc_points(labels, probs, len(class_names))
    for c, (fpr, tpr) in curves.items():
        area = auc(fpr, tpr)
        RocCurveDisplay(fpr=fpr, tpr=tpr, roc_auc=area, name=class_names[c]).plot(
            ax=ax, curve_kwargs={"label": f"{class_names[c]} (AUC = {area:.3f})"}
        )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    overall = METRICS.get("auc")()(labels, probs) if len(class_names) > 2 else None
    if overall is not None and np.isfinite(overall):
        title = f"{title}\nmacro one-vs-rest AUC = {overall:.3f}"
    ax.set_title(title, fontsize=10)
    if curves:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def curves_figure(
    history: Sequence[Mapping],
    keys: Sequence[str] = ("loss", "accuracy"),
    title: str = "Training curves",
    boundaries: Sequence[int] = (),
) -> Figure:
    """Per-epoch train and validation ``keys`` from metrics.json's history, one panel per key;
    the accuracy panel adds validation AUC when recorded; dotted lines after each epoch in
    ``boundaries`` (the last epoch of a training stage)."""
    fig = new_figure(5.0 * len(keys), 3.8)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        series = [("train", f"train_{key}", "o-"), ("validation", f"val_{key}", "s-")] + (
            [("validation AUC", "val_auc", "^:")] if key == "accuracy" else []
        )
        ylabel = key
        for label, field, style in series:
            points = [(h["epoch"], h[field]) for h in history if h.get(field) is not None]
            if points:
                ax.plot(*zip(*points), style, label=label)
                ylabel += " / AUC" if field == "val_auc" else ""
        for end in boundaries:
            ax.axvline(end + 0.5, color="grey", linestyle=":")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def run_figures(
    result: Mapping,
    class_names: Sequence[str],
    weights_name: str = "best_model.pdparams",
    val_predictions: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    test_predictions: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> dict[str, Figure]:
    """{name: Figure} for one training run (see write_run_figures); missing data, no figure."""
    history, epoch = result.get("history") or [], result.get("best_epoch")
    boundaries = [s["end_epoch"] for s in (result.get("stages") or [])[:-1]]
    drawn = {}
    if history:
        drawn["curves_loss"] = curves_figure(history, ("loss",), "Loss per epoch", boundaries)
        drawn["curves_accuracy"] = curves_figure(history, ("accuracy",), "Accuracy per epoch", boundaries)
    for split, predictions in (("val", val_predictions), ("test", test_predictions)):
        if result.get(split):
            drawn[f"{split}_confusion_matrix"] = confusion_matrix_figure(
                result[split], figure_title(split, epoch, weights_name, "confusion matrix")
            )
        if predictions is not None and len(np.unique(predictions[0])) > 1:
            drawn[f"{split}_roc"] = roc_figure(
                *predictions, class_names, figure_title(split, epoch, weights_name, "ROC")
            )
    return drawn


def write_run_figures(
    output_dir: Path | str,
    result: Mapping,
    class_names: Sequence[str],
    weights_name: str = "best_model.pdparams",
    val_predictions: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    test_predictions: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> dict[str, Path]:
    """Write ``output_dir/figures/*.png`` for one training run; returns {name: path}.

    ``result`` is metrics.json's dict (history, best_epoch, val, test, stages); the confusion
    matrices come from its val/test metrics, the ROC curves from ``*_predictions`` =
    (labels, probabilities) of the best epoch's weights. A figure whose data is missing is
    skipped: curves_loss, curves_accuracy, {val,test}_confusion_matrix, {val,test}_roc.
    """
    drawn = run_figures(result, class_names, weights_name, val_predictions, test_predictions)
    return {name: save_figure(fig, Path(output_dir) / "figures" / f"{name}.png") for name, fig in drawn.items()}
