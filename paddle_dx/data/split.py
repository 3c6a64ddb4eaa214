"""Stratified (optionally grouped) train/val/test splits of a class-per-folder tree.

Splitting is delegated to scikit-learn; files are sorted first so the same seed gives the
same lists on any machine. Images with identical decoded pixels (and, on request,
near-identical ones) are kept on one side, because copies across splits inflate accuracy.
"""

import csv
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from paddle_dx.data.duplicates import image_fingerprints, merge_groups, multi_member_groups, near_duplicate_pairs
from paddle_dx.data.io import image_extensions
from paddle_dx.data.list_file import write_label_list
from paddle_dx.errors import DataError
from paddle_dx.utils.files import walk_files

log = logging.getLogger(__name__)
SPLIT_NAMES = ("train", "val", "test")


def collect_images(
    image_root: Path | str, classes: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, list[str]]:
    """Return (sorted relative paths, labels, class names) from ``image_root/<class>/**``.

    Empty (0-byte) files are left out with one warning naming them: an interrupted copy leaves
    them behind, and listed they would only fail later, at training start-up."""
    root = Path(image_root)
    if not root.is_dir():
        raise DataError(f"image root not found: {root}")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(classes) if classes else found
    missing = [c for c in names if c not in found]
    if missing:
        raise DataError(f"{root}: class folder(s) not found: {missing}; present: {found}")
    paths, labels, empty, owner = [], [], [], {}
    for label, name in enumerate(names):
        files = walk_files(root / name, image_extensions())
        _check_one_class(files, name, owner, root)
        empty += [p.relative_to(root).as_posix() for p in files if p.stat().st_size == 0]
        files = [p for p in files if p.stat().st_size > 0]
        if not files:
            raise DataError(f"{root / name}: class '{name}' has no images")
        paths += [p.relative_to(root).as_posix() for p in files]
        labels += [label] * len(files)
    if empty:
        log.warning(
            "%s: %d empty (0-byte) image file(s) left out of the lists: %s%s",
            root,
            len(empty),
            ", ".join(empty[:10]),
            " ..." if len(empty) > 10 else "",
        )
    return paths, np.asarray(labels), names


def _check_one_class(files, name, owner, root):
    """Refuse a file reached from two class folders (a link from one class into another): it
    would be listed under both labels. ``owner`` maps real paths to (class, path) seen so far."""
    for path in files:
        first = owner.setdefault(os.path.realpath(path), (name, path))
        if first[0] != name:
            raise DataError(
                f"{root}: {first[1].relative_to(root)} (class '{first[0]}') and {path.relative_to(root)} "
                f"(class '{name}') are the same file (a symbolic link between class folders?); "
                f"an image belongs to one class"
            )


def group_ids(paths: Iterable[Path | str], group_regex: str) -> np.ndarray:
    """Group key per path: the regex's first group (or whole match) on the file name."""
    pattern = re.compile(group_regex)
    keys = []
    for p in paths:
        m = pattern.search(Path(p).name)
        if m is None:
            raise DataError(f"--group-regex {group_regex!r} does not match file name {Path(p).name!r}")
        keys.append(m.group(1) if m.groups() else m.group(0))
    return np.asarray(keys)


MANIFEST_NAME = "MANIFEST.csv"
GROUP_COLUMN = "group_id"


def manifest_groups(image_root: Path | str, paths: Sequence[str]) -> np.ndarray | None:
    """Group key per path from ``<image_root>/MANIFEST.csv``'s ``group_id`` column (datasets that
    ship one, e.g. augmentations of one tile), or None when there is no such manifest or column.

    The manifest names files by ``class`` folder and ``file``; a listed image missing from it
    is an error, because an ungrouped image could land beside its siblings' copies."""
    manifest = Path(image_root) / MANIFEST_NAME
    if not manifest.is_file():
        return None
    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if GROUP_COLUMN not in (reader.fieldnames or []) or not {"class", "file"} <= set(reader.fieldnames):
            return None
        keys = {f"{row['class']}/{row['file']}": row[GROUP_COLUMN] for row in reader}
    missing = [p for p in paths if p not in keys]
    if missing:
        raise DataError(f"{manifest}: no {GROUP_COLUMN} for {len(missing)} listed image(s), e.g. {missing[0]!r}")
    return np.asarray([keys[p] for p in paths])


def image_groups(
    image_root: Path | str,
    paths: Sequence[str],
    labels: np.ndarray,
    group_regex: str | None = None,
    near_duplicates: int | None = None,
    extra_keys: Iterable[Sequence] = (),
) -> tuple[np.ndarray, list[list[str]]]:
    """Group id per image for the splitter, and the copies found ([[path, ...]] of 2+ images).

    Images with identical decoded pixels share a group; so do images whose pHashes differ in
    at most ``near_duplicates`` bits (when given); ``group_regex`` groups (patients) and
    ``extra_keys`` (arrays of group keys, e.g. manifest_groups) compose with these, so a
    patient's images and all their copies stay on one side.
    """
    root = Path(image_root)
    near = near_duplicates is not None
    hashes, bits, readable = image_fingerprints([root / p for p in paths], near=near)
    pairs = near_duplicate_pairs(bits, near_duplicates, readable) if near else ()
    copies = multi_member_groups(merge_groups(len(paths), [hashes], pairs))
    for idx in copies:
        if len(set(labels[idx].tolist())) > 1:
            log.warning(
                "the same (or a near-identical) image has different labels: %s", ", ".join(paths[i] for i in idx)
            )
    keys = [hashes] + ([group_ids(paths, group_regex)] if group_regex else []) + list(extra_keys)
    return merge_groups(len(paths), keys, pairs), [[paths[i] for i in idx] for idx in copies]


