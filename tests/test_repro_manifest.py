"""Every run writes manifest.json; tools/verify_run.py reruns a run from it and reports whether
each metric reproduces (exactly, on CPU)."""

import json
import runpy
import sys

import paddle
import pytest
from conftest import ROOT, make_tiny_dataset, tiny_config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from paddle_dx.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("repro")
    images, lists = make_tiny_dataset(root / "data")
    config = tiny_config(images, lists, root / "run", **{"Global.num_threads": 1})
    result = Trainer(config).fit()
    return root, images, lists, config, result


def test_manifest_describes_the_run(finished_run):
    from paddle_dx.config import config_hash
    from paddle_dx.utils.hashing import file_sha256

    root, images, lists, config, result = finished_run
    m = json.loads((root / "run" / "manifest.json").read_text())
    assert m["config"] == json.loads(json.dumps(config)) and m["config_hash"] == config_hash(config)
    assert m["seed"] == 7 and m["device"]["device"] == "cpu"
    assert len(m["git"]["commit"]) == 40 and isinstance(m["git"]["dirty"], bool)
    assert m["versions"]["paddle"].startswith(paddle.__version__)
    for key in ("paddleclas", "numpy", "opencv", "sklearn", "python"):
        assert m["versions"][key], key
    for mode, split in (("Train", "train"), ("Eval", "val"), ("Test", "test")):
        listed = (lists / f"{split}_list.txt").read_text().splitlines()
        assert m["data"][mode]["list_sha256"] == file_sha256(lists / f"{split}_list.txt")
        assert m["data"][mode]["images"] == len(listed)
    every_image = sorted(images.rglob("*.png"))
    assert m["image_sha256"] == {str(p): file_sha256(p) for p in every_image}
    assert m["final_metrics"]["test"] == json.loads(json.dumps(result["test"]))
    steps = [h["step_losses"] for h in m["final_metrics"]["history"]]
    assert [len(s) for s in steps] == [2, 2]  # 8 training images, batch 4


def test_git_state_outside_a_checkout(tmp_path):
    from paddle_dx.engine.manifest import git_state

    state = git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is None and "not a git checkout" in state["note"]


def test_verify_run_reproduces_a_run_exactly(finished_run, monkeypatch, capsys):
    root = finished_run[0]
    monkeypatch.setattr(sys, "argv", ["verify_run.py", str(root / "run"), "--output", str(root / "rerun")])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "tools" / "verify_run.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert exc.value.code == 0, out
    assert "tolerance |diff| <= 0" in out and "RESULT: reproduced" in out
    assert "MATCH  test.auc:" in out and "MATCH  history[1].step_losses:" in out and "DIFF" not in out
    assert "MATCH  Train.images_sha256:" in out


def test_verify_run_reports_each_difference(finished_run, tmp_path, capsys):
    """A manifest whose recorded results or data differ from what the rerun gives is a failure."""
    import shutil

    from paddle_dx.engine.verification import format_report, verify_run

    root = finished_run[0]
    shutil.copytree(root / "run", tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    manifest["final_metrics"]["val"]["accuracy"] += 0.25
    manifest["final_metrics"]["history"][0]["step_losses"][1] += 1e-7
    manifest["data"]["Eval"]["images_sha256"] = "0" * 64
    (tmp_path / "run" / "manifest.json").write_text(json.dumps(manifest))
    report = verify_run(tmp_path / "run", tmp_path / "rerun")
    assert not report["ok"]
    assert sorted(r[0] for r in report["metrics"] + report["data"] if not r[4]) == [
        "Eval.images_sha256",
        "history[0].step_losses",
        "val.accuracy",
    ]
    lines = format_report(report)
    assert lines[-1] == "RESULT: NOT reproduced (3 difference(s))"
    assert any(line.startswith("DIFF   val.accuracy:") for line in lines)


def test_a_best_model_that_is_not_the_runs_own_is_detected(finished_run, tmp_path):
    """The manifest records best_model.pdparams's SHA-256; another file in its place (a second
    training into the folder, a swap) is a DIFF even when the rerun's metrics match."""
    import shutil

    from paddle_dx.engine.verification import format_report, verify_run
    from paddle_dx.utils.hashing import file_sha256

    root = finished_run[0]
    manifest = json.loads((root / "run" / "manifest.json").read_text())
    assert manifest["outputs_sha256"] == {"best_model.pdparams": file_sha256(root / "run" / "best_model.pdparams")}
    shutil.copytree(root / "run", tmp_path / "run")
    state = paddle.load(str(tmp_path / "run" / "best_model.pdparams"))
    first = next(iter(state))
    state[first] = state[first] + 1
    paddle.save(state, str(tmp_path / "run" / "best_model.pdparams"))
    report = verify_run(tmp_path / "run", tmp_path / "rerun")
    assert not report["ok"] and all(r[4] for r in report["metrics"] + report["data"])
    assert [r[0] for r in report["outputs"] if not r[4]] == [f"{tmp_path / 'run'}/best_model.pdparams"]
    assert any(line.startswith("DIFF   ") and "best_model.pdparams" in line for line in format_report(report))


def test_verify_run_without_manifest_is_a_clear_error(tmp_path):
    from paddle_dx.engine.verification import verify_run
    from paddle_dx.errors import PaddleDxError

    with pytest.raises(PaddleDxError, match=f"{tmp_path / 'manifest.json'} not found"):
        verify_run(tmp_path)


def test_dataloader_workers_do_not_change_the_result(finished_run, tmp_path):
    """Augmentation is seeded per sample, so 2 worker processes give the 0-worker run's numbers."""
    from paddle_dx.engine.trainer import Trainer

    _, images, lists, _, result = finished_run
    config = tiny_config(
        images,
        lists,
        tmp_path / "workers",
        **{"Global.num_threads": 1, "Global.epochs": 2, "DataLoader.Train.loader.num_workers": 2},
    )
    with_workers = Trainer(config).fit()
    assert [h["step_losses"] for h in with_workers["history"]] == [h["step_losses"] for h in result["history"]]
    assert with_workers["test"]["loss"] == result["test"]["loss"]
