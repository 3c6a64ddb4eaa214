"""The configured preprocessing pipelines, and the check the config loader makes on them.

``check_pipelines`` builds each of DataLoader.Train/Eval/Test's pipelines (which checks every
op's parameters) and runs it on one synthetic image, when the config is loaded: an op that
fails on a valid image, or a pipeline whose output is not ``Global.image_shape`` (which
trains and exports silently and only fails at inference), is refused with one line before
anything is built or written. No Paddle import: loading a config stays cheap.
"""

import numpy as np

from paddle_dx.config.sections import DataSection, data_sections
from paddle_dx.data.transforms import Compose, build_transforms, default_ops
from paddle_dx.errors import ConfigError

# Not square and not image_shape, so an output that follows the input's size shows up.
PROBE_SHAPE = (300, 400, 3)


def transforms_for(data: DataSection) -> Compose:
    """The preprocessing pipeline of ``data``'s list (defaults when none is given)."""
    ops = data.dataset["transform_ops"]
    if ops is None:
        ops = default_ops(train=(data.mode == "Train"))
    return build_transforms(ops, data.image_shape, where=data.where("dataset.transform_ops"))


def probe_image() -> np.ndarray:
    """A 300x400 RGB test image: a bright disc (an endoscope's view) on black, with noise."""
    h, w, _ = PROBE_SHAPE
    yy, xx = np.mgrid[:h, :w]
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (0.45 * h) ** 2
    noise = np.random.default_rng(0).integers(40, 220, PROBE_SHAPE)
    return (noise * disc[:, :, None]).astype(np.uint8)


def run_probe(compose: Compose, where: str) -> np.ndarray:
    """The pipeline's output on the probe image; an op that raises is named."""
    img, rng = probe_image(), np.random.default_rng(0)
    for op in compose.ops:
        try:
            img = op(img, rng)
        except Exception as exc:
            raise ConfigError(
                f"{where}: {type(op).__name__} fails on a {PROBE_SHAPE[0]}x{PROBE_SHAPE[1]} "
                f"RGB test image: {type(exc).__name__}: {exc}".replace("\n", " ")
            ) from None
    return img


def check_pipelines(config: dict) -> None:
    """Refuse a pipeline that cannot run, or whose output is not Global.image_shape (a check the
    config loader runs on every config, see engine/components.py)."""
    shape = list(config["Global"]["image_shape"])
    for data in data_sections(config).values():
        where = data.where("dataset.transform_ops")
        out = list(run_probe(transforms_for(data), where).shape)
        if out != shape:
            raise ConfigError(
                f"{where} gives images of shape {out} (from a {PROBE_SHAPE[0]}x{PROBE_SHAPE[1]} "
                f"test image) but Global.image_shape is {shape}: give the sized ops "
                f"(ResizeImage, CenterCrop, RandomResizedCrop) the image_shape's size or leave "
                f"their size out"
            )