def _holdout(indices, labels, groups, fraction, seed):
    """Split ``indices`` into (rest, held out ~fraction), stratified, groups kept whole."""
    if fraction <= 0:
        return indices, indices[:0]
    if groups is None or len(np.unique(groups[indices])) == len(indices):  # no group of 2+: exact ratios
        rest, held = train_test_split(indices, test_size=fraction, stratify=labels[indices], random_state=seed)
        return np.sort(rest), np.sort(held)
    n_splits = max(2, int(round(1.0 / fraction)))
    n_groups = len(np.unique(groups[indices]))
    if n_groups < n_splits:
        raise DataError(
            f"{n_groups} group(s) of images (patients by --group-regex, or identical copies) cannot be "
            f"split into a held-out {fraction:.0%}: a split that keeps groups whole needs at least "
            f"{n_splits}; add patients (or, for a pipeline test only, split images one by one: "
            f"reproduce --ignore-groups / split without --group-regex)"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, held = next(splitter.split(indices, labels[indices], groups[indices]))
    return np.sort(indices[rest]), np.sort(indices[held])


def split_indices(
    labels: npt.ArrayLike, ratios: Sequence[float] = (6, 2, 2), seed: int = 42, groups: npt.ArrayLike | None = None
) -> dict[str, np.ndarray]:
    """Return {'train': idx, 'val': idx, 'test': idx} for the given ratios (any scale).

    With groups, scikit-learn's StratifiedGroupKFold is used, so fractions are approximated
    by 1/k folds (e.g. 0.2 -> 5 folds) and by the group sizes.
    """
    ratios = np.asarray(ratios, dtype=float)
    if ratios.shape != (3,) or (ratios < 0).any() or ratios[0] <= 0:
        raise DataError(f"--ratios needs three non-negative numbers with train > 0, got {list(ratios)}")
    frac = ratios / ratios.sum()
    labels = np.asarray(labels)
    everything = np.arange(len(labels))
    rest, test = _holdout(everything, labels, groups, frac[2], seed)
    val_fraction = frac[1] / (frac[0] + frac[1])
    train, val = _holdout(rest, labels, groups, val_fraction, seed + 1)
    return {"train": train, "val": val, "test": test}


def cross_split_duplicates(
    files_by_split: Mapping[str, Iterable[str]], hashes: Mapping[str, str] | None = None
) -> list[tuple[str, list[tuple[str, str]]]]:
    """Find identical image content in more than one split.

    ``hashes`` maps path -> content hash (the start-up scan's pixel hashes); paths missing from
    it are decoded and hashed here. Returns ``[(hash, [(split, path), ...]), ...]`` for each
    hash seen in 2+ splits.
    """
    hashes = hashes or {}
    where = defaultdict(list)
    for split, files in files_by_split.items():
        for path in files:
            digest = hashes.get(path) or image_fingerprints([path])[0][0]
            where[digest].append((split, str(path)))
    return [(h, places) for h, places in sorted(where.items()) if len({split for split, _ in places}) > 1]


def warn_duplicates(duplicates: Iterable[tuple[str, Sequence[tuple[str, str]]]]) -> None:
    """Log each cross-split duplicate with every file holding it."""
    for digest, places in duplicates:
        listing = ", ".join(f"{split}:{path}" for split, path in places)
        log.warning("same image content (sha256 %s...) in several splits: %s", digest[:12], listing)


def write_split(
    image_root: Path | str,
    out_dir: Path | str,
    ratios: Sequence[float] = (6, 2, 2),
    seed: int = 42,
    group_regex: str | None = None,
    classes: Sequence[str] | None = None,
    near_duplicates: int | None = None,
) -> tuple[dict[str, dict[str, int]], list[list[str]]]:
    """Write train/val/test list files and label_list.txt; return ({split: {class: count}},
    [[path, ...]] the groups of identical (or near-identical) images each kept on one side)."""
    paths, labels, names = collect_images(image_root, classes)
    manifest = manifest_groups(image_root, paths)
    if manifest is not None:
        log.info(
            "%s: keeping each %s of %s on one side (%d groups)",
            image_root,
            GROUP_COLUMN,
            MANIFEST_NAME,
            len(set(manifest.tolist())),
        )
    groups, copies = image_groups(
        image_root, paths, labels, group_regex, near_duplicates, [] if manifest is None else [manifest]
    )
    splits = split_indices(labels, ratios, seed, groups)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLIT_NAMES:
        idx = splits[split]
        (out / f"{split}_list.txt").write_text("".join(f"{paths[i]} {labels[i]}\n" for i in idx), encoding="utf-8")
        counts[split] = {names[c]: int((labels[idx] == c).sum()) for c in range(len(names))}
        for name, n in counts[split].items():
            if n == 0 and len(idx):
                log.warning("split '%s' has no images of class '%s'", split, name)
    write_label_list(out / "label_list.txt", names)
    return counts, copies
