"""Read one LIDC-IDRI annotation XML (``LidcReadMessage``) into per-reader marks.

The XML (namespace ``http://www.nih.gov``) has one ``readingSession`` per radiologist. In it,
``unblindedReadNodule`` is a nodule: >= 3 mm ones carry ``characteristics`` and outline the
nodule with ``roi``/``edgeMap`` points on each slice; < 3 mm ones are a single point. A
``nonNodule`` is one ``locus`` point. Reads are not matched across readers in the file:
grouping them into nodules is done later (``paddle_dx.prepare.lidc.series.cluster_marks``).
Only the standard library parses the file (``xml.etree``).
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from paddle_dx.errors import DataError

log = logging.getLogger(__name__)
NODULE_GE3 = "nodule_ge3mm"
NODULE_LT3 = "nodule_lt3mm"
NON_NODULE = "non_nodule"
CLASSES = (NODULE_GE3, NODULE_LT3, NON_NODULE)
ROOT_TAG = "LidcReadMessage"


@dataclass
class Roi:
    """Points a reader drew on one slice, named by SOP UID and z (either may be missing)."""

    sop_uid: str | None
    z: float | None
    points: np.ndarray  # (N, 2) x = column, y = row, pixels
    inclusion: bool = True


@dataclass
class Read:
    """One reader's mark of one finding: a nodule (>= or < 3 mm) or a non-nodule."""

    kind: str
    reader: int  # 1-based readingSession index inside the XML (not the radiologist's ID)
    mark_id: str
    rois: list[Roi] = field(default_factory=list)
    malignancy: int | None = None


@dataclass
class Reading:
    """All reads of one XML file, and the series they annotate."""

    path: str
    series_uid: str
    reads: list[Read]


def _text(node, tag):
    child = node.find(f"{{*}}{tag}")
    return child.text.strip() if child is not None and child.text and child.text.strip() else None


def _number(node, tag, path, where):
    text = _text(node, tag)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}: {where}: <{tag}> is not a number: {text!r}") from None


def _points(node, tag, path, where):
    points = []
    for edge in node.findall(f"{{*}}{tag}"):
        x, y = _number(edge, "xCoord", path, where), _number(edge, "yCoord", path, where)
        if x is None or y is None:
            raise DataError(f"{path}: {where}: <{tag}> without xCoord/yCoord")
        points.append((x, y))
    return np.asarray(points, dtype=np.float32).reshape(-1, 2)


def _roi(node, path, where, point_tag):
    points = _points(node, point_tag, path, where)
    if not len(points):
        raise DataError(f"{path}: {where}: no <{point_tag}> point")
    return Roi(
        sop_uid=_text(node, "imageSOP_UID"),
        z=_number(node, "imageZposition", path, where),
        points=points,
        inclusion=(_text(node, "inclusion") or "TRUE").upper() != "FALSE",
    )


def _nodule(node, reader, path):
    mark_id = _text(node, "noduleID") or "?"
    where = f"reader {reader} nodule {mark_id!r}"
    rois = [_roi(r, path, where, "edgeMap") for r in node.findall("{*}roi")]
    if not rois:
        raise DataError(f"{path}: {where} has no <roi>")
    chars = node.find("{*}characteristics")
    outlined = any(len(r.points) > 1 for r in rois)
    malignancy = _text(chars, "malignancy") if chars is not None else None
    kind = NODULE_GE3 if outlined or (chars is not None and len(chars)) else NODULE_LT3
    return Read(kind, reader, mark_id, rois, int(malignancy) if malignancy and malignancy.isdigit() else None)


def _non_nodule(node, reader, path):
    mark_id = _text(node, "nonNoduleID") or "?"
    roi = _roi(node, path, f"reader {reader} non-nodule {mark_id!r}", "locus")
    return Read(NON_NODULE, reader, mark_id, [roi])


def parse_lidc_xml(path: Path | str) -> Reading | None:
    """Return a Reading, or None when the file is XML of another kind (e.g. the radiograph
    ``IdriReadMessage``). A malformed or incomplete LIDC file raises DataError naming it."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise DataError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    kind = root.tag.rsplit("}", 1)[-1]
    if kind != ROOT_TAG:
        log.info("%s: not an LIDC CT reading (<%s>, e.g. a radiograph read); ignored", path, kind)
        return None
    header = root.find("{*}ResponseHeader")
    series_uid = _text(header, "SeriesInstanceUid") if header is not None else None
    if not series_uid:
        raise DataError(f"{path}: LIDC XML without <ResponseHeader><SeriesInstanceUid>")
    reads = []
    for reader, session in enumerate(root.findall("{*}readingSession"), 1):
        reads += [_nodule(n, reader, path) for n in session.findall("{*}unblindedReadNodule")]
        reads += [_non_nodule(n, reader, path) for n in session.findall("{*}nonNodule")]
    return Reading(str(path), series_uid, reads)
