"""The ImageNet-vs-scratch pair by k-fold cross-validation, for a study whose test split is too
small to compare on (the lung-nodule study: 11 test crops).

The study's split (train, val and test lists) is pooled and dealt into stratified folds, groups
whole (identical decoded pixels, near-duplicates on request, the MANIFEST.csv ``group_id``,
patients by the study's regex: data/folds.py). Fold k is the test set, fold k+1 the validation
set that picks the best epoch (but for a class that would otherwise have no training image),
the others train; so every image is tested exactly once, by a
model that neither trained on it nor chose its epoch on it. Both arms use the same folds, so
their out-of-fold predictions are paired image by image and studies/pairs.py tests them as one
"seed": exact McNemar and a paired bootstrap over every image of the study, not over 11.
"""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paddle_dx.data.folds import assign_folds
from paddle_dx.data.list_file import write_label_list
from paddle_dx.data.split import image_groups, manifest_groups
from paddle_dx.studies.collapse import loss_cause
from paddle_dx.studies.pairs import ARMS, plan_pair
from paddle_dx.studies.runner import RunResult, run_target
from paddle_dx.studies.splits import SplitInfo

LISTS = ("train", "val", "test")


def _pooled(split: SplitInfo) -> tuple[list[str], np.ndarray]:
    """(paths, labels) of every image the split lists, in list order (train, val, test)."""
    paths, labels = [], []
    for name in LISTS:
        for line in (Path(split.lists_dir) / f"{name}_list.txt").read_text(encoding="utf-8").splitlines():
            path, label = line.rsplit(" ", 1)
            paths.append(path)
            labels.append(int(label))
    return paths, np.asarray(labels, dtype=int)


def fold_splits(
    split: SplitInfo,
    folds: int,
    seed: int,
    out_dir: Path,
    group_regex: str | None = None,
    near_duplicates: int | None = None,
) -> list[SplitInfo]:
    """One SplitInfo per fold (its lists in ``out_dir/fold_<k>/``): test = fold k, val = fold
    k+1, train = the rest; a class with no training image left that way (2 images of it, one in
    each of folds k and k+1) trains on its fold k+1 images instead of validating on them."""
    paths, labels = _pooled(split)
    manifest = manifest_groups(split.image_root, paths)
    groups, _ = image_groups(
        split.image_root, paths, labels, group_regex, near_duplicates, [] if manifest is None else [manifest]
    )
    fold = assign_folds(labels, groups, folds, seed)
    out = []
    for k in range(folds):
        role = np.where(fold == k, 2, np.where(fold == (k + 1) % folds, 1, 0))  # 0 train, 1 val, 2 test
        for c in np.unique(labels):  # a rare class whose other images all sit in fold k+1 trains on them
            if not np.any((role == 0) & (labels == c)):
                role[(role == 1) & (labels == c)] = 0
        folder = Path(out_dir) / f"fold_{k + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        counts = {}
        for r, name in enumerate(LISTS):
            idx = np.flatnonzero(role == r)
            (folder / f"{name}_list.txt").write_text(
                "".join(f"{paths[i]} {labels[i]}\n" for i in idx), encoding="utf-8"
            )
            counts[name] = {f: int(np.sum(labels[idx] == c)) for c, f in enumerate(split.folders)}
        write_label_list(folder / "label_list.txt", split.folders)
        out.append(dataclasses.replace(split, lists_dir=str(folder), counts=counts))
    return out


def pool_folds(runs: list[RunResult], name: str) -> RunResult:
    """One arm's folds as one run: the out-of-fold predictions of every image, in fold order.
    ``metrics['fold_causes']`` holds each fold's diverged loss (studies/pairs.py reads it)."""
    first = runs[0]
    metrics = {
        "history": [],
        "fold_causes": [loss_cause(r.metrics["history"]) for r in runs],
        "fold_accuracy": [float((r.probs.argmax(axis=1) == r.labels).mean()) for r in runs],
        "fold_images": [len(r.labels) for r in runs],
    }
    return RunResult(
        dataclasses.replace(first.plan, name=name),
        first.config,
        metrics,
        np.concatenate([r.probs for r in runs]),
        np.concatenate([r.labels for r in runs]),
        [p for r in runs for p in r.paths],
        sum(r.wall_seconds for r in runs),
    )


def cross_validated_pair(
    config_path: Path | str,
    split: SplitInfo,
    root: Path,
    seed: int,
    folds: int,
    quick: bool,
    overrides: Sequence[str],
    grouping: tuple[str | None, int | None] = (None, None),
) -> dict[str, list[RunResult]]:
    """{arm: [the arm's pooled RunResult]}: the pair trained once per fold with ``seed``.
    ``grouping``: (group regex, near-duplicate bits) the folds keep whole, as the split did."""
    splits = fold_splits(split, folds, seed, root / "splits_folds", *grouping)
    per_arm = {arm: [] for arm in ARMS}
    for k, fold in enumerate(splits, 1):
        plans = plan_pair(config_path, fold, root / "runs" / f"fold_{k}", [seed], quick, overrides)
        for arm in ARMS:
            per_arm[arm].append(run_target(plans[arm][0]))
    return {arm: [pool_folds(runs, f"{arm}_s{seed}_cv{folds}")] for arm, runs in per_arm.items()}
