"""Rerun a finished run from its manifest.json and compare the new result, metric by metric.

On CPU the same code, data, seed and thread count give bit-identical results, so the default
tolerance there is zero. GPU kernels (even with cuDNN's deterministic flags) may differ between
GPU models and driver versions, so a GPU comparison allows ``GPU_ATOL`` absolute difference.
"""

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
from paddle_dx.config import load_config
from paddle_dx.engine.manifest import MANIFEST, output_hashes
from paddle_dx.errors import PaddleDxError

GPU_ATOL = 1e-3
IGNORED = ("seconds",)  # wall-clock times are not results


def read_manifest(run_dir: Path | str) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise PaddleDxError(f"{path} not found: only runs trained by this version of paddle_dx have a manifest")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PaddleDxError(f"{path}: not valid JSON ({exc})") from None


def flatten(value: object, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, leaf); a list of numbers is one leaf (e.g. an epoch's step losses)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and value and not all(_is_number(v) for v in value):
        for i, v in enumerate(value):
            yield from flatten(v, f"{prefix}[{i}]")
    elif prefix.rsplit(".", 1)[-1] not in IGNORED:
        yield prefix, value


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def difference(a: object, b: object) -> float:
    """Largest absolute difference between two leaves; inf when they cannot be compared, 0 if equal."""
    if _is_number(a) and _is_number(b):
        if math.isnan(a) and math.isnan(b):
            return 0.0
        return abs(a - b)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(_is_number, a + b)):
        return max((difference(x, y) for x, y in zip(a, b)), default=0.0)
    return 0.0 if a == b else math.inf


def compare(old: object, new: object, atol: float) -> list[tuple[str, Any, Any, float, bool]]:
    """Rows (key, old value, new value, max |difference|, ok) over the union of both key sets."""
    old_flat, new_flat = dict(flatten(old)), dict(flatten(new))
    rows = []
    for key in list(old_flat) + [k for k in new_flat if k not in old_flat]:
        a, b = old_flat.get(key, "<missing>"), new_flat.get(key, "<missing>")
        diff = difference(a, b)
        rows.append((key, a, b, diff, diff <= atol))
    return rows


def compare_data(old: dict, new: dict) -> list[tuple[str, Any, Any, float, bool]]:
    """Rows for each split's list-file and image digests: the data must be exactly the same."""
    fields = ("list_sha256", "images_sha256", "images")
    return compare(
        {m: {f: s.get(f) for f in fields} for m, s in old.items()},
        {m: {f: s.get(f) for f in fields} for m, s in new.items()},
        atol=0,
    )


def compare_outputs(run_dir: Path | str, manifest: dict) -> list[tuple[str, Any, Any, float, bool]]:
    """Rows for the run folder's weight files against the hashes its manifest recorded: a
    best_model.pdparams that is not the one this run wrote (overwritten, swapped) is a DIFF."""
    recorded = manifest.get("outputs_sha256", {})
    return compare(
        {f"{run_dir}/{k}": v for k, v in recorded.items()},
        {f"{run_dir}/{k}": v for k, v in output_hashes(run_dir).items() if k in recorded},
        atol=0,
    )


def environment_changes(old: dict, new: dict) -> list[str]:
    """What differs in code, packages and device: reported, since it may explain a mismatch."""
    changes = []
    for section in ("git", "versions", "device"):
        for key, a, b, _, ok in compare(old.get(section, {}), new.get(section, {}), atol=0):
            if not ok:
                changes.append(f"{section}.{key}: {a} -> {b}")
    return changes


def replay_plan(manifest: dict, output_dir: Path) -> list[tuple[dict, tuple[int, int] | None]]:
    """[(config, stop_at)] that retrain the run into ``output_dir``: one piece, or, for a run
    resumed with Global.allow_config_change, each config up to the checkpoint the next resumed
    from, then a resume with the next config."""
    changes = manifest.get("config_changes") or []
    configs = [c["config"] for c in changes] + [manifest["config"]]
    stops = [(c["epoch"], c["step"]) for c in changes] + [None]
    plan = []
    for i, (raw, stop_at) in enumerate(zip(configs, stops)):
        start = (
            [f"Global.checkpoints={output_dir / 'latest'}", "Global.allow_config_change=true"]
            if i
            else ["Global.checkpoints=null"]
        )
        plan.append((load_config(raw=raw, overrides=[f"Global.output_dir={output_dir}", *start]), stop_at))
    return plan


def verify_run(run_dir: Path | str, output_dir: Path | str | None = None, atol: float | None = None) -> dict:
    """Retrain the run in ``run_dir`` into ``output_dir``; return a report dict with ``ok``."""
    from paddle_dx.engine.trainer import Trainer

    old = read_manifest(run_dir)
    output_dir = Path(output_dir or f"{Path(run_dir).resolve()}-verify-{time.strftime('%Y%m%d-%H%M%S')}")
    for config, stop_at in replay_plan(old, output_dir):
        Trainer(config).fit(stop_at=stop_at)
    new = read_manifest(output_dir)
    on_gpu = "gpu" in (old["device"]["device"], new["device"]["device"])
    atol = (GPU_ATOL if on_gpu else 0.0) if atol is None else float(atol)
    metrics = compare(old["final_metrics"], new["final_metrics"], atol)
    data = compare_data(old["data"], new["data"])
    outputs = compare_outputs(run_dir, old)
    return {
        "run": str(run_dir),
        "rerun": str(output_dir),
        "atol": atol,
        "device": new["device"]["device"],
        "metrics": metrics,
        "data": data,
        "outputs": outputs,
        "environment_changes": environment_changes(old, new),
        "ok": all(r[4] for r in metrics + data + outputs),
    }


def format_report(report: dict) -> list[str]:
    """Human-readable lines: one per metric (MATCH / DIFF), then the data and environment."""

    def show(v):
        if isinstance(v, list) and v and all(map(_is_number, v)):
            return f"[{len(v)} values]"
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    lines = [
        f"rerun of {report['run']} in {report['rerun']} on {report['device']}, tolerance |diff| <= {report['atol']:g}"
    ]
    for title, rows in (
        ("metrics", report["metrics"]),
        ("data", report["data"]),
        ("run folder files", report.get("outputs", [])),
    ):
        lines.append(f"-- {title}")
        for key, a, b, diff, ok in rows:
            detail = "" if diff == 0 else f"   |diff| {diff:.3g}"
            lines.append(f"{'MATCH' if ok else 'DIFF '}  {key}: {show(a)} -> {show(b)}{detail}")
    if report["environment_changes"]:
        lines.append("-- environment changes since the original run")
        lines += [f"  {c}" for c in report["environment_changes"]]
    bad = sum(not r[4] for r in report["metrics"] + report["data"] + report.get("outputs", []))
    lines.append("RESULT: reproduced" if report["ok"] else f"RESULT: NOT reproduced ({bad} difference(s))")
    return lines
