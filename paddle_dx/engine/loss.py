"""Losses named in ``Loss.Train`` / ``Loss.Eval`` (PaddleClas style: a list of {Name: params})."""

from collections.abc import Sequence

import numpy as np
import paddle
import paddle.nn.functional as F

from paddle_dx.errors import ConfigError
from paddle_dx.utils.registry import Registry

LOSSES = Registry("loss")


@LOSSES.register
class CELoss:
    """Cross-entropy; ``class_weights``: a list, or 'balanced' (n / (k * count_k) from the
    training labels) for imbalanced sets such as the 2:1 esophageal data."""

    def __init__(self, weight=1.0, class_weights=None, label_smoothing=0.0, train_labels=None, class_num=None) -> None:
        self.weight, self.label_smoothing = float(weight), float(label_smoothing)
        self.class_weights = None
        if isinstance(class_weights, str):
            if class_weights != "balanced":
                raise ConfigError(f"CELoss.class_weights must be a list or 'balanced', got {class_weights!r}")
            counts = np.bincount(np.asarray(train_labels), minlength=class_num).astype(float)
            counts[counts == 0] = 1.0
            class_weights = (counts.sum() / (class_num * counts)).tolist()
        if class_weights is not None:
            if class_num is not None and len(class_weights) != class_num:
                raise ConfigError(f"CELoss.class_weights has {len(class_weights)} values for {class_num} classes")
            self.class_weights = paddle.to_tensor(np.asarray(class_weights, dtype="float32").reshape([-1, 1]))

    def __call__(self, logits, labels):
        if self.class_weights is None:
            return self.weight * F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        # Paddle's weighted mean, sum_i w_i * ce_i / sum_i w_i with w_i = (smoothed) target . class_weights,
        # written out: F.cross_entropy's own weight path calls APIs the static engine's legacy Program lacks.
        per_sample = F.cross_entropy(logits, labels, reduction="none", label_smoothing=self.label_smoothing)
        classes = self.class_weights.shape[0]
        target = (
            F.one_hot(labels.reshape([-1]), classes) * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        )
        w = F.linear(target, self.class_weights)  # [B, 1]
        return self.weight * paddle.mean(per_sample.reshape([-1, 1]) * w) / paddle.mean(w)


class CombinedLoss:
    """Sum of the configured losses."""

    def __init__(self, losses) -> None:
        self.losses = losses

    def __call__(self, logits, labels):
        total = None
        for loss in self.losses:
            value = loss(logits, labels)
            total = value if total is None else total + value
        return total


def build_loss(
    items: list, where: str, train_labels: Sequence[int] | None = None, class_num: int | None = None
) -> CombinedLoss:
    """The summed losses of a ``Loss.Train`` / ``Loss.Eval`` list (``where`` names it in errors)."""
    losses = []
    for i, item in enumerate(items):
        cls, params = LOSSES.resolve(item, f"{where}[{i}]", internal=("train_labels", "class_num"))
        losses.append(cls(**params, train_labels=train_labels, class_num=class_num))
    if not losses:
        raise ConfigError(f"{where} lists no loss")
    return CombinedLoss(losses)
