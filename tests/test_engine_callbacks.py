"""What the training loop does besides training, as callbacks (engine/callbacks.py), and the run
folder it claims (engine/run_folder.py)."""

import json

import numpy as np
import paddle
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.engine.callbacks import Callback, EarlyStopping
from paddle_dx.engine.divergence import outputs_divergence, weights_divergence
from paddle_dx.engine.trainer import Trainer
from paddle_dx.errors import ConfigError, TrainingDiverged
from paddle_dx.studies.collapse import loss_cause

FLAT = {"Optimizer.lr": 1e-12, "Optimizer.name": "Momentum"}  # nothing learns: every validation ties


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("callbacks") / "data", per_class=6, size=32)


class Recording(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer):
        self.calls.append("begin")

    def on_eval_end(self, trainer, split, metrics, epoch, probs, labels, record):
        self.calls.append(f"eval {split} {epoch}")

    def on_epoch_end(self, trainer, epoch, record):
        self.calls.append(f"epoch {epoch + 1}")

    def on_train_end(self, trainer, result, predictions):
        self.calls.append(f"end {sorted(predictions)}")


def test_hooks_run_in_order_and_test_metrics_reach_them(data, tmp_path):
    recording = Recording()
    Trainer(tiny_config(*data, tmp_path / "run"), callbacks=[recording]).fit()
    assert recording.calls[:5] == ["begin", "eval validation 1", "epoch 1", "eval validation 2", "epoch 2"]
    assert recording.calls[5] in ("eval test 1", "eval test 2")  # the best epoch's test evaluation
    assert recording.calls[6:] == ["end ['test', 'val']"]


def test_early_stopping_ends_training_after_patience_validations_without_gain(data, tmp_path):
    config = tiny_config(*data, tmp_path / "run", **FLAT, **{"Global.epochs": 8, "Global.early_stop.patience": 2})
    result = Trainer(config).fit()
    epochs = [h["epoch"] for h in result["history"]]
    assert epochs == [1, 2, 3]  # best at 1, then 2 validations without gain
    assert "patience 2" in result["history"][-1]["stopped_early"]
    assert result["best_epoch"] == 1 and (tmp_path / "run" / "best_model.pdparams").is_file()


def test_a_resumed_run_stops_early_where_the_uninterrupted_one_did(data, tmp_path):
    early = {**FLAT, "Global.early_stop.patience": 2}
    Trainer(tiny_config(*data, tmp_path / "run", **early, **{"Global.epochs": 2})).fit()
    resumed = Trainer(
        tiny_config(
            *data,
            tmp_path / "run",
            **early,
            **{
                "Global.epochs": 8,
                "Global.checkpoints": str(tmp_path / "run" / "latest"),
                "Global.allow_config_change": True,
            },
        )
    ).fit()
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3] and "stopped_early" in resumed["history"][-1]


def test_min_delta_decides_what_counts_as_a_gain():
    class Run:
        history = []

    for min_delta, stops in ((0.01, True), (0.001, False)):
        Run.history = [{"val_score": 0.5}, {"val_score": 0.505}, {"val_score": 0.509}]
        EarlyStopping(patience=2, min_delta=min_delta).on_epoch_end(Run, 2, Run.history[-1])
        assert ("stopped_early" in Run.history[-1]) == stops, min_delta


def test_a_new_run_into_an_earlier_runs_folder_is_refused_unless_overwritten(data, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny_config(*data, out, **{"Global.epochs": 1, "Global.use_visualdl": True})).fit()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "vdl" / "old_marker").write_text("an earlier run's record", encoding="utf-8")
    first_vdl = sorted(p.name for p in (out / "vdl").iterdir())
    again = Trainer(tiny_config(*data, out, **{"Global.epochs": 1, "Global.use_visualdl": True}))
    with pytest.raises(ConfigError, match="holds an earlier run .*Global.overwrite_output_dir=true"):
        again.fit()
    assert sorted(p.name for p in (out / "vdl").iterdir()) == first_vdl  # a refused start writes no record
    overwrite = {"Global.epochs": 1, "Global.use_visualdl": True, "Global.overwrite_output_dir": True}
    Trainer(tiny_config(*data, out, **overwrite)).fit()
    records = list((out / "vdl").iterdir())
    assert len(records) == 1 and not (out / "vdl" / "old_marker").exists()  # the old records are gone
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"  # a user's own file is kept
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["best_epoch"] == 1


def test_visualdl_gets_the_test_metrics(data, tmp_path):
    Trainer(tiny_config(*data, tmp_path / "run", **{"Global.epochs": 1, "Global.use_visualdl": True})).fit()
    record = b"".join(p.read_bytes() for p in (tmp_path / "run" / "vdl").iterdir())
    assert b"test/accuracy" in record and b"val/accuracy" in record and b"train/loss" in record


def test_a_loss_that_is_no_longer_finite_stops_training_and_keeps_the_best_finite_model(data, tmp_path):
    """Stage 2's absurd rate blows the weights up: the run stops at that epoch, tests the best
    finite epoch's model, keeps latest/ at the last finite epoch and marks the history."""
    stages = "[{name: fine, epochs: 1, lr: 0.003}, {name: blow-up, epochs: 2, lr: 1.0e+30}]"
    config = tiny_config(*data, tmp_path / "run", Stages=stages, **{"Optimizer.name": "Momentum", "Global.epochs": 3})
    result = Trainer(config).fit()
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    cause = result["history"][-1]["stopped_diverged"]
    assert "of epoch 2 (lr 1e+30)" in cause and ("nan" in cause or "inf" in cause)
    assert result["best_epoch"] == 1 and "test" in json.dumps(result)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert "stopped_diverged" in saved["history"][-1]
    assert loss_cause(saved["history"]) is not None  # a study flags the run as diverged
    state = json.loads((tmp_path / "run" / "latest" / "state.json").read_text(encoding="utf-8"))
    assert state["epoch"] == 1  # latest/ is epoch 1's: the NaN weights were not saved


def test_a_run_that_diverges_before_any_evaluation_says_so(data, tmp_path):
    config = tiny_config(*data, tmp_path / "run", **{"Optimizer.name": "Momentum", "Optimizer.lr": 1e30})
    with pytest.raises(
        TrainingDiverged, match=r"training loss became (nan|inf) at step \d+ of epoch 1 .*no model to keep"
    ):
        Trainer(config).fit()
    history = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))["history"]
    assert len(history) == 1 and "stopped_diverged" in history[0]


def test_weights_or_outputs_blown_up_by_a_last_step_whose_loss_was_finite_are_divergence_too():
    """The last step's loss is computed before its update: huge finite weights overflow to NaN
    probabilities at evaluation, NaN weights show in the state dict."""
    net = paddle.nn.Sequential(paddle.nn.Linear(2, 2), paddle.nn.BatchNorm1D(2))
    assert weights_divergence(net, 0, 0.1) is None
    net[1]._mean.set_value(paddle.to_tensor([0.0, float("inf")]))
    assert weights_divergence(net, 2, 0.1) == "the weights became non-finite (1._mean) in epoch 3 (lr 0.1)"
    assert outputs_divergence(np.full((3, 2), 0.5), 0, 1.0) is None
    assert "after epoch 1 are not finite (lr 1e+30)" in outputs_divergence(np.array([[np.nan, np.nan]]), 0, 1e30)
