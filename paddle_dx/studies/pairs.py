"""ImageNet transfer vs random initialisation: one config (papers.yaml ``imagenet_pair``) trained
twice per seed on the same split, once from its ImageNet weights and once with
``Arch.pretrained=false``: same network, data, epochs, schedule and augmentation.

The comparison is paired on the same test images. Per seed: exact McNemar and a paired bootstrap
interval of the accuracy difference. Across seeds the runs are not independent draws of the test
set, so they are not pooled image by image; each arm's seeds vote instead (the class most seeds
predict, ties to the higher mean probability) and the two votes are tested like one pair. Seeds
where either arm collapsed (studies/collapse.py) are left out of every test."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from paddle_dx.errors import PaddleDxError
from paddle_dx.metrics.intervals import (
    accuracy_interval,
    delong_auc,
    delong_one_vs_rest,
    exact_mcnemar,
    paired_bootstrap_difference,
)
from paddle_dx.studies.collapse import before_evaluation_cause, collapse_cause
from paddle_dx.studies.comparable import init_kind
from paddle_dx.studies.plan import RunPlan, plan_run

if TYPE_CHECKING:
    from paddle_dx.studies.runner import RunResult
    from paddle_dx.studies.splits import SplitInfo

ARMS = ("imagenet", "scratch")
ALPHA = 0.05


def pair_seeds(seed: int, n: int) -> list[int]:
    """The training seeds of a pair: ``seed``, ``seed + 1``, ... (the split keeps ``seed``)."""
    return [seed + i for i in range(n)]


def plan_pair(
    config_path: Path | str,
    split: SplitInfo,
    out_dir: Path | str,
    seeds: Iterable[int],
    quick: bool,
    extra: Iterable[str] = (),
) -> dict[str, list[RunPlan]]:
    """{arm: [RunPlan per seed]}: runs ``imagenet_s<seed>`` and ``scratch_s<seed>``."""
    return {
        arm: [
            plan_run(
                f"{arm}_s{s}",
                config_path,
                split,
                out_dir,
                s,
                quick,
                extra=list(extra) + (["Arch.pretrained=false"] if arm == "scratch" else []),
            )
            for s in seeds
        ]
        for arm in ARMS
    }


@dataclass
class ArmRun:
    """One trained run of a pair, with what the report reads from it."""

    seed: int
    result: RunResult
    cause: str | None  # why it collapsed, or None

    @property
    def correct(self) -> np.ndarray:
        return self.result.probs.argmax(axis=1) == self.result.labels


def auc_summary(labels: np.ndarray, probs: np.ndarray, positive: int | None = None) -> dict:
    """DeLong AUC: of ``positive`` for a binary task, else each class against the rest and their mean."""
    if probs.shape[1] == 2 or positive is not None:
        k = 1 if positive is None else positive
        out = delong_auc(labels == k, probs[:, k])
        return {"auc": out["auc"], "ci": out["ci"], "per_class": None}
    per_class = delong_one_vs_rest(labels, probs)
    defined = [c["auc"] for c in per_class if c["auc"] is not None]
    return {"auc": float(np.mean(defined)) if defined else None, "ci": (None, None), "per_class": per_class}


def _vote(runs: list[ArmRun]) -> np.ndarray:
    """Each image's class by majority over seeds; ties go to the higher mean probability."""
    probs = np.stack([r.result.probs for r in runs])
    votes = np.stack([np.bincount(p, minlength=probs.shape[2]) for p in probs.argmax(axis=2).T])
    return (votes + 0.5 * probs.mean(axis=0)).argmax(axis=1)


def run_cause(result: RunResult, class_names: list[str]) -> str | None:
    """Why a run collapsed, or None; a cross-validated arm (studies/pair_folds.py) also by any
    fold whose loss diverged."""
    folds = result.metrics.get("fold_causes") or []
    diverged = next((f"fold {k}: {c}" for k, c in enumerate(folds, 1) if c), None)
    return (
        diverged
        or before_evaluation_cause(result.metrics)
        or collapse_cause(result.metrics["history"], result.probs, result.labels, class_names)
    )


def _paired(a_correct, b_correct, n_resamples, seed) -> dict:
    diff, ci = paired_bootstrap_difference(a_correct, b_correct, n_resamples, seed)
    return {"difference": diff, "ci": ci, **exact_mcnemar(a_correct, b_correct)}


