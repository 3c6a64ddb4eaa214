"""Preprocessing ops, defined once and shared by training, evaluation, export and inference.

Each op is a small class registered by name, so configs list them PaddleClas-style::

    transform_ops:
      - CropBorder: {threshold: 10}
      - ResizeImage: {resize_short: 256}
      - CenterCrop: {}              # size taken from Global.image_shape
      - NormalizeImage: {preset: minus_one_to_one}

Ops take an HxWxC array and a ``numpy.random.Generator`` (used only by random ops, so a
sample's augmentation is a pure function of its seed). ``Compose.spec()`` gives the fully
resolved list that ``inference.yml`` stores, so deployment rebuilds exactly this pipeline.
"""

import inspect
import itertools
import logging
import math
import types
import typing
from collections.abc import Sequence
from typing import Union

import cv2
import numpy as np

from paddle_dx.errors import ConfigError
from paddle_dx.utils.registry import Registry

TRANSFORMS = Registry("transform op")
log = logging.getLogger(__name__)

INTERPOLATIONS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}

NORMALIZE_PRESETS = {
    # the esophageal paper: x / 127.5 - 1
    "minus_one_to_one": ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    "imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "zero_to_one": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    # Google's EfficientNet-Lite (TF): (x - 127) / 128, RGB; red (255, 0, 0) -> (1, -0.992, -0.992)
    "efficientnet_lite": ([127 / 255] * 3, [128 / 255] * 3),
}


# Parameter annotations: the config loader checks each op's parameters against them
# (check_params), so a wrong type is refused when the config is read, not inside the DataLoader.
Number = float  # an int is accepted too
Size = Union[int, list[int]]  # noqa: UP007 - check_params matches typing.Union
Numbers = list[float]


class Op:
    """Base op. ``random`` ops consume the generator; deterministic ones never do.
    ``first_only``: why the op must be listed first (None: anywhere). ``expensive``: worth
    caching on disk (``Global.preprocess_cache: auto`` turns the cache on for it).
    ``outcomes()``: a random op's finite set of outcomes, or None (infinitely many); an op that
    gives them also has ``draw(rng)`` (the generator draws ``__call__`` makes, image-independent)
    and ``apply(img, outcome)``, with ``op(img, rng) == op.apply(img, op.draw(rng))``."""

    random = False
    first_only = None
    expensive = False

    def outcomes(self) -> list | None:
        return None

    def params(self) -> dict:
        """The op's constructor arguments as resolved (for inference.yml)."""
        names = inspect.signature(type(self).__init__).parameters
        return {n: _plain(getattr(self, n)) for n in names if n != "self"}

    def __call__(self, img, rng):
        raise NotImplementedError


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _hw(size):
    """Accept an int or [h, w]; return (h, w)."""
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


@TRANSFORMS.register
class CropBorder(Op):
    """Crop the dark frame around an endoscope's round field of view (pixels <= threshold)."""

    def __init__(self, threshold: Number = 10, margin: int = 0) -> None:
        self.threshold = threshold
        self.margin = margin

    def __call__(self, img, rng):
        grey = img.max(axis=2) if img.ndim == 3 else img
        mask = (grey > self.threshold).astype(np.uint8)
        x, y, w, h = cv2.boundingRect(mask)
        if w < 2 or h < 2:  # all dark: keep the frame rather than produce nothing
            return img
        m = self.margin
        y0, x0 = max(y - m, 0), max(x - m, 0)
        return img[y0 : y + h + m, x0 : x + w + m]


