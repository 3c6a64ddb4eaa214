"""How many pixels a file will decode to, read from its header before anything is decoded.

A 200 kB PNG or deflated DICOM can declare 14 000 x 14 000 pixels and cost gigabytes once
decoded, and ``cv2.imread`` picks its decoder by content (a Radiance HDR named ``.png`` is
decoded as HDR). So every file is sniffed by its magic bytes, refused unless it is one of the
accepted formats, and its declared size is checked against a per-image limit before decoding;
:class:`PixelBudget` bounds the pixels one request decodes in total. Only sizes ever appear in
messages, never other DICOM header values.
"""

import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from paddle_dx.errors import ImageReadError
from paddle_dx.utils.files import why_not_a_file

MAX_PIXELS = 100_000_000  # per image (all frames): larger images are refused before decoding
# reading a DICOM slice peaks at ~11 bytes a pixel (raw, float HU, RGB; measured), several times
# a PNG, and the largest single-frame DICOM in use (mammography, ~4k x 5.6k) is 23 MP
MAX_DICOM_PIXELS = 40_000_000
REQUEST_PIXELS = 200_000_000  # per request / inference batch: the decoded images held at once
DICOM_HEADER_PREFIX = 4 << 20  # inflated bytes of a deflated DICOM parsed to find its size
DICOM_NON_PIXEL_BYTES = 64 << 20  # what a deflated DICOM may inflate to beyond its pixel data
_SNIFF_BYTES = 132


class ImageTooLarge(ImageReadError):
    """An image (or a request's images together) above a pixel limit: refused before decoding."""


@dataclass(frozen=True)
class ImageSize:
    format: str
    width: int
    height: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames

    def __str__(self) -> str:
        frames = f" x {self.frames} frames" if self.frames != 1 else ""
        return f"{self.width}x{self.height} pixels{frames}"


@dataclass(frozen=True)
class _Format:
    sniff: object  # head bytes -> bool
    size: object  # (binary file, name) -> ImageSize or None (a DICOM without an image size)


FORMATS = {}  # name -> _Format; callers say which names they take, in order of preference


def register_format(name: str, sniff: Callable[[bytes], bool]) -> Callable[[Callable], Callable]:
    """Register ``fn(fp, name) -> ImageSize`` as the header reader of files whose head passes ``sniff``."""

    def wrap(fn):
        FORMATS[name] = _Format(sniff, fn)
        return fn

    return wrap


RASTER_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "WebP")  # decoded by OpenCV
ACCEPTED_FORMATS = ("DICOM",) + RASTER_FORMATS  # DICOM first: its preamble may hold a TIFF header


def _accepted_list():
    return ", ".join(RASTER_FORMATS) + " or DICOM"


def _pillow_size(pil_format):
    """Header reader through Pillow's plugin class, called directly: ``Image.open`` would add its
    own decompression-bomb check, whose error hides the size we want to report."""

    def read(fp, name):
        from PIL import Image

        Image.init()
        factory, _ = Image.OPEN[pil_format]
        try:
            im = factory(fp, str(name))
        except Exception as exc:  # noqa: BLE001 - Pillow raises SyntaxError/struct.error/OSError/...
            raise ImageReadError(
                name, f"not a decodable image: unreadable {pil_format} header ({type(exc).__name__})"
            ) from None
        return ImageSize(pil_format, *im.size)

    return read


