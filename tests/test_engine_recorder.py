"""RunRecorder (engine/recorder.py) writes a finished run's outputs from the result it is given."""

import json
import logging

import numpy as np
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.engine.manifest import MANIFEST
from paddle_dx.engine.recorder import RunRecorder
from paddle_dx.metrics import classification_metrics
from paddle_dx.utils.hashing import file_sha256


def _metrics(seed):
    rng = np.random.default_rng(seed)
    labels = np.array([0, 0, 1, 1, 0, 1])
    probs = rng.dirichlet([1, 1], size=len(labels))
    return classification_metrics(labels, probs, ["normal", "lesion"], loss=0.5 + seed)


def _setup(tmp_path, write=True):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    config = tiny_config(images, lists, tmp_path / "run")
    (tmp_path / "run").mkdir()
    train = [line.split()[0] for line in (lists / "train_list.txt").read_text().splitlines()]
    hashes = {str(images / p): file_sha256(images / p) for p in train}
    return RunRecorder(tmp_path / "run", config, "cpu", write=write), hashes


def test_writes_metrics_manifest_and_skipped_images(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.recorder")
    recorder, hashes = _setup(tmp_path)
    history = [{"epoch": 1, "train_loss": 0.7}, {"epoch": 2, "train_loss": 0.6}]
    best = {"epoch": 2, "score": 0.8, "metrics": _metrics(0)}
    result = recorder.result(history, best, [("a.png", "unreadable")], [("ab12", ["x.png", "y.png"])])
    recorder.add_test(result, _metrics(1), [("t.png", "empty file")])
    recorder.save(result, hashes)
    out = tmp_path / "run"
    written = json.loads((out / "metrics.json").read_text())
    assert list(written) == [
        "history",
        "best_epoch",
        "best_metric",
        "val",
        "skipped_images",
        "duplicates_across_splits",
        "test",
    ]
    assert written["best_epoch"] == 2 and written["history"] == history
    assert written["test"]["loss"] == 1.5 and written["val"]["loss"] == 0.5
    assert written["duplicates_across_splits"] == [{"sha256": "ab12", "files": ["x.png", "y.png"]}]
    assert (out / "skipped_images.txt").read_text() == "a.png\tunreadable\nt.png\tempty file\n"
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["final_metrics"]["best_epoch"] == 2
    assert manifest["data"]["Train"]["images"] == len(hashes)
    assert (
        "test (best epoch 2, best_model.pdparams)" in caplog.text
        and "validation (best epoch 2 by accuracy)" in caplog.text
    )


def test_stages_are_recorded_only_for_staged_runs(tmp_path):
    recorder, hashes = _setup(tmp_path)
    plain = recorder.result([], None, [], [])
    assert "stages" not in plain and plain["best_epoch"] is None and plain["val"] is None
    staged = recorder.result([], None, [], [], stage_results=[{"name": "pre-training", "end_epoch": 1}])
    recorder.save(staged, hashes)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["stages"][0]["end_epoch"] == 1
    assert not (tmp_path / "run" / "skipped_images.txt").exists()  # nothing skipped: no file


def test_other_ranks_write_nothing(tmp_path):
    recorder, hashes = _setup(tmp_path, write=False)
    result = recorder.result([{"epoch": 1}], None, [("a.png", "unreadable")], [])
    assert recorder.save(result, hashes) is result
    assert list((tmp_path / "run").iterdir()) == []
