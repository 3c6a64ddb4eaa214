"""DICOM slices as images: pixel data -> Hounsfield units -> window -> RGB uint8.

Registered as the ``.dcm`` reader of :func:`paddle_dx.data.io.read_image`, so any list file
may name DICOM files. The returned :class:`~paddle_dx.data.ct_window.DicomImage` is windowed
with the default (lung for CT) and keeps its HU, so a ``CTWindow`` op in ``transform_ops``
applies the configured window. Nothing here logs header fields: error messages name the
file and the problem only, never the patient.
"""

import math
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pydicom
from pydicom import uid as dicom_uid
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from paddle_dx.data.ct_window import DEFAULT_CT_WINDOW, WINDOWS, DicomImage
from paddle_dx.data.image_header import check_declared_size
from paddle_dx.data.io import register_reader, to_rgb_uint8
from paddle_dx.errors import ImageReadError

_JPEG = "pylibjpeg pylibjpeg-libjpeg"
_J2K = "pylibjpeg pylibjpeg-openjpeg"
_GDCM = "python-gdcm"  # decodes every compressed syntax
# transfer syntax -> pip packages that let pydicom decode it (any one line is enough)
CODEC_PACKAGES = {
    **{ts: (_JPEG, _GDCM) for ts in dicom_uid.JPEGTransferSyntaxes},
    **{ts: (_JPEG, "pyjpegls", _GDCM) for ts in dicom_uid.JPEGLSTransferSyntaxes},
    **{ts: (_J2K, _GDCM) for ts in dicom_uid.JPEG2000TransferSyntaxes},
    **{ts: ("pylibjpeg pylibjpeg-rle", _GDCM) for ts in dicom_uid.RLETransferSyntaxes},
}


def read_dataset(path: Path | str, pixels: bool = True, source: BinaryIO | None = None) -> pydicom.Dataset:
    """``pydicom.dcmread`` with failures turned into ImageReadError naming the file.

    ``source``: a file-like object read instead of ``path`` (which then only names it)."""
    check_declared_size(source if source is not None else path, path, ("DICOM",))
    try:
        return pydicom.dcmread(source if source is not None else str(path), stop_before_pixels=not pixels)
    except InvalidDicomError:
        raise ImageReadError(path, "not a DICOM file (no 'DICM' preamble)") from None
    except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
        raise ImageReadError(path, f"unreadable DICOM ({type(exc).__name__}: {exc})") from None


def _pixels(ds, path):
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if (rows is not None and rows < 1) or (columns is not None and columns < 1):
        raise ImageReadError(path, f"DICOM image is {columns} x {rows} pixels (Columns x Rows): an empty image")
    if "PixelData" not in ds:
        raise ImageReadError(path, "DICOM file has no pixel data (not an image object)")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(path, f"multi-frame DICOM ({frames} frames); paddle_dx reads one slice per file")
    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises RuntimeError/NotImplementedError/ValueError
        if syntax is not None and not syntax.is_transfer_syntax:  # is_compressed would raise ValueError
            raise ImageReadError(path, f"unknown DICOM transfer syntax {str(syntax)[:64]!r}") from None
        if syntax is not None and syntax.is_compressed:
            options = " or ".join(f"`pip install {p}`" for p in CODEC_PACKAGES.get(syntax, (_GDCM,)))
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(":")
            raise ImageReadError(
                path,
                f"compressed DICOM ({syntax.name}) that pydicom cannot decode with the "
                f"installed codecs; install one: {options} (pydicom: {reason})",
            ) from None
        raise ImageReadError(path, f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None
    if pixels.ndim >= 2 and min(pixels.shape[:2]) < 2:
        raise ImageReadError(path, f"image is only {pixels.shape[1]}x{pixels.shape[0]} pixels")
    return pixels


def _check_rescale(ds, path, keyword):
    """Refuse a ``RescaleSlope`` / ``RescaleIntercept`` that is not a finite number (or a zero
    slope): pydicom keeps an unparsable DS (``'abc'``) as text and multiplies NaN through."""
    value = ds.get(keyword)
    if value is None or value == "":
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ImageReadError(path, f"DICOM {keyword} {str(value)[:32]!r} is not a number") from None
    if not math.isfinite(number) or (keyword == "RescaleSlope" and number == 0):
        raise ImageReadError(path, f"DICOM {keyword} is {number:g}: pixel values would mean nothing")


def _file_window(ds, hu):
    """Non-CT default: the file's own VOI window if it has one, else the full pixel range."""
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
        width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
        if float(width) > 0:
            return float(center), float(width)
    low, high = float(hu.min()), float(hu.max())
    return (low + high) / 2.0, max(high - low, 1.0)


def is_inverted(ds: pydicom.Dataset) -> bool:
    """MONOCHROME1: low values are bright, so the windowed grey is inverted."""
    return ds.get("PhotometricInterpretation") == "MONOCHROME1"


def load_slice(path: Path | str, ds: pydicom.Dataset | None = None) -> tuple[pydicom.Dataset, np.ndarray]:
    """(dataset, HU as HxW float32) of a single-frame greyscale DICOM file."""
    ds = ds if ds is not None else read_dataset(path)
    pixels = _pixels(ds, path)
    if pixels.ndim != 2:
        raise ImageReadError(path, f"expected a greyscale slice, got pixel array of shape {pixels.shape}")
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        _check_rescale(ds, path, keyword)
    with np.errstate(over="ignore", invalid="ignore"):
        hu = apply_modality_lut(pixels, ds).astype("float32")
    if not np.isfinite(hu).all():
        raise ImageReadError(path, "DICOM rescale gives values beyond float32 (RescaleSlope/Intercept too large)")
    return ds, hu


@register_reader(".dcm")
def read_dicom(path: Path | str, ds: pydicom.Dataset | None = None) -> np.ndarray:
    """``read_image`` for ``.dcm``: a DicomImage (RGB uint8, default window, carrying HU)."""
    ds = ds if ds is not None else read_dataset(path)
    try:
        if int(ds.get("SamplesPerPixel", 1) or 1) == 3:  # colour (ultrasound, photos): no HU to window
            return to_rgb_uint8(_pixels(ds, path)[:, :, ::-1], path)
        ds, hu = load_slice(path, ds)
        auto = WINDOWS[DEFAULT_CT_WINDOW] if ds.get("Modality") == "CT" else _file_window(ds, hu)
        return DicomImage(hu, invert=is_inverted(ds), auto_window=auto)
    except (ValueError, TypeError, ArithmeticError, KeyError, IndexError) as exc:
        # a header value of the wrong kind (text where a number belongs): this file is bad,
        # not the run; a reader that skips bad files must be able to skip it
        raise ImageReadError(path, f"malformed DICOM header value ({type(exc).__name__})") from None


def decode_dicom_bytes(data: bytes, name: str = "<upload>") -> np.ndarray:
    """``read_dicom`` for a file held in memory (e.g. a web upload), never written to disk."""
    return read_dicom(name, read_dataset(name, source=BytesIO(data)))
