"""Split a study's data as the paper did (stratified ratios, e.g. 6:2:2), optionally a small
per-class subset (--quick), and build a source task that cannot see the target's held-out images.

Images are compared by decoded pixels, as the split tool does: identical copies stay on one side
of a split, and a source task drops copies of the target's held-out images."""
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from paddle_dx.data.duplicates import image_fingerprints, merge_groups
from paddle_dx.data.list_file import write_label_list
from paddle_dx.data.split import SPLIT_NAMES, collect_images, image_groups, split_indices
from paddle_dx.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class SplitInfo:
    image_root: str
    lists_dir: str
    folders: List[str]
    counts: Dict[str, Dict[str, int]]  # split -> folder -> images
    excluded: int = 0                  # source images dropped because the target holds them out


def _subset(labels, per_class, seed):
    """Indices of at most ``per_class`` images of each class, drawn with ``seed``, sorted."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep += list(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.asarray(keep, dtype=int))


def _write(out_dir, paths, labels, folders, splits, image_root, excluded=0):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLIT_NAMES:
        idx = splits.get(split, [])
        (out / f"{split}_list.txt").write_text("".join(f"{paths[i]} {labels[i]}\n" for i in idx), encoding="utf-8")
        counts[split] = {name: int(sum(labels[i] == c for i in idx)) for c, name in enumerate(folders)}
    write_label_list(out / "label_list.txt", folders)
    return SplitInfo(str(image_root), str(out), list(folders), counts, excluded)


def split_study_data(data_dir, folders, ratios, seed, out_dir, per_class=None, group_regex=None):
    """Stratified train/val/test lists of ``data_dir/<folder>/*`` in ``out_dir`` (patients kept
    whole when ``group_regex`` names them, identical images kept on one side)."""
    paths, labels, _ = collect_images(data_dir, folders)
    chosen = _subset(labels, per_class, seed) if per_class else np.arange(len(labels))
    paths, labels = [paths[i] for i in chosen], labels[chosen]
    groups, _ = image_groups(data_dir, paths, labels, group_regex)
    return _write(out_dir, paths, labels, folders, split_indices(labels, ratios, seed, groups), data_dir)


def held_out_hashes(split):
    """Pixel hashes of the target's validation and test images (a source task must not train on them)."""
    root = Path(split.image_root)
    files = [root / line.rsplit(maxsplit=1)[0] for name in ("val", "test")
             for line in (Path(split.lists_dir) / f"{name}_list.txt").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    return set(image_fingerprints(files)[0])


def split_source_data(source_dir, exclude, seed, out_dir, per_class=None):
    """Every class folder of ``source_dir`` as a pretraining task, split 8:2 train/val, with
    images whose content is in ``exclude`` (the target's val/test images) removed."""
    paths, labels, folders = collect_images(source_dir)
    hashes = image_fingerprints([Path(source_dir) / p for p in paths])[0]
    keep = np.asarray([i for i, h in enumerate(hashes) if h not in exclude], dtype=int)
    excluded = len(paths) - len(keep)
    if excluded:
        log.info("source task: %d image(s) left out because the target holds them out for val/test", excluded)
    paths, labels, hashes = [paths[i] for i in keep], labels[keep], [hashes[i] for i in keep]
    if len(np.unique(labels)) < 2:
        raise DataError(f"--source {source_dir}: fewer than 2 classes left after removing the target's held-out images")
    chosen = _subset(labels, per_class, seed) if per_class else np.arange(len(labels))
    paths, labels, hashes = [paths[i] for i in chosen], labels[chosen], [hashes[i] for i in chosen]
    splits = split_indices(labels, (8, 2, 0), seed, merge_groups(len(paths), [hashes]))
    return _write(out_dir, paths, labels, folders, splits, source_dir, excluded)


def train_subset(split, size, seed):
    """Write ``train_list_<size>.txt`` beside the split's lists: ``size`` training images drawn
    stratified by class with ``seed`` (the lung-nodule paper's accuracy-vs-data-size runs); smaller
    subsets are nested in larger ones, so a curve adds data rather than redrawing it."""
    lists = Path(split.lists_dir)
    lines = [l for l in (lists / "train_list.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    if not 0 < size <= len(lines):
        raise DataError(f"training-set size {size}: the training list has {len(lines)} images")
    labels = np.asarray([int(l.rsplit(maxsplit=1)[1]) for l in lines])
    order = np.random.default_rng(seed).permutation(len(lines))
    # interleave classes in proportion, so every prefix of `order` is (nearly) stratified
    rank = np.empty(len(lines))
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = (np.arange(len(members)) + 0.5) / len(members)
    chosen = sorted(sorted(range(len(lines)), key=lambda i: (rank[i], labels[i]))[:size])
    path = lists / f"train_list_{size}.txt"
    path.write_text("".join(lines[i] + "\n" for i in chosen), encoding="utf-8")
    return path
