"""Write reports/<study>/report.md (+ report.json): the paper's table beside this run's, with
bootstrap intervals, per-class and per-stage tables, figures and everything needed to rerun."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from paddle_dx.config import config_hash
from paddle_dx.metrics.registry import headline_metrics
from paddle_dx.studies import figures
from paddle_dx.studies.bootstrap import headline, small_n_intervals
from paddle_dx.studies.catalog import REPO_ROOT, Study
from paddle_dx.studies.comparable import difference_cell, provenance, reasons
from paddle_dx.studies.markdown import confusion_table, history_table, interval, paper_cell, pct, per_class_table, table
from paddle_dx.studies.pair_report import (
    choices_section,
    collapse_lines,
    pair_section,
    run_causes,
    source_section,
    status,
)
from paddle_dx.studies.paper_tables import paper_sections, run_value
from paddle_dx.studies.plan import QUICK
from paddle_dx.utils.files import write_json

if TYPE_CHECKING:
    from paddle_dx.studies.runner import RunResult

PACKAGES = ("paddlepaddle", "paddleclas", "numpy", "opencv-python-headless", "scikit-learn", "matplotlib", "PyYAML")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _cpu():
    """(model name, the vector-unit flags that decide oneDNN's kernels) from one read of /proc/cpuinfo."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    model = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), None)
    flags = next((l.split(":", 1)[1].split() for l in lines if l.startswith("flags")), [])
    return (
        model or platform.processor() or platform.machine(),
        [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags],
    )


CODE_PATHS = ("paddle_dx", "configs", "tools", "pyproject.toml")  # what a report's numbers depend on


def _git_commit():
    """HEAD of the paddle_dx checkout that ran, with ``+changes`` when its tracked code differs
    (CODE_PATHS; published results/ being rewritten by the run itself is not a change)."""
    if not (REPO_ROOT / ".git").exists():
        return "not a git checkout"
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" +changes" if dirty else "")


def environment() -> dict[str, str | int]:
    """Where a report was made: the machine, the device and the code, for the committed results."""
    import paddle

    from paddle_dx.utils.device import usable_cores

    model, flags = _cpu()
    return {
        "cpu": model,
        "cpu_flags": " ".join(flags) or "none of avx2/avx512f",
        "usable_cores": usable_cores(),
        "os": platform.platform(),
        "device": "gpu" if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() else "cpu",
        "paddle_dx_commit": _git_commit(),
    }


def _duration(seconds):
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s" if minutes else f"{sec} s"


def run_figures(result: RunResult, root: Path) -> dict[str, str]:
    """The four PNGs of one run; returns {kind: path relative to the report}."""
    name, m = result.plan.name, result.metrics
    names = m["test"]["class_names"]
    fig_dir = root / "figures"
    paths = {
        "curves": figures.training_curves(
            m["history"], result.config.get("Stages"), f"{name}: training curves", fig_dir / f"{name}_curves.png"
        ),
        "confusion": figures.confusion(
            m["test"], f"{name}: test set (best val epoch {m['best_epoch']})", fig_dir / f"{name}_confusion.png"
        ),
        "roc": figures.roc_curve_figure(
            result.labels, result.probs, names, f"{name}: ROC, test set", fig_dir / f"{name}_roc.png"
        ),
        "grid": figures.prediction_grid(
            result.paths, result.labels, result.probs, names, f"{name}: test images", fig_dir / f"{name}_test_grid.png"
        ),
    }
    return {k: str(Path(v).relative_to(root)) for k, v in paths.items()}


def data_section(study: Study, ctx: dict) -> list[str]:
    """Which data the paper used and which data this run used, stated first in every report."""
    paper = study.paper_setup.get("data", "n/r")
    lines = ["## Data", "", f"- **Paper's data**: {paper} (paper: `../shared/papers/{study.paper}`)."]
    if not ctx["data_reasons"]:
        lines.append(
            f"- **This run's data**: `{ctx['split'].image_root}`: no SOURCE.md marks it as a stand-in, its "
            f"folders carry the paper's class names {list(study.classes[0])} and it is as large as the "
            f"paper's, so it is taken to be the paper's own data."
        )
        return lines
    lines.append(
        f"- **This run's data is a STAND-IN or a subset** ({'; '.join(ctx['data_reasons'])}): "
        f"`{ctx['split'].image_root}`, folders {list(ctx['split'].folders)} for the paper's classes "
        f"{list(study.classes[0])}. The stand-in this study uses here: {study.stand_in}"
    )
    if ctx.get("source_md"):
        title, origin = provenance(ctx["source_md"])
        lines.append(f"- **Provenance** (`{ctx['source_md']}`): {title}." + (f" {origin}" if origin else ""))
    else:
        lines.append("- **Provenance**: no SOURCE.md found beside the data.")
    lines.append("- Every difference to the paper therefore reads *not comparable*.")
    return lines


