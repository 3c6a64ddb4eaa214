"""``paddle_dx compare-runs``: two tiny finished runs (LeNet5, 32 px) side by side in a Markdown and
CSV table read from their metrics.json, curves in one figure, test intervals from saved predictions."""

import csv
import json

import numpy as np
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.cli import run
from paddle_dx.commands import compare_runs as command
from paddle_dx.engine.trainer import Trainer
from paddle_dx.studies.bootstrap import bootstrap_ci


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Runs of 1 and 2 epochs, both in folders named ``out`` (names made unique from the paths)."""
    root = tmp_path_factory.mktemp("runs")
    images, lists = make_tiny_dataset(root / "data", per_class=6)
    dirs = [root / "one_epoch" / "out", root / "two_epochs" / "out"]
    for epochs, out in zip((1, 2), dirs):
        Trainer(tiny_config(images, lists, out, **{"Global.epochs": epochs})).fit()
    return dirs


def test_the_table_holds_each_runs_metrics_and_the_figure_is_drawn(two_runs, tmp_path):
    command.main([*map(str, two_runs), "--out", str(tmp_path / "cmp")])
    with open(tmp_path / "cmp" / "comparison.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["one_epoch/out", "two_epochs/out"]
    for row, run_dir in zip(rows, two_runs):
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert int(row["epochs"]) == len(metrics["history"])
        assert float(row["val_accuracy"]) == pytest.approx(metrics["val"]["accuracy"])
        assert float(row["test_macro_sensitivity"]) == pytest.approx(metrics["test"]["macro"]["sensitivity"])
        assert float(row["test_sensitivity/lesion"]) == pytest.approx(
            metrics["test"]["per_class"]["lesion"]["sensitivity"]
        )
    page = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "## Validation (best epoch)" in page and "## Test (best epoch's model)" in page
    assert "| one_epoch/out | 1 |" in page and "| two_epochs/out | 2 |" in page
    assert (tmp_path / "cmp" / "comparison_curves.png").stat().st_size > 0


def test_saved_test_predictions_give_bootstrap_intervals(two_runs, tmp_path):
    run_dir = two_runs[0]
    labels, probs = (
        np.array([0, 1, 0, 1, 1, 0]),
        np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9], [0.6, 0.4], [0.7, 0.3]]),
    )
    with open(run_dir / "test_predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "predicted", "p0", "p1"])
        writer.writerows([f"x{i}.png", y, int(p.argmax()), *p] for i, (y, p) in enumerate(zip(labels, probs)))
    try:
        command.main([str(run_dir), "--out", str(tmp_path)])
    finally:
        (run_dir / "test_predictions.csv").unlink()
    with open(tmp_path / "comparison.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    expected = bootstrap_ci(labels, probs)
    assert (float(row["test_accuracy_ci_low"]), float(row["test_accuracy_ci_high"])) == pytest.approx(
        expected["accuracy"]
    )
    assert (float(row["test_macro_sensitivity_ci_low"]), float(row["test_macro_sensitivity_ci_high"])) == pytest.approx(
        expected["sensitivity"]
    )
    low, high = expected["accuracy"]
    assert f"[{100 * low:.2f}, {100 * high:.2f}]" in (tmp_path / "comparison.md").read_text()


def test_a_folder_without_metrics_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "cv_results.json").write_text("{}")
    with pytest.raises(SystemExit) as stop:
        run(lambda: command.main([str(tmp_path / "cv"), "--out", str(tmp_path / "cmp")]))
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err == f"error: {tmp_path / 'cv'}: no metrics.json (a cross-validation folder: pass its fold_*/ folders)\n"
