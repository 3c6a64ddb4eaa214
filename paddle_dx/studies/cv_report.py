"""Cross-validation results: each fold's metrics, their mean ± sd, cv_results.json, cv_report.md
and cv_folds.png.

The spread is the sample standard deviation over folds (ddof=1): it estimates how much one
training on another draw of the data would move. A value undefined in a fold (the AUC of a fold
holding one class) is left out of the mean, and ``n`` says how many folds made it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paddle_dx.metrics.figures import new_figure, save_figure
from paddle_dx.metrics.registry import METRICS, all_metrics, scalar_metric
from paddle_dx.metrics.selection import logged_values
from paddle_dx.studies.markdown import confusion_table, pct, table
from paddle_dx.utils.files import write_json

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from paddle_dx.data.folds import FoldPlan

# studies.cross_validation.CVSettings (a dataclass): that module imports this one, so importing it
# here, even for typing, would be a cycle (tests/test_layering.py)
CVSettingsLike = Any

SPLITS = {"val": "held-out fold (validation, best epoch)", "test": "held-out test set (each fold's best model)"}
SHOWN = ("accuracy", "auc", "macro_sensitivity", "macro_specificity", "macro_f1")  # + per-class sensitivity


def metric_values(report: dict) -> dict[str, float | None]:
    """Every registered scalar of one evaluation, per-class ones as ``metric/class``."""
    scalars, per_class = logged_values(report, all_metrics())
    flat = dict(scalars)
    flat.update({f"{name}/{cls}": value for cls, values in per_class.items() for name, value in values.items()})
    return flat


def metric_label(name: str) -> str:
    """Table heading of a metric_values key: "AUC", "macro sensitivity", "sensitivity: lesion"."""
    base, _, cls = name.partition("/")
    if cls:
        return f"{METRICS.get(base)().label}: {cls}"
    metric = scalar_metric(base)
    return metric.label if base == metric.name else f"macro {metric.label}"


def shown_metrics(class_names: list[str]) -> list[str]:
    return list(SHOWN) + [f"sensitivity/{c}" for c in class_names]


def mean_sd(values: list[float | None]) -> dict:
    """{mean, sd, min, max, n} of the defined values (sd None below two)."""
    known = np.asarray([v for v in values if v is not None], dtype=float)
    if not len(known):
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    sd = float(known.std(ddof=1)) if len(known) > 1 else None
    return {
        "mean": float(known.mean()),
        "sd": sd,
        "min": float(known.min()),
        "max": float(known.max()),
        "n": len(known),
    }


def cv_results(
    fold_metrics: list[dict], plan: FoldPlan, settings: CVSettingsLike, class_names: list[str], commands: list[str]
) -> dict:
    """cv_results.json's dict from each fold's metrics.json (in fold order) and the FoldPlan."""
    per_fold = []
    for k, metrics in enumerate(fold_metrics):
        entry = {
            "fold": k + 1,
            "run_dir": f"fold_{k + 1}",
            "n_train": int((plan.fold != k).sum()),
            "best_epoch": metrics["best_epoch"],
            "command": commands[k],
        }
        for split in SPLITS:
            if metrics.get(split):
                entry[split], entry[f"n_{split}"] = metric_values(metrics[split]), metrics[split]["n"]
        per_fold.append(entry)
    summary = {}
    for split in SPLITS:
        if all(split in f for f in per_fold):
            summary[split] = {name: mean_sd([f[split][name] for f in per_fold]) for name in per_fold[0][split]}
    pooled = sum(np.asarray(m["val"]["confusion_matrix"]) for m in fold_metrics)
    return {
        "settings": asdict(settings),
        "pooled_lists": ["Train", "Eval"] + (["Test"] if settings.include_test else []),
        "class_names": class_names,
        "n_images": len(plan.paths),
        "identical_image_groups": len(plan.copies),
        "per_fold": per_fold,
        "summary": summary,
        "val_confusion_matrix_pooled": pooled.tolist(),
        "val_accuracy_pooled": float(np.trace(pooled) / pooled.sum()),
    }


def _cell(stats: dict) -> str:
    return pct(stats["mean"]) + ("" if stats["sd"] is None else f" ± {pct(stats['sd'])}")


def markdown(results: dict) -> str:
    """cv_report.md: per-fold tables with the mean ± sd row, the pooled confusion matrix, commands."""
    s = results["settings"]
    names = shown_metrics(results["class_names"])
    lines = [
        f"# Cross-validation: {s['folds']} folds",
        "",
        f"{results['n_images']} images of the {' + '.join(results['pooled_lists'])} lists, stratified folds "
        f"(seed {s['seed']}"
        + (f", groups by `{s['group_regex']}`" if s["group_regex"] else "")
        + f"); {results['identical_image_groups']} group(s) of identical images each kept in one fold. "
        "Values in %, mean ± sample standard deviation over folds.",
    ]
    for split, title in SPLITS.items():
        if split not in results["summary"]:
            continue
        rows = [
            [f["fold"], f[f"n_{split}"], f["best_epoch"]] + [pct(f[split].get(n)) for n in names]
            for f in results["per_fold"]
        ]
        rows.append(["mean ± sd", "", ""] + [_cell(results["summary"][split][n]) for n in names])
        headers = ["fold", "images", "best epoch"] + [metric_label(n) for n in names]
        lines += ["", f"## {title[0].upper()}{title[1:]}", "", table(headers, rows)]
    pooled = {"class_names": results["class_names"], "confusion_matrix": results["val_confusion_matrix_pooled"]}
    lines += [
        "",
        "## Held-out folds pooled",
        "",
        f"Every image predicted once, by the fold model that did not train on it: accuracy "
        f"{pct(results['val_accuracy_pooled'])} %.",
        "",
        confusion_table(pooled),
        "",
        "![per-fold metrics](cv_folds.png)",
        "",
        "## Retraining one fold",
        "",
        "```",
        *[f["command"] for f in results["per_fold"]],
        "```",
        "",
    ]
    return "\n".join(lines)


def folds_figure(results: dict) -> Figure:
    """Bars of each fold's metrics with the mean ± sd as a black error bar, one panel per split."""
    splits = [s for s in SPLITS if s in results["summary"]]
    names = shown_metrics(results["class_names"])
    folds = results["per_fold"]
    fig = new_figure(max(6.0, 1.1 * len(names)), 3.6 * len(splits))
    width = 0.8 / len(folds)
    for ax, split in zip(fig.subplots(len(splits), 1, squeeze=False)[:, 0], splits):
        x = np.arange(len(names))
        for i, fold in enumerate(folds):
            heights = [np.nan if fold[split].get(n) is None else fold[split][n] for n in names]
            ax.bar(x - 0.4 + width * (i + 0.5), heights, width, label=f"fold {fold['fold']}", alpha=0.8)
        stats = [results["summary"][split][n] for n in names]
        means = [np.nan if st["mean"] is None else st["mean"] for st in stats]
        sds = [0.0 if st["sd"] is None else st["sd"] for st in stats]
        ax.errorbar(x, means, yerr=sds, fmt="D", color="black", capsize=6, label="mean ± sd")
        ax.set_xticks(x, [metric_label(n) for n in names], rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.22)  # headroom for the legend above bars at 1.0
        ax.set_title(SPLITS[split], fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=len(folds) + 1, loc="upper center")
    fig.suptitle(f"{len(folds)}-fold cross-validation")
    fig.tight_layout()
    return fig


def write_cv_report(root: Path, results: dict) -> Path:
    """Write cv_results.json, cv_report.md and cv_folds.png under ``root``; return the JSON's path."""
    root = Path(root)
    save_figure(folds_figure(results), root / "cv_folds.png")
    (root / "cv_report.md").write_text(markdown(results), encoding="utf-8")
    write_json(root / "cv_results.json", results)
    return root / "cv_results.json"
