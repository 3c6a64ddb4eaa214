"""Declared image sizes are read from headers and checked before anything is decoded.

Every bomb here is a tiny crafted file that would cost gigabytes once decoded; the memory test
runs them in a fresh process under an address-space limit and measures its peak growth.
"""

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from dicom_testdata import SECRET_ID, SECRET_NAME, write_ct_slice
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from paddle_dx.data.dicom import decode_dicom_bytes
from paddle_dx.data.image_header import (
    DICOM_HEADER_PREFIX,
    ImageSize,
    ImageTooLarge,
    PixelBudget,
    check_declared_size,
    declared_size,
)
from paddle_dx.data.io import decode_bytes, read_image
from paddle_dx.errors import ImageReadError
from paddle_dx.inference.inputs import read_batches

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
ACCEPTED = "PNG, JPEG, BMP, TIFF, WebP or DICOM"


# ---- crafted files ----------------------------------------------------------------------------


def png_file(width, height, idat, bit_depth=8, colour_type=0):
    """A PNG from its chunks: any declared size, whatever the IDAT really holds."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def real_blank_png(side):
    """A valid side x side 8-bit grey PNG, written row by row (never held decoded)."""
    comp, row = zlib.compressobj(9), b"\x00" * (1 + side)
    return png_file(side, side, b"".join(comp.compress(row) for _ in range(side)) + comp.flush())


def radiance_hdr(width, height, body=b"\x00" * 64):
    return f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode() + body


def _image_dataset(rows, cols, frames=None):
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.PatientName, ds.PatientID = SECRET_NAME, SECRET_ID
    ds.Modality = "OT"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    return ds


def _element(tag, vr, length):
    return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, length)


def dicom_file(rows, cols, pixel_bytes=None, deflated=True, frames=None, private_before=0, private_after=0):
    """A DICOM file written piece by piece: header elements, optional zero-filled private
    elements before (group 0019) / after (group 0029) the image size, then zero PixelData of
    ``pixel_bytes`` (default rows x cols x 2). Zeros are streamed through the deflater, so a
    file declaring gigabytes costs megabytes of memory to write."""
    ds = _image_dataset(rows, cols, frames)
    pixel_bytes = rows * cols * 2 * (frames or 1) if pixel_bytes is None else pixel_bytes
    front, size_part = Dataset(), Dataset()
    for elem in ds:
        (front if elem.tag.group < 0x19 else size_part).add(elem)
    pieces = [_encode(front)]
    if private_before:
        pieces += [_element(0x00191010, b"OB", private_before), (private_before,)]
    pieces.append(_encode(size_part))
    if private_after:
        pieces += [_element(0x00291010, b"OB", private_after), (private_after,)]
    pieces += [_element(0x7FE00010, b"OW", pixel_bytes), (pixel_bytes,)]

    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS) if deflated else None
    body = bytearray()
    for piece in pieces:
        chunks = [piece] if isinstance(piece, bytes) else _zeros(piece[0])
        for chunk in chunks:
            body += comp.compress(chunk) if comp else chunk
    body += comp.flush() if comp else b""

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian if deflated else ExplicitVRLittleEndian
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_file_meta_info(out, meta)
    return b"\x00" * 128 + b"DICM" + out.getvalue() + bytes(body)


def _encode(ds):
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)
    return out.getvalue()


def _zeros(n, chunk=1 << 22):
    while n > 0:
        yield b"\x00" * min(n, chunk)
        n -= chunk


def encoded(ext, img, *params):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok
    return buf.tobytes()


def noise(h, w, c=3):
    return RNG.integers(0, 256, size=(h, w, c), dtype=np.uint8)


# ---- accepted formats pass with their true size ------------------------------------------------


def _webp_vp8x(img):
    out = io.BytesIO()
    Image.fromarray(np.dstack([img, np.full(img.shape[:2], 200, np.uint8)])).save(out, "WEBP", quality=80)
    data = out.getvalue()
    assert data[12:16] == b"VP8X"
    return data


@pytest.mark.parametrize(
    "fmt, encode",
    [
        ("PNG", lambda img: encoded(".png", img)),
        ("JPEG", lambda img: encoded(".jpg", img)),
        ("BMP", lambda img: encoded(".bmp", img)),
        ("TIFF", lambda img: encoded(".tif", img)),
        ("WebP", lambda img: encoded(".webp", img, cv2.IMWRITE_WEBP_QUALITY, 80)),  # VP8 (lossy)
        ("WebP", lambda img: encoded(".webp", img, cv2.IMWRITE_WEBP_QUALITY, 101)),  # VP8L (lossless)
        ("WebP", _webp_vp8x),  # VP8X (alpha)
    ],
)
def test_small_image_of_each_format_declares_its_true_size_and_reads(tmp_path, fmt, encode):
    img = noise(23, 37)  # not square: a swapped width/height would show
    data = encode(img)
    path = tmp_path / "small.img"
    path.write_bytes(data)
    assert declared_size(path) == ImageSize(fmt, 37, 23)
    assert declared_size(data, "upload") == ImageSize(fmt, 37, 23)
    assert read_image(path).shape == (23, 37, 3)
    assert decode_bytes(data, "upload").shape == (23, 37, 3)


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "image_dfl.dcm",
        "JPEG2000.dcm",
    ],
)
def test_dicom_size_matches_pydicom_in_every_transfer_syntax(name):
    import pydicom

    path = get_testdata_file(name)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert declared_size(path) == ImageSize("DICOM", int(ds.Columns), int(ds.Rows), int(ds.get("NumberOfFrames", 1)))


def test_small_dicom_files_pass_and_decode(tmp_path):
    write_ct_slice(tmp_path / "ct.dcm", np.zeros((20, 30), np.int16), generate_uid(), generate_uid(), 0.0)
    assert declared_size(tmp_path / "ct.dcm") == ImageSize("DICOM", 30, 20)
    assert read_image(tmp_path / "ct.dcm").shape == (20, 30, 3)
    data = dicom_file(24, 40)  # deflated, written by hand like the bomb below
    (tmp_path / "dfl.dcm").write_bytes(data)
    assert declared_size(data, "dfl.dcm") == ImageSize("DICOM", 40, 24)
    assert read_image(tmp_path / "dfl.dcm").shape == (24, 40, 3)
    assert decode_dicom_bytes(data, "dfl.dcm").shape == (24, 40, 3)
    plain = dicom_file(24, 40, deflated=False, private_after=10_000)
    assert declared_size(plain, "plain.dcm") == ImageSize("DICOM", 40, 24)
    assert decode_dicom_bytes(plain, "plain.dcm").shape == (24, 40, 3)


def test_declared_size_leaves_a_file_object_where_it_was():
    data = dicom_file(8, 8)
    fp = io.BytesIO(data)
    assert declared_size(fp, "x.dcm") == ImageSize("DICOM", 8, 8)
    assert fp.tell() == 0


# ---- bombs are refused from the header ---------------------------------------------------------


def test_png_declaring_50000_squared_is_refused_from_its_header():
    data = png_file(50000, 50000, b"\x78\x9c" + b"\x00" * 40)
    assert len(data) < 300
    with pytest.raises(ImageTooLarge, match=r"bomb\.png: image is 50000x50000 pixels, above the limit of 100,000,000"):
        check_declared_size(data, "bomb.png")
    with pytest.raises(ImageTooLarge, match="50000x50000"):
        decode_bytes(data, "bomb.png")


def test_real_14000_squared_png_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(real_blank_png(14000))
    assert path.stat().st_size < 400_000
    small = cv2.imdecode(np.frombuffer(real_blank_png(16), np.uint8), cv2.IMREAD_UNCHANGED)
    assert small.shape == (16, 16) and not small.any()  # the writer makes real PNGs
    with pytest.raises(ImageTooLarge, match=r"big\.png: image is 14000x14000 pixels, above the limit of 100,000,000"):
        read_image(path)


def test_deflated_dicom_declaring_10000_squared_is_refused_without_inflating(tmp_path):
    data = dicom_file(10000, 10000)
    assert len(data) < 400_000  # 200 MB of pixel data once inflated
    path = tmp_path / "bomb.dcm"
    path.write_bytes(data)
    for call in (lambda: read_image(path), lambda: decode_dicom_bytes(data, "bomb.dcm")):
        with pytest.raises(ImageTooLarge) as err:
            call()
        message = str(err.value)
        assert "bomb.dcm: image is 10000x10000 pixels, above the limit of 40,000,000" in message
        assert "\n" not in message and SECRET_NAME not in message and SECRET_ID not in message


def test_multi_frame_dicom_counts_every_frame():
    nine = dicom_file(2000, 2000, pixel_bytes=64, frames=9, deflated=False)
    assert check_declared_size(nine, "nine.dcm") == ImageSize("DICOM", 2000, 2000, 9)
    data = dicom_file(2000, 2000, pixel_bytes=64, frames=11, deflated=False)
    with pytest.raises(ImageTooLarge, match="2000x2000 pixels x 11 frames, above the limit of 40,000,000"):
        check_declared_size(data, "cine.dcm")


def test_deflated_dicom_that_inflates_far_beyond_its_pixels_is_refused(tmp_path):
    """Small declared image, 300 MB of zeros in a private element: pydicom would inflate it all."""
    data = dicom_file(64, 64, private_after=300 << 20)
    assert len(data) < 600_000
    with pytest.raises(ImageTooLarge, match=r"junk\.dcm: deflated DICOM inflates to more than [\d,]+ bytes"):
        decode_dicom_bytes(data, "junk.dcm")


def test_deflated_dicom_whose_header_outruns_the_parsed_prefix_is_refused():
    data = dicom_file(64, 64, private_before=DICOM_HEADER_PREFIX + 1000)
    with pytest.raises(ImageReadError, match="header runs past its first"):
        declared_size(data, "long.dcm")


@pytest.mark.parametrize(
    "rows, cols, words", [(0, 512, "512x0 pixels: no image to decode"), (512, 0, "0x512 pixels: no image to decode")]
)
def test_dicom_with_a_zero_dimension_is_refused(tmp_path, rows, cols, words):
    path = tmp_path / "zero.dcm"
    path.write_bytes(dicom_file(rows, cols, pixel_bytes=0, deflated=False))
    with pytest.raises(ImageReadError, match=words):
        read_image(path)


def test_dicom_without_image_size_is_left_to_the_dicom_reader():
    path = get_testdata_file("rtplan.dcm")
    assert declared_size(path) is None
    with pytest.raises(ImageReadError, match="DICOM file has no pixel data"):
        read_image(path)


# ---- content that is not an accepted format never reaches a decoder ----------------------------


def test_radiance_hdr_named_png_is_refused_though_opencv_would_decode_it(tmp_path):
    small = tmp_path / "small.hdr"
    assert cv2.imwrite(str(small), np.ones((4, 4, 3), np.float32))
    disguised = tmp_path / "scan.png"
    disguised.write_bytes(small.read_bytes())
    assert cv2.imread(str(disguised), cv2.IMREAD_UNCHANGED) is not None  # cv2 goes by content
    huge = tmp_path / "huge.png"
    huge.write_bytes(radiance_hdr(30000, 30000))
    for path in (disguised, huge):
        with pytest.raises(ImageReadError, match=f"{path.name}: not a decodable image: the content is not {ACCEPTED}"):
            read_image(path)
    with pytest.raises(ImageReadError, match=f"the content is not {ACCEPTED}"):
        decode_bytes(huge.read_bytes(), "huge.png")


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a" + b"\x00" * 40,
        b"%PDF-1.4 not an image",
        b"P6\n30000 30000\n255\n",
        b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 40,
        b"garbage",
    ],
)
def test_other_content_is_refused_listing_the_accepted_formats(data):
    with pytest.raises(ImageReadError, match=f"^up.png: not a decodable image: the content is not {ACCEPTED}$"):
        decode_bytes(data, "up.png")


def test_content_and_reader_must_agree(tmp_path):
    dicom_as_png = tmp_path / "slice.png"
    dicom_as_png.write_bytes(dicom_file(8, 8))
    with pytest.raises(ImageReadError, match="the content is DICOM: name the file .dcm"):
        read_image(dicom_as_png)
    png_as_dicom = tmp_path / "photo.dcm"
    png_as_dicom.write_bytes(encoded(".png", noise(8, 8)))
    with pytest.raises(
        ImageReadError,
        match=r"photo\.dcm: not a DICOM file \(no 'DICM' preamble; "
        r"the content is PNG\)",
    ):
        read_image(png_as_dicom)


def test_png_signature_with_a_broken_header_is_refused_before_decoding():
    with pytest.raises(ImageReadError, match="unreadable PNG header"):
        decode_bytes(b"\x89PNG\r\n\x1a\n" + b"\xff" * 40, "x.png")


# ---- a request's total pixels ------------------------------------------------------------------


def test_pixel_budget_refuses_the_file_that_passes_it():
    budget = PixelBudget(1000)
    budget.charge("a.png", ImageSize("PNG", 20, 20))
    budget.charge("b.png", ImageSize("PNG", 20, 20))
    with pytest.raises(ImageTooLarge) as err:
        budget.charge("c.png", ImageSize("PNG", 20, 20))
    assert str(err.value) == (
        "c.png: image is 20x20 pixels with the 800 pixels already in this request, "
        "above the per-request limit of 1,000 pixels; send fewer or smaller images"
    )
    assert budget.used == 800
    budget.charge("rtplan.dcm", None)  # no image: costs nothing
    assert budget.fits(ImageSize("PNG", 10, 20)) and not budget.fits(ImageSize("PNG", 10, 21))


def test_read_batches_closes_a_batch_at_the_pixel_budget(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(encoded(".png", noise(10, 10)))
    (tmp_path / "big.png").write_bytes(encoded(".png", noise(20, 20)))
    paths.insert(2, tmp_path / "big.png")
    skipped = []
    batches = list(
        read_batches(
            [str(p) for p in paths], 8, lambda p, why: skipped.append((Path(p).name, why)), max_batch_pixels=250
        )
    )
    assert [[Path(p).name for p in good] for good, _ in batches] == [["0.png", "1.png"], ["2.png", "3.png"], ["4.png"]]
    assert all(len(images) == len(good) for good, images in batches)
    assert skipped == [
        ("big.png", "image is 20x20 pixels, above the per-request limit of 250 pixels; send fewer or smaller images")
    ]
    sizes = [len(good) for good, _ in read_batches([str(p) for p in paths], 2)]
    assert sizes == [2, 2, 2]  # default budget: only batch_size closes batches


# ---- memory stays bounded ----------------------------------------------------------------------

_MEMORY_PROBE = r"""
import json, resource, sys
from pathlib import Path
from paddle_dx.data.dicom import decode_dicom_bytes
from paddle_dx.data.io import decode_bytes, read_image
from paddle_dx.errors import ImageReadError

