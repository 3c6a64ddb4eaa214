"""Each paper's own tables and figures, laid out as the paper lays them out, with this run's
numbers beside the paper's. ``PAPER_SECTIONS`` maps a study name to the builder of its sections
(``builder(study, ctx, root, setups) -> Markdown lines``); a study without one adds nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from paddle_dx.engine.stage_schedule import stage_bounds
from paddle_dx.studies import figures
from paddle_dx.studies.bootstrap import headline
from paddle_dx.studies.catalog import Study
from paddle_dx.studies.collapse import collapse_cause
from paddle_dx.studies.comparable import reasons
from paddle_dx.studies.markdown import num, pct, table
from paddle_dx.studies.model_summary import config_summary
from paddle_dx.utils.registry import Registry

if TYPE_CHECKING:
    from paddle_dx.studies.runner import RunResult

PAPER_SECTIONS = Registry("paper section")
GASTRIC_TABLES = {"VGG19": "Table 1", "ResNet50": "Table 2", "InceptionV3": "Table 3"}
GASTRIC_CLASSES = ("GC", "GU", "CG")  # label ids 0, 1, 2 (cancer, ulcer, gastritis)
GASTRIC_STAGES = ("pre-training", "fine-tuning")  # the run's Stages, by position
GASTRIC_INDEXES = (("precision", "Precision"), ("sensitivity", "Sensitivity"), ("f1", "F1-score"))
SPLIT_KEYS = {"validation": "val", "test": "test"}


def run_value(metrics: dict, metric: str, split: str, positive: int | None = None) -> float | None:
    """This run's ``metric`` (0-1) on ``split`` as the paper measured it: validation and test are
    the best epoch's metrics; training is the best epoch's training ``accuracy``."""
    if split == "training":
        best = next((h for h in metrics["history"] if h["epoch"] == metrics["best_epoch"]), None)
        return None if best is None else best.get(metric if metric.startswith("train_") else f"train_{metric}")
    found = metrics.get(SPLIT_KEYS.get(split, ""))
    return headline(found, positive).get(metric) if found else None


def verdict(study: Study, run: str, setups: dict[str, dict], split: str, paper_split: str) -> str:
    """'not comparable: ...' or '' for a section's note line."""
    why = reasons(study, run, setups[run], split, paper_split)
    return (
        ("**Not comparable**: " + "; ".join(why) + ".")
        if why
        else "Comparable: same data, network, input size, initialisation and split."
    )


def _paper(value):
    return "n/r" if value is None else f"{value:g}"


def _rel(root, path):
    return str(Path(path).relative_to(root))


def _stage_metrics(result, position):
    stages = result.metrics.get("stages") or []
    return stages[position]["val"] if position < len(stages) else None


def _class_value(metrics, col, key):
    """A per-class (by position) or macro ('average') value of a metrics dict, in %."""
    if metrics is None:
        return None
    if col == "average":
        return metrics["macro"][key]
    name = metrics["class_names"][GASTRIC_CLASSES.index(col)]
    return metrics["per_class"][name][key]


# ---- gastric: Tables 1-4, Figures 2-4 ------------------------------------------------------------
def gastric_tables_1_3(study: Study, results: list[RunResult], setups: dict[str, dict]) -> list[str]:
    lines = []
    cols = GASTRIC_CLASSES + ("average",)
    for r in results:
        if r.plan.name not in GASTRIC_TABLES:
            continue
        tab = GASTRIC_TABLES[r.plan.name]
        rows = []
        for position, stage in enumerate(GASTRIC_STAGES):
            ours = _stage_metrics(r, position)
            for key, label in GASTRIC_INDEXES:
                row = [stage, label]
                for col in cols:
                    row += [
                        _paper(study.table_value(f"{tab}/{r.plan.name}/{key}/{stage}/{col}")),
                        pct(_class_value(ours, col, key)) if ours else "n/a",
                    ]
                rows.append(row)
        headers = ["stage", "index"] + [f"{c} {who}" for c in cols for who in ("paper", "this run")]
        lines += [
            f"### {tab}: {r.plan.name}, validation results per stage (%)",
            "",
            verdict(study, r.plan.name, setups, "validation", "validation"),
            "",
            table(headers, rows),
            "",
        ]
    return lines


def gastric_table_4(study: Study, results: list[RunResult]) -> list[str]:
    lines = [
        "### Table 4: confusion matrices of the validation images, per stage (counts)",
        "",
        "Rows: true class; columns: predicted class. The paper's validation set has 150 images per class; "
        "this run's has the counts shown.",
        "",
    ]
    for position, stage in enumerate(GASTRIC_STAGES):
        rows = []
        for r in results:
            ours = _stage_metrics(r, position)
            for i, true in enumerate(GASTRIC_CLASSES):
                paper = [
                    _paper(study.table_value(f"Table 4/true {true}/{stage}/{r.plan.name}/{p}")) for p in GASTRIC_CLASSES
                ]
                mine = [str(v) for v in ours["confusion_matrix"][i]] if ours else ["n/a"] * 3
                rows.append([r.plan.name, true] + paper + mine)
        headers = (
            ["model", "true"] + [f"{p} paper" for p in GASTRIC_CLASSES] + [f"{p} this run" for p in GASTRIC_CLASSES]
        )
        lines += [f"#### {stage}", "", table(headers, rows), ""]
    return lines