@TRANSFORMS.register
class Denoise(Op):
    """OpenCV denoising. fastNlMeans is ~0.5 s on a full 720x576 frame: resize first."""

    METHODS = ("fastNlMeans", "bilateral", "gaussian", "median")
    EXPENSIVE_METHODS = ("fastNlMeans",)  # ~250 ms per image at 224 px; the others take ~1 ms

    def __init__(
        self,
        method: str = "fastNlMeans",
        h: Number = 3,
        ksize: int = 3,
        d: int = 5,
        sigma: Number = 50,
        after_resize: bool = True,
    ) -> None:
        if method not in self.METHODS:
            raise ConfigError(f"Denoise.method '{method}' is not one of {list(self.METHODS)}")
        self.method, self.h, self.ksize, self.d, self.sigma = method, h, ksize, d, sigma
        self.after_resize = after_resize  # build_transforms moves it after the first ResizeImage

    @property
    def expensive(self) -> bool:
        return self.method in self.EXPENSIVE_METHODS

    def __call__(self, img, rng):
        if self.method == "fastNlMeans":
            return cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(img), None, self.h, self.h, 7, 21)
        if self.method == "bilateral":
            return cv2.bilateralFilter(img, self.d, self.sigma, self.sigma)
        if self.method == "gaussian":
            return cv2.GaussianBlur(img, (self.ksize, self.ksize), 0)
        return cv2.medianBlur(img, self.ksize)


@TRANSFORMS.register
class ResizeImage(Op):
    """Resize to ``size`` ([h, w] or int), or so the short side equals ``resize_short``."""

    sized = True

    def __init__(self, size: Size | None = None, resize_short: int | None = None, interpolation: str = "area") -> None:
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(f"ResizeImage.interpolation '{interpolation}' is not one of {list(INTERPOLATIONS)}")
        self.size, self.resize_short, self.interpolation = size, resize_short, interpolation

    def __call__(self, img, rng):
        h, w = img.shape[:2]
        if self.resize_short:
            scale = self.resize_short / min(h, w)
            out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
        else:
            out_h, out_w = _hw(self.size)
        return cv2.resize(img, (out_w, out_h), interpolation=INTERPOLATIONS[self.interpolation])


@TRANSFORMS.register
class CenterCrop(Op):
    """Crop the centre ``size`` region (padding with edge pixels if the image is smaller)."""

    sized = True

    def __init__(self, size: Size | None = None) -> None:
        self.size = size

    def __call__(self, img, rng):
        ch, cw = _hw(self.size)
        h, w = img.shape[:2]
        if h < ch or w < cw:
            img = cv2.copyMakeBorder(img, 0, max(ch - h, 0), 0, max(cw - w, 0), cv2.BORDER_REPLICATE)
            h, w = img.shape[:2]
        y, x = (h - ch) // 2, (w - cw) // 2
        return img[y : y + ch, x : x + cw]


@TRANSFORMS.register
class RandomResizedCrop(Op):
    """Inception-style crop: random area fraction and aspect ratio, resized to ``size``."""

    random = True
    sized = True

    def __init__(self, size: Size | None = None, scale: Numbers = (0.08, 1.0), ratio: Numbers = (3 / 4, 4 / 3)) -> None:
        self.size, self.scale, self.ratio = size, tuple(scale), tuple(ratio)

    def __call__(self, img, rng):
        h, w = img.shape[:2]
        out_h, out_w = _hw(self.size)
        for _ in range(10):
            area = h * w * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            cw, ch = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                img = img[y : y + ch, x : x + cw]
                break
        return cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)


@TRANSFORMS.register
class RandomFlip(Op):
    """Flip left-right with probability ``horizontal`` and up-down with ``vertical``."""

    random = True

    def __init__(self, horizontal: Number = 0.5, vertical: Number = 0.0) -> None:
        self.horizontal, self.vertical = horizontal, vertical

    def outcomes(self) -> list[tuple[bool, bool]]:
        """(flip left-right, flip up-down) pairs this op can produce: 1, 2 or 4 of them."""

        def possible(p):
            return [False, True] if 0 < p < 1 else [p >= 1]

        return [(h, v) for h in possible(self.horizontal) for v in possible(self.vertical)]

    def draw(self, rng: np.random.Generator) -> tuple[bool, bool]:
        return bool(rng.random() < self.horizontal), bool(rng.random() < self.vertical)

    def apply(self, img: np.ndarray, outcome: tuple[bool, bool]) -> np.ndarray:
        horizontal, vertical = outcome
        if horizontal:
            img = img[:, ::-1]
        if vertical:
            img = img[::-1]
        return np.ascontiguousarray(img)

    def __call__(self, img, rng):
        return self.apply(img, self.draw(rng))