folder = Path(sys.argv[1])
read_image(folder / "warm.png"); read_image(folder / "warm.dcm")  # load codecs before measuring
blobs = {p.name: p.read_bytes() for p in folder.glob("bomb*")}
vm_kib = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize"))
limit = vm_kib * 1024 + (1536 << 20)  # ~1.5 GB above the baseline: a decoded bomb fails loudly
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = {}
for name, data in sorted(blobs.items()):
    for how, call in (("path", lambda: read_image(folder / name)),
                      ("bytes", lambda: (decode_dicom_bytes if name.endswith(".dcm") else decode_bytes)(data, name))):
        try:
            call()
            refused[f"{name} {how}"] = "decoded"
        except ImageReadError as exc:
            refused[f"{name} {how}"] = exc.problem
print(json.dumps({"grown_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
                  "refused": refused}))
"""


def test_bombs_are_refused_with_bounded_memory(tmp_path):
    (tmp_path / "warm.png").write_bytes(encoded(".png", noise(8, 8)))
    (tmp_path / "warm.dcm").write_bytes(dicom_file(8, 8))
    (tmp_path / "bomb_ihdr.png").write_bytes(png_file(50000, 50000, b"\x78\x9c" + b"\x00" * 40))
    (tmp_path / "bomb_real.png").write_bytes(real_blank_png(14000))
    (tmp_path / "bomb_hdr.png").write_bytes(radiance_hdr(30000, 30000))
    (tmp_path / "bomb_size.dcm").write_bytes(dicom_file(10000, 10000))
    (tmp_path / "bomb_junk.dcm").write_bytes(dicom_file(64, 64, private_after=1 << 30))
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report["refused"]) == 10
    for case, problem in report["refused"].items():
        assert problem != "decoded" and (
            "above the limit" in problem or "not a decodable image" in problem or "inflates to more than" in problem
        ), (case, problem)
    assert report["grown_mib"] < 100, report
