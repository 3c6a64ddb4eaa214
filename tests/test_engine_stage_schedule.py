"""The two-step schedule (``Stages:``): pre-training with the backbone frozen, then fine-tuning."""

import json
import shutil

import numpy as np
import paddle
import pytest
from conftest import tiny_config

from paddle_dx.errors import ConfigError

STAGES = [
    {"name": "pre-training", "epochs": 1, "freeze": "backbone", "lr": 0.01},
    {"name": "fine-tuning", "epochs": 1, "freeze": "none", "lr": 0.0005},
]


def _config(tiny_dataset, out, **extra):
    images, lists = tiny_dataset
    # stage 1 (frozen backbone, RandomFlip) trains from cached flip variants computed by Paddle
    # Inference (the default feature engine), which used to leave the process at 1 math thread, so
    # the straight run's stage 2 computed differently from the resumed run's (utils.device.restore_threads)
    return tiny_config(images, lists, out, **{"Arch.name": "ResNet18", "Stages": STAGES, **extra})


def _weights(model, prefix):
    return {k: v.numpy().copy() for k, v in model.state_dict().items() if k.startswith(prefix)}


def _changed(before, after):
    return [k for k in before if not np.array_equal(before[k], after[k])]


def test_stage_one_trains_only_the_head_and_stage_two_the_backbone_at_its_lr(tiny_dataset, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    trainer = Trainer(_config(tiny_dataset, tmp_path / "out"))
    backbone0, head0 = _weights(trainer.model, "backbone."), _weights(trainer.model, "head.")

    trainer._run_epoch(0)
    backbone1, head1 = _weights(trainer.model, "backbone."), _weights(trainer.model, "head.")
    assert _changed(backbone0, backbone1) == []  # weights and BatchNorm running statistics
    assert sorted(_changed(head0, head1)) == ["head.bias", "head.weight"]
    assert trainer.optimizer.get_lr() == pytest.approx(0.01)

    trainer._run_epoch(1)
    changed = _changed(backbone1, _weights(trainer.model, "backbone."))
    assert any(k.endswith("weights") or k.endswith("weight") for k in changed)
    assert trainer.optimizer.get_lr() == pytest.approx(0.0005)
    assert [h["lr"] for h in trainer.history] == pytest.approx([0.01, 0.0005])

    result = trainer.finish()
    assert [s["name"] for s in result["stages"]] == ["pre-training", "fine-tuning"]
    for stage in result["stages"]:
        for split in ("val", "test"):
            metrics = stage[split]
            assert set(metrics["per_class"]["lesion"]) >= {"precision", "sensitivity", "f1"}
            assert np.asarray(metrics["confusion_matrix"]).sum() == metrics["n"] > 0


def test_resume_in_the_second_stage_ends_with_the_same_weights(tiny_dataset, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    straight = Trainer(_config(tiny_dataset, tmp_path / "a"))
    straight._run_epoch(0)
    shutil.copytree(tmp_path / "a" / "latest", tmp_path / "after_stage_1")
    straight._run_epoch(1)

    resumed = Trainer(_config(tiny_dataset, tmp_path / "b", **{"Global.checkpoints": str(tmp_path / "after_stage_1")}))
    result = resumed.fit()
    assert resumed.stage_index == 1 and resumed.optimizer.get_lr() == pytest.approx(0.0005)
    assert [s["name"] for s in result["stages"]] == ["pre-training", "fine-tuning"]
    # latest/ holds the weights after the last epoch (finish() then reloads the best epoch's)
    a, b = (paddle.load(str(tmp_path / run / "latest" / "model.pdparams")) for run in ("a", "b"))
    assert sorted(a) == sorted(b)
    assert [k for k in a if not np.array_equal(a[k].numpy(), b[k].numpy())] == []
    assert json.loads((tmp_path / "b" / "latest" / "state.json").read_text())["stage"] == 1


def test_stages_are_validated_like_the_rest_of_the_config(tiny_dataset, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        _config(tiny_dataset, tmp_path, Stages=[{"name": "pre", "epoch": 1}])
    with pytest.raises(ConfigError, match="Global.epochs"):
        _config(tiny_dataset, tmp_path, **{"Global.epochs": 5})
    config = _config(tiny_dataset, tmp_path, Stages=[{"name": "only", "epochs": 2}])
    assert config["Global"]["epochs"] == 2 and config["Stages"][0]["lr"] == 0.003
