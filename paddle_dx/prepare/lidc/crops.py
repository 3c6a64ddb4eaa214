"""LIDC-IDRI -> a class-per-folder crop dataset (what ``tools/prepare_lidc.py`` runs).

Layout written under ``out``::

    nodule_ge3mm/LIDC-IDRI-0002_<series>_n001.png   # 8-bit grey, lossless PNG (or .npy)
    nodule_lt3mm/...
    non_nodule/...
    crops.csv                                       # one row per crop, see CSV_COLUMNS

Crops are ``crop`` x ``crop`` pixels of the slice in HU, centred on the finding (crop/2 each
side, padded with the slice's lowest value at borders), windowed to 8 bit. File names start
with the case ID, so ``tools/split_dataset.py --group-regex '^(LIDC-IDRI-\\d+)'`` keeps a
patient on one side of a split.
"""

import csv
import logging
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from paddle_dx.data.ct_window import WINDOWS, apply_window, resolve_window
from paddle_dx.data.dicom import is_inverted, load_slice
from paddle_dx.errors import ConfigError, DataError
from paddle_dx.prepare.lidc.readings import CLASSES
from paddle_dx.prepare.lidc.series import cluster_marks, find_readings, find_series, or_skip, series_marks
from paddle_dx.utils.files import umask_mode

log = logging.getLogger(__name__)
CSV_COLUMNS = (
    "file",
    "class",
    "patient_id",
    "series_uid",
    "sop_uid",
    "z",
    "x",
    "y",
    "readers",
    "reader",
    "nodule",
    "malignancy",
    "window",
)
FORMATS = ("png", "npy")


MAX_CROP = 2048  # pixels a side: four CT slices across; a larger crop is padding, and memory


