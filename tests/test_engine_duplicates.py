"""Training's start-up check finds the same picture saved as two files in train and val."""

import json
import logging
from pathlib import Path

import cv2
from conftest import make_tiny_dataset, tiny_config


def test_pixel_identical_copy_in_train_and_val_is_warned_and_recorded(tmp_path, caplog):
    from paddle_dx.engine.trainer import Trainer

    images, lists = make_tiny_dataset(tmp_path / "data")
    path, label = (lists / "train_list.txt").read_text().splitlines()[0].rsplit(maxsplit=1)
    copy = Path(path).with_name("same_pixels.bmp").as_posix()  # other format, other bytes, same pixels
    cv2.imwrite(str(images / copy), cv2.imread(str(images / path)))
    with open(lists / "val_list.txt", "a") as f:
        f.write(f"{copy} {label}\n")
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="paddle_dx.data.split"):
        Trainer(tiny_config(images, lists, out, **{"Global.epochs": 1})).fit()
    assert "same image content" in caplog.text and path in caplog.text and copy in caplog.text
    recorded = json.loads((out / "metrics.json").read_text())["duplicates_across_splits"]
    assert len(recorded) == 1
    assert [(s, Path(p).name) for s, p in recorded[0]["files"]] == [
        ("train", Path(path).name),
        ("val", "same_pixels.bmp"),
    ]
