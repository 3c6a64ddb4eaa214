"""Uploaded bytes -> RGB image, in memory, checked by content (never by file name).

Limits are enforced before decoding where the header tells the size (a 1 kB PNG can declare
40 000 x 40 000 pixels) and again after it.
"""

import logging
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from paddle_dx.data.image_header import REQUEST_PIXELS, ImageTooLarge, PixelBudget, check_declared_size
from paddle_dx.data.io import decode_bytes
from paddle_dx.errors import ImageReadError

DICOM_MAGIC_OFFSET, DICOM_MAGIC = 128, b"DICM"


@dataclass(frozen=True)
class UploadLimits:
    """``max_file_bytes`` per image, ``max_pixels`` per decoded image, ``max_files`` and
    ``max_request_pixels`` (decoded pixels of all its images) per request."""

    max_file_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_files: int = 16
    max_request_pixels: int = REQUEST_PIXELS
    max_pending: int = 8  # uploads being received or waiting for the model, server-wide

    @property
    def max_server_bytes(self) -> int:
        """Upload bytes the whole server holds at once: two of the largest requests."""
        return 2 * self.max_request_bytes

    def budget(self) -> PixelBudget:
        """A fresh per-request pixel budget."""
        return PixelBudget(self.max_request_pixels)

    @property
    def max_request_bytes(self) -> int:
        return self.max_files * self.max_file_bytes + 64 * 1024  # multipart overhead

    def as_dict(self) -> dict[str, int]:
        return {
            "max_file_bytes": self.max_file_bytes,
            "max_pixels": self.max_pixels,
            "max_files": self.max_files,
            "max_request_pixels": self.max_request_pixels,
            "max_pending": self.max_pending,
        }


class UploadTooLarge(ImageReadError):
    """An upload above a size limit: the server answers 413."""


def is_dicom(data: bytes) -> bool:
    return data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


_QUIET = threading.Lock()


@contextmanager
def _quiet_decoders():
    """Keep decoder warnings and pydicom's log lines out of the server log: they quote header
    values of the uploaded file (``Invalid value for VR DS: '<bytes>'``)."""
    pydicom_log = logging.getLogger("pydicom")
    with _QUIET, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        was_disabled, pydicom_log.disabled = pydicom_log.disabled, True
        try:
            yield
        finally:
            pydicom_log.disabled = was_disabled


def _decode(data, name, limits, budget):
    """Check the declared size, then decode by content; a decoder's own exception becomes a
    per-file ImageReadError whose message names its type only (pydicom's messages can quote
    the header)."""
    from paddle_dx.data.dicom import decode_dicom_bytes

    try:
        with _quiet_decoders():
            size = check_declared_size(data, name, max_pixels=limits.max_pixels)
            if budget is not None:
                budget.charge(name, size)
            return decode_dicom_bytes(data, name) if is_dicom(data) else decode_bytes(data, name)
    except ImageTooLarge as exc:
        raise UploadTooLarge(name, exc.problem) from None
    except ImageReadError:
        raise
    except cv2.error:
        raise ImageReadError(name, "not a decodable image (the decoder refused its size or content)") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises ValueError, TypeError, KeyError... on bad headers
        raise ImageReadError(name, f"unreadable file header or pixel data ({type(exc).__name__})") from None


def decode_upload(data: bytes, name: str, limits: UploadLimits, budget: PixelBudget | None = None) -> np.ndarray:
    """Decode one upload (PNG, JPEG, BMP, TIFF, WebP or DICOM) to HxWx3 RGB uint8, after its
    header's declared size passed ``limits.max_pixels`` and the request's ``budget``."""
    if len(data) > limits.max_file_bytes:
        raise UploadTooLarge(name, f"file is {len(data):,} bytes, above the limit of {limits.max_file_bytes:,}")
    rgb = _decode(data, name, limits, budget)
    pixels = rgb.shape[0] * rgb.shape[1]
    if pixels > limits.max_pixels:
        raise UploadTooLarge(name, f"image has {pixels:,} pixels, above the limit of {limits.max_pixels:,}")
    if min(rgb.shape[:2]) < 2:
        raise ImageReadError(name, f"image is only {rgb.shape[1]}x{rgb.shape[0]} pixels")
    return rgb
