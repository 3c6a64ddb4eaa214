"""Read one image file into an RGB uint8 array, whatever its format, or say clearly why not.

Handles grey, RGBA, 16-bit PNG and, through ``READERS`` (file extension -> reader), formats
OpenCV cannot decode: ``paddle_dx.data.dicom`` registers ``.dcm`` and is imported by the
``paddle_dx.data`` package, so the reader is there whenever this module is. Refuses images too
large to decode safely.
"""

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from paddle_dx.data.image_header import RASTER_FORMATS, check_declared_size
from paddle_dx.errors import ImageReadError
from paddle_dx.utils.files import why_not_a_file
from paddle_dx.utils.registry import Registry

OPENCV_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # cv2.imread decodes these
READERS = Registry("image reader")  # ".ext" -> fn(path) -> HxWx3 uint8 RGB, for formats OpenCV lacks


def image_extensions() -> tuple[str, ...]:
    """Every extension an image may have: OpenCV's and each registered reader's (``.dcm``...),
    so a new reader makes its files count in splits and inputs with no other edit."""
    return OPENCV_EXTENSIONS + tuple(e for e in READERS.names() if e not in OPENCV_EXTENSIONS)


def register_reader(extension: str) -> Callable[[Callable], Callable]:
    """Register ``fn(path) -> HxWx3 uint8 RGB`` for files ending in ``extension``."""
    return READERS.register(name=extension.lower())


def to_rgb_uint8(img: np.ndarray, path: str = "<array>") -> np.ndarray:
    """Normalise a decoded array (grey, BGR, BGRA, 16-bit) to HxWx3 uint8 RGB.

    16 bit becomes round(v / 257) by OpenCV, a strip of rows at a time, straight to uint8: a float
    copy of a whole 8000 x 8000 RGBA image would take gigabytes for a 2 MB PNG."""
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(path, f"unsupported pixel type {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    code = cv2.COLOR_GRAY2RGB if img.ndim == 2 else (cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if img.dtype == np.uint8:
        return cv2.cvtColor(img, code)
    out = np.empty((*img.shape[:2], 3), np.uint8)
    step = max(1, _STRIP_VALUES // max(1, img[:1].size))
    for top in range(0, img.shape[0], step):
        strip = np.ascontiguousarray(img[top : top + step])
        out[top : top + step] = cv2.cvtColor(cv2.convertScaleAbs(strip, alpha=1.0 / 257.0), code)
    return out


_STRIP_VALUES = 1 << 22  # 16-bit values converted at once (8 MB)


def decode_bytes(data: bytes, path: str = "<upload>") -> np.ndarray:
    """Decode an encoded image held in memory (PNG/JPEG/...) to RGB uint8."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageReadError(path, "empty file")
    check_declared_size(data, path, RASTER_FORMATS)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(path, "not a decodable image (corrupt, truncated or not an image)")
    return to_rgb_uint8(img, path)


def read_image(path: str | Path) -> np.ndarray:
    """Return the image at ``path`` as an HxWx3 uint8 RGB array; raise ImageReadError otherwise."""
    path = Path(path)
    problem = why_not_a_file(path)
    if problem:
        raise ImageReadError(path, problem)
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file")
    if path.suffix.lower() in READERS:
        return READERS.get(path.suffix.lower())(path)
    check_declared_size(path, path, RASTER_FORMATS)
    if _truncated_jpeg(path):
        raise ImageReadError(path, "truncated JPEG (the file ends before its end-of-image marker)")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(path, "not a decodable image (corrupt, truncated or not an image)")
    img = to_rgb_uint8(img, path)
    if min(img.shape[:2]) < 2:
        raise ImageReadError(path, f"image is only {img.shape[1]}x{img.shape[0]} pixels")
    return img


def _truncated_jpeg(path):
    """True for a JPEG with no end-of-image marker after its last scan.

    libjpeg decodes such a file anyway, filling the missing part with grey and only printing
    "Premature end of JPEG file", so cv2 alone would train on half an image. Inside scan data
    every 0xFF byte is stuffed, so FF D9 after the last FF DA can only be the real marker.
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\xff\xd8":
            return False
        data = fh.read()
    sos = data.rfind(b"\xff\xda")
    return sos >= 0 and data.find(b"\xff\xd9", sos) < 0
