"""What tools/infer.py does: predict many files, skip unreadable ones, write a CSV."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from paddle_dx.data.image_header import REQUEST_PIXELS
from paddle_dx.inference.inputs import read_batches
from paddle_dx.utils.files import atomic_path

if TYPE_CHECKING:
    from paddle_dx.inference.predictor import Predictor


@dataclass
class InferenceResult:
    rows: list = field(default_factory=list)  # Predictor.describe() dicts, input order
    skipped: list = field(default_factory=list)  # (path, reason)


def predict_files(
    predictor: Predictor,
    paths: Iterable[Path | str],
    batch_size: int = 8,
    on_skip: Callable[[Path | str, str], object] | None = None,
    max_batch_pixels: int = REQUEST_PIXELS,
) -> InferenceResult:
    """Predict ``paths`` batch by batch; an unreadable file is skipped (``on_skip(path, reason)``).
    A batch holds at most ``max_batch_pixels`` decoded pixels (see ``read_batches``)."""
    result = InferenceResult()

    def skip(path, reason):
        result.skipped.append((path, reason))
        if on_skip:
            on_skip(path, reason)

    for good, images in read_batches(paths, batch_size, skip, max_batch_pixels):
        for path, probs in zip(good, predictor.predict_arrays(images, batch_size)):
            result.rows.append(predictor.describe(probs, path))
    return result


def write_csv(rows: Iterable[dict], class_names: Sequence[str], stream: TextIO) -> None:
    """Header ``path, predicted_class, <one column per class>``; probabilities to 6 decimals."""
    writer = csv.writer(stream)
    writer.writerow(["path", "predicted_class", *class_names])
    for row in rows:
        writer.writerow([row["path"], row["class_name"], *(f"{row['probs'][n]:.6f}" for n in class_names)])


def save_csv(rows: Iterable[dict], class_names: Sequence[str], output: Path | str) -> None:
    with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        write_csv(rows, class_names, fh)


def run_inference_job(
    predictor: Predictor,
    paths: Iterable[Path | str],
    batch_size: int = 8,
    output: Path | str | None = None,
    report: Callable[[str], object] | None = None,
    max_batch_pixels: int = REQUEST_PIXELS,
) -> InferenceResult:
    """Predict, write the CSV (to ``output`` or stdout), report skips and a final count line."""
    report = report or (lambda text: print(text, file=sys.stderr))
    result = predict_files(
        predictor,
        paths,
        batch_size,
        on_skip=lambda p, why: report(f"skipped {p}: {why}"),
        max_batch_pixels=max_batch_pixels,
    )
    if output:
        save_csv(result.rows, predictor.class_names, output)
    else:
        write_csv(result.rows, predictor.class_names, sys.stdout)
    where = f", wrote {output}" if output else ""
    report(f"predicted {len(result.rows)} image(s), skipped {len(result.skipped)} unreadable{where}")
    return result
