"""The lung-nodule paper's stopping rule (Global.stop_after_iterations + stop_val_accuracy): the
run stops at the first validation after N iterations whose accuracy reaches X, keeps that epoch's
model as best_model.pdparams, and a resume does not train past it."""

import json

import numpy as np
import paddle
import pytest
from conftest import tiny_config

from paddle_dx.engine.callbacks import stopped
from paddle_dx.engine.stop_rule import StopRule
from paddle_dx.engine.trainer import Trainer
from paddle_dx.errors import ConfigError


def record(steps, val_accuracy=None):
    out = {"step_losses": [0.5] * steps}
    if val_accuracy is not None:
        out["val_accuracy"] = val_accuracy
    return out


def test_rule_counts_iterations_over_the_history_and_needs_both_conditions():
    rule = StopRule(after_iterations=10, val_accuracy=0.9)
    assert not rule.reached([record(6, 0.95)])  # 6 iterations: too early
    assert rule.reached([record(6, 0.5), record(4, 0.9)])  # 10 iterations, 0.90 reached
    assert not rule.reached([record(6, 0.95), record(6, 0.89)])  # enough iterations, accuracy short
    assert not rule.reached([record(6, 0.95), record(6)])  # no validation this epoch
    assert StopRule.from_config({"stop_after_iterations": None, "stop_val_accuracy": None}) is None
    with pytest.raises(ConfigError, match="go together"):
        StopRule.from_config({"stop_after_iterations": 5000, "stop_val_accuracy": None})
    assert stopped([record(3, 0.9), dict(record(3, 0.95), stopped_by_rule="x")])
    assert not stopped([record(3, 0.9)])


def test_a_run_stops_at_the_rule_and_keeps_that_epochs_model(tiny_dataset, tmp_path):
    images, lists = tiny_dataset
    steps = -(-len((lists / "train_list.txt").read_text().split("\n")[:-1]) // 4)  # batches of 4
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{
            "Global.epochs": 6,
            "Global.stop_after_iterations": 2 * steps + 1,
            "Global.stop_val_accuracy": 0.0,
            "Metric.best_metric": "loss",
        },
    )
    trainer = Trainer(config)
    trainer.fit()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    # 2 epochs give 2*steps iterations, one short: the rule fires after the 3rd epoch's validation
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert "stopped_by_rule" in metrics["history"][-1] and metrics["best_epoch"] == 3
    best = paddle.load(str(tmp_path / "out" / "best_model.pdparams"))
    for name, value in trainer.model.state_dict().items():
        assert np.array_equal(best[name].numpy(), value.numpy()), name

    resumed = Trainer(
        tiny_config(
            images,
            lists,
            tmp_path / "out",
            **{
                "Global.epochs": 6,
                "Global.stop_after_iterations": 2 * steps + 1,
                "Global.stop_val_accuracy": 0.0,
                "Metric.best_metric": "loss",
                "Global.checkpoints": str(tmp_path / "out" / "latest"),
            },
        )
    )
    resumed.fit()  # the rule already fired: no further epoch
    assert len(resumed.history) == 3
