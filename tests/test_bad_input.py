"""Bad input never ends in a traceback: each case either stops with a message naming the file or
key, or is skipped and reported. The decision per case is the table in docs/reproducibility.md
("Bad input: stop or skip"); these tests are that table, executable."""

import json
import logging
import re
import resource
import runpy
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, make_tiny_dataset, tiny_config

from paddle_dx.errors import ConfigError, DataError, ImageReadError, PaddleDxError, WeightsError

RNG = np.random.default_rng(0)


def noise(h=48, w=48, c=3, dtype=np.uint8):
    top = 65535 if dtype == np.uint16 else 255
    shape = (h, w, c) if c else (h, w)
    return RNG.integers(0, top + 1, size=shape, dtype=np.int64).astype(dtype)


def png_bytes(width, height, bit_depth, colour_type, raw_rows):
    """A PNG file from its parts (lets a test declare any size cheaply)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw_rows) + chunk(b"IEND", b"")


def huge_png(path, side=20000):
    """A valid 20000 x 20000 1-bit grey PNG of ~60 KB: cheap to write, 1.2 GB once decoded to RGB."""
    comp, row = zlib.compressobj(9), b"\x00" * (1 + side // 8)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    path.write_bytes(png_bytes(side, side, 1, 0, data))


def write(path, img):
    assert cv2.imwrite(str(path), img)
    return path


# ---- images that stop a run (or are skipped with Global.skip_bad_images) -----------------


def make_bad_images(folder):
    """{name: (path, expected words in the message)} for every unreadable-image case."""
    folder.mkdir(parents=True, exist_ok=True)
    good_jpg = cv2.imencode(".jpg", noise())[1].tobytes()
    good_png = cv2.imencode(".png", noise())[1].tobytes()
    cases = {
        "truncated.jpg": (good_jpg[: len(good_jpg) // 2], "truncated JPEG"),
        "corrupt.jpg": (good_jpg[:2] + b"\x00" * 64 + good_jpg[66:], "not a decodable image"),
        "truncated.png": (good_png[: len(good_png) // 2], "not a decodable image"),
        "corrupt.png": (
            good_png[:60] + bytes(b ^ 0xFF for b in good_png[60:90]) + good_png[90:],
            "not a decodable image",
        ),
        "text.jpg": (b"patient notes, not an image\n" * 20, "not a decodable image"),
        "empty.png": (b"", "empty file"),
        "one_pixel.png": (cv2.imencode(".png", noise(1, 1))[1].tobytes(), "only 1x1 pixels"),
    }
    out = {}
    for name, (data, words) in cases.items():
        (folder / name).write_bytes(data)
        out[name] = (folder / name, words)
    huge_png(folder / "huge.png")
    out["huge.png"] = (folder / "huge.png", "20000x20000 pixels")
    return out


def test_each_unreadable_image_is_refused_with_its_name_and_reason(tmp_path):
    from paddle_dx.data.io import read_image

    for name, (path, words) in make_bad_images(tmp_path).items():
        with pytest.raises(ImageReadError) as err:
            read_image(path)
        assert str(path) in str(err.value) and words in str(err.value), name


def test_huge_image_is_refused_before_decoding(tmp_path):
    from paddle_dx.data.io import read_image

    huge_png(tmp_path / "huge.png")
    assert (tmp_path / "huge.png").stat().st_size < 200_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ImageReadError, match="above the limit"):
        read_image(tmp_path / "huge.png")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB: the image was decoded"


def test_unusual_but_valid_images_are_converted_to_rgb(tmp_path):
    from paddle_dx.data.io import read_image

    grey = write(tmp_path / "grey.png", noise(c=0))
    img = read_image(grey)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], cv2.imread(str(grey), cv2.IMREAD_UNCHANGED))
    assert np.array_equal(img[..., 0], img[..., 2])

    sixteen = noise(c=0, dtype=np.uint16)
    img = read_image(write(tmp_path / "16bit.png", sixteen))
    assert img.dtype == np.uint8 and np.abs(img[..., 0].astype(int) - sixteen / 257.0).max() <= 0.5

    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 255, 40  # pure red (OpenCV stores BGR), mostly transparent
    img = read_image(write(tmp_path / "rgba.png", bgra))
    assert img.shape == (8, 8, 3) and (img[..., 0] == 255).all() and (img[..., 1:] == 0).all()


@pytest.fixture
def dataset_with_bad_images(tmp_path):
    """A tiny dataset whose training list also names 8 unreadable files (all label 0)."""
    images, lists = make_tiny_dataset(tmp_path / "data")
    bad = make_bad_images(images / "bad")
    train = lists / "train_list.txt"
    train.write_text(train.read_text() + "".join(f"bad/{n} 0\n" for n in bad))
    return images, lists, bad


def test_bad_images_stop_the_run_at_start_up_naming_every_file(dataset_with_bad_images, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    images, lists, bad = dataset_with_bad_images
    with pytest.raises(DataError) as err:
        Trainer(tiny_config(images, lists, tmp_path / "out"))
    message = str(err.value)
    assert f"{len(bad)} unreadable image(s)" in message and "skip_bad_images" in message
    for path, words in bad.values():
        assert f"{path}: {words}" in message or (words in message and str(path) in message)
    assert not (tmp_path / "out" / "latest").exists()


def test_skip_bad_images_finishes_and_lists_every_skipped_file(dataset_with_bad_images, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    images, lists, bad = dataset_with_bad_images
    out = tmp_path / "out"
    n_good = len((lists / "train_list.txt").read_text().splitlines()) - len(bad)
    result = Trainer(tiny_config(images, lists, out, **{"Global.skip_bad_images": True, "Global.epochs": 1})).fit()
    listed = dict(line.split("\t") for line in (out / "skipped_images.txt").read_text().splitlines())
    assert set(listed) == {str(p) for p, _ in bad.values()}
    assert {s["path"] for s in json.loads((out / "metrics.json").read_text())["skipped_images"]} == set(listed)
    assert all(words in listed[str(p)] for p, words in bad.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["Train"]["images"] == n_good and manifest["data"]["Train"]["not_used"] == len(bad)
    assert result["test"]["n"] > 0 and (out / "best_model.pdparams").is_file()


def test_every_image_unreadable_is_an_empty_dataset(tmp_path):
    from paddle_dx.data.dataset import scan_images

    bad = make_bad_images(tmp_path)
    with pytest.raises(DataError, match="no readable images left"):
        scan_images([(str(p), 0) for p, _ in bad.values()], skip_bad=True)


# ---- list files ------------------------------------------------------------------------


def read_list(tmp_path, text, class_num=2, newline="\n"):
    from paddle_dx.data.list_file import read_list_file

    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b c.png").write_bytes(b"x")
    path = tmp_path / "list.txt"
    path.write_bytes(text.replace("\n", newline).encode())
    return read_list_file(path, tmp_path, class_num)


@pytest.mark.parametrize(
    "text, words",
    [
        ("a.png 0\nmissing.png 1\ngone/x.png 0\n", ["line 2: image not found", "missing.png", "line 3", "gone/x.png"]),
        ("a.png 2\n", ["line 1: label 2 is out of range 0..1", "Arch.class_num=2"]),
        ("a.png -1\n", ["line 1: label -1 is out of range 0..1"]),
        ("a.png zero\n", ["line 1: label 'zero' is not an integer"]),
        ("a.png 0\na.png 1\n", ["line 2: a.png is listed again with label 1 (label 0 earlier, line 1)"]),
        ("", ["the list is empty"]),
        ("# only a comment\n\n", ["the list is empty"]),
    ],
)
def test_list_file_problems_stop_with_file_line_and_reason(tmp_path, text, words):
    with pytest.raises(DataError) as err:
        read_list(tmp_path, text)
    assert str(tmp_path / "list.txt") in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_windows_line_endings_and_duplicate_lines_are_accepted(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        samples = read_list(tmp_path, "a.png 0\nb c.png 1\na.png 0\n", newline="\r\n")
    assert samples == [(str(tmp_path / "a.png"), 0), (str(tmp_path / "b c.png"), 1)]
    assert "duplicate line 'a.png 0' ignored" in caplog.text


@pytest.mark.parametrize("second", ["./normal/a.png", "normal//a.png", "normal/./a.png", "other/../normal/a.png"])
def test_one_image_under_two_spellings_is_one_sample(tmp_path, caplog, second):
    from paddle_dx.data.list_file import read_list_file

    (tmp_path / "normal").mkdir()
    (tmp_path / "normal" / "a.png").write_bytes(b"x")
    (tmp_path / "list.txt").write_text(f"normal/a.png 0\n{second} 0\n")
    with caplog.at_level(logging.WARNING):
        assert read_list_file(tmp_path / "list.txt", tmp_path, 2) == [(str(tmp_path / "normal" / "a.png"), 0)]
    assert "duplicate line" in caplog.text
    (tmp_path / "list.txt").write_text(f"normal/a.png 0\n{second} 1\n")
    with pytest.raises(
        DataError,
        match=rf"line 2: normal/a.png is listed again \(as {re.escape(second)}\) "
        r"with label 1 \(label 0 earlier, line 1\)",
    ):
        read_list_file(tmp_path / "list.txt", tmp_path, 2)


def test_list_entries_outside_the_image_root_are_warned_about_and_reported(tmp_path, caplog):
    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import build_dataset

    images, lists = make_tiny_dataset(tmp_path / "data")
    shared = tmp_path / "shared"
    shared.mkdir()
    write(shared / "up.png", noise())
    write(shared / "abs.png", noise())
    train = lists / "train_list.txt"
    train.write_text(train.read_text() + "../../shared/up.png 0\n" + f"{shared / 'abs.png'} 1\n")
    config = tiny_config(images, lists, tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        dataset, report = build_dataset(DataSection.of(config, "Train"))
    assert report["outside_root"] == [str(images / "../../shared/up.png"), str(shared / "abs.png")]
    assert len(dataset) == len(train.read_text().splitlines())  # allowed: they train
    warnings = [r.getMessage() for r in caplog.records if "outside image_root" in r.getMessage()]
    assert len(warnings) == 1 and "2 image(s)" in warnings[0] and "up.png" in warnings[0] and "abs.png" in warnings[0]
    assert build_dataset(DataSection.of(config, "Eval"))[1]["outside_root"] == []
    from paddle_dx.engine.manifest import data_fingerprint

    splits, _ = data_fingerprint(config, {})
    assert splits["Train"]["outside_image_root"] == report["outside_root"]  # the manifest says so
    assert splits["Eval"]["outside_image_root"] == []


def test_a_class_missing_from_a_split(tmp_path, caplog):
    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import build_dataset

    images, lists = make_tiny_dataset(tmp_path / "data")
    for split in ("train", "val"):
        only_normal = [l for l in (lists / f"{split}_list.txt").read_text().splitlines() if l.endswith(" 0")]
        (lists / f"{split}_0.txt").write_text("\n".join(only_normal) + "\n")
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{
            "DataLoader.Train.dataset.cls_label_path": str(lists / "train_0.txt"),
            "DataLoader.Eval.dataset.cls_label_path": str(lists / "val_0.txt"),
        },
    )
    with pytest.raises(DataError, match=r"train_0.txt: no images of class label\(s\) \[1\] in the Train split"):
        build_dataset(DataSection.of(config, "Train"))
    with caplog.at_level(logging.WARNING):
        dataset, _ = build_dataset(DataSection.of(config, "Eval"))  # evaluation still runs, with a warning
    assert len(dataset) > 0 and "val_0.txt: no images of class label(s) [1] in the Eval split" in caplog.text


# ---- configs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_text, error",
    [
        ("Global:\n  epochs: 3\n   seed: 1\n", r"(?s)bad.yaml: YAML syntax error.*line 3"),
        ("Global:\n  epoch: 3\n", r"unknown config key 'Global.epoch' \(did you mean 'epochs'\?\)"),
        ("Global:\n  epochs: three\n", r"config key 'Global.epochs' has the wrong type: expected int, got str"),
        ("Arch:\n  dropout: [0.5]\n", r"config key 'Arch.dropout' has the wrong type"),
    ],
)
def test_config_errors_name_the_file_or_key(tmp_path, yaml_text, error):
    from paddle_dx.config import load_config

    (tmp_path / "bad.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError, match=error):
        load_config(tmp_path / "bad.yaml")


def pipeline_config(tmp_path, **overrides):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    return lambda: tiny_config(images, lists, tmp_path / "out", **overrides)


@pytest.mark.parametrize(
    "overrides, error",
    [
        # PaddleClas's own spelling, left as text: refused when the config is read, not in the DataLoader
        (
            {"DataLoader.Train.dataset.transform_ops": "[{NormalizeImage: {scale: 1.0/255.0}}]"},
            r"^DataLoader\.Train\.dataset\.transform_ops\[0\]\.NormalizeImage\.scale: expected number, got str "
            r"\('1\.0/255\.0'\)$",
        ),
        (
            {"DataLoader.Test.dataset.transform_ops": "[{ResizeImage: {}}, {CenterCrop: {sizes: 3}}]"},
            r"^DataLoader\.Test\.dataset\.transform_ops\[1\]\.CenterCrop: unknown parameter 'sizes'",
        ),
        # trains and exports silently otherwise; only tools/infer.py would fail
        (
            {"DataLoader.Train.dataset.transform_ops": "[{RandomResizedCrop: {size: 224}}, {NormalizeImage: {}}]"},
            r"^DataLoader\.Train\.dataset\.transform_ops gives images of shape \[3, 224, 224\] .* but "
            r"Global\.image_shape is \[3, 32, 32\]",
        ),
        (
            {"DataLoader.Eval.dataset.transform_ops": "[{ResizeImage: {resize_short: 32}}, {NormalizeImage: {}}]"},
            r"^DataLoader\.Eval\.dataset\.transform_ops gives images of shape \[3, 32, 43\]",
        ),
        (
            {"DataLoader.Eval.dataset.transform_ops": "[{ResizeImage: {}}, {Grayscale: {channels: 1}}]"},
            r"^DataLoader\.Eval\.dataset\.transform_ops gives images of shape \[1, 32, 32\]",
        ),
    ],
)
def test_transform_ops_are_checked_when_the_config_is_loaded(tmp_path, overrides, error):
    with pytest.raises(ConfigError, match=error):
        pipeline_config(tmp_path, **overrides)()


def test_a_pipeline_op_that_fails_on_a_valid_image_is_named_at_load(tmp_path):
    from paddle_dx.data.transforms import TRANSFORMS, Op

    @TRANSFORMS.register
    class BrokenOp(Op):
        def __init__(self):
            pass

        def __call__(self, img, rng):
            raise ValueError("cannot work on this")

    try:
        with pytest.raises(
            ConfigError,
            match=r"^DataLoader\.Train\.dataset\.transform_ops: BrokenOp fails on a "
            r"300x400 RGB test image: ValueError: cannot work on this$",
        ):
            pipeline_config(tmp_path, **{"DataLoader.Train.dataset.transform_ops": "[BrokenOp, ResizeImage]"})()
    finally:
        TRANSFORMS._items.pop("BrokenOp")


def test_tools_print_one_line_and_exit_2_without_traceback(tmp_path, monkeypatch, capsys):
    """The real tools/train.py entry point, run in-process, on a config with a syntax error."""
    (tmp_path / "bad.yaml").write_text("Global: [unclosed\n")
    monkeypatch.setattr(sys, "argv", ["train.py", "-c", str(tmp_path / "bad.yaml")])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "tools" / "train.py"), run_name="__main__")
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith(f"error: {tmp_path / 'bad.yaml'}: YAML syntax error") and "Traceback" not in err


# ---- weights and checkpoints -----------------------------------------------------------


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    """A finished 2-class LeNet5 run (weights + resumable checkpoint) and its data."""
    from paddle_dx.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("lenet")
    images, lists = make_tiny_dataset(root / "data")
    Trainer(tiny_config(images, lists, root / "out", **{"Global.epochs": 1})).fit()
    return images, lists, root / "out"


def three_class_config(tmp_path, **overrides):
    images, lists = make_tiny_dataset(tmp_path / "data3", per_class=4, classes=("a", "b", "c"))
    return tiny_config(images, lists, tmp_path / "out3", **{"Arch.class_num": 3, **overrides})


def test_checkpoint_with_another_class_count_is_refused(lenet_run, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    weights = lenet_run[2] / "best_model.pdparams"
    with pytest.raises(WeightsError, match=f"{weights}: checkpoint has 2 classes but Arch.class_num is 3"):
        Trainer(three_class_config(tmp_path, **{"Global.pretrained_model": str(weights)}))
    latest = lenet_run[2] / "latest"
    trainer = Trainer(three_class_config(tmp_path, **{"Global.checkpoints": str(latest)}))
    with pytest.raises(ConfigError, match=r"resuming with a config that changes the run \(.*Arch\.class_num: 2 -> 3"):
        trainer.fit()  # resuming, too: Paddle alone would only warn and keep a random head


def test_weights_for_another_architecture_are_refused(lenet_run, tmp_path):
    from paddle_dx.models import build_model, load_model_weights

    weights = lenet_run[2] / "best_model.pdparams"
    with pytest.raises(WeightsError, match="none of its .* tensors fit this model .weights for another architecture"):
        build_model({"name": "ResNet18", "class_num": 2, "pretrained": str(weights)})
    model = build_model({"name": "ResNet18", "class_num": 2, "pretrained": False})
    with pytest.raises(WeightsError, match=f"{weights}: not a checkpoint of this model .ResNet18."):
        load_model_weights(model, weights)
    (tmp_path / "notes.pdparams").write_text("not weights")
    with pytest.raises(WeightsError, match="notes.pdparams: not a readable Paddle weights file"):
        load_model_weights(model, tmp_path / "notes.pdparams")


# ---- output directory ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_output_dir_fails_at_start_up(lenet_run, tmp_path, where):
    """Tests run as root, which ignores permission bits: use places no one can write."""
    from paddle_dx.engine.trainer import Trainer

    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "a_file" / "run" if where == "under_a_file" else Path("/proc/paddle_dx_run")
    images, lists, _ = lenet_run
    with pytest.raises(PaddleDxError, match=f"output directory {out} is not writable"):
        Trainer(tiny_config(images, lists, out))


def test_full_disk_fails_at_start_up(lenet_run, tmp_path, monkeypatch):
    import shutil

    from paddle_dx.engine.trainer import Trainer

    images, lists, _ = lenet_run
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=5 << 20))  # 5 MiB left
    with pytest.raises(PaddleDxError, match=r"only 5 MiB free, this run needs about \d+ MiB"):
        Trainer(tiny_config(images, lists, tmp_path / "out"))


# ---- start-up: list files and the run folder --------------------------------------------


def test_design_card_command_on_a_fresh_checkout_says_what_to_put_where(tmp_path, monkeypatch, capsys):
    """tools/train.py -c configs/esophagus_resnet50.yaml without data: the split command, no run folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", "-c", str(ROOT / "configs" / "esophagus_resnet50.yaml")])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "tools" / "train.py"), run_name="__main__")
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "error: DataLoader.Train.dataset.cls_label_path: data/esophagus/lists/train_list.txt not found "
        "(nor DataLoader.Eval: data/esophagus/lists/val_list.txt, DataLoader.Test: data/esophagus/lists/test_list.txt). "
        "Put the images in data/esophagus/images/<class>/ (classes: normal, pathological) and run: "
        "python tools/split_dataset.py --image-root data/esophagus/images --out data/esophagus/lists "
        "--classes normal,pathological\n"
    )
    assert list(tmp_path.iterdir()) == []  # no output/ left behind


