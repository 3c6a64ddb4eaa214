"""What ``tools/infer.py --input PATH`` means: one image, a folder (recursive) or a list file."""

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from paddle_dx.data.image_header import REQUEST_PIXELS, PixelBudget, declared_size
from paddle_dx.data.io import image_extensions, read_image
from paddle_dx.data.list_file import read_text_lines
from paddle_dx.errors import DataError, ImageReadError, shown_path
from paddle_dx.utils.files import why_not_a_file


def is_image_file(path: Path | str) -> bool:
    return Path(path).suffix.lower() in image_extensions()


def read_path_list(list_file: Path | str, image_root: Path | str | None = None) -> list[str]:
    """Paths from ``path [label]`` lines; relative paths are under ``image_root`` (default: the
    list file's folder). Missing files are kept: prediction reports them as skipped."""
    list_file = Path(list_file)
    root = Path(image_root) if image_root else list_file.parent
    paths = []
    for line in read_text_lines(list_file, "list file"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        rel = parts[0] if len(parts) == 2 and parts[1].lstrip("-").isdigit() else line
        paths.append(str(root / rel))
    if not paths:
        raise DataError(f"{list_file}: the list is empty (expected `path [label]` lines)")
    return paths


def collect_inputs(path: Path | str, image_root: Path | str | None = None) -> list[str]:
    """Sorted image paths named by ``path``; an error if there is nothing to predict."""
    path = Path(path)
    problem = why_not_a_file(path)
    if problem == "is a folder, not a file":
        found = sorted(str(p) for p in path.rglob("*") if p.is_file() and is_image_file(p))
        if not found:
            raise DataError(f"{path}: no images found (extensions {', '.join(image_extensions())})")
        return found
    if problem == "file not found":
        raise DataError(f"input not found: {shown_path(path)}")
    if problem:
        raise DataError(f"input {shown_path(path)}: {problem}")
    if is_image_file(path):
        return [str(path)]
    return read_path_list(path, image_root)


def read_batches(
    paths: Iterable[Path | str],
    batch_size: int,
    on_skip: Callable[[Path | str, str], object] | None = None,
    max_batch_pixels: int = REQUEST_PIXELS,
) -> Iterator[tuple[list[Path | str], list[np.ndarray]]]:
    """Yield ``(paths, RGB arrays)`` per batch of readable images (empty batches are not yielded);
    each unreadable file goes to ``on_skip(path, reason)`` instead of stopping the run.

    A batch also closes early when the next file's declared pixels would pass ``max_batch_pixels``
    (read from its header, before decoding), so the decoded images held at once stay bounded; a
    single file above it on its own is skipped."""
    good, images, budget = [], [], PixelBudget(max_batch_pixels)
    for path in paths:
        try:
            size = declared_size(path)
            if good and (len(good) == batch_size or not budget.fits(size)):
                yield good, images
                good, images, budget = [], [], PixelBudget(max_batch_pixels)
            budget.charge(path, size)
            images.append(read_image(path))
            good.append(path)
        except ImageReadError as exc:
            if on_skip:
                on_skip(path, exc.problem)
    if images:
        yield good, images
