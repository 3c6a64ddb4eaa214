"""VisualDL dashboards: scalars per epoch, the confusion matrix and ROC curve as images.

VisualDL 2.5.3's add_pr_curve / add_roc_curve use ``np.float`` and crash on current NumPy, so
curves are drawn with matplotlib and logged with add_image.
"""
import numpy as np

from paddle_dx.metrics.classification import roc_points
from paddle_dx.metrics.report import confusion_matrix_figure, figure_to_rgb
from paddle_dx.metrics.selection import logged_values, selected


def roc_figure(labels, probs, class_names, title="ROC"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for c, (fpr, tpr) in roc_points(labels, probs, len(class_names)).items():
        ax.plot(fpr, tpr, label=class_names[c])
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


class VisualDLLogger:
    """Writes to ``logdir``; a no-op object when disabled (non-zero ranks, use_visualdl false)."""

    def __init__(self, logdir, enabled=True):
        self.writer = None
        if enabled:
            from visualdl import LogWriter
            self.writer = LogWriter(logdir=str(logdir))

    def scalars(self, values, step):
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag=tag, value=float(value), step=step)

    def epoch(self, split, metrics, step, probs=None, labels=None, metric_config=None):
        """The metrics ``Metric.Eval`` selects (all by default): scalars, per-class values as
        ``split/metric/class``, the confusion matrix and ROC curve as images."""
        if self.writer is None:
            return
        chosen = selected(metric_config)
        scalars, per_class = logged_values(metrics, chosen)
        values = {f"{split}/{name}": value for name, value in scalars.items()}
        values.update({f"{split}/{name}/{cls}": value for cls, by_name in per_class.items()
                       for name, value in by_name.items()})
        self.scalars(values, step)
        names = {m.name for m in chosen}
        if "confusion_matrix" in names:
            self.writer.add_image(tag=f"{split}/confusion_matrix", step=step,
                                  img=figure_to_rgb(confusion_matrix_figure(metrics, f"{split}, epoch {step}")))
        if "auc" in names and probs is not None and len(np.unique(labels)) > 1:
            self.writer.add_image(tag=f"{split}/roc",
                                  img=figure_to_rgb(roc_figure(labels, probs, metrics["class_names"])), step=step)

    def close(self):
        if self.writer is not None:
            self.writer.close()
