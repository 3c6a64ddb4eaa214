"""Finished runs side by side: their final metrics as a table (Markdown and CSV) and their
training curves overlaid in one figure.

Each run is read from its folder (metrics.json: the history, the best epoch's validation and
test metrics). metrics.json carries no confidence intervals; a run that saved its test
predictions (``test_predictions.csv``, written by study runs) gets the studies' 95 % bootstrap
intervals of the headline metrics, so two close numbers can be told apart from noise.
"""

import csv
import json
import os
from pathlib import Path

import numpy as np

from paddle_dx.errors import DataError
from paddle_dx.metrics.registry import headline_metrics
from paddle_dx.studies.bootstrap import bootstrap_ci
from paddle_dx.studies.cv_report import SHOWN, metric_label, metric_values
from paddle_dx.studies.figures import models_overlay
from paddle_dx.studies.markdown import pct, table

SPLITS = {"val": "Validation (best epoch)", "test": "Test (best epoch's model)"}
PREDICTIONS = "test_predictions.csv"


def read_run(run_dir: Path) -> dict:
    """metrics.json of a finished run, or one DataError naming the folder."""
    path = Path(run_dir) / "metrics.json"
    if not Path(run_dir).is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    if not path.is_file():
        hint = (
            "a cross-validation folder: pass its fold_*/ folders"
            if (Path(run_dir) / "cv_results.json").is_file()
            else "not a finished run: a run writes it at its end, an interrupted one has only latest/"
        )
        raise DataError(f"{run_dir}: no metrics.json ({hint})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def run_names(run_dirs: list[Path]) -> list[str]:
    """Folder names; the paths below the runs' common parent when two names are equal."""
    names = [Path(d).resolve().name for d in run_dirs]
    if len(set(names)) == len(names):
        return names
    full = [str(Path(d).resolve()) for d in run_dirs]
    common = os.path.commonpath(full)
    return [os.path.relpath(p, common) if p != common else Path(p).name for p in full]


def test_intervals(run_dir: Path) -> dict[str, tuple]:
    """{scalar name: (low, high)} 95 % bootstrap intervals from the run's test predictions, or {}."""
    path = Path(run_dir) / PREDICTIONS
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    columns = sorted((c for c in rows[0] if c[1:].isdigit() and c[0] == "p"), key=lambda c: int(c[1:]))
    labels = np.asarray([int(r["label"]) for r in rows])
    probs = np.asarray([[float(r[c]) for c in columns] for r in rows])
    cis = bootstrap_ci(labels, probs)
    return {metric.scalar_names()[0]: cis[metric.name] for metric in headline_metrics()}


def comparison_rows(run_dirs: list[Path], runs: list[dict]) -> list[dict]:
    """One flat dict per run (``runs``: their metrics.json): run, path, epochs, best_epoch,
    best_metric, ``{split}_{metric}`` for every metric, ``test_{metric}_ci_low/high`` where
    intervals exist."""
    rows = []
    for name, run_dir, metrics in zip(run_names(run_dirs), run_dirs, runs):
        row = {
            "run": name,
            "path": str(run_dir),
            "epochs": len(metrics.get("history") or []),
            "best_epoch": metrics.get("best_epoch"),
            "best_metric": metrics.get("best_metric"),
        }
        for split in SPLITS:
            if metrics.get(split):
                row.update({f"{split}_{k}": v for k, v in metric_values(metrics[split]).items()})
        for key, (low, high) in test_intervals(run_dir).items():
            row[f"test_{key}_ci_low"], row[f"test_{key}_ci_high"] = low, high
        rows.append(row)
    return rows


def _cell(row: dict, split: str, name: str) -> str:
    value = pct(row.get(f"{split}_{name}"))
    low = row.get(f"{split}_{name}_ci_low")
    return value if low is None else f"{value} [{pct(low)}, {pct(row[f'{split}_{name}_ci_high'])}]"


def markdown(rows: list[dict]) -> str:
    """comparison.md: one table per split present, rows = runs, values in %."""
    names = list(SHOWN) + ["loss"]
    lines = ["# Run comparison", "", "Values in %; [95 % bootstrap interval] where the run saved its test predictions."]
    for split, title in SPLITS.items():
        present = [r for r in rows if f"{split}_accuracy" in r]
        if not present:
            continue
        body = [
            [r["run"], r["epochs"], r["best_epoch"]]
            + [_cell(r, split, n) if n != "loss" else _loss(r.get(f"{split}_loss")) for n in names]
            for r in present
        ]
        headers = ["run", "epochs", "best epoch"] + [metric_label(n) for n in names]
        lines += ["", f"## {title}", "", table(headers, body)]
    lines += ["", "![training curves](comparison_curves.png)", ""]
    return "\n".join(lines)


def _loss(value):
    return "n/a" if value is None else f"{value:.4f}"


def write_csv(rows: list[dict], path: Path) -> Path:
    """Every column any run has (runs without it get an empty cell)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def compare_runs(run_dirs: list[str], out_dir: str) -> dict[str, Path]:
    """Write comparison.md, comparison.csv and comparison_curves.png into ``out_dir``."""
    run_dirs = [Path(d) for d in run_dirs]
    runs = [read_run(d) for d in run_dirs]
    rows = comparison_rows(run_dirs, runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    histories = {r["run"]: m.get("history") or [] for r, m in zip(rows, runs)}
    written = {
        "markdown": out / "comparison.md",
        "csv": write_csv(rows, out / "comparison.csv"),
        "figure": models_overlay(
            histories, (0, None), "train and validation curves per epoch", out / "comparison_curves.png"
        ),
    }
    written["markdown"].write_text(markdown(rows), encoding="utf-8")
    return written
