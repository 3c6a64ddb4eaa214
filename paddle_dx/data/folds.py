"""k stratified folds of the images a config lists, for cross-validation.

The images of the config's Train and Eval lists (and Test, on request) are pooled, sorted, and
dealt into folds by scikit-learn. Groups are split.py's: identical decoded pixels, the
``--group-regex`` patient, near-duplicates on request and a MANIFEST.csv ``group_id``; a group
never spans two folds, because a copy in the training folds would inflate the held-out score.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from paddle_dx.config.sections import DataSection
from paddle_dx.data.classes import require_class_num
from paddle_dx.data.list_file import read_list_file, write_label_list
from paddle_dx.data.split import cross_split_duplicates, image_groups, manifest_groups, warn_duplicates
from paddle_dx.errors import DataError

log = logging.getLogger(__name__)
LIST_NAMES = ("train_list.txt", "val_list.txt")


@dataclass
class FoldPlan:
    """The pooled images (``paths`` as list files write them, relative to ``image_root`` when
    inside it), their labels, the fold (0-based) of each and the groups of copies kept together."""

    image_root: str
    paths: list[str]
    labels: np.ndarray
    fold: np.ndarray
    copies: list[list[str]]

    @property
    def folds(self) -> int:
        return int(self.fold.max()) + 1

    def lists(self, k: int) -> dict[str, str]:
        """{file name: text} of fold ``k``'s train list (the other folds) and val list (fold k)."""
        held = self.fold == k
        return {
            name: "".join(f"{p} {y}\n" for p, y, h in zip(self.paths, self.labels, held) if h == want)
            for name, want in zip(LIST_NAMES, (False, True))
        }


def pooled_samples(config: dict, modes: tuple[str, ...]) -> tuple[str, list[str], np.ndarray]:
    """(image root, sorted list paths, labels) of the images that the ``modes``' lists name.

    Paths are written relative to the Train list's image_root (absolute when outside it); an image
    listed twice with two labels is refused."""
    root = os.path.abspath(config["DataLoader"]["Train"]["dataset"]["image_root"] or ".")
    class_num = require_class_num(DataSection.of(config, "Train"))
    label_of, where = {}, {}
    for mode in modes:
        ds = config["DataLoader"][mode]["dataset"]
        if not ds["cls_label_path"]:
            raise DataError(f"DataLoader.{mode}.dataset.cls_label_path is empty: nothing to pool for the folds")
        for path, label in read_list_file(ds["cls_label_path"], ds["image_root"], class_num):
            path = os.path.abspath(path)
            if label_of.setdefault(path, label) != label:
                raise DataError(
                    f"{ds['cls_label_path']}: {path} has label {label} here and {label_of[path]} in "
                    f"{where[path]}; an image belongs to one class"
                )
            where.setdefault(path, ds["cls_label_path"])
    entries = sorted((_written(p, root), label) for p, label in label_of.items())
    return (
        config["DataLoader"]["Train"]["dataset"]["image_root"],
        [p for p, _ in entries],
        np.asarray([label for _, label in entries]),
    )


def _written(path: str, root: str) -> str:
    """``path`` as a list line names it: relative to ``root`` (``/`` separated) when inside it."""
    return Path(path).relative_to(root).as_posix() if os.path.commonpath([root, path]) == root else path


def assign_folds(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold index per image: StratifiedKFold when every image is its own group (exact class
    ratios), else StratifiedGroupKFold (groups whole, ratios as close as group sizes allow)."""
    n_groups = len(np.unique(groups))
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if n_groups < folds:
        raise DataError(
            f"{n_groups} group(s) of images (patients by --group-regex, or identical copies) cannot be "
            f"dealt into {folds} folds that keep groups whole; use --folds {max(2, n_groups)} or fewer"
        )
    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    if smallest < folds:
        log.warning("a class has only %d image(s) for %d folds: some folds will hold none of it", smallest, folds)
    x = np.zeros(len(labels))
    if n_groups == len(labels):
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, labels)
    else:
        splits = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, labels, groups)
    fold = np.empty(len(labels), dtype=int)
    for k, (_, held) in enumerate(splits):
        fold[held] = k
    return fold


def make_folds(
    config: dict,
    folds: int,
    seed: int = 42,
    group_regex: str | None = None,
    near_duplicates: int | None = None,
    include_test: bool = False,
) -> FoldPlan:
    """Pool the config's lists (Train + Eval, + Test with ``include_test``) and deal them into folds.

    Without ``include_test`` the Test list stays held out; images it shares (by decoded pixels)
    with the pool are logged, since every fold's model would have trained on them."""
    modes = ("Train", "Eval", "Test") if include_test else ("Train", "Eval")
    image_root, paths, labels = pooled_samples(config, modes)
    manifest = manifest_groups(image_root, paths)
    groups, copies = image_groups(
        image_root, paths, labels, group_regex, near_duplicates, [] if manifest is None else [manifest]
    )
    test = config["DataLoader"]["Test"]["dataset"]
    if not include_test and test["cls_label_path"]:
        held_out = [
            p
            for p, _ in read_list_file(
                test["cls_label_path"], test["image_root"], require_class_num(DataSection.of(config, "Test"))
            )
        ]
        warn_duplicates(cross_split_duplicates({"cv": [Path(image_root) / p for p in paths], "test": held_out}))
    return FoldPlan(image_root, paths, labels, assign_folds(labels, groups, folds, seed), copies)


def write_fold_lists(plan: FoldPlan, lists_dir: Path, class_names: list[str]) -> list[Path]:
    """Write ``lists_dir/fold_<k>/{train,val}_list.txt`` and label_list.txt; return the fold folders.

    A folder written before (an interrupted cross-validation) must hold the same lists: other
    lists would mix two different fold plans in one result."""
    out = []
    for k in range(plan.folds):
        folder = Path(lists_dir) / f"fold_{k + 1}"
        for name, text in plan.lists(k).items():
            path = folder / name
            if path.is_file() and path.read_text(encoding="utf-8") != text:
                raise DataError(
                    f"{path} differs from the fold now made (other images, --folds, --seed, --group-regex, "
                    f"--near-duplicates or --include-test than when this folder was begun): rerun with those, "
                    f"or cross-validate into a new folder (-o Global.output_dir=NEW)"
                )
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        write_label_list(folder / "label_list.txt", class_names)
        out.append(folder)
    return out