def gastric_figures(results: list[RunResult], root: Path) -> list[str]:
    histories = {r.plan.name: r.metrics["history"] for r in results}
    bounds = stage_bounds(results[0].config.get("Stages")) if results else []
    lines = ["### Figures 2-3: the three models' training and validation curves per stage", ""]
    for number, (stage, (start, end)) in zip((2, 3), zip(GASTRIC_STAGES, bounds)):
        path = figures.models_overlay(
            histories,
            (start, end),
            f"Figure {number} ({stage}): this run",
            root / "figures" / f"paper_fig{number}_{stage}.png",
        )
        lines += [f"![Figure {number}: {stage}]({_rel(root, path)})", ""]
    lines += ["### Figure 4: per-class validation precision, sensitivity and F1 per epoch (pre-training)", ""]
    first = bounds[0] if bounds else (0, max((len(h) for h in histories.values()), default=0))
    for name, history in histories.items():
        path = figures.per_class_curves(
            history[first[0] : first[1]], f"Figure 4: {name}, this run", root / "figures" / f"paper_fig4_{name}.png"
        )
        lines += [
            f"![Figure 4: {name}]({_rel(root, path)})"
            if path
            else f"{name}: no per-class history (add PerClass to Metric.Eval)",
            "",
        ]
    return lines


@PAPER_SECTIONS.register(name="gastric")
def gastric_sections(study: Study, ctx: dict, root: Path, setups: dict[str, dict]) -> list[str]:
    results = ctx["results"]
    return (
        ["## The paper's tables and figures, beside this run", ""]
        + gastric_tables_1_3(study, results, setups)
        + gastric_table_4(study, results)
        + gastric_figures(results, root)
    )


# ---- brain: Table 1, Table 2, Figure 1 ----------------------------------------------------------
def brain_table_1(study: Study, result: RunResult) -> list[str]:
    rows, total = config_summary(result.config)
    body = [[r["layer"], r["type"], str(tuple(r["output_shape"])), r["params"]] for r in rows]
    paper = ", ".join(f"{n.name.split('/')[1]} {int(n.value)}" for n in study.numbers if n.name.startswith("Table 1/"))
    return [
        f"### Table 1: the model of run {result.plan.name} (generated from the network)",
        "",
        table(["layer", "type", "output shape", "parameters"], body),
        "",
        f"Total parameters: {total} (BatchNorm running statistics included). The paper's Table 1 "
        f"prints {paper} (see the contradictions above for its dense layer).",
        "",
    ]


def brain_table_2(study: Study, result: RunResult, setups: dict[str, dict]) -> list[str]:
    history = {h["epoch"]: h for h in result.metrics["history"]}
    epochs = sorted(set(range(1, 11)) | set(history))
    keys = (("train_loss", num), ("train_accuracy", pct), ("val_loss", num), ("val_accuracy", pct))
    rows = []
    for epoch in epochs:
        row = [epoch]
        for key, fmt in keys:
            paper = study.table_value(f"Table 2/epoch {epoch}/{key}")
            ours = history.get(epoch, {}).get(key)
            row += [
                _paper(paper if paper is None or "loss" in key else 100 * paper),
                fmt(ours) if epoch in history else "-",
            ]
        rows.append(row)
    headers = ["epoch"] + [f"{k.replace('_', ' ')} {who}" for k, _ in keys for who in ("paper", "this run")]
    return [
        "### Table 2: training and validation per epoch (accuracies in %)",
        "",
        verdict(study, result.plan.name, setups, "validation", "validation"),
        "",
        table(headers, rows),
        "",
    ]


@PAPER_SECTIONS.register(name="brain")
def brain_sections(study: Study, ctx: dict, root: Path, setups: dict[str, dict]) -> list[str]:
    result = ctx["results"][0]
    count = int(next((n.value for n in study.numbers if n.name.startswith("random test images")), 20))
    path = figures.random_images(
        result.paths,
        result.labels,
        result.metrics["test"]["class_names"],
        f"Figure 1: {count} random test images (this run's test split)",
        root / "figures" / "paper_fig1_random_test_images.png",
        count,
        ctx["seed"],
    )
    return (
        ["## The paper's tables and figures, beside this run", ""]
        + brain_table_1(study, result)
        + brain_table_2(study, result, setups)
        + ["### Figure 1: random test images", "", f"![Figure 1]({_rel(root, path)})", ""]
    )


# ---- esophagus: Table 2 -------------------------------------------------------------------------
@PAPER_SECTIONS.register(name="esophagus")
def esophagus_sections(study: Study, ctx: dict, root: Path, setups: dict[str, dict]) -> list[str]:
    split = ctx["split"]
    rows = []
    for label, paper_class in ((1, "pathological"), (0, "normal")):
        folder = split.folders[label]
        row = [f"{paper_class} (here: {folder})"]
        for key, name in (("train", "train"), ("val", "val"), ("test", "test")):
            row += [_paper(study.table_value(f"Table 2/{paper_class}/{key}")), split.counts[name][folder]]
        rows.append(row)
    headers = ["class"] + [f"{s} {who}" for s in ("train", "val", "test") for who in ("paper", "this run")]
    return ["## The paper's Table 2: images per class and split, beside this run's split", "", table(headers, rows), ""]