def _setting_section(study, ctx):
    split = ctx["split"]
    lines = [
        "## Setting",
        "",
        f"- **Paper**: {study.setting}.",
        f"- **Data here**: `{split.image_root}`, class folders {split.folders} as labels "
        f"{ctx['class_names']} (label id = position).",
    ]
    lines.append(
        f"- **Split**: stratified {':'.join(f'{r:g}' for r in study.ratios)} train/val/test, seed "
        f"{ctx['seed']} (scikit-learn)"
        + f"; kept on one side: {', '.join(split.grouping) or 'identical decoded pixels'}"
        + f"; lists in `{split.lists_dir}`."
    )
    lines += [
        "",
        table(
            ["split"] + split.folders + ["total"],
            [[s] + [c[f] for f in split.folders] + [sum(c.values())] for s, c in split.counts.items()],
        ),
    ]
    if ctx["per_class"]:
        lines += ["", f"- **Subset**: at most {ctx['per_class']} images per class, drawn with seed {ctx['seed']}."]
    if ctx["quick"]:
        subs = ", ".join(f"{a} -> {b}" for a, b in QUICK["arch"].items())
        lines += [
            "",
            f"- **Quick mode** (`--quick`): {QUICK['image_size']} px, {QUICK['epochs']} epochs "
            f"({QUICK['stage_epochs']} per stage), model substitution {subs}. The numbers test the "
            f"pipeline, not the paper's claim.",
        ]
    if ctx.get("groups_ignored"):
        lines += [
            "",
            f"- **Patients NOT kept whole** (`--ignore-groups`): the paper's data is split by patient "
            f"(file-name regex `{ctx['groups_ignored']}`), but this data has too few patients for that, "
            f"so images were split one by one. Crops of one patient (and of one finding) sit in "
            f"training and test: the accuracy is inflated. This is a pipeline run, not a classifier "
            f"result.",
        ]
    if ctx["overrides"]:
        lines += [
            "",
            f"- **Overrides on every run** (`-o`): {', '.join(f'`{o}`' for o in ctx['overrides'])} "
            f"(they win over the quick settings).",
        ]
    if ctx.get("source_split"):
        src = ctx["source_split"]
        lines += [
            "",
            f"- **Source task** (`--source`): every class folder of `{src.image_root}` ({src.folders}), "
            f"split 8:2 train/val; {src.excluded} image(s) left out because they are target images (train, "
            f"val or test: identical decoded pixels, near-duplicates or MANIFEST.csv group siblings). Its "
            f"backbone starts rows of their own (`source-init_<row>`, section 'Source pretraining'); the "
            f"ImageNet rows keep their ImageNet weights.",
        ]
    lines += [
        "",
        "### Initialisation of each run",
        "",
        table(["run", "network", "initialisation"], [[r.plan.name, r.plan.arch, r.plan.init] for r in ctx["results"]]),
    ]
    return lines


def _main_table(study, results, cis, setups, causes):
    rows = []
    for r in results:
        ours = headline(r.metrics["test"], study.positive)
        for metric in headline_metrics():
            paper = study.paper_value(r.plan.name, metric.name, "test")
            value = None if ours[metric.name] is None else 100 * ours[metric.name]
            why = reasons(study, r.plan.name, setups[r.plan.name], "test", "test")
            rows.append(
                [
                    r.plan.name,
                    metric.label,
                    paper_cell(paper),
                    pct(ours[metric.name]),
                    difference_cell(value, paper, why),
                    interval(cis[r.plan.name][metric.name]),
                    status(causes[r.plan.name]),
                ]
            )
    what = "the positive class" if study.positive is not None else "macro averages over classes"
    exact = (
        "Clopper-Pearson for accuracy, sensitivity and specificity, DeLong for AUC"
        if study.positive is not None
        else "Clopper-Pearson for accuracy, percentile bootstrap over the test set for the macro averages"
    )
    return [
        "## Test set: paper vs this run",
        "",
        f"Values in %. Sensitivity and specificity are those of {what}; this run's numbers come from its "
        f"best validation epoch. 95 % CI: {exact}. "
        f"n/r = not reported by the paper (on the test split). A difference is printed only where data, "
        f"network, input size, initialisation and split all match the paper's. A collapsed run (one "
        f"predicted class, one class for nearly every image at chance-level balanced accuracy, or a "
        f"diverged loss) is not a result: its status says why.",
        "",
        table(["run", "metric", "paper", "this run", "difference", "95 % CI", "status"], rows),
    ]


