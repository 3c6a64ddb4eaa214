"""PaddleClas list files (``relative/path label`` per line) and label lists (``id name``)."""

import logging
import os
import posixpath
from pathlib import Path

from paddle_dx.errors import DataError, shown_path
from paddle_dx.utils.files import why_not_a_file

log = logging.getLogger(__name__)


def read_text_lines(path: Path | str, what: str) -> list[str]:
    """The lines of the UTF-8 text file ``path`` (a BOM is dropped), or one DataError naming it:
    not found, a folder or FIFO, binary, or another encoding (a list saved as Latin-1 would
    otherwise end in a UnicodeDecodeError traceback, or in names with the wrong letters)."""
    path = Path(path)
    problem = why_not_a_file(path)
    if problem == "file not found":
        raise DataError(f"{what} not found: {shown_path(path)}")
    if problem:
        raise DataError(f"{what} {shown_path(path)} {problem if problem.startswith('is ') else f'({problem})'}")
    data = path.read_bytes()
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise DataError(f"{path}:{line}: a NUL byte: this {what} is a binary file, not text")
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the {what} as UTF-8"
        ) from None


def read_label_list(path: str | Path) -> list[str]:
    """Return class names ordered by id from a ``label_list.txt`` (``id name`` per line)."""
    path = Path(path)
    names = {}
    for lineno, line in enumerate(read_text_lines(path, "label list"), 1):
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


def write_label_list(path: str | Path, names: list[str]) -> None:
    Path(path).write_text("".join(f"{i} {n}\n" for i, n in enumerate(names)), encoding="utf-8")


def read_list_file(path: str | Path, image_root: str, class_num: int | None) -> list[tuple[str, int]]:
    """Parse a list file into ``[(absolute path, label), ...]``.

    Stops with one message listing every problem (missing files, bad labels, malformed lines)
    so a user fixes the file once, not once per run. Duplicate lines are dropped with a warning.
    Windows line endings and paths containing spaces are accepted. Paths are compared after
    normalisation to absolute paths, so ``./a/x.png``, ``a//x.png`` and ``/data/images/a/x.png``
    (with image_root /data/images) are the same image, not two samples.
    """
    path, root = Path(path), Path(image_root)
    samples, problems, first_label = [], [], {}
    for lineno, raw in enumerate(read_text_lines(path, "list file"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            problems.append(f"line {lineno}: expected `path label`, got {shown_path(repr(line))}")
            continue
        written, label_text = parts
        rel = posixpath.normpath(written)
        key = os.path.normpath(os.path.join(os.path.abspath(root), rel))  # a/x.png and /abs/root/a/x.png: one image
        try:
            label = int(label_text)
        except ValueError:
            problems.append(f"line {lineno}: label {shown_path(repr(label_text))} is not an integer")
            continue
        if not 0 <= label < class_num:
            problems.append(
                f"line {lineno}: label {label} is out of range 0..{class_num - 1} (Arch.class_num={class_num})"
            )
            continue
        if key in first_label:
            earlier, first_line, first_written = first_label[key]
            where = f"line {first_line}" + (
                "" if first_written in (written, rel) else f" as {shown_path(first_written)}"
            )
            if earlier == label:
                log.warning(
                    "%s:%d: duplicate line %s ignored (same image as %s)", path, lineno, shown_path(repr(line)), where
                )
            else:
                same = "" if written == rel else f" (as {shown_path(written)})"
                problems.append(
                    f"line {lineno}: {shown_path(rel)} is listed again{same} with label {label} "
                    f"(label {earlier} earlier, {where})"
                )
            continue
        first_label[key] = (label, lineno, written)
        full = root / rel
        problem = why_not_a_file(full)
        if problem:
            what = "image not found" if problem == "file not found" else f"image {problem}"
            problems.append(f"line {lineno}: {what}: {shown_path(full)}")
            continue
        samples.append((str(full), label))
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    if not samples:
        raise DataError(f"{path}: the list is empty (no `path label` lines)")
    return samples


def outside_root(samples: list[tuple[str, int]], image_root: str) -> list[str]:
    """Sample paths that leave ``image_root`` (``../`` or absolute list entries), in list order.

    They are allowed (a shared folder of controls, say) but worth a line in the run's record:
    a copied dataset folder would silently lose them.
    """
    root = os.path.normpath(os.path.abspath(image_root))
    return [p for p, _ in samples if os.path.commonpath([root, os.path.normpath(os.path.abspath(p))]) != root]
