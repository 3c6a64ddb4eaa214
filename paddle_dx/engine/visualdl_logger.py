"""VisualDL dashboards: scalars per epoch, the confusion matrix and ROC curve as images.

VisualDL 2.5.3's add_pr_curve / add_roc_curve use ``np.float`` and crash on current NumPy, so
curves are drawn with matplotlib (paddle_dx.metrics.figures, no pyplot) and logged with add_image.
"""

import numpy as np

from paddle_dx.engine.hparams import log_hparams
from paddle_dx.metrics.figures import confusion_matrix_figure, figure_to_rgb, roc_figure
from paddle_dx.metrics.selection import logged_values, selected


class VisualDLLogger:
    """Writes to ``logdir``; a no-op object when disabled (non-zero ranks, use_visualdl false)."""

    def __init__(self, logdir, enabled=True) -> None:
        self.writer = None
        if enabled:
            from visualdl import LogWriter

            self.writer = LogWriter(logdir=str(logdir))

    def hparams(self, config: dict) -> None:
        """The run's hyper-parameters, for VisualDL's comparison of runs."""
        if self.writer is not None:
            log_hparams(self.writer, config)

    def scalars(self, values: dict[str, float | None], step: int) -> None:
        if self.writer is None:
            return
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag=tag, value=float(value), step=step)

    def epoch(
        self,
        split: str,
        metrics: dict,
        step: int,
        probs: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        metric_config: dict | None = None,
    ) -> None:
        """The metrics ``Metric.Eval`` selects (all by default): scalars, per-class values as
        ``split/metric/class``, the confusion matrix and ROC curve as images."""
        if self.writer is None:
            return
        chosen = selected(metric_config)
        scalars, per_class = logged_values(metrics, chosen)
        values = {f"{split}/{name}": value for name, value in scalars.items()}
        values.update(
            {f"{split}/{name}/{cls}": value for cls, by_name in per_class.items() for name, value in by_name.items()}
        )
        self.scalars(values, step)
        names = {m.name for m in chosen}
        if "confusion_matrix" in names:
            self.writer.add_image(
                tag=f"{split}/confusion_matrix",
                step=step,
                img=figure_to_rgb(confusion_matrix_figure(metrics, f"{split}, epoch {step}")),
            )
        if "auc" in names and probs is not None and len(np.unique(labels)) > 1:
            roc = roc_figure(labels, probs, metrics["class_names"], f"{split}, epoch {step}")
            self.writer.add_image(tag=f"{split}/roc", img=figure_to_rgb(roc), step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