def published_table(study: Study, results: list[RunResult], setups: dict[str, dict]) -> list[str]:
    """Every published number tied to a run, beside this run's value on the split the paper used."""
    by_name = {r.plan.name: r for r in results}
    rows = []
    for n in study.numbers:
        if n.run not in by_name:
            continue
        r = by_name[n.run]
        ours = run_value(r.metrics, n.metric, n.split, study.positive)
        value = None if ours is None else 100 * ours
        why = reasons(study, n.run, setups[n.run], n.split, n.split)
        rows.append(
            [
                n.run,
                n.name,
                n.split,
                paper_cell(n.percent),
                pct(ours),
                difference_cell(value, n.percent, why),
                f"line {n.line}",
            ]
        )
    lines = [
        "## Published numbers: paper vs this run",
        "",
        "Each number the paper prints for a run, beside this run's value on the same split (validation: "
        "the best validation epoch's metrics; training: that epoch's training accuracy). Values in %.",
        "",
    ]
    lines += [
        table(["run", "paper's number", "split", "paper", "this run", "difference", "source"], rows)
        if rows
        else "No single headline number is tied to a run; the paper's own tables follow below."
    ]
    if study.conflicts:
        lines += ["", "### Where the paper contradicts itself", ""]
        lines += [f"- {c['text']} (lines {', '.join(map(str, c['lines']))})" for c in study.conflicts]
    return lines


def _run_sections(results, figs):
    lines = ["## Per-class results (test set, best validation epoch)", ""]
    for r in results:
        m = r.metrics
        lines += [
            f"### {r.plan.name}",
            "",
            f"Best validation epoch: {m['best_epoch']} (by {m['best_metric']}). Paper values: n/r.",
            "",
            per_class_table(m["test"]),
            "",
            confusion_table(m["test"]),
            "",
        ]
        for stage in m.get("stages") or []:
            lines += [
                f"#### {r.plan.name} after stage '{stage['name']}' (epochs up to {stage['end_epoch']}, "
                f"freeze {stage['freeze']}, lr {stage['lr']:g}), test set",
                "",
                per_class_table(stage["test"]),
                "",
                confusion_table(stage["test"]),
                "",
            ]
    lines += ["## Per-epoch history", ""]
    for r in results:
        lines += [f"### {r.plan.name}", "", history_table(r.metrics["history"]), ""]
    lines += ["## Figures", ""]
    for r in results:
        f = figs[r.plan.name]
        lines += [
            f"### {r.plan.name}",
            "",
            f"![training curves]({f['curves']})",
            "",
            f"![confusion matrix]({f['confusion']}) ![ROC curve]({f['roc']})",
            "",
            f"![test images: true / predicted]({f['grid']})",
            "",
        ]
    return lines


def _all_runs(ctx):
    """Every trained run in report order: source pretraining, paper rows, source rows, pair runs."""
    pair = [r for arm in (ctx.get("pair_results") or {}).values() for r in arm]
    return ctx["sources"] + ctx["results"] + ctx.get("source_rows", []) + pair


def _machine_section(ctx, env):
    runs = _all_runs(ctx)
    started = ctx.get("started")
    lines = [
        "## This run: time and machine",
        "",
        f"Started {started.strftime('%Y-%m-%d %H:%M UTC') if started else 'n/r'}; wall time of the whole "
        f"study {_duration(ctx.get('wall_seconds', 0.0))} (splits, every run's training and test "
        f"prediction; the bootstrap and figures after it are not counted).",
        "",
        table(["run", "wall time"], [[r.plan.name, _duration(getattr(r, "wall_seconds", 0.0))] for r in runs]),
        "",
        table(["machine", "value"], [[k, v] for k, v in env.items()]),
    ]
    return lines


