"""Disk space: a resume is asked for the room it needs (one more checkpoint: it overwrites its
own), not for a whole new run's; a disk that fills up during a save (checkpoint or best model)
is one line naming the file, and the previous checkpoint stays intact and resumes."""

import errno
import os
import re
import shutil

import paddle
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.errors import DiskFull, PaddleDxError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("disk") / "data")


def _disk_full_on(monkeypatch, fails):
    """paddle.save raises ENOSPC when ``fails(path)``, as a full disk does mid-write."""
    real = paddle.save

    def save(obj, path, *args, **kwargs):
        if fails(str(path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(obj, path, *args, **kwargs)

    monkeypatch.setattr(paddle, "save", save)


def test_a_resume_needs_room_for_one_checkpoint_not_for_a_new_run(data, tmp_path, monkeypatch):
    from paddle_dx.engine.checkpoint import disk_bytes_needed
    from paddle_dx.engine.trainer import Trainer
    from paddle_dx.models import build_model

    run = tmp_path / "run"
    config = tiny_config(*data, run, **{"Global.epochs": 1})
    Trainer(config).fit()
    model = build_model(config["Arch"], config["Global"]["image_shape"])
    fresh, resume = disk_bytes_needed(model), disk_bytes_needed(model, held=1 << 40)
    assert resume < fresh
    free = (fresh + resume) // 2
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=free))
    with pytest.raises(PaddleDxError, match=r"output directory .*new: only \d+ MiB free, this run needs about"):
        Trainer(tiny_config(*data, tmp_path / "new", **{"Global.epochs": 1}))
    resumed = Trainer(tiny_config(*data, run, **{"Global.epochs": 1, "Global.checkpoints": str(run / "latest")}))
    assert resumed.fit()["best_epoch"] == 1


def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_keeps_the_previous_one(
    data, tmp_path, monkeypatch, capsys
):
    from paddle_dx.commands import main
    from paddle_dx.config import dump_config
    from paddle_dx.engine.checkpoint import load_checkpoint
    from paddle_dx.engine.trainer import Trainer

    run = tmp_path / "run"
    Trainer(tiny_config(*data, run, **{"Global.epochs": 1})).fit()
    resume = tiny_config(
        *data,
        run,
        **{"Global.epochs": 2, "Global.allow_config_change": True, "Global.checkpoints": str(run / "latest")},
    )
    dump_config(resume, tmp_path / "resume.yaml")
    _disk_full_on(monkeypatch, lambda path: "latest" in path)
    with pytest.raises(SystemExit) as caught:
        main(["train", "-c", str(tmp_path / "resume.yaml")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # not the log's lines and tables
    latest = re.escape(str(run / "latest"))
    assert len(errors) == 1 and re.fullmatch(
        rf"error: {latest}: the disk is full \(No space left on device, \d+ MiB free\); the previous checkpoint "
        rf"{latest} is intact; free some space, then resume with -o Global\.checkpoints={latest}",
        errors[0],
    ), errors
    assert load_checkpoint(run / "latest")[2]["epoch"] == 1
    assert [p.name for p in run.iterdir() if p.name.startswith(".paddle_dx-tmp.")] == []
    monkeypatch.undo()
    assert [h["epoch"] for h in Trainer(resume).fit()["history"]] == [1, 2]


def test_a_full_disk_while_writing_the_best_model_leaves_the_earlier_one(data, tmp_path, monkeypatch):
    from paddle_dx.models import build_model
    from paddle_dx.models.weights import save_weights

    config = tiny_config(*data, tmp_path / "run")
    model = build_model(config["Arch"], config["Global"]["image_shape"])
    target = tmp_path / "run" / "best_model.pdparams"
    save_weights(target, model)
    before = target.read_bytes()
    _disk_full_on(monkeypatch, lambda path: True)
    with pytest.raises(
        DiskFull, match=r"best_model\.pdparams: the disk is full .*; the earlier best_model\.pdparams is"
    ):
        save_weights(target, model)
    assert target.read_bytes() == before and [p.name for p in target.parent.iterdir()] == ["best_model.pdparams"]
