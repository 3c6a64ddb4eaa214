"""tools/reproduce.py trains each run of a study in a process of its own (memory bounded by the
largest run): the result is the one the run gives in this process, errors come back as raised."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import make_tiny_dataset

from paddle_dx.errors import PaddleDxError
from paddle_dx.studies import runner
from paddle_dx.studies.plan import RunPlan, plan_run
from paddle_dx.studies.splits import split_study_data

LENET = ["Arch.name=LeNet5", "Arch.pretrained=false", "Global.image_shape=[3, 32, 32]", "Global.epochs=2"]
LENET += ["Global.use_visualdl=false"]


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runner")
    images, _ = make_tiny_dataset(tmp / "data", per_class=8, size=32, classes=("normal", "lesion"))
    split = split_study_data(images, ["normal", "lesion"], (6, 2, 2), 1, tmp / "splits")
    return plan_run("LeNet5", "configs/esophagus_resnet50.yaml", split, tmp / "runs", 1, False, extra=LENET)


class _NoTrainingHere:
    def __init__(self, *args, **kwargs):
        raise AssertionError("trained in the parent process")


def test_a_run_in_its_own_process_gives_what_it_gives_in_this_one(plan, monkeypatch):
    here = runner.run_target(plan)
    monkeypatch.setattr(runner, "Trainer", _NoTrainingHere)  # the child imports its own, real Trainer
    with runner.runs_in_children():
        there = runner.run_target(plan)
    with pytest.raises(AssertionError, match="parent process"):
        runner.run_target(plan)  # outside the block: this process again
    assert there.paths == here.paths and there.plan == here.plan
    np.testing.assert_array_equal(there.labels, here.labels)
    np.testing.assert_allclose(there.probs, here.probs, atol=1e-6)
    assert there.metrics["test"]["accuracy"] == here.metrics["test"]["accuracy"]


def test_a_run_that_diverges_before_its_first_evaluation_scores_its_start_flagged_and_the_study_goes_on(plan):
    """Such a run has no trained model: no crash, its row is the untrained start's numbers and
    its collapse cause says so (a study's other runs are kept)."""
    from paddle_dx.studies.pairs import run_cause
    from paddle_dx.studies.runner import Trainer

    blown = RunPlan(plan.name, plan.config, [*plan.overrides, "Optimizer.name=Momentum", "Optimizer.lr=1e30"])
    result = runner.run_target(blown)
    start = Trainer(runner.load_config(blown.config, blown.overrides)).model  # the same seed: the start's weights
    start_probs, _, _ = runner.predict(start, runner.build_loader(*_test_data(result.config))[0])
    np.testing.assert_allclose(result.probs, start_probs, atol=1e-6)
    assert np.isfinite(result.probs).all() and result.metrics["best_epoch"] == 0
    assert result.metrics["test"]["accuracy"] == pytest.approx(np.mean(result.probs.argmax(axis=1) == result.labels))
    cause = run_cause(result, ["normal", "lesion"])
    assert "epoch 1" in cause and "before any usable evaluation" in cause and "untrained start" in cause


def test_a_source_pretraining_that_diverges_hands_on_its_start_and_its_rows_say_so(plan, tmp_path):
    """No pretrained backbone: the study goes on, the backbone file holds the source run's start
    (same config and seed) and a row trained from it is flagged as collapsed, naming why."""
    from paddle_dx.models.weights import load_state
    from paddle_dx.studies.pairs import run_cause
    from paddle_dx.studies.runner import Trainer

    source = RunPlan(
        "source_LeNet5",
        plan.config,
        [*plan.overrides, f"Global.output_dir={tmp_path / 'source'}", "Optimizer.name=Momentum", "Optimizer.lr=1e30"],
    )
    path, _, _, failure = runner.run_source(source)
    assert "epoch 1" in failure
    start = Trainer(runner.load_config(source.config, source.overrides)).model.state_dict()
    saved = load_state(path)
    assert saved and set(saved) == {k[len("backbone.") :] for k in start if k.startswith("backbone.")}
    for name, value in saved.items():
        np.testing.assert_array_equal(value.numpy(), start[f"backbone.{name}"].numpy())
    row = RunPlan("source-init_LeNet5", plan.config, [*plan.overrides, f"Global.output_dir={tmp_path / 'row'}"])
    row.source_failure = failure
    cause = run_cause(runner.run_target(row), ["normal", "lesion"])
    assert cause and "source pretraining diverged" in cause and failure in cause


def _test_data(config):
    section = runner.DataSection.of(config, "Test")
    return section, runner.build_dataset(section, scan=False)[0]


def test_an_error_in_the_child_comes_back_as_raised(plan):
    bad = RunPlan(plan.name, plan.config, plan.overrides + ["Global.epochz=1"])
    with runner.runs_in_children(), pytest.raises(PaddleDxError, match="epochz"):
        runner.run_target(bad)


def _killed(_plan):
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does


def test_a_killed_run_is_one_line_naming_the_run_and_its_command(plan):
    with runner.runs_in_children(), pytest.raises(PaddleDxError, match=r"run 'LeNet5': its process died.*command: "):
        runner._in_child(_killed, plan)


PARENT = """
import os, sys, time
from paddle_dx.studies import runner
from paddle_dx.studies.plan import RunPlan


def hang(plan):
    with open(plan.config, "w") as fh:  # the run's pid, for the test
        fh.write(str(os.getpid()))
    time.sleep(600)


if __name__ == "__main__":
    with runner.runs_in_children():
        runner._in_child(hang, RunPlan("hang", sys.argv[1]))
"""


def _alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_a_run_dies_with_its_killed_parent_instead_of_training_on(tmp_path):
    script, pidfile = tmp_path / "parent.py", tmp_path / "child.pid"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), str(pidfile)])
    try:
        for _ in range(600):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.1)
        child = int(pidfile.read_text())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)  # no cleanup runs in the parent
        parent.wait(timeout=30)
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.1)
        assert not _alive(child), "the run outlived its killed parent"
    finally:
        parent.kill()
