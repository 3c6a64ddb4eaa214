"""Split a study's data as the paper did (stratified ratios, e.g. 6:2:2), optionally a small
per-class subset (--quick), and build a source task that cannot see the target's held-out images.

Images are compared by decoded pixels, as the split tool does: identical copies stay on one side
of a split, and a source task drops copies of the target's held-out images."""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paddle_dx.data.duplicates import image_fingerprints, merge_groups, near_duplicate_pairs
from paddle_dx.data.list_file import write_label_list
from paddle_dx.data.split import SPLIT_NAMES, collect_images, image_groups, manifest_groups, split_indices
from paddle_dx.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class SplitInfo:
    image_root: str
    lists_dir: str
    folders: list[str]
    counts: dict[str, dict[str, int]]  # split -> folder -> images
    excluded: int = 0  # source images dropped because the target holds them out
    grouping: list[str] = field(default_factory=list)  # what was kept on one side, for the report


def _subset(labels, per_class, seed):
    """Indices of at most ``per_class`` images of each class, drawn with ``seed``, sorted."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep += list(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.asarray(keep, dtype=int))


def _grouping(group_regex, manifest, near_duplicates):
    """How a split kept related images together, in words (the report's Setting section)."""
    out = ["identical decoded pixels"]
    if near_duplicates is not None:
        out.append(f"near-duplicates (pHash within {near_duplicates} bits)")
    if manifest is not None:
        out.append("the `group_id` of the data's MANIFEST.csv")
    if group_regex:
        out.append(f"patients (file-name regex `{group_regex}`)")
    return out


def _write(out_dir, paths, labels, folders, splits, image_root, excluded=0, grouping=()):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLIT_NAMES:
        idx = splits.get(split, [])
        (out / f"{split}_list.txt").write_text("".join(f"{paths[i]} {labels[i]}\n" for i in idx), encoding="utf-8")
        counts[split] = {name: int(sum(labels[i] == c for i in idx)) for c, name in enumerate(folders)}
    write_label_list(out / "label_list.txt", folders)
    return SplitInfo(str(image_root), str(out), list(folders), counts, excluded, list(grouping))


def split_study_data(
    data_dir: Path | str,
    folders: Sequence[str],
    ratios: Sequence[float],
    seed: int,
    out_dir: Path | str,
    per_class: int | None = None,
    group_regex: str | None = None,
    near_duplicates: int | None = None,
) -> SplitInfo:
    """Stratified train/val/test lists of ``data_dir/<folder>/*`` in ``out_dir``. Kept on one
    side: identical images, near-duplicates (pHash within ``near_duplicates`` bits, when given),
    the groups of the data's MANIFEST.csv ``group_id`` column (when it has one) and patients
    (when ``group_regex`` names them)."""
    paths, labels, _ = collect_images(data_dir, folders)
    chosen = _subset(labels, per_class, seed) if per_class else np.arange(len(labels))
    paths, labels = [paths[i] for i in chosen], labels[chosen]
    manifest = manifest_groups(data_dir, paths)
    groups, _ = image_groups(
        data_dir, paths, labels, group_regex, near_duplicates, [] if manifest is None else [manifest]
    )
    return _write(
        out_dir,
        paths,
        labels,
        folders,
        split_indices(labels, ratios, seed, groups),
        data_dir,
        grouping=_grouping(group_regex, manifest, near_duplicates),
    )


@dataclass
class HeldOut:
    """What a source task must not train on: the target's validation and test images, by pixel
    hash, pHash bits (for near-duplicates) and MANIFEST.csv group (augmentations of one tile)."""

    hashes: set
    bits: np.ndarray | None = None
    groups: set = field(default_factory=set)
    near_duplicates: int | None = None


def held_out_images(
    split: SplitInfo, near_duplicates: int | None = None, lists: Iterable[str] = ("val", "test")
) -> HeldOut:
    """The target's images of ``lists`` (default: validation and test) as a HeldOut; a study's
    source task is kept off every target image (``lists=SPLIT_NAMES``, see ``target_images``)."""
    root = Path(split.image_root)
    rel = [
        line.rsplit(maxsplit=1)[0]
        for name in lists
        for line in (Path(split.lists_dir) / f"{name}_list.txt").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    hashes, bits, _ = image_fingerprints([root / p for p in rel], near=near_duplicates is not None)
    groups = manifest_groups(root, rel)
    return HeldOut(set(hashes), bits, set() if groups is None else set(groups.tolist()), near_duplicates)


def target_images(split: SplitInfo, near_duplicates: int | None = None) -> HeldOut:
    """Every target image (train, val and test) as a HeldOut: source pretraining counts as its
    own row only when the source images are disjoint from all of them by decoded content."""
    return held_out_images(split, near_duplicates, SPLIT_NAMES)


def _held_out_mask(held, source_dir, paths):
    """True for each source image that is (or is a near copy or group sibling of) a held-out image."""
    near = held.near_duplicates is not None and held.bits is not None and len(held.bits)
    hashes, bits, readable = image_fingerprints([Path(source_dir) / p for p in paths], near=bool(near))
    mask = np.asarray([h in held.hashes for h in hashes], dtype=bool)
    if near:
        both = np.concatenate([held.bits, bits])
        ok = np.concatenate([np.ones(len(held.bits), bool), readable])
        for i, j in near_duplicate_pairs(both, held.near_duplicates, ok):
            if i < len(held.bits) <= j:
                mask[j - len(held.bits)] = True
    groups = manifest_groups(source_dir, paths)
    if groups is not None and held.groups:
        mask |= np.isin(groups, sorted(held.groups))
    return mask, hashes, groups


def split_source_data(
    source_dir: Path | str, held: HeldOut, seed: int, out_dir: Path | str, per_class: int | None = None
) -> SplitInfo:
    """Every class folder of ``source_dir`` as a pretraining task, split 8:2 train/val, without
    the images of ``held`` (a HeldOut: the target's val/test images, their near copies and their
    MANIFEST.csv group siblings)."""
    paths, labels, folders = collect_images(source_dir)
    mask, hashes, groups = _held_out_mask(held, source_dir, paths)
    keep = np.flatnonzero(~mask)
    excluded = len(paths) - len(keep)
    if excluded:
        log.info(
            "source task: %d image(s) left out because the target holds them (or copies) out for val/test", excluded
        )
    paths, labels, hashes = [paths[i] for i in keep], labels[keep], [hashes[i] for i in keep]
    groups = None if groups is None else groups[keep]
    if len(np.unique(labels)) < 2:
        raise DataError(f"--source {source_dir}: fewer than 2 classes left after removing the target's held-out images")
    chosen = _subset(labels, per_class, seed) if per_class else np.arange(len(labels))
    paths, labels, hashes = [paths[i] for i in chosen], labels[chosen], [hashes[i] for i in chosen]
    keys = [hashes] + ([] if groups is None else [groups[chosen]])
    splits = split_indices(labels, (8, 2, 0), seed, merge_groups(len(paths), keys))
    return _write(out_dir, paths, labels, folders, splits, source_dir, excluded, _grouping(None, groups, None))


def train_subset(split: SplitInfo, size: int, seed: int) -> Path:
    """Write ``train_list_<size>.txt`` beside the split's lists: ``size`` training images drawn
    stratified by class with ``seed`` (the lung-nodule paper's accuracy-vs-data-size runs); smaller
    subsets are nested in larger ones, so a curve adds data rather than redrawing it."""
    lists = Path(split.lists_dir)
    lines = [l for l in (lists / "train_list.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    if not 0 < size <= len(lines):
        raise DataError(f"training-set size {size}: the training list has {len(lines)} images")
    labels = np.asarray([int(l.rsplit(maxsplit=1)[1]) for l in lines])
    order = np.random.default_rng(seed).permutation(len(lines))
    # interleave classes in proportion, so every prefix of `order` is (nearly) stratified; each
    # class's first member ranks 0, so any size >= the number of classes holds every class
    rank = np.empty(len(lines))
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members)) / len(members)
    chosen = sorted(sorted(range(len(lines)), key=lambda i: (rank[i], labels[i]))[:size])
    path = lists / f"train_list_{size}.txt"
    path.write_text("".join(lines[i] + "\n" for i in chosen), encoding="utf-8")
    return path
