"""Where the LIDC-IDRI marks are: CT series on disk, their XML, marks located on slices and
grouped into findings.

Works on the original layout (``LIDC-IDRI-XXXX/<study>/<series>/*.dcm + *.xml``) and on
flattened ones (``LIDC-IDRI-XXXX/*.dcm + 071.xml``): every ``.dcm`` under the root is grouped
by SeriesInstanceUID and every LIDC XML is matched to its series by the UID it names. ROIs
find their slice by SOP Instance UID, else by z (ImagePositionPatient[2]); slices are ordered
by z, never by file name. The patient is named by the LIDC case ID only (``LIDC-IDRI-0002``).
"""

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from paddle_dx.data.dicom import read_dataset
from paddle_dx.errors import DataError, ImageReadError
from paddle_dx.prepare.lidc.readings import CLASSES, Read, Reading, parse_lidc_xml
from paddle_dx.utils.files import walk_files

log = logging.getLogger(__name__)
CASE_ID = re.compile(r"^LIDC-IDRI-\d+$")


@dataclass
class Series:
    """One CT series: slice files sorted by z, and how to find a slice by SOP UID or z."""

    uid: str
    patient_id: str
    folder: Path
    paths: list[Path]
    z: np.ndarray
    sop_uids: list[str]
    spacing_mm: float  # in-plane pixel spacing (row direction)
    shape: tuple[int, int] | None = None  # (Rows, Columns) of the first slice, when its header has them

    def __post_init__(self):
        self._by_sop = {uid: i for i, uid in enumerate(self.sop_uids)}
        steps = np.diff(self.z)
        self.z_tolerance = 0.5 * float(np.median(steps[steps > 0])) if (steps > 0).any() else 0.01

    def slice_index(self, sop_uid: str | None, z: float | None) -> int | None:
        """Index of the slice an ROI names (SOP UID first, else nearest z within half a slice)."""
        if sop_uid in self._by_sop:
            return self._by_sop[sop_uid]
        if z is not None:
            nearest = int(np.argmin(np.abs(self.z - z)))
            if abs(self.z[nearest] - z) <= self.z_tolerance:
                return nearest
        return None


@dataclass
class Mark:
    """One reader's finding placed on the series: centre (pixels), slices it spans."""

    kind: str
    reader: int
    mark_id: str
    slice_index: int  # representative slice (largest outline for >= 3 mm nodules)
    first: int
    last: int
    x: float
    y: float
    radius_mm: float = 0.0
    malignancy: int | None = None


@dataclass
class Finding:
    """Marks of the same finding by different readers (one cluster)."""

    marks: list[Mark] = field(default_factory=list)

    @property
    def readers(self) -> int:
        return len(self.marks)

    @property
    def kind(self) -> str:
        return self.marks[0].kind

    def centre(self) -> tuple[int, float, float]:
        """(slice index, x, y): the mean of the members' centres, on the nearest slice."""
        return (
            int(round(np.mean([m.slice_index for m in self.marks]))),
            float(np.mean([m.x for m in self.marks])),
            float(np.mean([m.y for m in self.marks])),
        )

    def malignancy(self) -> float | None:
        ratings = [m.malignancy for m in self.marks if m.malignancy is not None]
        return float(np.mean(ratings)) if ratings else None


def case_id(folder: Path | str, root: Path | str, header_patient_id: object, series_uid: str) -> str:
    """The LIDC case ID from the folder names (or the header if it is one), else a pseudonym.

    Anything that is not an LIDC case ID might identify a person, so it is never used.
    """
    root = Path(root)
    for part in [root.name, *Path(folder).relative_to(root).parts]:
        if CASE_ID.match(part):
            return part
    if header_patient_id and CASE_ID.match(str(header_patient_id)):
        return str(header_patient_id)
    return "case-" + hashlib.sha1(series_uid.encode()).hexdigest()[:10]


def _slice_header(path):
    ds = read_dataset(path, pixels=False)
    position = ds.get("ImagePositionPatient")
    z = float(position[2]) if position is not None and len(position) == 3 else ds.get("SliceLocation")
    if z is None or "SeriesInstanceUID" not in ds or "SOPInstanceUID" not in ds:
        raise ImageReadError(
            path, "DICOM slice without ImagePositionPatient/SliceLocation, SeriesInstanceUID or SOPInstanceUID"
        )
    spacing = ds.get("PixelSpacing")
    try:
        shape = (int(ds.Rows), int(ds.Columns)) if "Rows" in ds and "Columns" in ds else None
    except (TypeError, ValueError):
        raise ImageReadError(path, "DICOM header with a malformed image size") from None
    return {
        "shape": shape,
        "series": str(ds.SeriesInstanceUID),
        "sop": str(ds.SOPInstanceUID),
        "z": float(z),
        "spacing": float(spacing[0]) if spacing else 1.0,
        "patient": ds.get("PatientID"),
    }


def or_skip(call: Callable[..., Any], skip_bad: bool, *args: Any) -> Any:
    """``call(*args)``; with ``skip_bad`` a DataError becomes a warning and None instead of stopping."""
    try:
        return call(*args)
    except DataError as exc:  # ImageReadError included
        if not skip_bad:
            raise
        log.warning("skipping: %s", exc)
        return None


