"""A known-answer model for Grad-CAM and the UI tests. Class ``corner``: a white square in the
top-left quadrant of a noisy grey image; class ``plain``: none. Both classes get a red bar
with as many saturated pixels in the bottom half, so "the brightest thing" is not the answer:
an untrained LeNet5 spreads its Grad-CAM heat between square and bar (measured top-left share
0.32-0.52), a trained one puts ~0.95 of it on the square. Imported by tests."""

from pathlib import Path

import cv2
import numpy as np
from conftest import tiny_config

CLASSES = ("plain", "corner")
SIZE = 64


def _square(img, quadrant, rng):
    half, side = img.shape[0] // 2, img.shape[0] // 5
    y, x = (int(v) for v in rng.integers(1, half - side, 2))
    y, x = y + half * (quadrant // 2), x + half * (quadrant % 2)
    img[y : y + side, x : x + side] = 255


def corner_image(label, rng, size=SIZE, distractor=None):
    """Grey noise; label 1 adds a white square in the top-left quadrant (quadrant 0). A red
    distractor bar goes in the bottom half (always if ``distractor``, else with p = 0.7)."""
    img = np.clip(rng.normal(90, 25, (size, size, 1)), 0, 255).repeat(3, axis=2).astype(np.uint8)
    if label == 1:
        _square(img, 0, rng)
    if distractor if distractor is not None else rng.random() < 0.7:
        _bar(img, rng)
    return img


def _bar(img, rng):
    size = img.shape[0]
    length, thick = (size // 5) ** 2 // 4, 4  # as many white pixels as the square
    y = int(rng.integers(size // 2, size - thick))
    x = int(rng.integers(0, size - length))
    img[y : y + thick, x : x + length] = (255, 0, 0)


def write_corner_dataset(root, per_class=40, seed=0):
    """Write ``root/images/<class>/*.png`` and train/val/test lists; return (images, lists)."""
    from paddle_dx.data.split import write_split

    rng = np.random.default_rng(seed)
    images = Path(root) / "images"
    for label, name in enumerate(CLASSES):
        (images / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rgb = corner_image(label, rng)
            cv2.imwrite(str(images / name / f"{name}_{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    lists = Path(root) / "lists"
    write_split(images, lists, ratios=(2, 1, 1), seed=seed, classes=list(CLASSES))
    return images, lists


def train_corner_model(root, epochs=4, arch="LeNet5", per_class=40):
    """Train LeNet5 at 64 px (no flips: they would move the corner); return the config used."""
    from paddle_dx.engine.trainer import Trainer

    images, lists = write_corner_dataset(root, per_class)
    ops = "[{ResizeImage: {}}, {NormalizeImage: {}}]"
    config = tiny_config(
        images,
        lists,
        Path(root) / "out",
        **{
            "Global.epochs": epochs,
            "Global.image_shape": "[3, 64, 64]",
            "Arch.class_num": 2,
            "Arch.name": arch,
            "DataLoader.Train.dataset.transform_ops": ops,
            "DataLoader.Train.sampler.batch_size": 8,
        },
    )
    Trainer(config).fit()
    return config


def export_corner_model(root, epochs=4):
    """Train the corner model and export it; return (config, export dir)."""
    from paddle_dx.config import load_config
    from paddle_dx.inference import export_from_config

    config = train_corner_model(root, epochs)
    export_dir = Path(root) / "export"
    export_from_config(
        load_config(
            raw=config,
            overrides=[
                f"Global.pretrained_model={config['Global']['output_dir']}/best_model.pdparams",
                f"Global.save_inference_dir={export_dir}",
            ],
        )
    )
    return config, export_dir


def png_bytes(rgb):
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return buf.tobytes()
