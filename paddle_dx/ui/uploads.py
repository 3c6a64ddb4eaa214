"""Uploaded bytes -> RGB image, in memory, checked by content (never by file name).

Limits are enforced before decoding where the header tells the size (a 1 kB PNG can declare
40 000 x 40 000 pixels) and again after it.
"""
import logging
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO

import cv2

from paddle_dx.data.io import decode_bytes
from paddle_dx.errors import ImageReadError

DICOM_MAGIC_OFFSET, DICOM_MAGIC = 128, b"DICM"


@dataclass(frozen=True)
class UploadLimits:
    """``max_file_bytes`` per image, ``max_pixels`` per decoded image, ``max_files`` per request."""

    max_file_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_files: int = 16

    @property
    def max_request_bytes(self):
        return self.max_files * self.max_file_bytes + 64 * 1024  # multipart overhead

    def as_dict(self):
        return {"max_file_bytes": self.max_file_bytes, "max_pixels": self.max_pixels,
                "max_files": self.max_files}


class UploadTooLarge(ImageReadError):
    """An upload above a size limit: the server answers 413."""


def is_dicom(data):
    return data[DICOM_MAGIC_OFFSET:DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC


def _declared_pixels(data):
    """Width x height from a raster header without decoding (None if PIL cannot tell)."""
    try:
        from PIL import Image
        Image.MAX_IMAGE_PIXELS = None  # PIL's own bomb check would hide the size; the limits here decide
        with Image.open(BytesIO(data)) as im:
            return im.size[0] * im.size[1]
    except Exception:  # noqa: BLE001 - only a pre-check: decoding below decides
        return None


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


def _decode(data, name):
    """Decode by content; a decoder's own exception becomes a per-file ImageReadError whose
    message names its type only (pydicom's messages can quote the header)."""
    from paddle_dx.data.dicom import decode_dicom_bytes
    try:
        with _quiet_decoders():
            return decode_dicom_bytes(data, name) if is_dicom(data) else decode_bytes(data, name)
    except ImageReadError:
        raise
    except cv2.error:
        raise ImageReadError(name, "not a decodable image (the decoder refused its size or content)") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises ValueError, TypeError, KeyError... on bad headers
        raise ImageReadError(name, f"unreadable file header or pixel data ({type(exc).__name__})") from None


def decode_upload(data, name, limits):
    """Decode one upload (PNG, JPEG, BMP, TIFF, WebP or DICOM) to HxWx3 RGB uint8."""
    if len(data) > limits.max_file_bytes:
        raise UploadTooLarge(name, f"file is {len(data):,} bytes, above the limit of {limits.max_file_bytes:,}")
    declared = None if is_dicom(data) else _declared_pixels(data)
    if declared is not None and declared > limits.max_pixels:
        raise UploadTooLarge(name, f"image has {declared:,} pixels, above the limit of {limits.max_pixels:,}")
    rgb = _decode(data, name)
    pixels = rgb.shape[0] * rgb.shape[1]
    if pixels > limits.max_pixels:
        raise UploadTooLarge(name, f"image has {pixels:,} pixels, above the limit of {limits.max_pixels:,}")
    if min(rgb.shape[:2]) < 2:
        raise ImageReadError(name, f"image is only {rgb.shape[1]}x{rgb.shape[0]} pixels")
    return rgb