def find_series(root: Path | str, skip_bad: bool = False) -> list[Series]:
    """All DICOM series under ``root`` (headers only), slices sorted by z."""
    from tqdm import tqdm

    files = walk_files(root, (".dcm",))
    if not files:
        raise DataError(f"{root}: no .dcm files found (expected LIDC-IDRI-XXXX/.../*.dcm)")
    groups = defaultdict(list)
    for path in tqdm(files, desc="reading DICOM headers", unit="file", leave=False):
        header = or_skip(_slice_header, skip_bad, path)
        if header is not None:
            groups[header["series"]].append((path, header))
    series = []
    for uid, items in sorted(groups.items()):
        items.sort(key=lambda item: (item[1]["z"], item[0].name))
        folder = items[0][0].parent
        first = items[0][1]
        series.append(
            Series(
                uid=uid,
                patient_id=case_id(folder, root, first["patient"], uid),
                folder=folder,
                paths=[p for p, _ in items],
                z=np.asarray([h["z"] for _, h in items]),
                sop_uids=[h["sop"] for _, h in items],
                spacing_mm=first["spacing"],
                shape=first["shape"],
            )
        )
    return series


def find_readings(root: Path | str, skip_bad: bool = False) -> dict[str, list[Reading]]:
    """{series UID: [Reading, ...]} for every LIDC XML under ``root``."""
    readings = defaultdict(list)
    for path in walk_files(root, (".xml",)):
        reading = or_skip(parse_lidc_xml, skip_bad, path)
        if reading is not None:
            readings[reading.series_uid].append(reading)
    return readings


def locate_read(read: Read, series: Series, xml_path: Path | str, reader: int) -> Mark:
    """Place one XML read on the series as a Mark; DataError if an ROI names no slice."""
    rois = [r for r in read.rois if r.inclusion] or read.rois
    slices = []
    for roi in rois:
        index = series.slice_index(roi.sop_uid, roi.z)
        if index is None:
            raise DataError(
                f"{xml_path}: reader {read.reader} {read.kind} {read.mark_id!r}: ROI names SOP UID "
                f"{roi.sop_uid} at z={roi.z} mm, which matches no slice of series {series.uid} "
                f"in {series.folder}"
            )
        slices.append(index)
        _check_inside(roi.points, series, f"{xml_path}: reader {read.reader} {read.kind} {read.mark_id!r}")
    areas = [cv2.contourArea(r.points) if len(r.points) > 2 else 0.0 for r in rois]
    best = int(np.argmax(areas))
    x, y = rois[best].points.mean(axis=0)
    return Mark(
        kind=read.kind,
        reader=reader,
        mark_id=read.mark_id,
        slice_index=slices[best],
        first=min(slices),
        last=max(slices),
        x=float(x),
        y=float(y),
        radius_mm=float(np.sqrt(areas[best] / np.pi)) * series.spacing_mm,
        malignancy=read.malignancy,
    )


def _check_inside(points, series, where):
    """An ROI point off the slice (or NaN) would cut a crop of padding around nothing."""
    rows, columns = series.shape or (np.inf, np.inf)
    x, y = points[:, 0], points[:, 1]
    inside = np.isfinite(points).all() and (x >= 0).all() and (y >= 0).all()
    if not inside or (x >= columns).any() or (y >= rows).any():
        size = f"the {columns} x {rows} slice" if series.shape else "the slice"
        raise DataError(
            f"{where}: ROI points x {float(x.min()):g}..{float(x.max()):g}, y {float(y.min()):g}..{float(y.max()):g} "
            f"lie outside {size} (Columns x Rows)"
        )


def series_marks(series: Series, readings: Iterable[Reading], skip_bad: bool = False) -> list[Mark]:
    """Marks of every read of every XML of ``series`` (readers renumbered across XML files)."""
    marks, offset = [], 0
    for reading in readings:
        for read in reading.reads:
            mark = or_skip(locate_read, skip_bad, read, series, reading.path, offset + read.reader)
            marks += [mark] if mark else []
        offset += max((r.reader for r in reading.reads), default=0)
    return marks


def _links(a, b, spacing_mm, distance_mm):
    """Same finding: same or adjacent slices, centres within max(distance, either radius)."""
    if a.first - 1 > b.last or b.first - 1 > a.last:
        return None
    gap = float(np.hypot(a.x - b.x, a.y - b.y)) * spacing_mm
    return gap if gap <= max(distance_mm, a.radius_mm, b.radius_mm) else None


def cluster_marks(marks: Iterable[Mark], spacing_mm: float, distance_mm: float = 5.0) -> list[Finding]:
    """Group marks of one class into findings; a finding has at most one mark per reader."""
    findings: dict[str, list[Finding]] = defaultdict(list)
    for mark in marks:
        best, best_gap = None, None
        for finding in findings[mark.kind]:
            if any(m.reader == mark.reader for m in finding.marks):
                continue
            gaps = [g for g in (_links(mark, m, spacing_mm, distance_mm) for m in finding.marks) if g is not None]
            if gaps and (best_gap is None or min(gaps) < best_gap):
                best, best_gap = finding, min(gaps)
        if best is None:
            best = Finding()
            findings[mark.kind].append(best)
        best.marks.append(mark)
    return [f for kind in CLASSES for f in findings.get(kind, [])]
