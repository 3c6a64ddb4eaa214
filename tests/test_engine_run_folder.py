"""A training holds its run folder: a second training into the same Global.output_dir is refused
with one line naming the first; once the first is killed the folder is free again. A resume whose
config would change the run is refused before anything is written."""

import json
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, paused_training, tiny_config


def test_a_second_training_into_a_busy_folder_is_refused_naming_the_holder(tiny_dataset, tmp_path):
    from paddle_dx.config import dump_config
    from paddle_dx.engine.trainer import Trainer
    from paddle_dx.utils.run_lock import RunFolderBusy

    images, lists = tiny_dataset
    config = tiny_config(images, lists, tmp_path / "run")
    dump_config(config, tmp_path / "config.yaml")
    with paused_training(tmp_path / "config.yaml", "train_step:1") as first:
        with pytest.raises(RunFolderBusy, match=rf"run is in use by another training \(pid {first.pid} on .*train\.py"):
            Trainer(config).fit()
        second = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "train.py"), "-c", str(tmp_path / "config.yaml")],
            capture_output=True,
            text=True,
        )
        errors = [line for line in second.stderr.splitlines() if not line.startswith("[")]  # not log lines
        assert second.returncode == 2 and len(errors) == 1, second.stderr
        assert f"pid {first.pid}" in errors[0]
    again = tiny_config(images, lists, tmp_path / "run", **{"Global.overwrite_output_dir": True})
    result = Trainer(again).fit()  # the killed holder's lock died with it (its config.yaml is replaced)
    assert result["best_epoch"] is not None


def test_resume_with_a_changed_learning_rate_is_refused_listing_the_key(tiny_dataset, tmp_path):
    from paddle_dx.engine.trainer import Trainer
    from paddle_dx.errors import ConfigError

    images, lists = tiny_dataset
    Trainer(tiny_config(images, lists, tmp_path / "run", **{"Global.epochs": 1})).fit()
    latest = tmp_path / "run" / "latest"
    changed = tiny_config(
        images, lists, tmp_path / "run", **{"Global.epochs": 1, "Optimizer.lr": 0.1, "Global.checkpoints": str(latest)}
    )
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    with pytest.raises(
        ConfigError, match=r"resuming with a config that changes the run \(Optimizer\.lr: 0\.003 -> 0\.1\)"
    ):
        Trainer(changed).fit()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    same = tiny_config(images, lists, tmp_path / "run", **{"Global.epochs": 1, "Global.checkpoints": str(latest)})
    assert Trainer(same).fit()["best_epoch"] == 1  # the run's own config resumes


def test_an_allowed_config_change_is_recorded_and_verify_run_replays_it(tiny_dataset, tmp_path):
    """Resumed with more epochs and a lower lr (Global.allow_config_change): metrics.json, the
    manifest and the next epoch's history say so, and verify_run retrains in the same two pieces
    (the first config up to the checkpoint, then the resume) to the same numbers."""
    from paddle_dx.engine.trainer import Trainer
    from paddle_dx.engine.verification import format_report, verify_run

    images, lists = tiny_dataset
    Trainer(tiny_config(images, lists, tmp_path / "run", **{"Global.epochs": 1})).fit()
    result = Trainer(
        tiny_config(
            images,
            lists,
            tmp_path / "run",
            **{
                "Global.epochs": 2,
                "Optimizer.lr": 0.001,
                "Global.allow_config_change": True,
                "Global.checkpoints": str(tmp_path / "run" / "latest"),
            },
        )
    ).fit()
    assert [h.get("config_changed") for h in result["history"]] == [None, ["Global.epochs", "Optimizer.lr"]]
    change = result["config_changes"][0]
    assert (change["epoch"], change["step"], change["changes"]) == (
        1,
        0,
        [["Global.epochs", 1, 2], ["Optimizer.lr", 0.003, 0.001]],
    )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config_changes"][0]["config"]["Optimizer"]["lr"] == 0.003
    report = verify_run(tmp_path / "run", tmp_path / "rerun")
    assert report["ok"], "\n".join(format_report(report))
    assert any(r[0] == "history[1].step_losses" and r[4] for r in report["metrics"])


def test_a_best_model_write_killed_mid_way_is_removed_by_the_next_start_holding_the_folder(tiny_dataset, tmp_path):
    """SIGKILL while best_model.pdparams is written leaves it under a temporary name with a fixed
    prefix; the next training into the folder removes it once it holds the run lock (not before),
    and leaves files that are not a run output's leftovers alone."""
    from paddle_dx.config import dump_config
    from paddle_dx.engine.trainer import Trainer
    from paddle_dx.utils.files import TEMP_PREFIX
    from paddle_dx.utils.run_lock import RunFolderBusy, RunLock

    images, lists = tiny_dataset
    run = tmp_path / "run"
    dump_config(tiny_config(images, lists, run), tmp_path / "config.yaml")
    with paused_training(tmp_path / "config.yaml", "weights_write") as proc:
        proc.send_signal(signal.SIGKILL)
    left = [p for p in run.iterdir() if p.name.startswith(f"{TEMP_PREFIX}best_model.pdparams.")]
    assert len(left) == 1 and left[0].stat().st_size > 0 and not (run / "best_model.pdparams").exists()
    foreign = [run / f"{TEMP_PREFIX}notes.txt", run / ".notes"]
    for path in foreign:
        path.write_text("not ours")

    again = tiny_config(images, lists, run, **{"Global.epochs": 1, "Global.overwrite_output_dir": True})
    with RunLock(run), pytest.raises(RunFolderBusy):
        Trainer(again).fit()
    assert left[0].exists()  # another process holds the folder: its files are not touched
    Trainer(again).fit()
    assert not left[0].exists() and all(path.exists() for path in foreign)
    assert not [p for p in run.iterdir() if p.name.startswith(f"{TEMP_PREFIX}best_model")]