def _check_same_images(runs: list[ArmRun]):
    first = runs[0].result
    for r in runs[1:]:
        if list(r.result.paths) != list(first.paths) or not np.array_equal(r.result.labels, first.labels):
            raise PaddleDxError(f"run '{r.result.plan.name}' was tested on other images than '{first.plan.name}'")


def verdict(summary: dict) -> str:
    """The plain-language answer to "does ImageNet transfer beat random init here?"."""
    if summary["imagenet_init"] != "imagenet":
        return (
            "No transfer comparison: the ImageNet weights were not available, so both arms started "
            "from random initialisation."
        )
    vote = summary["vote"]
    if vote is None:
        return "No comparison: in every seed at least one of the two runs collapsed."
    lo, hi = vote["ci"]
    how = (
        f"out-of-fold predictions of {summary['folds']['k']}-fold cross-validation on {summary['n_images']} images"
        if summary.get("folds")
        else f"seed-majority vote on {summary['n_images']} test images"
    )
    numbers = (
        f"{how}: difference {100 * vote['difference']:+.1f} "
        f"points (95 % CI [{100 * lo:+.1f}, {100 * hi:+.1f}]), exact McNemar p = {vote['p_value']:.3g}, "
        f"{len(summary['paired_seeds'])} seed(s)"
    )
    if vote["p_value"] < ALPHA and lo > 0:
        return f"**Transfer beats scratch here** ({numbers})."
    if vote["p_value"] < ALPHA and hi < 0:
        return f"**Scratch beats transfer here** ({numbers})."
    return f"**No evidence here that transfer beats scratch, or the reverse** ({numbers})."


def compare_pair(
    results: dict[str, list[RunResult]],
    class_names: list[str],
    positive: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Per-seed rows, mean +/- sd per arm, paired tests per seed and on the vote, and the verdict.
    ``results``: {arm: [RunResult per seed]} in seed order (the same seeds in both arms)."""
    arms = {
        arm: [ArmRun(int(r.config["Global"]["seed"]), r, run_cause(r, class_names)) for r in runs]
        for arm, runs in results.items()
    }
    _check_same_images([r for runs in arms.values() for r in runs])
    rows, paired_seeds = [], []
    for a, b in zip(arms["imagenet"], arms["scratch"]):
        row = {"seed": a.seed}
        for arm, run in zip(ARMS, (a, b)):
            row[arm] = {
                "run": run.result.plan.name,
                "accuracy": float(run.correct.mean()),
                "accuracy_ci": accuracy_interval(run.correct),
                **auc_summary(run.result.labels, run.result.probs, positive),
                "collapsed": run.cause,
            }
        row["paired"] = None if (a.cause or b.cause) else _paired(a.correct, b.correct, n_resamples, seed)
        if row["paired"] is not None:
            paired_seeds.append(a.seed)
        rows.append(row)
    summary = {arm: _mean_sd([r[arm] for r in rows if not r[arm]["collapsed"]]) for arm in ARMS}
    labels = arms["imagenet"][0].result.labels
    vote = None
    if paired_seeds:
        votes = {arm: _vote([r for r in arms[arm] if r.seed in paired_seeds]) == labels for arm in ARMS}
        vote = _paired(votes["imagenet"], votes["scratch"], n_resamples, seed)
        vote.update({arm: float(votes[arm].mean()) for arm in ARMS})
        vote.update({f"{arm}_ci": accuracy_interval(votes[arm]) for arm in ARMS})
    out = {
        "seeds": rows,
        "summary": summary,
        "paired_seeds": paired_seeds,
        "vote": vote,
        "n_images": len(labels),
        "imagenet_init": init_kind(arms["imagenet"][0].result.plan.init),
        "arch": arms["imagenet"][0].result.plan.arch,
        "input_size": int(arms["imagenet"][0].result.config["Global"]["image_shape"][-1]),
        "imagenet_init_text": arms["imagenet"][0].result.plan.init,
    }
    fold_metrics = arms["imagenet"][0].result.metrics
    if "fold_accuracy" in fold_metrics:
        out["folds"] = {
            "k": len(fold_metrics["fold_accuracy"]),
            "images": fold_metrics["fold_images"],
            **{arm: arms[arm][0].result.metrics["fold_accuracy"] for arm in ARMS},
        }
    out["verdict"] = verdict(out)
    return out


def _mean_sd(rows: list[dict]) -> dict:
    """Mean and sample sd (ddof 1; None for fewer than two runs) of accuracy and AUC."""
    out = {"n": len(rows)}
    for key in ("accuracy", "auc"):
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
        out[f"{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return out
