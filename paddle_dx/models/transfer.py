"""Transfer learning as in the esophageal paper: a pretrained network, its 1000-class
classifier dropped, a new fully connected layer sized to the dataset's classes."""

import logging
import re
from pathlib import Path
from typing import Self

import numpy as np
import paddle
import paddle.nn as nn

from paddle_dx.errors import ConfigError, WeightsError
from paddle_dx.models.backbones import BackboneSpec, get_backbone
from paddle_dx.models.pretrained import load_matching, load_pretrained_state, resolve_pretrained
from paddle_dx.models.weights import load_state, resolve_weights, tensor_problem

log = logging.getLogger(__name__)
_BN_TYPES = (nn.BatchNorm, nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.SyncBatchNorm)  # Global.sync_bn
_DROPOUT_TYPES = (nn.Dropout, nn.Dropout2D, nn.Dropout3D, nn.AlphaDropout)


class TransferModel(nn.Layer):
    """``head(dropout(backbone(x)))``; ``backbone`` ends with the pooled feature vector.

    Frozen BatchNorm layers stay in eval mode even when the model is put in train mode, so
    their running statistics keep the pretrained values.
    """

    def __init__(self, name, backbone, in_features, class_num, dropout=0.0) -> None:
        super().__init__()
        self.arch_name = name
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(in_features, class_num)
        self.frozen_bn = []

    @property
    def spec(self) -> BackboneSpec:
        return get_backbone(self.arch_name)

    def features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.backbone(x)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.head(self.dropout(self.backbone(x)))

    def stages(self) -> list[list[nn.Layer]]:
        return self.spec.stages(self.backbone)

    def last_conv(self) -> nn.Layer:
        return self.spec.last_conv(self.backbone)

    def sequence(self) -> list[nn.Layer]:
        """The backbone's layers in forward order (see BackboneSpec.sequence)."""
        return self.spec.sequence(self.backbone)

    def frozen_front(self) -> tuple[list[nn.Layer], list[nn.Layer]]:
        """(front, rest): split the backbone's layer sequence after its longest leading run of
        layers that give the same output every epoch: nothing trainable, no active dropout, and
        every BatchNorm frozen in eval mode. ``front`` can be computed once per image and cached;
        ``rest`` (then dropout and head) is what training still has to run. ``front`` is empty
        when the first layer trains."""
        layers = self.sequence()
        frozen_bn = {id(layer) for layer in self.frozen_bn}
        cut = 0
        while cut < len(layers) and _fixed(layers[cut], frozen_bn):
            cut += 1
        return layers[:cut], layers[cut:]

    def first_random_layer(self) -> str | None:
        """Name of the first active dropout layer in the backbone, or None (for log messages)."""
        found = next((d for d in map(_active_dropout, self.sequence()) if d is not None), None)
        return type(found).__name__ if found is not None else None

    def train(self) -> Self:
        super().train()
        for layer in self.frozen_bn:
            layer.eval()
        return self


def _active_dropout(layer):
    """The first dropout inside ``layer`` (itself included) that draws masks in training, or None."""
    return next(
        (sub for sub in layer.sublayers(include_self=True) if isinstance(sub, _DROPOUT_TYPES) and sub.p > 0), None
    )


def _fixed(layer, frozen_bn):
    """True when ``layer`` maps an image to the same output in every training epoch."""
    if any(not p.stop_gradient for p in layer.parameters()) or _active_dropout(layer) is not None:
        return False
    return all(id(sub) in frozen_bn for sub in layer.sublayers(include_self=True) if isinstance(sub, _BN_TYPES))


def parse_freeze(freeze: str) -> int | str:
    """'none' -> 0 stages, 'backbone' -> all, 'until stage N' -> stem + N stages."""
    text = str(freeze).strip().lower()
    if text in ("none", "", "false"):
        return 0
    if text == "backbone":
        return "backbone"
    m = re.fullmatch(r"(?:until\s+)?stage\s*(\d+)", text)
    if m:
        return int(m.group(1))
    raise ConfigError(f"config key 'Arch.freeze' = {freeze!r}: expected 'none', 'backbone' or 'until stage N'")


def apply_freeze(model: "TransferModel", freeze: str) -> int:
    """Set which parameters train; return the number of frozen parameters (tensors)."""
    what = parse_freeze(freeze)
    statistics = {
        id(t) for layer in model.sublayers() if isinstance(layer, _BN_TYPES) for t in (layer._mean, layer._variance)
    }
    for p in model.parameters():
        p.stop_gradient = id(p) in statistics  # BatchNorm running statistics are buffers, never trained
    model.frozen_bn = []
    if what == 0:
        return 0
    if what == "backbone":
        layers = [model.backbone]
    else:
        stages = model.stages()
        if what > len(stages) - 1:
            raise ConfigError(
                f"config key 'Arch.freeze' = {freeze!r}: {model.arch_name} has only "
                f"{len(stages) - 1} stages after its stem"
            )
        layers = [layer for group in stages[: what + 1] for layer in group]
    frozen = 0
    for layer in layers:
        for p in layer.parameters():
            p.stop_gradient = True
            frozen += 1
        model.frozen_bn += [sub for sub in layer.sublayers(include_self=True) if isinstance(sub, _BN_TYPES)]
    model.train() if model.training else model.eval()
    return frozen


