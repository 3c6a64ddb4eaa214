"""BatchNorm layers that normalise over the global batch of a multi-GPU run (``Global.sync_bn``).

``paddle.nn.SyncBatchNorm.convert_sync_batchnorm`` converts only the 2.x layers
(``BatchNorm1D/2D/3D``): the PaddleClas backbones (ResNet, Inception) use the legacy
``nn.BatchNorm``, which it leaves as it is, silently. Here both are converted, the legacy layer's
fused activation (``act="relu"``) included, and the new layers take over the same weight, bias
and running-statistics tensors, so parameter names, checkpoints, the optimizer's parameters and
the frozen layers (``TransferModel.frozen_bn``) stay as they were.
"""

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from paddle_dx.errors import ConfigError

_NEW_STYLE = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D)


class SyncBatchNormAct(nn.SyncBatchNorm):
    """``nn.SyncBatchNorm`` followed by the activation the legacy ``nn.BatchNorm`` fused (or none)."""

    def __init__(self, *args, act=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._act = act

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = super().forward(x)
        return out if self._act is None else getattr(F, self._act)(out)


def _synced(layer):
    """The SyncBatchNorm that replaces ``layer``, sharing its tensors (None: not a BatchNorm)."""
    if isinstance(layer, nn.SyncBatchNorm) or not isinstance(layer, (nn.BatchNorm, *_NEW_STYLE)):
        return None
    if isinstance(layer, nn.BatchNorm):
        act = getattr(layer, "_act", None)
        if act is not None and not callable(getattr(F, act, None)):
            raise ConfigError(f"Global.sync_bn: cannot convert a BatchNorm with activation {act!r}")
        if layer._use_global_stats or layer._trainable_statistics:
            raise ConfigError("Global.sync_bn: cannot convert a BatchNorm with use_global_stats/trainable_statistics")
        data_format = layer._data_layout
    else:
        act, data_format = None, layer._data_format
    synced = SyncBatchNormAct(layer._mean.shape[0], layer._momentum, layer._epsilon, data_format=data_format, act=act)
    with paddle.no_grad():
        synced.weight, synced.bias = layer.weight, layer.bias
    synced._mean, synced._variance = layer._mean, layer._variance
    synced.training = layer.training
    return synced


def convert_sync_batchnorm(model: nn.Layer) -> int:
    """Replace every BatchNorm inside ``model`` by a SyncBatchNorm in place; return how many.

    The SyncBatchNorm kernel exists on GPU only: a converted model cannot run forward on the CPU.
    """
    replaced = {}
    for parent in model.sublayers(include_self=True):
        for name, child in list(parent.named_children()):
            synced = replaced.get(id(child)) or _synced(child)
            if synced is not None:
                replaced[id(child)] = synced
                setattr(parent, name, synced)
    if hasattr(model, "frozen_bn"):  # TransferModel keeps its frozen BatchNorm layers in eval mode
        model.frozen_bn = [replaced.get(id(layer), layer) for layer in model.frozen_bn]
    return len(replaced)
