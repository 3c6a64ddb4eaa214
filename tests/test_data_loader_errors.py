"""An error while producing a batch ends the run with one line and exit code 2 in every
loader mode, instead of hanging in Paddle's reader (paddle_dx/data/loader.py); SIGTERM
during a slow batch still stops the run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import ROOT, make_tiny_dataset

from paddle_dx.data.loader import SafeDataLoader, SampleFailure, collate_or_fail
from paddle_dx.errors import DataError

DRIVER = ROOT / "tests" / "loader_fault_driver.py"
MODES = [(0, False), (2, False), (2, True)]  # (num_workers, use_shared_memory)
BOUND = 600  # seconds: a hang is what this catches, not slowness


def odd_image(images, lists):
    """Make the first training image 33 px high (the test op's trigger); return its path."""
    rel = (Path(lists) / "train_list.txt").read_text().split()[0]
    path = Path(images) / rel
    cv2.imwrite(str(path), np.full((33, 32, 3), 120, np.uint8))
    return path


def write_config(tmp_path, num_workers, shared, fault):
    images, lists = make_tiny_dataset(tmp_path / "data")
    bad = odd_image(images, lists)

    def section(split, ops):
        return {
            "dataset": {
                "image_root": str(images),
                "cls_label_path": str(lists / f"{split}_list.txt"),
                "transform_ops": ops,
            },
            "sampler": {"batch_size": 4},
            "loader": {"num_workers": num_workers, "use_shared_memory": shared},
        }

    ops = [{"FaultOn": fault}, {"ResizeImage": {}}, {"NormalizeImage": {}}]
    raw = {
        "Global": {
            "seed": 7,
            "epochs": 1,
            "output_dir": str(tmp_path / "out"),
            "image_shape": [3, 32, 32],
            "use_visualdl": False,
            "device": "cpu",
        },
        "Arch": {"name": "LeNet5", "class_num": 2, "pretrained": False},
        "DataLoader": {
            "Train": section("train", ops),
            "Eval": section("val", ops[1:]),
            "Test": section("test", ops[1:]),
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path, bad


def start(config):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(DRIVER), "train", "-c", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("num_workers,shared", MODES)
def test_a_transform_error_ends_the_run_with_one_line_naming_the_image(tmp_path, num_workers, shared):
    config, bad = write_config(tmp_path, num_workers, shared, {"action": "raise"})
    proc = start(config)
    try:
        _, err = proc.communicate(timeout=BOUND)
    finally:
        proc.kill()
    assert proc.returncode == 2, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last == f"error: DataLoader.Train: {bad}: ValueError: injected failure"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_sigterm_during_a_slow_batch_stops_the_run(tmp_path, num_workers):
    marker = tmp_path / "stalled"
    config, _ = write_config(tmp_path, num_workers, False, {"action": "stall", "marker": str(marker), "seconds": 6})
    proc = start(config)
    try:
        while not marker.exists() and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=BOUND)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "stopped by SIGTERM" in err


def test_collate_passes_good_batches_and_turns_a_failure_into_its_message():
    good = [(np.zeros((3, 4, 4), np.float32), np.int64(1)), (np.ones((3, 4, 4), np.float32), np.int64(0))]
    images, labels, problem = collate_or_fail(good)
    assert images.shape == (2, 3, 4, 4) and labels.tolist() == [1, 0] and problem == ""
    assert collate_or_fail([good[0], SampleFailure("a.png: boom")])[2] == "a.png: boom"
    mixed = collate_or_fail([good[0], (np.zeros((3, 5, 4), np.float32), np.int64(0))])[2]
    assert "cannot batch images of shapes" in mixed and "(3, 5, 4)" in mixed


class Flaky:
    """A dataset whose sample 5 fails (as ImageListDataset reports a failed image)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            return SampleFailure("img5.png: OSError: gone")
        return np.full((3, 2, 2), i, np.float32), np.int64(i % 2)


def test_the_loader_yields_pairs_then_raises_the_failure_in_the_main_process():
    loader = SafeDataLoader(Flaky(), where="DataLoader.Eval", batch_size=2, num_workers=0)
    seen = []
    with pytest.raises(DataError, match=r"^DataLoader.Eval: img5.png: OSError: gone$"):
        for _images, labels in loader:
            seen.append(labels.numpy().tolist())
    assert seen == [[0, 1], [0, 1]]