@TRANSFORMS.register
class RandomRotation(Op):
    """Rotate by a uniform angle in [-degrees, degrees], edges reflected."""

    random = True

    def __init__(self, degrees: Number = 10) -> None:
        self.degrees = degrees

    def __call__(self, img, rng):
        angle = rng.uniform(-self.degrees, self.degrees)
        h, w = img.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        return cv2.warpAffine(img, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101)


@TRANSFORMS.register
class ColorJitter(Op):
    """Random brightness (+- ``brightness`` x 255) and contrast (x 1 +- ``contrast``) changes."""

    random = True

    def __init__(self, brightness: Number = 0.1, contrast: Number = 0.1) -> None:
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, img, rng):
        alpha = 1.0 + rng.uniform(-self.contrast, self.contrast)
        beta = 255.0 * rng.uniform(-self.brightness, self.brightness)
        # contrast scales around the image mean, so it does not also change the brightness;
        # clipping (not cv2.convertScaleAbs's absolute value) keeps dark pixels dark
        shift = beta + (1.0 - alpha) * float(img.mean())
        return np.clip(np.rint(img.astype(np.float32) * alpha + shift), 0, 255).astype(np.uint8)


@TRANSFORMS.register
class Grayscale(Op):
    """Convert to grey, keeping ``channels`` (3 = grey replicated, for RGB backbones)."""

    def __init__(self, channels: int = 3) -> None:
        self.channels = channels

    def __call__(self, img, rng):
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        return np.repeat(grey[:, :, None], self.channels, axis=2)


@TRANSFORMS.register
class NormalizeImage(Op):
    """uint8 -> float32: ``(x * scale - mean) / std``. Default preset maps to [-1, 1]."""

    def __init__(
        self,
        preset: str = "minus_one_to_one",
        mean: Numbers | None = None,
        std: Numbers | None = None,
        scale: Number = 1.0 / 255.0,
    ) -> None:
        if preset not in NORMALIZE_PRESETS and (mean is None or std is None):
            raise ConfigError(f"NormalizeImage.preset '{preset}' is not one of {list(NORMALIZE_PRESETS)}")
        default_mean, default_std = NORMALIZE_PRESETS.get(preset, (mean, std))
        self.preset, self.scale = preset, scale
        self.mean = list(mean if mean is not None else default_mean)
        self.std = list(std if std is not None else default_std)

    def __call__(self, img, rng):
        channels = img.shape[2] if img.ndim == 3 else 1
        mean = np.asarray(self.mean[:channels], np.float32)
        std = np.asarray(self.std[:channels], np.float32)
        return ((img.astype(np.float32) * np.float32(self.scale)) - mean) / std


@TRANSFORMS.register
class ToCHWImage(Op):
    """HWC -> CHW float32, the layout Paddle's convolutions take."""

    def __init__(self) -> None:
        pass

    def __call__(self, img, rng):
        if img.ndim == 2:
            img = img[:, :, None]
        return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


class Compose:
    """An ordered pipeline of ops; always ends with float32 CHW."""

    def __init__(self, ops) -> None:
        self.ops = list(ops)
        if not self.ops or not isinstance(self.ops[-1], ToCHWImage):
            self.ops.append(ToCHWImage())

    @property
    def is_random(self) -> bool:
        return any(op.random for op in self.ops)

    def deterministic_prefix(self) -> list[Op]:
        """Ops before the first random one: their output can be cached per image."""
        prefix = []
        for op in self.ops:
            if op.random:
                break
            prefix.append(op)
        return prefix

    def variants(self) -> list[tuple] | None:
        """Every outcome the random ops can produce together (tuples, one entry per random op),
        or None when one of them has infinitely many (crops, rotations, colour jitter)."""
        per_op = [op.outcomes() for op in self.ops if op.random]
        if any(o is None for o in per_op):
            return None
        return [tuple(combo) for combo in itertools.product(*per_op)]

    def draw(self, rng: np.random.Generator) -> tuple:
        """The outcome ``__call__`` would produce with ``rng`` (the same generator draws)."""
        return tuple(op.draw(rng) for op in self.ops if op.random)

    def apply(self, img: np.ndarray, outcome: Sequence, start: int = 0) -> np.ndarray:
        """``ops[start:]`` with each random op fixed to its entry of ``outcome``."""
        fixed = iter(outcome[sum(op.random for op in self.ops[:start]) :])
        for op in self.ops[start:]:
            img = op.apply(img, next(fixed)) if op.random else op(img, None)
        return img

    def spec(self) -> list[dict]:
        """Resolved ``[{OpName: params}, ...]``, enough to rebuild this exact pipeline."""
        return [{type(op).__name__: op.params()} for op in self.ops]

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng(0)
        for op in self.ops:
            img = op(img, rng)
        return img