# ---- lung nodules: accuracy vs number of training crops; schedule -------------------------------
def size_curve_section(study: Study, sizes: dict[str, list[tuple]] | None, root: Path) -> list[str]:
    """``sizes``: {model: [(training crops, test accuracy 0-1, collapse cause or None), ...]}
    from a size plan. A collapsed run is not a result: its cell reads COLLAPSED, the cause is
    listed under the table and the figure leaves the point out."""
    if not sizes:
        return [
            "The paper's accuracy-vs-training-crops comparison: not run here (`reproduce(..., sizes=[...])` "
            "trains each model on growing training subsets).",
            "",
        ]
    kept = {model: [(n, acc) for n, acc, cause in pts if not cause] for model, pts in sizes.items()}
    path = figures.size_curve(
        {model: pts for model, pts in kept.items() if pts},
        "Accuracy vs number of training crops (test split)",
        root / "figures" / "paper_size_curve.png",
    )
    all_sizes = sorted({n for pts in sizes.values() for n, _, _ in pts})
    cells = {model: {n: "COLLAPSED" if cause else pct(acc) for n, acc, cause in pts} for model, pts in sizes.items()}
    rows = [[model] + [cells[model].get(n, pct(None)) for n in all_sizes] for model in sizes]
    collapsed = [f"- {model} on {n} crops: {cause}" for model, pts in sizes.items() for n, _, cause in pts if cause]
    return [
        "### Accuracy vs number of training crops",
        "",
        "The paper trains each network on growing sample counts (up to 60,000, line 235) and finds accuracy "
        "rising with the data, ResNet-50 best at every size. This run (test accuracy, %; a collapsed run is "
        "not a result: COLLAPSED, left out of the figure):",
        "",
        table(["model"] + [f"{n} crops" for n in all_sizes], rows),
        "",
        *([*collapsed, ""] if collapsed else []),
        f"![size curve]({_rel(root, path)})",
        "",
    ]


@PAPER_SECTIONS.register(name="lung_nodule")
def lung_sections(study: Study, ctx: dict, root: Path, setups: dict[str, dict]) -> list[str]:
    s = study.schedule
    rows = []
    for r in ctx["results"]:
        g, history = r.config["Global"], r.metrics["history"]
        fired = next((h["epoch"] for h in history if "stopped_by_rule" in h), None)
        rows.append(
            [
                r.plan.name,
                g.get("stop_after_iterations") or "off",
                g.get("stop_val_accuracy") or "off",
                sum(len(h.get("step_losses") or []) for h in history),
                f"stopped after epoch {fired}" if fired else "did not fire",
            ]
        )
    return [
        "## The paper's schedule and comparisons",
        "",
        f"The paper trains with batch {s['batch_size']} for {s['iterations']} iterations and stops once more "
        f"than {s['stop_after_iterations']} iterations are done and the accuracy exceeds "
        f"{s['stop_val_accuracy']:.2f}, keeping that model: `Global.stop_after_iterations: "
        f"{s['stop_after_iterations']}` and `Global.stop_val_accuracy: {s['stop_val_accuracy']}` (the study's "
        f"configs set them; checked at each validation).",
        "",
        table(["run", "stop after iterations", "stop at val accuracy", "iterations trained", "rule"], rows),
        "",
    ] + size_curve_section(study, ctx.get("sizes"), root)


@PAPER_SECTIONS.register(name="pcam")
def pcam_sections(study: Study, ctx: dict, root: Path, setups: dict[str, dict]) -> list[str]:
    return [
        "## The paper's application",
        "",
        "The paper's system speaks each diagnosis with advice (pyttsx3). paddle_dx's diagnosis page can speak "
        "each result as soon as it appears, with a short next-step sentence worded as an aid "
        "(`Speak results as they appear`, docs/ui.md).",
        "",
    ]


def paper_sections(study: Study, ctx: dict, root: Path | str, setups: dict[str, dict]) -> list[str]:
    if study.name not in PAPER_SECTIONS:
        return []
    return PAPER_SECTIONS.get(study.name)(study, ctx, Path(root), setups)


def size_points(results_by_size: dict[tuple[str, int], RunResult]) -> dict[str, list[tuple]]:
    """{model: [(n, test accuracy, collapse cause or None)]} from {(model, n): RunResult}, sorted by n."""
    out = {}
    for (model, n), result in sorted(results_by_size.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        names = result.metrics.get("test", {}).get("class_names") or [str(c) for c in range(result.probs.shape[1])]
        cause = collapse_cause(result.metrics["history"], result.probs, result.labels, names)
        out.setdefault(model, []).append((n, float(np.mean(result.probs.argmax(axis=1) == result.labels)), cause))
    return out
