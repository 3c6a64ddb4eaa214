"""DICOM input: HU conversion, windows, MONOCHROME1, the CTWindow op, codec errors, training on .dcm."""

import json

import numpy as np
import pydicom
import pytest
from dicom_testdata import disc_slice, write_ct_slice
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from paddle_dx.data.ct_window import CTWindow, apply_window, resolve_window
from paddle_dx.data.io import read_image
from paddle_dx.data.transforms import build_transforms
from paddle_dx.errors import ConfigError, ImageReadError

CT_SMALL = get_testdata_file("CT_small.dcm")
# CT_small.dcm: stored int16, RescaleSlope 1, RescaleIntercept -1024
# pixel (0, 0) = 175 -> -849 HU;  pixel (32, 34) = 964 -> -60 HU


def test_ct_small_hounsfield_units_and_default_lung_window():
    img = read_image(CT_SMALL)
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8
    assert img.hu[0, 0] == -849 and img.hu[32, 34] == -60
    # lung window L -600 / W 1500: (HU + 1350) * 255 / 1500, rounded
    assert list(img[0, 0]) == [85, 85, 85]  # 501 * 0.17 = 85.17
    assert list(img[32, 34]) == [219, 219, 219]  # 1290 * 0.17 = 219.3


@pytest.mark.parametrize(
    "window, at_minus_60, at_minus_849",
    [
        ("mediastinum", 64, 0),  # L 40 / W 400: (-60 + 160) * 255 / 400 = 63.75
        ("bone", 62, 0),  # L 400 / W 1800: (-60 + 500) * 255 / 1800 = 62.33
        ([-850, 10], 255, 153),  # explicit: (-849 + 855) * 25.5 = 153
    ],
)
def test_ct_window_op_rewindows_the_slice(window, at_minus_60, at_minus_849):
    out = CTWindow(window)(read_image(CT_SMALL), None)
    assert type(out) is np.ndarray and out.dtype == np.uint8 and out.shape == (128, 128, 3)
    assert out[32, 34, 0] == at_minus_60 and out[0, 0, 0] == at_minus_849


def test_ct_window_is_a_no_op_on_ordinary_and_derived_images():
    png_like = np.full((8, 8, 3), 77, np.uint8)
    assert CTWindow("bone")(png_like, None) is png_like
    flipped = read_image(CT_SMALL)[:, ::-1]  # a derived array no longer holds HU
    assert CTWindow("bone")(flipped, None) is flipped


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    img = read_image(path)
    assert img[0, 0, 0] == 255 - 85
    assert CTWindow("mediastinum")(img, None)[32, 34, 0] == 255 - 64


def test_window_names_and_errors():
    assert resolve_window("lung") == (-600.0, 1500.0)
    assert resolve_window([40, 400]) == (40.0, 400.0)
    assert list(apply_window(np.array([-1350.0, -600.0, 150.0, 3000.0]), -600, 1500)) == [0, 128, 255, 255]
    with pytest.raises(ConfigError, match="unknown window 'lungs'"):
        build_transforms([{"CTWindow": {"window": "lungs"}}], [3, 32, 32])
    with pytest.raises(ConfigError, match="width > 0"):
        resolve_window([40, 0])


def test_compressed_dicom_without_codec_names_file_and_package():
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGLSLossless

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here, so there is no missing codec to report")
    path = get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    message = str(err.value)
    assert "MR_small_jpeg_ls_lossless.dcm" in message and "JPEG-LS" in message
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in message and "python-gdcm" in message


def test_non_image_and_non_dicom_files_are_clear_errors(tmp_path):
    with pytest.raises(ImageReadError, match="rtplan.dcm: DICOM file has no pixel data"):
        read_image(get_testdata_file("rtplan.dcm"))
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"this is not dicom at all" * 10)
    with pytest.raises(ImageReadError, match="fake.dcm: not a DICOM file"):
        read_image(fake)