def default_ops(train: bool) -> list[dict]:
    """Used when a config gives no transform_ops: resize, (flip), scale to [-1, 1]."""
    ops = [{"ResizeImage": {}}]
    if train:
        ops.append({"RandomFlip": {"horizontal": 0.5}})
    ops.append({"NormalizeImage": {"preset": "minus_one_to_one"}})
    return ops


def _accepts(value, hint):
    """Whether ``value`` (as YAML gives it) fits annotation ``hint``; an int is a valid float."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return any(_accepts(value, h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, (list, tuple)) and all(_accepts(v, typing.get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if isinstance(value, bool) or hint is bool:
        return isinstance(value, bool) and hint is bool
    return isinstance(value, (int, float) if hint is float else hint)


def _hint_text(hint):
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(_hint_text(h) for h in typing.get_args(hint)))
    if typing.get_origin(hint) is list:
        return f"a list of {_hint_text(typing.get_args(hint)[0])}s"
    return {type(None): "null", float: "number"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_params(op_cls: type[Op], params: dict, where: str) -> None:
    """Refuse a parameter whose value does not fit the op's annotation (unannotated: unchecked)."""
    hints = typing.get_type_hints(op_cls.__init__)
    for key, value in params.items():
        if key in hints and not _accepts(value, hints[key]):
            raise ConfigError(
                f"{where}.{op_cls.__name__}.{key}: expected {_hint_text(hints[key])}, "
                f"got {type(value).__name__} ({value!r})"
            )


def build_transforms(ops_config: list, image_shape: list[int], where: str = "transform_ops") -> Compose:
    """Build a Compose from ``[{Name: {params}}, ...]``; sizes default to image_shape's H, W."""
    ops = []
    for i, item in enumerate(ops_config):
        op_cls, params = TRANSFORMS.resolve(item, f"{where}[{i}]")
        check_params(op_cls, params, f"{where}[{i}]")
        name = op_cls.__name__
        if op_cls.first_only and i > 0:
            raise ConfigError(
                f"{where}[{i}].{name} must be listed first: {op_cls.first_only} (here after {list(ops_config[0])[0]})"
            )
        if getattr(op_cls, "sized", False) and params.get("size") is None and not params.get("resize_short"):
            params["size"] = [int(image_shape[1]), int(image_shape[2])]
        try:
            ops.append(op_cls(**params))
        except ConfigError as exc:  # the op's own check, e.g. "Denoise.method 'x' is not one of [...]"
            raise ConfigError(f"{where}[{i}].{exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}[{i}].{name}: {exc}") from None
    return Compose(denoise_after_resize(ops, where))


def denoise_after_resize(ops: list[Op], where: str = "transform_ops") -> list[Op]:
    """Move Denoise ops listed before the first ResizeImage to just after it.

    fastNlMeans costs ~0.5 s on a full 720x576 frame and a tenth of that at 256 px
    (benchmarks/results/preprocess.md). ``Denoise: {after_resize: false}`` keeps the listed order.
    """
    resize = next((op for op in ops if isinstance(op, ResizeImage)), None)
    if resize is None:
        return ops
    early = ops[: ops.index(resize)]
    moved = [op for op in early if isinstance(op, Denoise) and op.after_resize]
    if not moved:
        return ops
    log.info("%s: Denoise applied after ResizeImage (set Denoise.after_resize: false to denoise first)", where)
    rest = [op for op in ops if all(op is not m for m in moved)]
    at = rest.index(resize) + 1
    return rest[:at] + moved + rest[at:]
