"""Hostile files and paths given as images or lists: each ends in one line saying what the path
really is, and a large 16-bit image is converted in bounded memory."""

import os
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest
from conftest import ROOT

from paddle_dx.data.image_header import declared_size
from paddle_dx.data.io import read_image, to_rgb_uint8
from paddle_dx.data.list_file import read_label_list, read_list_file
from paddle_dx.errors import DataError, ImageReadError
from paddle_dx.inference.inputs import collect_inputs, read_path_list


def finishes(call, seconds=20):
    """Run ``call`` in a daemon thread; the exception it raised (a hang fails the test)."""
    box = {}

    def target():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked (opened a FIFO?)"
    return box.get("error")


def test_a_fifo_or_a_folder_given_as_an_image_says_what_it_is(tmp_path):
    fifo, folder = tmp_path / "scan.png", tmp_path / "dir.png"
    os.mkfifo(fifo)
    folder.mkdir()
    for call in (lambda: read_image(fifo), lambda: declared_size(fifo), lambda: collect_inputs(fifo)):
        error = finishes(call)
        assert isinstance(error, DataError) and "is a FIFO (named pipe), not a file" in str(error), error
    with pytest.raises(ImageReadError, match="dir.png: is a folder, not a file"):
        read_image(folder)
    (tmp_path / "list.txt").write_text("scan.png 0\ndir.png 1\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_list_file(tmp_path / "list.txt", tmp_path, 2)
    assert "line 1: image is a FIFO" in str(err.value) and "line 2: image is a folder" in str(err.value)


def test_a_megabyte_path_is_one_short_line_everywhere(tmp_path):
    long = str(tmp_path / ("a" * 1_000_000)) + ".png"
    with pytest.raises(ImageReadError, match="path too long") as err:
        read_image(long)
    assert len(str(err.value)) < 400
    with pytest.raises(DataError, match="path too long"):
        collect_inputs(long)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{'b' * 1_000_000}.png 0\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: image path too long") as err:
        read_list_file(listing, tmp_path, 2)
    assert len(str(err.value)) < 600


@pytest.mark.parametrize(
    "data, words",
    [
        ("0 normal\n1 l\xe9sion\n".encode("latin-1"), r"label_list.txt:2: not UTF-8 text \(byte 0xe9\)"),
        (b"0 normal\n1 \x00\x01\x02\xff", r"label_list.txt:2: a NUL byte: this label list is a binary file"),
    ],
)
def test_a_latin1_or_binary_label_list_is_refused_naming_the_line(tmp_path, data, words):
    (tmp_path / "label_list.txt").write_bytes(data)
    with pytest.raises(DataError, match=words):
        read_label_list(tmp_path / "label_list.txt")


def test_a_latin1_or_binary_list_file_is_refused_naming_the_line(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    listing = tmp_path / "train_list.txt"
    listing.write_bytes("a.png 0\nd\xe9j\xe0.png 1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"train_list.txt:2: not UTF-8 text"):
        read_list_file(listing, tmp_path, 2)
    with pytest.raises(DataError, match=r"train_list.txt:2: not UTF-8 text"):
        read_path_list(listing)
    listing.write_bytes(b"a.png 0\n" + bytes(range(256)))
    with pytest.raises(DataError, match=r"train_list.txt:2: a NUL byte"):
        read_list_file(listing, tmp_path, 2)


def test_the_same_image_by_relative_and_absolute_path_is_one_sample(tmp_path):
    (tmp_path / "images" / "a").mkdir(parents=True)
    image = tmp_path / "images" / "a" / "x.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(image.with_name("y.png")), np.zeros((8, 8, 3), np.uint8))
    listing = tmp_path / "list.txt"
    listing.write_text(f"a/x.png 0\n{image} 0\na/../a/y.png 1\n", encoding="utf-8")
    samples = read_list_file(listing, tmp_path / "images", 2)
    assert [label for _, label in samples] == [0, 1]  # the absolute line is the same image: dropped
    listing.write_text(f"a/x.png 0\n{image} 1\n", encoding="utf-8")
    with pytest.raises(DataError, match="is listed again with label 1 \\(label 0 earlier, line 1 as a/x.png\\)"):
        read_list_file(listing, tmp_path / "images", 2)


def test_16bit_rgba_is_converted_like_before():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    bgra = np.stack([values, values[::-1], values.T, values], axis=2)
    expected = (bgra[:, :, 2::-1].astype(np.float64) / 257).round().astype(np.uint8)
    assert np.array_equal(to_rgb_uint8(bgra), expected)
    assert np.array_equal(to_rgb_uint8(values)[:, :, 0], expected[:, :, 2])


def test_a_large_16bit_rgba_image_is_converted_without_a_float_copy():
    """8000 x 8000 16-bit RGBA (a 2 MB PNG) went through float32 (3-5 GB); now the address space
    is capped at what the 8-bit RGB result needs plus strips (the float path needs 4x more)."""
    code = (
        "import resource, sys, numpy as np\n"
        "from paddle_dx.data.io import to_rgb_uint8\n"
        "img = np.full((4000, 4000, 4), 40000, np.uint16)\n"
        "vm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmSize')) * 1024\n"
        "limit = vm + (160 << 20)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "out = to_rgb_uint8(img)\n"
        "print(out.shape, out[0, 0].tolist())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "(4000, 4000, 3) [156, 156, 156]"