for _fmt, _sniff in (
    ("PNG", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    ("JPEG", lambda head: head.startswith(b"\xff\xd8\xff")),
    ("BMP", lambda head: head.startswith(b"BM")),
    ("TIFF", lambda head: head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")),
):
    register_format(_fmt, _sniff)(_pillow_size(_fmt))


@register_format("WebP", lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP")
def _webp_size(fp, name):
    """Canvas size from the first chunk. Not through Pillow: its WebP opener creates the libwebp
    decoder, which allocates the whole canvas."""
    head = fp.read(30)
    kind, body = head[12:16], head[20:]
    if kind == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", body[6:10])
        return ImageSize("WebP", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L" and body[:1] == b"\x2f":
        bits = int.from_bytes(body[1:5], "little")
        return ImageSize("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8X" and len(body) >= 10:
        return ImageSize("WebP", int.from_bytes(body[4:7], "little") + 1, int.from_bytes(body[7:10], "little") + 1)
    raise ImageReadError(name, "not a decodable image: unreadable WebP header")


@register_format("DICOM", lambda head: head[128:132] == b"DICM")
def _dicom_size(fp, name):
    """Rows x Columns x NumberOfFrames from the header. A deflated dataset is inflated only up to
    DICOM_HEADER_PREFIX bytes to parse it, then streamed (not kept) to check that it does not
    inflate far beyond its pixel data: pydicom would otherwise inflate it whole at dcmread."""
    from pydicom.filereader import read_dataset
    from pydicom.uid import UID

    fp.read(132)  # preamble and 'DICM', checked by the sniff
    meta = _read_elements(read_dataset, fp, False, True, lambda tag: tag.group != 2, name)[0]
    syntax = UID(str(meta.get("TransferSyntaxUID", "1.2.840.10008.1.2")))
    if not syntax.is_transfer_syntax:
        raise ImageReadError(name, f"unknown DICOM transfer syntax '{syntax}'")
    if not syntax.is_deflated:
        ds, _ = _read_elements(read_dataset, fp, syntax.is_implicit_VR, syntax.is_little_endian, _past_size, name)
        return _size_from(ds, name)
    pieces = _inflate(fp)
    prefix = bytearray()
    for piece in pieces:
        prefix += piece
        if len(prefix) >= DICOM_HEADER_PREFIX:
            break
    cut = len(prefix) >= DICOM_HEADER_PREFIX
    try:
        ds, stopped = _read_elements(read_dataset, BytesIO(prefix), False, True, _past_size, name)
    except ImageReadError:
        if not cut:
            raise
        ds, stopped = None, False  # an element cut by the end of the prefix
    if not stopped and cut:
        raise ImageReadError(
            name,
            f"deflated DICOM whose header runs past its first {DICOM_HEADER_PREFIX:,} "
            f"bytes before the image size; refused",
        )
    size = _size_from(ds, name)
    values = size.pixels * int(ds.get("SamplesPerPixel", 1) or 1) if size else 0
    limit = values * -(-int(ds.get("BitsAllocated", 16) or 16) // 8) + DICOM_NON_PIXEL_BYTES
    inflated = len(prefix)
    for piece in pieces:
        inflated += len(piece)
        if inflated > limit:
            raise ImageTooLarge(
                name,
                f"deflated DICOM inflates to more than {limit:,} bytes, far beyond its "
                f"declared {size or 'absent image'}; refused",
            )
    return size


def _past_size(tag):
    return tag > 0x00280100  # BitsAllocated: the last element the size check needs


def _read_elements(read_dataset, fp, implicit, little, stop, name):
    """(dataset up to the first tag where ``stop(tag)``, whether that tag was reached). Values
    above 4 kB are skipped, not read."""
    reached = []

    def stop_when(tag, vr, length):
        reached.append(stop(tag))
        return reached[-1]

    try:
        ds = read_dataset(fp, implicit, little, stop_when=stop_when, defer_size=4096)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on a malformed header
        raise ImageReadError(name, f"unreadable DICOM header ({type(exc).__name__})") from None
    return ds, bool(reached and reached[-1])


def _size_from(ds, name):
    if "Rows" not in ds or "Columns" not in ds:
        return None  # not an image object: the DICOM reader says so
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        raise ImageReadError(name, "DICOM header with a malformed image size") from None
    size = ImageSize("DICOM", cols, rows, frames)
    if min(rows, cols, frames) < 1:
        raise ImageReadError(name, f"DICOM declares {size}: no image to decode")
    if samples not in (1, 3):
        raise ImageReadError(
            name, f"DICOM declares {samples} samples per pixel; paddle_dx reads 1 (grey) or 3 (colour)"
        )
    return size


def _inflate(fp, chunk=1 << 20):
    """Yield a raw deflate stream's output in pieces of at most ``chunk`` bytes."""
    stream = zlib.decompressobj(-zlib.MAX_WBITS)
    while not stream.eof:
        data = stream.unconsumed_tail or fp.read(chunk)
        if not data:
            break
        try:
            out = stream.decompress(data, chunk)
        except zlib.error:
            return  # a corrupt stream: pydicom reports it when it reads the file
        if out:
            yield out


class _Source:
    """A path, bytes or a seekable binary file as a binary file at offset 0 (restored on exit)."""

    def __init__(self, source, name) -> None:
        self.source, self.name = source, name

    def __enter__(self):
        src = self.source
        if isinstance(src, (bytes, bytearray, memoryview)):
            self.fp, self.close, self.start = BytesIO(src), True, 0
        elif hasattr(src, "read"):
            self.fp, self.close, self.start = src, False, src.tell()
        else:
            problem = why_not_a_file(src)
            if problem:
                raise ImageReadError(self.name, problem)
            try:
                self.fp, self.close, self.start = open(Path(src), "rb"), True, 0
            except FileNotFoundError:
                raise ImageReadError(self.name, "file not found") from None
            except OSError as exc:
                raise ImageReadError(self.name, f"cannot open ({exc.strerror})") from None
        return self.fp

    def __exit__(self, *exc):
        if self.close:
            self.fp.close()
        else:
            self.fp.seek(self.start)


def _wrong_format(found, formats):
    if formats == ("DICOM",):
        return "not a DICOM file (no 'DICM' preamble" + (f"; the content is {found})" if found else ")")
    if found == "DICOM":
        return "the content is DICOM: name the file .dcm (or upload it) to read it as DICOM"
    return f"not a decodable image: the content is not {_accepted_list()}"


def declared_size(
    source: Path | str | bytes | BinaryIO, name: object = None, formats: Sequence[str] = ACCEPTED_FORMATS
) -> ImageSize | None:
    """ImageSize declared by the header of ``source`` (path, bytes or binary file), or None for a
    DICOM object without an image size. Content not in ``formats`` (sniffed by magic bytes, never
    by file name) is refused here, so it never reaches a decoder."""
    name = source if name is None else name
    with _Source(source, name) as fp:
        start = fp.tell()
        head = fp.read(_SNIFF_BYTES)
        if not head:
            raise ImageReadError(name, "empty file")
        found = next((fmt for fmt in ACCEPTED_FORMATS if FORMATS[fmt].sniff(head)), None)
        fmt = next((fmt for fmt in formats if FORMATS[fmt].sniff(head)), None)
        if fmt is None:
            raise ImageReadError(name, _wrong_format(found, tuple(formats)))
        fp.seek(start)
        return FORMATS[fmt].size(fp, name)


def check_declared_size(
    source: Path | str | bytes | BinaryIO,
    name: object = None,
    formats: Sequence[str] = ACCEPTED_FORMATS,
    max_pixels: int = MAX_PIXELS,
) -> ImageSize | None:
    """``declared_size`` that also refuses a size above ``max_pixels``, before anything is decoded."""
    name = source if name is None else name
    size = declared_size(source, name, formats)
    if size is not None and size.format == "DICOM":
        max_pixels = min(max_pixels, MAX_DICOM_PIXELS)
    if size is not None and size.pixels > max_pixels:
        raise ImageTooLarge(name, f"image is {size}, above the limit of {max_pixels:,} pixels; downscale it first")
    return size


class PixelBudget:
    """Pixels one request may decode in total: files each inside MAX_PIXELS still add up
    (16 JPEGs of 39 MP are 1.9 GB decoded)."""

    def __init__(self, limit=REQUEST_PIXELS) -> None:
        self.limit, self.used = int(limit), 0

    def fits(self, size: ImageSize | None) -> bool:
        return size is None or self.used + size.pixels <= self.limit

    def charge(self, name: object, size: ImageSize | None) -> None:
        """Count ``size`` (an ImageSize or None) against the budget, or refuse the file naming it."""
        if not self.fits(size):
            already = f" with the {self.used:,} pixels already in this request" if self.used else ""
            raise ImageTooLarge(
                name,
                f"image is {size}{already}, above the per-request limit of "
                f"{self.limit:,} pixels; send fewer or smaller images",
            )
        self.used += size.pixels if size is not None else 0