def _rerun_section(ctx):
    runs = _all_runs(ctx)
    lines = [
        "## Reproduce",
        "",
        "The whole report:",
        "",
        "```bash",
        ctx["command"],
        "```",
        "",
        "Each run on its own (the same config and overrides this report used):",
        "",
        "```bash",
    ]
    lines += [r.plan.command() for r in runs]
    lines += [
        "```",
        "",
        table(
            ["run", "config", "config sha256 (resolved)", "seed", "output"],
            [
                [
                    r.plan.name,
                    r.plan.config,
                    config_hash(r.config)[:16],
                    r.config["Global"]["seed"],
                    r.config["Global"]["output_dir"],
                ]
                for r in runs
            ],
        ),
        "",
        f"Bootstrap: {ctx['n_resamples']} resamples, seed {ctx['seed']}.",
        "",
        "Package versions:",
        "",
        table(["package", "version"], list(versions().items())),
    ]
    return lines


def write_report(study: Study, ctx: dict, root: Path) -> Path:
    """Compute intervals and figures, write report.md and report.json under ``root``."""
    results = ctx["results"]
    setups = ctx["setups"]
    cis = {
        r.plan.name: small_n_intervals(r.labels, r.probs, study.positive, ctx["n_resamples"], ctx["seed"])
        for r in results
    }
    source_rows, pair = ctx.get("source_rows", []), ctx.get("pair")
    causes = run_causes(results + source_rows, ctx["class_names"])
    for row in (pair or {}).get("seeds", []):
        causes.update({row[arm]["run"]: row[arm]["collapsed"] for arm in ("imagenet", "scratch")})
    figs = {r.plan.name: run_figures(r, root) for r in results}
    env = environment()
    lines = [
        f"# Reproduction report: {study.title}",
        "",
        f"Generated {datetime.date.today().isoformat()} by `tools/reproduce.py`"
        f" ({'quick' if ctx['quick'] else 'full'} mode). paddle_dx is a research tool; these numbers are "
        f"not a diagnostic claim.",
        "",
    ]
    lines += data_section(study, ctx) + [""] + _setting_section(study, ctx) + [""] + choices_section(study)
    lines += collapse_lines(causes) + pair_section(study, pair, ctx["class_names"])
    lines += published_table(study, results, setups) + [""] + _main_table(study, results, cis, setups, causes) + [""]
    lines += source_section(source_rows, causes, ctx.get("source_split"), study.positive)
    lines += paper_sections(study, ctx, root, setups) + _run_sections(results, figs)
    lines += _machine_section(ctx, env) + [""] + _rerun_section(ctx)
    (root / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_json(
        root / "report.json",
        {
            "study": study.name,
            "quick": ctx["quick"],
            "seed": ctx["seed"],
            "command": ctx["command"],
            "data_reasons": ctx["data_reasons"],
            "setups": setups,
            "runs": {
                r.plan.name: {
                    "init": r.plan.init,
                    "arch": r.plan.arch,
                    "config": r.plan.config,
                    "overrides": r.plan.overrides,
                    "config_sha256": config_hash(r.config),
                    "metrics": str(r.output_dir / "metrics.json"),
                    "test": headline(r.metrics["test"], study.positive),
                    "ci95": cis[r.plan.name],
                    "figures": figs[r.plan.name],
                    "collapsed": causes[r.plan.name],
                }
                for r in results
            },
            "source_rows": {
                r.plan.name: {"init": r.plan.init, "arch": r.plan.arch, "collapsed": causes[r.plan.name]}
                for r in source_rows
            },
            "imagenet_vs_scratch": pair,
            "published_files": ["predictions.csv", "image_sha256.txt", "splits/"],
            "wall_seconds": {
                "study": round(ctx.get("wall_seconds", 0.0), 1),
                **{r.plan.name: round(getattr(r, "wall_seconds", 0.0), 1) for r in _all_runs(ctx)},
            },
            "started": ctx["started"].isoformat(timespec="seconds") if ctx.get("started") else None,
            "machine": env,
            "versions": versions(),
        },
    )
    return root / "report.md"