def test_config_on_dicom_files_trains_and_exports_its_window(tmp_path):
    """A list file of .dcm slices trains; the configured window is applied and sits in the spec."""
    from conftest import tiny_config

    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import build_dataset, transforms_for
    from paddle_dx.engine.trainer import Trainer

    images, lists = tmp_path / "dcm", tmp_path / "lists"
    lists.mkdir()
    series, study = generate_uid(), generate_uid()
    rows = {"train": [], "val": [], "test": []}
    for i in range(12):
        label = i % 2
        hu = disc_slice(32, centre=(16, 16) if label else None, radius=6, background=-700)
        name = f"{label}/slice{i:02d}.dcm"
        write_ct_slice(images / name, hu, series, study, z=float(i))
        rows[("train", "train", "val", "test", "train", "train")[i // 2]].append(f"{name} {label}\n")
    for split, lines in rows.items():
        (lists / f"{split}_list.txt").write_text("".join(lines))
    (lists / "label_list.txt").write_text("0 clear\n1 disc\n")
    ops = [{"CTWindow": {"window": "mediastinum"}}, {"ResizeImage": {}}, {"NormalizeImage": {}}]
    config = tiny_config(images, lists, tmp_path / "out", **{"Global.epochs": 1})
    for mode in ("Train", "Eval", "Test"):
        config["DataLoader"][mode]["dataset"]["transform_ops"] = ops
    assert transforms_for(DataSection.of(config, "Eval")).spec()[0] == {"CTWindow": {"window": "mediastinum"}}
    dataset, report = build_dataset(DataSection.of(config, "Train"))
    assert not report["skipped"] and len(dataset) == 8
    # mediastinum maps the -700 HU background to 0 -> -1 after NormalizeImage; lung would give ~0.1
    assert np.allclose(dataset[(0, 0)][0][:, 0, 0], -1.0)
    trainer = Trainer(config)
    result = trainer.fit()
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["best_epoch"] == result["best_epoch"] == 1 and len(result["history"]) == 1
    assert sum(map(sum, saved["test"]["confusion_matrix"])) == 2  # both .dcm test slices evaluated

    # the exported model carries the window: the predictor preprocesses a .dcm exactly like Eval
    from paddle_dx.inference.export import export_model
    from paddle_dx.inference.predictor import Predictor

    spec = export_model(trainer.model, config, tmp_path / "inference")
    assert spec["preprocess"][0] == {"CTWindow": {"window": "mediastinum"}}
    predictor, slice_path = Predictor(tmp_path / "inference"), images / "1/slice01.dcm"
    expected = transforms_for(DataSection.of(config, "Eval"))(read_image(slice_path))
    assert np.array_equal(predictor.preprocess(read_image(slice_path)), expected)
    assert np.allclose(expected[:, 0, 0], -1.0)
    assert predictor.predict([str(slice_path)])[0]["class_name"] in ("clear", "disc")


def test_ct_window_anywhere_but_first_is_a_config_error():
    """After any other op the slice is plain pixels (its HU gone) and CTWindow would do nothing."""
    with pytest.raises(ConfigError, match=r"transform_ops\[1\].CTWindow must be listed first"):
        build_transforms([{"ResizeImage": {}}, {"CTWindow": {"window": "bone"}}], [3, 32, 32])
    assert build_transforms([{"CTWindow": {"window": "bone"}}, {"ResizeImage": {}}], [3, 32, 32])


def test_readers_are_chosen_by_extension_and_dicom_is_registered_by_the_data_package(tmp_path):
    import subprocess
    import sys

    from paddle_dx.data.io import READERS, register_reader

    fresh = "from paddle_dx.data.io import READERS, read_image; print('.dcm' in READERS)"
    assert subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True, check=True).stdout.split() == [
        "True"
    ]
    image = np.full((3, 4, 3), 7, np.uint8)
    register_reader(".Toy")(lambda path: image)
    try:
        (tmp_path / "a.toy").write_bytes(b"not an image cv2 could read")
        assert read_image(tmp_path / "a.toy") is image
    finally:
        READERS._items.pop(".toy")


def with_rescale_slope(good, path, value):
    """A copy of ``good`` whose RescaleSlope element holds ``value`` as written (pydicom refuses to write 'abc')."""
    data = good.read_bytes()
    element = b"\x28\x00\x53\x10DS\x04\x001.0 "
    assert data.count(element) == 1
    value += b" " * (len(value) % 2)
    path.write_bytes(data.replace(element, b"\x28\x00\x53\x10DS" + len(value).to_bytes(2, "little") + value))
    return path


@pytest.mark.parametrize(
    "slope, words",
    [
        (b"abc", "RescaleSlope 'abc' is not a number"),
        (b"NaN", "RescaleSlope is nan"),
        (b"inf", "RescaleSlope is inf"),
        (b"0", "RescaleSlope is 0"),
        (b"1e308", "beyond float32"),
    ],
)
def test_a_bad_rescale_slope_is_a_clear_error_and_does_not_stop_the_other_files(tmp_path, slope, words):
    from paddle_dx.inference.inputs import read_batches

    good = tmp_path / "good.dcm"
    write_ct_slice(good, disc_slice(32, (16, 16)), generate_uid(), generate_uid(), 1.0)
    bad = with_rescale_slope(good, tmp_path / "bad.dcm", slope)
    with pytest.raises(ImageReadError, match=rf"bad\.dcm: .*{words}"):
        read_image(bad)
    skipped = []
    batches = list(read_batches([str(good), str(bad), str(good)], 8, lambda p, why: skipped.append((p, why))))
    assert [paths for paths, _ in batches] == [[str(good), str(good)]]
    assert skipped and skipped[0][0] == str(bad) and words.split()[-1] in skipped[0][1]


def test_a_one_pixel_dicom_is_refused_like_a_one_pixel_png(tmp_path):
    path = tmp_path / "dot.dcm"
    write_ct_slice(path, np.zeros((1, 1), np.int16), generate_uid(), generate_uid(), 1.0)
    with pytest.raises(ImageReadError, match=r"dot\.dcm: image is only 1x1 pixels"):
        read_image(path)
