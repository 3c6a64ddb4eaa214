"""Export formats and the export's safety: PaddleClas's own predictor serves a paddle_legacy export
with the generated inference_cls.yaml and agrees with tools/infer.py; an ONNX export agrees with
Paddle Inference; a re-export that fails half-way leaves the previous export whole; weights of
another float width load."""

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.config import load_config
from paddle_dx.errors import ConfigError, WeightsError
from paddle_dx.inference import Predictor, export_from_config, load_spec
from paddle_dx.inference.paddleclas_deploy import PADDLECLAS_CONFIG, paddleclas_ops
from paddle_dx.models import build_model, load_model_weights
from paddle_dx.models.weights import save_weights
from paddle_dx.utils.files import staged_directory
from paddle_dx.utils.hashing import file_sha256


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A LeNet5 config, its (untrained) weights and a few 48x40 images of both kinds."""
    tmp = tmp_path_factory.mktemp("formats")
    images, lists = make_tiny_dataset(tmp / "data", per_class=4, size=32)
    config = tiny_config(images, lists, tmp / "run")
    model = build_model(dict(config["Arch"], pretrained=False), config["Global"]["image_shape"])
    save_weights(tmp / "model.pdparams", model)
    rng = np.random.default_rng(5)
    paths = []
    for i in range(4):
        img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        cv2.circle(img, (20 + 4 * i, 20), 6 + 3 * i, (255 - 60 * i, 30 * i, 90), -1)
        paths.append(tmp / "images" / f"img_{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(paths[-1]), img)
    return tmp, config, paths


def export(config, tmp, name, fmt="paddle"):
    overrides = [
        f"Global.pretrained_model={tmp / 'model.pdparams'}",
        f"Global.save_inference_dir={tmp / name}",
        f"Global.export_format={fmt}",
    ]
    export_from_config(load_config(raw=config, overrides=overrides))
    return tmp / name


def paddleclas_root():
    import paddleclas

    return Path(paddleclas.__file__).parent


def test_paddleclas_predictor_serves_a_legacy_export_like_tools_infer(setup):
    tmp, config, paths = setup
    out = export(config, tmp, "legacy", "paddle_legacy")
    spec = load_spec(out)
    assert (spec["model_file"], spec["export_format"]) == ("inference.pdmodel", "paddle_legacy")
    assert not (out / "inference.json").exists()
    ours = Predictor(out).predict([str(p) for p in paths])
    script = paddleclas_root() / "deploy" / "python" / "predict_cls.py"  # the wheel's own, unchanged
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    result = subprocess.run(
        [sys.executable, str(script), "-c", str(out / PADDLECLAS_CONFIG), "-o", f"Global.infer_imgs={paths[0].parent}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = re.findall(r"^(img_\d\.png):\s+class id\(s\): \[(\d+)[^\]]*\], score\(s\): \[([\d.]+)", result.stdout, re.M)
    theirs = {name: (int(cid), float(score)) for name, cid, score in lines}
    assert sorted(theirs) == [p.name for p in paths]
    for row in ours:
        cid, score = theirs[Path(row["path"]).name]
        assert cid == row["class_id"]
        assert abs(score - row["probs"][row["class_name"]]) <= 0.005 + 1e-6  # printed with 2 decimals


def test_inference_cls_yaml_preprocesses_exactly_like_inference_yml(setup):
    """PaddleClas's deploy ops built from inference_cls.yaml give the Predictor's input array."""
    sys.path.insert(0, str(paddleclas_root().parent))
    from paddleclas.deploy.python.preprocess import create_operators

    tmp, config, paths = setup
    for name, ops in {
        "resize": None,
        "short_crop": [
            {"ResizeImage": {"resize_short": 36, "interpolation": "cubic"}},
            {"CenterCrop": {"size": [32, 32]}},
            {"NormalizeImage": {"preset": "imagenet"}},
        ],
    }.items():
        raw = {**config, "DataLoader": {**config["DataLoader"]}}
        if ops is not None:
            raw["DataLoader"]["Eval"] = {
                **raw["DataLoader"]["Eval"],
                "dataset": {**raw["DataLoader"]["Eval"]["dataset"]},
            }
            raw["DataLoader"]["Eval"]["dataset"]["transform_ops"] = ops
        out = export(config if ops is None else raw, tmp, f"pre_{name}")
        deploy = yaml.safe_load((out / PADDLECLAS_CONFIG).read_text())
        assert deploy["Global"]["inference_model_dir"] == str(out.absolute())
        assert deploy["PostProcess"]["Topk"]["label_list"] == ["normal", "lesion"]
        theirs = create_operators(deploy["PreProcess"]["transform_ops"])
        predictor = Predictor(out)
        for path in paths:
            img = cv2.imread(str(path))[:, :, ::-1]  # what predict_cls.py does
            expected = predictor.preprocess(np.ascontiguousarray(img))
            for op in theirs:
                img = op(img)
            np.testing.assert_allclose(img, expected, atol=1e-6)


def test_ops_paddleclas_cannot_run_mean_no_inference_cls_yaml():
    ops, missing = paddleclas_ops([{"Grayscale": {"channels": 3}}, {"ToCHWImage": {}}])
    assert ops is None and missing == "Grayscale"


def test_onnx_export_agrees_with_paddle_inference(setup):
    pytest.importorskip("paddle2onnx")
    ort = pytest.importorskip("onnxruntime")
    tmp, config, paths = setup
    out = export(config, tmp, "onnx", "onnx")
    spec = load_spec(out)
    assert spec["onnx"]["file"] == "inference.onnx" and spec["onnx"]["max_abs_diff_vs_paddle"] <= 1e-4
    predictor = Predictor(out)
    batch = np.stack([predictor.preprocess(cv2.imread(str(p))[:, :, ::-1].copy()) for p in paths])
    session = ort.InferenceSession(str(out / "inference.onnx"), providers=["CPUExecutionProvider"])
    onnx_probs = session.run(None, {session.get_inputs()[0].name: batch})[0]
    paddle_probs = predictor.predict_arrays([cv2.imread(str(p))[:, :, ::-1].copy() for p in paths])
    assert np.abs(onnx_probs - paddle_probs).max() < 1e-5
    assert (onnx_probs.argmax(1) == paddle_probs.argmax(1)).all()


def test_onnx_export_without_paddle2onnx_is_one_clear_error(setup, monkeypatch):
    tmp, config, _ = setup
    monkeypatch.setitem(sys.modules, "paddle2onnx", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"Global.export_format=onnx needs paddle2onnx: pip install"):
        export(config, tmp, "no_onnx", "onnx")
    assert not (tmp / "no_onnx").exists()


# ---- atomic re-export --------------------------------------------------------------------------


def test_failed_reexport_keeps_the_old_export_working(setup, monkeypatch):
    tmp, config, paths = setup
    out = export(config, tmp, "atomic")
    (out / "notes.txt").write_text("mine")
    before = {f.name: file_sha256(f) for f in out.iterdir()}
    expected = Predictor(out).predict_arrays([cv2.imread(str(paths[0]))[:, :, ::-1].copy()])

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("paddle_dx.inference.export.write_spec", disk_full)  # the last file written
    with pytest.raises(OSError, match="No space left"):
        export(config, tmp, "atomic")
    monkeypatch.undo()
    assert {f.name: file_sha256(f) for f in out.iterdir()} == before
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(".atomic.")]  # no staging left behind
    again = Predictor(out).predict_arrays([cv2.imread(str(paths[0]))[:, :, ::-1].copy()])
    np.testing.assert_array_equal(again, expected)
    export(config, tmp, "atomic", "paddle_legacy")  # a successful re-export replaces the model files
    names = {f.name for f in out.iterdir()}
    assert "inference.pdmodel" in names and "inference.json" not in names and "notes.txt" in names


def test_failed_reexport_under_a_file_size_limit_keeps_the_old_export(setup):
    """The same in a real process whose writes hit RLIMIT_FSIZE half-way (as a full disk would)."""
    tmp, config, _ = setup
    out = export(config, tmp, "limited")
    before = {f.name: file_sha256(f) for f in out.iterdir()}
    code = (
        "import resource, signal, sys, yaml\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "from paddle_dx.api import load_config\n"
        "from paddle_dx.inference import export_from_config\n"
        "config = load_config(raw=yaml.safe_load(open(sys.argv[1])), overrides=sys.argv[2:])\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
        "export_from_config(config)\n"
    )
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"Global.pretrained_model={tmp / 'model.pdparams'}", f"Global.save_inference_dir={out}"]
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp / "config.yaml"), *overrides], capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0 and ("File too large" in result.stderr or "Errno 27" in result.stderr), result.stderr[
        -1500:
    ]
    assert {f.name: file_sha256(f) for f in out.iterdir()} == before


def test_staged_directory_replaces_only_on_success(tmp_path):
    target = tmp_path / "out"
    with staged_directory(target) as stage:
        (stage / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(RuntimeError), staged_directory(target) as stage:
        (stage / "a").write_text("2")
        raise RuntimeError("failed half-way")
    assert (target / "a").read_text() == "1" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---- weights of another dtype -------------------------------------------------------------------


def test_float64_weights_are_cast_and_integer_weights_refused(setup):
    tmp, config, _ = setup
    model = build_model(dict(config["Arch"], pretrained=False), config["Global"]["image_shape"])
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    paddle.save({k: v.astype(np.float64) for k, v in state.items()}, str(tmp / "f64.pdparams"))
    loaded = load_model_weights(
        build_model(dict(config["Arch"], pretrained=False), config["Global"]["image_shape"]), tmp / "f64.pdparams"
    )
    for k, v in loaded.state_dict().items():
        assert str(v.dtype) == "paddle.float32"
        np.testing.assert_array_equal(v.numpy(), state[k])
    first = next(iter(state))
    paddle.save({**state, first: state[first].astype(np.int64)}, str(tmp / "int.pdparams"))
    with pytest.raises(WeightsError, match=rf"int\.pdparams: tensor {re.escape(first)} is int64, model expects"):
        load_model_weights(model, tmp / "int.pdparams")
    paddle.save({**state, first: np.full(state[first].shape, 1e300)}, str(tmp / "huge.pdparams"))
    with pytest.raises(WeightsError, match="beyond float32's range"):
        load_model_weights(model, tmp / "huge.pdparams")