def test_a_missing_test_list_stops_the_run_before_training(tmp_path):
    from paddle_dx.engine.trainer import Trainer

    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    (lists / "test_list.txt").unlink()
    with pytest.raises(
        DataError,
        match=r"^DataLoader.Test.dataset.cls_label_path: .*test_list.txt not found\. "
        r"Put the images in .*images/<class>/ \(classes: normal, lesion\)",
    ):
        Trainer(tiny_config(images, lists, tmp_path / "out" / "run"))
    assert not (tmp_path / "out").exists()


def test_a_bad_line_in_the_test_list_stops_the_run_before_training(tmp_path):
    from paddle_dx.engine.trainer import Trainer

    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    with open(lists / "test_list.txt", "a") as f:
        f.write("normal/missing.png 0\n")
    with pytest.raises(DataError, match=r"test_list.txt: 1 problem\(s\):\s+line \d+: image not found"):
        Trainer(tiny_config(images, lists, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_start_up_failure_after_the_run_folder_was_made_removes_it_when_empty(tmp_path):
    from paddle_dx.engine.trainer import Trainer

    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    first = (lists / "train_list.txt").read_text().split()[0]
    (images / first).write_bytes(b"not an image")  # found by the image scan, after check_writable
    with pytest.raises(DataError, match="1 unreadable image"):
        Trainer(tiny_config(images, lists, tmp_path / "out" / "run"))
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(DataError):
        Trainer(tiny_config(images, lists, tmp_path / "kept"))
    assert (tmp_path / "kept" / "notes.txt").read_text() == "mine"  # an existing folder is never removed
