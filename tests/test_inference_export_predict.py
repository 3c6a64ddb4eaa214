"""Export a tiny trained model, predict with Paddle Inference, and prove the predictor uses
the training preprocessing (parity with the dygraph model) and really reads inference.yml."""

import csv
import io
import runpy
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml
from conftest import ROOT, make_tiny_dataset, tiny_config

from paddle_dx.config import dump_config
from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import transforms_for
from paddle_dx.data.io import read_image
from paddle_dx.data.transforms import build_transforms
from paddle_dx.errors import ConfigError, DataError, ImageReadError, WeightsError
from paddle_dx.inference import Predictor, load_spec
from paddle_dx.inference.inputs import collect_inputs
from paddle_dx.models import build_model, load_model_weights
from paddle_dx.utils.hashing import file_sha256


def run_tool(name, argv, capsys):
    """Run tools/<name> in this process (a subprocess would cost ~5 s of Paddle import)."""
    old = sys.argv
    sys.argv = [name, *argv]
    try:
        runpy.run_path(str(ROOT / "tools" / name), run_name="__main__")
    finally:
        sys.argv = old
    return capsys.readouterr()


def write_images(folder):
    """Readable images in several formats (48x40, so ResizeImage matters), plus bad files."""
    rng = np.random.default_rng(3)
    (folder / "sub").mkdir(parents=True)
    good = []
    for i in range(4):
        img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        if i % 2:
            cv2.circle(img, (24, 20), 9, (20, 20, 20), -1)
        path = folder / ("sub" if i == 3 else "") / f"rgb_{i}.png"
        cv2.imwrite(str(path), img)
        good.append(path)
    cv2.imwrite(str(folder / "photo.jpg"), rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    cv2.imwrite(str(folder / "grey.png"), rng.integers(0, 255, (40, 48), dtype=np.uint8))
    cv2.imwrite(str(folder / "rgba.png"), rng.integers(0, 255, (40, 48, 4), dtype=np.uint8))
    good += [folder / "photo.jpg", folder / "grey.png", folder / "rgba.png"]
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (folder / "notes.txt").write_text("not an image, ignored by extension")
    return sorted(str(p) for p in good), str(folder / "broken.png")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Train LeNet5 for one epoch, export it with tools/export_model.py; return a namespace."""
    from paddle_dx.engine.trainer import Trainer

    tmp = tmp_path_factory.mktemp("infer")
    images, lists = make_tiny_dataset(tmp / "data", per_class=6, size=32)
    config = tiny_config(images, lists, tmp / "run", **{"Global.epochs": 1})
    Trainer(config).fit()
    cfg_file = tmp / "config.yaml"
    dump_config(config, cfg_file)
    out = tmp / "inference"
    argv = [
        "-c",
        str(cfg_file),
        "-o",
        f"Global.pretrained_model={tmp / 'run' / 'best_model'}",
        "-o",
        f"Global.save_inference_dir={out}",
    ]
    old = sys.argv
    sys.argv = ["export_model.py", *argv]
    try:
        runpy.run_path(str(ROOT / "tools" / "export_model.py"), run_name="__main__")
    finally:
        sys.argv = old
    good, broken = write_images(tmp / "predict")
    model = build_model(dict(config["Arch"], pretrained=False))
    load_model_weights(model, tmp / "run" / "best_model.pdparams")
    model.eval()

    class NS:
        pass

    ns = NS()
    ns.tmp, ns.config, ns.cfg_file, ns.out, ns.model = tmp, config, cfg_file, out, model
    ns.weights, ns.folder, ns.good, ns.broken = tmp / "run" / "best_model.pdparams", tmp / "predict", good, broken
    return ns


def dygraph_probs(model, transforms, paths):
    """The reference: training-side preprocessing and the dygraph model in eval mode."""
    batch = np.stack([transforms(read_image(p)) for p in paths])
    with paddle.no_grad():
        return paddle.nn.functional.softmax(model(paddle.to_tensor(batch)), axis=1).numpy()


def test_export_writes_model_and_complete_spec(exported):
    files = sorted(p.name for p in exported.out.iterdir())
    assert "inference.pdiparams" in files and "inference.yml" in files
    assert "inference.json" in files or "inference.pdmodel" in files
    spec = load_spec(exported.out)
    assert spec["class_names"] == ["normal", "lesion"]
    assert spec["image_shape"] == [3, 32, 32]
    assert spec["arch"] == "LeNet5"
    assert spec["preprocess"] == transforms_for(DataSection.of(exported.config, "Eval")).spec()
    assert spec["weights_sha256"] == file_sha256(exported.weights)
    assert spec["params_sha256"] == file_sha256(exported.out / spec["params_file"])
    import paddle_dx

    assert spec["paddle_dx_version"] == paddle_dx.__version__
    # the dygraph weights travel with the export and are the trained ones
    assert spec["dygraph_weights_sha256"] == file_sha256(exported.out / spec["dygraph_weights"])
    reloaded = load_model_weights(
        build_model(dict(exported.config["Arch"], pretrained=False)), exported.out / spec["dygraph_weights"]
    )
    for name, value in exported.model.state_dict().items():
        np.testing.assert_array_equal(reloaded.state_dict()[name].numpy(), value.numpy())


@pytest.mark.parametrize("onednn, atol", [(False, 1e-5), (True, 1e-3)])
def test_predictor_matches_dygraph_eval(exported, onednn, atol):
    predictor = Predictor(exported.out, enable_mkldnn=onednn, threads=2)
    got = np.array([[r["probs"][n] for n in predictor.class_names] for r in predictor.predict(exported.good, 3)])
    want = dygraph_probs(exported.model, transforms_for(DataSection.of(exported.config, "Eval")), exported.good)
    np.testing.assert_allclose(got, want, atol=atol, rtol=0)
    assert want.std() > 1e-4  # the model's outputs vary across images, so parity is not trivial


def test_predict_api_accepts_paths_and_arrays(exported):
    predictor = Predictor(exported.out, enable_mkldnn=False, threads=1)
    array = read_image(exported.good[0])
    results = predictor.predict([exported.good[0], array])
    assert results[0]["path"] == exported.good[0] and results[1]["path"] is None
    assert results[0]["probs"] == pytest.approx(results[1]["probs"], abs=1e-7)
    for r in results:
        assert set(r["probs"]) == {"normal", "lesion"}
        assert r["class_name"] == predictor.class_names[r["class_id"]] == max(r["probs"], key=r["probs"].get)
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    lone = predictor.predict(exported.good[0])[0]["probs"]  # a lone path is one image (batch 1: last digits may differ)
    assert lone == pytest.approx(results[0]["probs"], abs=1e-6)
    arrays = predictor.predict_arrays([array, array[:, ::-1]])
    assert arrays.shape == (2, 2) and arrays.dtype == np.float32
    assert predictor.preprocess(array).shape == (3, 32, 32)
    with pytest.raises(ImageReadError, match="broken.png"):
        predictor.predict([exported.good[0], exported.broken])
    with pytest.raises(ImageReadError, match="HxWx3 RGB uint8"):
        predictor.predict([array.astype(np.float32)])


def test_infer_tool_writes_csv_and_reports_skipped(exported, capsys):
    csv_path = exported.tmp / "preds.csv"
    captured = run_tool(
        "infer.py",
        [
            "--model-dir",
            str(exported.out),
            "--input",
            str(exported.folder),
            "--batch-size",
            "4",
            "--output",
            str(csv_path),
            "--threads",
            "2",
        ],
        capsys,
    )
    rows = list(csv.reader(io.StringIO(csv_path.read_text())))
    assert rows[0] == ["path", "predicted_class", "normal", "lesion"]
    assert [r[0] for r in rows[1:]] == [p for p in collect_inputs(exported.folder) if p != exported.broken]
    assert sorted(r[0] for r in rows[1:]) == exported.good  # grey and RGBA included, notes.txt ignored
    probs = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [r[1] for r in rows[1:]] == [["normal", "lesion"][i] for i in probs.argmax(axis=1)]
    want = dygraph_probs(
        exported.model, transforms_for(DataSection.of(exported.config, "Eval")), [r[0] for r in rows[1:]]
    )
    np.testing.assert_allclose(probs, want, atol=1e-3)
    lines = captured.err.strip().splitlines()
    assert any("skipped" in line and exported.broken in line for line in lines)
    assert lines[-1].startswith(f"predicted {len(exported.good)} image(s), skipped 1 unreadable")


def test_infer_tool_reads_list_files(exported, capsys):
    folder = Path(exported.folder)
    listing = exported.tmp / "list.txt"
    listing.write_text("grey.png 1\nsub/rgb_3.png\n\nmissing.png 0\n")
    captured = run_tool(
        "infer.py",
        ["--model-dir", str(exported.out), "--input", str(listing), "--image-root", str(folder), "--disable-mkldnn"],
        capsys,
    )
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert [r[0] for r in rows[1:]] == [str(folder / "grey.png"), str(folder / "sub" / "rgb_3.png")]
    assert "missing.png: file not found" in captured.err
    assert captured.err.strip().splitlines()[-1].startswith("predicted 2 image(s), skipped 1")


def edited_copy(exported, name, edit):
    """A copy of the export whose inference.yml preprocessing ``edit`` changed."""
    target = exported.tmp / name
    shutil.copytree(exported.out, target)
    spec = yaml.safe_load((target / "inference.yml").read_text())
    edit(spec["preprocess"])
    (target / "inference.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target, spec["preprocess"]


def _set_mean(ops):
    next(op for op in ops if "NormalizeImage" in op)["NormalizeImage"]["mean"] = [0.1, 0.2, 0.9]


def _drop_normalize(ops):
    ops[:] = [op for op in ops if "NormalizeImage" not in op]


@pytest.mark.parametrize("edit", [_set_mean, _drop_normalize], ids=["change-mean", "delete-normalize"])
def test_inference_yml_drives_preprocessing(exported, edit):
    original = Predictor(exported.out, enable_mkldnn=False, threads=1).predict_arrays(
        [read_image(p) for p in exported.good]
    )
    model_dir, ops = edited_copy(exported, f"edited-{edit.__name__}", edit)
    edited = Predictor(model_dir, enable_mkldnn=False, threads=1)
    got = edited.predict_arrays([read_image(p) for p in exported.good])
    assert np.abs(got - original).max() > 1e-3
    want = dygraph_probs(exported.model, build_transforms(ops, [3, 32, 32]), exported.good)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_inference_yml_errors_name_the_file(exported):
    no_resize, _ = edited_copy(exported, "no-resize", lambda ops: ops.pop(0))
    with pytest.raises(DataError, match=r"inference.yml: preprocessing gives shape \[3, 40, 48\]"):
        Predictor(no_resize, threads=1).predict([exported.good[0]])
    bad_op, _ = edited_copy(exported, "bad-op", lambda ops: ops.insert(0, {"ResizeImag": {}}))
    with pytest.raises(ConfigError, match="inference.yml: preprocess.*did you mean 'ResizeImage'"):
        Predictor(bad_op, threads=1)
    tampered = exported.tmp / "tampered"
    shutil.copytree(exported.out, tampered)
    with open(tampered / "inference.pdiparams", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(WeightsError, match="SHA-256 differs"):
        Predictor(tampered, threads=1)
    with pytest.raises(ConfigError, match="inference.yml: not found"):
        Predictor(exported.tmp, threads=1)


def test_export_tool_needs_existing_weights(exported, capsys):
    with pytest.raises(SystemExit) as exc:
        run_tool(
            "export_model.py",
            ["-c", str(exported.cfg_file), "-o", f"Global.save_inference_dir={exported.tmp / 'x'}"],
            capsys,
        )
    assert exc.value.code == 2
    assert "Global.pretrained_model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_tool(
            "export_model.py",
            ["-c", str(exported.cfg_file), "-o", f"Global.pretrained_model={exported.tmp / 'nope'}"],
            capsys,
        )
    assert "weights not found" in capsys.readouterr().err


def test_exported_files_follow_the_umask_like_any_other_file(exported):
    """A colleague can read an export (mkstemp's 0600 used to leave inference.yml and the
    weights readable by their owner only)."""
    import stat

    from paddle_dx.utils.files import _UMASK

    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in exported.out.iterdir() if p.is_file()}
    assert "inference.yml" in modes and modes == {name: 0o666 & ~_UMASK for name in modes}
