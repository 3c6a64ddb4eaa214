"""The small text files published beside a report so anyone can recheck it without our runs:
every run's per-image test predictions and the sha256 of each listed image file (the split
lists themselves are already text). Paths are relative to the image root: no machine paths."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from paddle_dx.utils.hashing import file_sha256

if TYPE_CHECKING:
    from paddle_dx.studies.runner import RunResult
    from paddle_dx.studies.splits import SplitInfo


def _relative(path, image_root):
    rel = os.path.relpath(path, image_root)
    return Path(path).as_posix() if rel.startswith("..") else Path(rel).as_posix()


def write_predictions(
    path: Path | str, results: Iterable[RunResult], image_root: Path | str, class_names: list[str]
) -> Path:
    """predictions.csv: one row per (run, test image): run, seed, image, label, predicted, p_<class>."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["run", "seed", "image", "label", "predicted"] + [f"p_{c}" for c in class_names])
        for r in results:
            seed = r.config["Global"]["seed"]
            for p, y, row in zip(r.paths, r.labels, r.probs):
                writer.writerow(
                    [r.plan.name, seed, _relative(p, image_root), int(y), int(row.argmax())] + [f"{v:.6f}" for v in row]
                )
    return Path(path)


def write_image_hashes(path: Path | str, split: SplitInfo) -> Path:
    """``sha256  image`` lines (``sha256sum -c`` format, run from the image root) for every image
    of the split's train/val/test lists, in list order."""
    root, lists = Path(split.image_root), Path(split.lists_dir)
    lines = []
    for name in ("train", "val", "test"):
        listed = lists / f"{name}_list.txt"
        if not listed.is_file():
            continue
        for line in listed.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rel = line.rsplit(maxsplit=1)[0]
                lines.append(f"{file_sha256(root / rel)}  {rel}\n")
    Path(path).write_text("".join(lines), encoding="utf-8")
    return Path(path)