def cut_crop(hu: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """``size`` x ``size`` crop of ``hu`` with (x, y) at index size // 2, padded with hu.min().
    Only the crop is allocated (padding the whole slice by size // 2 took size**2 * 4 bytes
    more: 37 GiB at --crop 100000)."""
    half = size // 2
    x, y = int(round(x)), int(round(y))
    out = np.full((size, size), hu.min(), dtype=hu.dtype)
    top, left = y - half, x - half  # rows y - half .. y + half - 1 of hu
    r0, r1 = max(top, 0), min(top + size, hu.shape[0])
    c0, c1 = max(left, 0), min(left + size, hu.shape[1])
    if r0 < r1 and c0 < c1:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = hu[r0:r1, c0:c1]
    return out


def _write(path, grey, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        np.save(path, grey)
    elif not cv2.imwrite(str(path), grey):
        raise DataError(f"{path}: could not write PNG")


def _crop_items(findings, per_reader, min_readers):
    """(finding number, finding, reader or None, slice index, x, y) for each crop to cut."""
    for number, finding in enumerate(findings, 1):
        if finding.readers < min_readers:
            continue
        if per_reader:
            for mark in finding.marks:
                yield number, finding, mark, mark.slice_index, mark.x, mark.y
        else:
            yield (number, finding, None, *finding.centre())


def _series_rows(series, readings, out, options):
    """Cut and write the crops of one series; return their CSV rows."""
    findings = cluster_marks(
        series_marks(series, readings, options["skip_bad"]), series.spacing_mm, options["cluster_mm"]
    )
    by_slice = defaultdict(list)
    for item in _crop_items(findings, options["per_reader"], options["min_readers"]):
        by_slice[item[3]].append(item)
    rows = []
    for index in sorted(by_slice):  # each slice decoded once
        loaded = or_skip(load_slice, options["skip_bad"], series.paths[index])
        if loaded is None:
            continue
        ds, hu = loaded
        for number, finding, mark, _, x, y in by_slice[index]:
            name = f"{series.patient_id}_{series.uid[-6:]}_n{number:03d}" + (f"_r{mark.reader}" if mark else "")
            rel = Path(finding.kind) / f"{name}.{options['format']}"
            grey = apply_window(cut_crop(hu, x, y, options["crop"]), *options["level_width"], invert=is_inverted(ds))
            _write(out / rel, grey, options["format"])
            malignancy = mark.malignancy if mark else finding.malignancy()
            rows.append(
                {
                    "file": rel.as_posix(),
                    "class": finding.kind,
                    "patient_id": series.patient_id,
                    "series_uid": series.uid,
                    "sop_uid": series.sop_uids[index],
                    "z": f"{series.z[index]:g}",
                    "x": int(round(x)),
                    "y": int(round(y)),
                    "readers": finding.readers,
                    "reader": mark.reader if mark else "",
                    "nodule": number,
                    "malignancy": "" if malignancy is None else f"{malignancy:g}",
                    "window": options["window"],
                }
            )
    return rows


@contextmanager
def _staging(out):
    """A hidden folder beside ``out`` that becomes ``out`` only when every crop is written: an
    error or Ctrl-C part-way leaves no partial dataset (which a split would take as complete)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        yield work
        os.chmod(work, umask_mode())
        if out.exists():
            out.rmdir()  # empty: checked at start
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_window(text: str) -> str | list[float]:
    """``--window``: ``'lung'`` | ``'mediastinum'`` | ``'bone'`` | ``'LEVEL,WIDTH'`` (HU) -> a name or
    [level, width], as :func:`~paddle_dx.data.ct_window.resolve_window` takes it."""
    if "," not in text:
        return text
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--window {text!r}: expected a name or LEVEL,WIDTH") from None


def prepare_lidc(
    lidc_root: Path | str,
    out: Path | str,
    crop: int = 64,
    window: str | Sequence[float] = "lung",
    min_readers: int = 1,
    fmt: str = "png",
    per_reader: bool = False,
    cluster_mm: float = 5.0,
    skip_bad: bool = False,
) -> dict:
    """Write the crop dataset; return a summary {crops: {class: n}, series, series_without_xml, csv}.

    ``window``: a name, [level, width], or the text of ``--window`` (see :func:`parse_window`)."""
    from tqdm import tqdm

    root, out = Path(lidc_root), Path(out)
    if not root.is_dir():
        raise DataError(f"--lidc-root {root} is not a folder")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; give a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise DataError(
            f"--out {out} is not empty; choose a new folder or delete it (crops of different settings must not mix)"
        )
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt!r} is not one of {list(FORMATS)}")
    if not 2 <= crop <= MAX_CROP:
        raise DataError(f"--crop {crop} is out of range: accepted 2..{MAX_CROP} pixels")
    if min_readers < 1:
        raise DataError(f"--min-readers must be >= 1, got {min_readers}")
    window = parse_window(window) if isinstance(window, str) else window
    options = {
        "crop": int(crop),
        "level_width": resolve_window(window, auto=WINDOWS["lung"], where="--window"),
        "window": window if isinstance(window, str) else "/".join(f"{v:g}" for v in window),
        "min_readers": min_readers,
        "format": fmt,
        "per_reader": per_reader,
        "cluster_mm": cluster_mm,
        "skip_bad": skip_bad,
    }
    series, readings = find_series(root, skip_bad), find_readings(root, skip_bad)
    matched = [s for s in series if s.uid in readings]
    unmatched = [s for s in series if s.uid not in readings]
    for s in unmatched:
        log.warning("series %s in %s has no LIDC XML (no <SeriesInstanceUid> names it); skipped", s.uid, s.folder)
    if not matched:
        raise DataError(
            f"{root}: none of the {len(series)} DICOM series has an LIDC XML naming its "
            f"SeriesInstanceUID ({len(readings)} LIDC XML file(s) found)"
        )
    with _staging(out) as work:
        rows = []
        for s in tqdm(matched, desc="cutting crops", unit="series"):
            rows += _series_rows(s, readings[s.uid], work, options)
        for kind in CLASSES:  # every class folder exists, even when empty
            (work / kind).mkdir(parents=True, exist_ok=True)
        with open(work / "crops.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    counts = Counter(r["class"] for r in rows)
    return {
        "crops": {c: counts.get(c, 0) for c in CLASSES},
        "series": len(matched),
        "series_without_xml": [s.uid for s in unmatched],
        "csv": str(out / "crops.csv"),
    }