def build_model(arch: dict, image_shape: list[int] | None = None, channels_last: bool = False) -> "TransferModel":
    """Build the TransferModel an ``Arch`` config section describes, with weights loaded.
    ``channels_last``: compute in NHWC (BackboneSpec.channels_last backbones only)."""
    name, class_num = arch["name"], int(arch["class_num"])
    if class_num < 2:
        raise ConfigError(f"config key 'Arch.class_num' must be >= 2, got {class_num}")
    spec = get_backbone(name)
    if channels_last and not spec.channels_last:
        raise ConfigError(f"{name} cannot compute in NHWC (BackboneSpec.channels_last)")
    # weights first: offline, a missing download should fail before minutes of network building
    weights = resolve_pretrained(name, arch.get("pretrained", False))
    net = spec.build(1000, data_format="NHWC") if channels_last else spec.build(1000)
    state = load_pretrained_state(weights, net) if weights is not None else None
    in_features, pretrained_classes = getattr(net, spec.head).weight.shape
    setattr(net, spec.head, nn.Identity())
    report = load_matching(net, state, weights) if state is not None else None
    model = TransferModel(name, net, in_features, class_num, dropout=float(arch.get("dropout") or 0.0))
    if report is not None and class_num == pretrained_classes:
        _keep_classifier(model, state, spec.head, report)
    model.pretrained_report = report
    apply_freeze(model, arch.get("freeze", "none"))
    return model


def _keep_classifier(model, state, head, report):
    """With ``Arch.class_num`` equal to the pretrained classifier's (1000 for ImageNet), keep that
    classifier as the head: the model is then the ImageNet network itself."""
    weights = {key: state.get(f"{head}.{key}") for key in ("weight", "bias")}
    own = model.head.state_dict()
    if any(v is None or list(v.shape) != list(own[k].shape) for k, v in weights.items()):
        return
    model.head.set_state_dict(weights)
    kept = {f"{head}.{key}" for key in weights}
    report["skipped"] = [n for n in report["skipped"] if n not in kept]
    report["loaded"] += [f"head.{key}" for key in weights]
    report["head_kept"] = True
    log.info("kept the pretrained %d-class classifier %s as the head", own["weight"].shape[1], head)


def check_state_fits(model: TransferModel, state: dict, path: Path | str) -> None:
    """Raise WeightsError unless ``state`` has every tensor of ``model`` with the same shape.

    Paddle's own ``set_state_dict`` only warns and skips a mismatched tensor, which would
    silently keep a random head after resuming from a checkpoint with another class count.
    """
    own = model.state_dict()
    head, own_head = state.get("head.weight"), own["head.weight"]
    if (
        len(getattr(head, "shape", ())) == 2
        and head.shape[0] == own_head.shape[0]
        and head.shape[1] != own_head.shape[1]
    ):
        raise WeightsError(f"{path}: checkpoint has {head.shape[1]} classes but Arch.class_num is {own_head.shape[1]}")
    missing = [k for k in own if k not in state]
    if missing:
        raise WeightsError(
            f"{path}: not a checkpoint of this model ({model.arch_name}); "
            f"{len(missing)} tensors missing, e.g. {missing[:3]}"
        )
    for k, v in own.items():
        problem = tensor_problem(k, state[k], v, cast_floats=True)  # cast_to_model casts them
        if problem and "shape" in problem:
            raise WeightsError(f"{path}: {problem} (a checkpoint of another architecture?)")
        if problem:
            raise WeightsError(f"{path}: {problem}")


def cast_to_model(model: nn.Layer, state: dict, path: Path | str) -> dict[str, np.ndarray]:
    """``state``'s tensors in the model's dtypes: another float width (a float64 .pdparams) is
    cast when every value survives it; anything else is a WeightsError naming the tensor (Paddle's
    own error is an assertion traceback)."""
    out = {}
    for k, v in model.state_dict().items():
        value = np.asarray(state[k])
        want = np.dtype(str(v.dtype).rsplit(".", 1)[-1])
        if value.dtype != want:
            if value.dtype.kind != "f" or want.kind != "f":
                raise WeightsError(f"{path}: tensor {k} is {value.dtype}, the model expects {want}")
            with np.errstate(over="ignore"):
                cast = value.astype(want)
            if np.isfinite(value).all() and not np.isfinite(cast).all():
                raise WeightsError(f"{path}: tensor {k} has values beyond {want}'s range; cannot load it as {want}")
            value = cast
        out[k] = value
    return out


def load_model_weights(model: "TransferModel", path: str | Path) -> "TransferModel":
    """Load a paddle_dx checkpoint (whole TransferModel) strictly: class counts must agree.
    ``path`` may be the file or its prefix without ``.pdparams``, as in PaddleClas."""
    path = resolve_weights(path)
    state = load_state(path)
    check_state_fits(model, state, path)
    model.set_state_dict(cast_to_model(model, state, path))
    return model


def count_parameters(model: nn.Layer) -> tuple[int, int]:
    total = sum(int(p.size) for p in model.parameters())
    trainable = sum(int(p.size) for p in model.parameters() if not p.stop_gradient)
    return total, trainable
