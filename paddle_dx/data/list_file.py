"""PaddleClas list files (``relative/path label`` per line) and label lists (``id name``)."""

import logging
import os
import posixpath
from pathlib import Path

from paddle_dx.errors import DataError

log = logging.getLogger(__name__)


def read_label_list(path):
    """Return class names ordered by id from a ``label_list.txt`` (``id name`` per line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label list not found: {path}")
    names = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].lstrip("-").isdigit():
            raise DataError(f"{path}:{lineno}: expected `id name`, got {line!r}")
        names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{path}: label ids must be 0..{len(names) - 1} without gaps, got {sorted(names)}")
    return [names[i] for i in range(len(names))]


def write_label_list(path, names):
    Path(path).write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)), encoding="utf-8")


def read_list_file(path, image_root, class_num):
    """Parse a list file into ``[(absolute path, label), ...]``.

    Stops with one message listing every problem (missing files, bad labels, malformed lines)
    so a user fixes the file once, not once per run. Duplicate lines are dropped with a warning.
    Windows line endings and paths containing spaces are accepted. Paths are compared after
    normalisation, so ``./a/x.png`` and ``a//x.png`` are the same image, not two samples.
    """
    path, root = Path(path), Path(image_root)
    if not path.is_file():
        raise DataError(f"list file not found: {path}")
    samples, problems, first_label = [], [], {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            problems.append(f"line {lineno}: expected `path label`, got {line!r}")
            continue
        written, label_text = parts
        rel = posixpath.normpath(written)
        try:
            label = int(label_text)
        except ValueError:
            problems.append(f"line {lineno}: label {label_text!r} is not an integer")
            continue
        if not 0 <= label < class_num:
            problems.append(
                f"line {lineno}: label {label} is out of range 0..{class_num - 1} (Arch.class_num={class_num})"
            )
            continue
        if first_label.get(rel) == label:
            log.warning("%s:%d: duplicate line %r ignored (same image as an earlier line)", path, lineno, line)
            continue
        if rel in first_label:
            same = "" if written == rel else f" (as {written})"
            problems.append(
                f"line {lineno}: {rel} is listed again{same} with label {label} (label {first_label[rel]} earlier)"
            )
            continue
        first_label[rel] = label
        full = root / rel
        if not full.is_file():
            problems.append(f"line {lineno}: image not found: {full}")
            continue
        samples.append((str(full), label))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    if not samples:
        raise DataError(f"{path}: the list is empty (no `path label` lines)")
    return samples


def outside_root(samples, image_root):
    """Sample paths that leave ``image_root`` (``../`` or absolute list entries), in list order.

    They are allowed (a shared folder of controls, say) but worth a line in the run's record:
    a copied dataset folder would silently lose them.
    """
    root = os.path.normpath(os.path.abspath(image_root))
    return [p for p, _ in samples if os.path.commonpath([root, os.path.normpath(os.path.abspath(p))]) != root]
