"""PaddleClas's own configs (tests/data/paddleclas_configs, copied from PaddleClas) load as plain
paddle_dx configs, or are refused with ONE error naming every key that does not map."""

import copy
import logging
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml
from conftest import make_tiny_dataset

from paddle_dx.config import dump_config, load_config
from paddle_dx.config.loader import read_yaml
from paddle_dx.config.paddleclas import Translation, is_paddleclas, parse_scale, translate, translate_ops
from paddle_dx.data.transforms import build_transforms
from paddle_dx.errors import ConfigError

FIXTURES = Path(__file__).parent / "data" / "paddleclas_configs"
ROOT = Path(__file__).resolve().parents[1]
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "scale": 1.0 / 255.0}
SHAPE = [3, 32, 32]


def ops(items):
    """PaddleClas ops -> the paddle_dx Compose they translate to (checked: nothing refused)."""
    t = Translation({})
    out = translate_ops(t, items, "ops")
    assert not t.refused, t.refused
    return build_transforms(out, SHAPE)


def asymmetric(h=6, w=8):
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


# ---- the real files ----------------------------------------------------------------------------


def test_resnet50_imagenet_config_becomes_a_plain_paddle_dx_config(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="paddle_dx.config.paddleclas"):
        config = load_config(FIXTURES / "ResNet50.yaml", ["Global.device=cpu", f"Global.output_dir={tmp_path}"])
    opt = config["Optimizer"]
    assert (opt["name"], opt["momentum"], opt["lr"]) == ("Momentum", 0.9, 0.1)
    # PaddleClas's L2 regulariser is paddle_dx's own key: coupled L2, not decoupled decay
    assert opt["regularizer"] == {"name": "L2", "coeff": 0.0001} and opt["weight_decay"] == 0.0
    assert (opt["lr_schedule"], opt["decay_epochs"], opt["lr_values"]) == (
        "piecewise",
        [30, 60, 90],
        [0.1, 0.01, 0.001, 0.0001],
    )
    assert config["Arch"]["name"] == "ResNet50" and config["Arch"]["class_num"] == 1000
    assert config["Global"]["engine"] == "dygraph"  # to_static: False
    assert config["Metric"]["Eval"] == ["Accuracy"]
    train, val = (config["DataLoader"][m] for m in ("Train", "Eval"))
    assert train["dataset"]["name"] == val["dataset"]["name"] == "ImageListDataset"
    assert train["dataset"]["transform_ops"] == [
        {"RandomResizedCrop": {"size": 224}},
        {"RandomFlip": {"horizontal": 0.5, "vertical": 0.0}},
        {"NormalizeImage": IMAGENET},
    ]
    assert val["dataset"]["transform_ops"] == [
        {"ResizeImage": {"resize_short": 256, "interpolation": "linear"}},
        {"CenterCrop": {"size": 224}},
        {"NormalizeImage": IMAGENET},
    ]
    assert (
        train["sampler"]["name"],
        train["sampler"]["batch_size"],
        train["loader"]["num_workers"],
        train["loader"]["use_shared_memory"],
    ) == ("DistributedBatchSampler", 64, 4, True)
    assert "PaddleClas key Infer -> paddle_dx (dropped)" in caplog.text
    # what a run writes is a plain paddle_dx config: read back, it is not PaddleClas-style and is the same
    dump_config(config, tmp_path / "config.yaml")
    assert not is_paddleclas(read_yaml(tmp_path / "config.yaml"))
    assert load_config(tmp_path / "config.yaml") == config


def test_quick_start_resnet50_vd_maps_class_num_cosine_and_warmup():
    config = load_config(FIXTURES / "ResNet50_vd.yaml", ["Global.device=cpu", "Optimizer.lr.learning_rate=0.05"])
    assert config["Arch"]["class_num"] == 102  # Global.class_num
    opt = config["Optimizer"]
    assert (opt["lr"], opt["lr_schedule"], opt["warmup_epochs"]) == (0.05, "cosine", 5)
    assert opt["regularizer"]["coeff"] == 1e-5 and opt["weight_decay"] == 0.0
    assert config["Global"]["eval_interval"] == 1 and config["Global"]["epochs"] == 20


def test_mobilenet_quick_start_is_refused_for_its_backbone_then_loads_with_one_we_have():
    with pytest.raises(ConfigError) as exc:
        load_config(FIXTURES / "MobileNetV3_large_x1_0.yaml", ["Global.device=cpu"])
    text = str(exc.value)
    assert "1 key(s)" in text and "Arch.name: 'MobileNetV3_large_x1_0' is not a paddle_dx backbone" in text
    assert "ResNet50_vd" in text  # says what to use instead
    config = load_config(FIXTURES / "MobileNetV3_large_x1_0.yaml", ["Global.device=cpu", "Arch.name=ResNet18"])
    assert config["Arch"]["name"] == "ResNet18" and config["Optimizer"]["lr"] == 0.00375


def test_every_unsupported_key_is_reported_in_one_error():
    raw = read_yaml(FIXTURES / "MobileNetV3_large_x1_0.yaml")
    raw["AMP"] = {"scale_loss": 128.0, "use_dynamic_loss_scaling": True, "level": "O3"}
    raw["EMA"] = {"decay": 0.9999}
    raw["Global"].update(device="xpu", use_dali=True, Globl_typo=1)
    raw["Optimizer"]["regularizer"] = {"name": "L1", "coeff": 0.1}
    raw["Optimizer"]["lr"]["warmup_start_lr"] = 0.001
    train = raw["DataLoader"]["Train"]["dataset"]
    train["transform_ops"][2] = {"RandFlipImage": {"flip_code": -1}}
    train["transform_ops"][3]["NormalizeImage"]["order"] = "chw"
    train["transform_ops"].append({"AutoAugment": None})
    train["batch_transform_ops"] = [{"MixupOperator": {"alpha": 0.2}}]
    with pytest.raises(ConfigError) as exc:
        load_config(raw=raw)
    text = str(exc.value)
    where = "DataLoader.Train.dataset.transform_ops"
    expected = [
        "Arch.name",
        "AMP.level: 'O3'",
        "EMA:",
        "Global.device: 'xpu'",
        "Global.use_dali",
        "Global.Globl_typo",
        "Optimizer.regularizer",
        "Optimizer.lr.warmup_start_lr",
        f"{where}[2].RandFlipImage.flip_code: -1",
        f"{where}[3].NormalizeImage.order: 'chw'",
        f"{where}[4].AutoAugment: not a paddle_dx op",
        "DataLoader.Train.dataset.batch_transform_ops: batch ops (Mixup, CutMix)",
    ]
    for piece in expected:
        assert piece in text, piece
    assert f"{len(expected)} key(s)" in text


def test_paddle_dx_configs_are_not_taken_for_paddleclas_ones():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        raw = read_yaml(path)
        assert not is_paddleclas(raw), path
        assert translate(raw) is raw


# ---- each mapping, by value ---------------------------------------------------------------------


@pytest.mark.parametrize("code, flipped", [(1, lambda a: a[:, ::-1]), (0, lambda a: a[::-1])])
def test_rand_flip_image_flip_code(code, flipped):
    """1 flips left-right, 0 up-down, each half of the time (PaddleClas's random.randint(0, 1))."""
    compose, img = ops([{"RandFlipImage": {"flip_code": code}}]), asymmetric()
    seen = set()
    for seed in range(40):
        out = compose.ops[0](img, np.random.default_rng(seed))
        if np.array_equal(out, flipped(img)):
            seen.add("flipped")
        else:
            np.testing.assert_array_equal(out, img)
            seen.add("same")
    assert seen == {"flipped", "same"}


def test_normalize_image_fraction_scale_matches_paddleclas_formula():
    params = {"scale": "1.0/255.0", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.5], "order": ""}
    img = asymmetric()
    out = ops([{"NormalizeImage": params}]).ops[0](img, None)
    # PaddleClas: (img.astype('float32') * np.float32(scale) - mean) / std
    expected = (img.astype(np.float32) * np.float32(1 / 255) - np.float32([0.5, 0.4, 0.3])) / np.float32(
        [0.2, 0.25, 0.5]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_scale_is_parsed_as_a_number_or_fraction_never_evaluated():
    assert parse_scale("1.0/255.0", "x") == parse_scale("1./255.", "x") == parse_scale(" 1 / 255 ", "x") == 1 / 255
    assert parse_scale(0.00392157, "x") == 0.00392157 and parse_scale("3.9e-3", "x") == 0.0039
    for bad in ("__import__('os').getcwd()", "1/0", "2**8", "1/255/2", ""):
        with pytest.raises(ConfigError, match="expected a number or a fraction"):
            parse_scale(bad, "x")


def test_crop_and_resize_take_paddleclas_sizes_width_first():
    img = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    crop = ops([{"CropImage": {"size": [20, 10]}}]).ops[0](img, None)  # PaddleClas: [w, h]
    np.testing.assert_array_equal(crop, img[10:20, 10:30])
    resized = ops([{"ResizeImage": {"resize_short": 16}}]).ops[0](img, None)
    np.testing.assert_array_equal(resized, cv2.resize(img, (21, 16), interpolation=cv2.INTER_LINEAR))
    fixed = ops([{"ResizeImage": {"size": [24, 12], "interpolation": "bicubic"}}]).ops[0](img, None)
    np.testing.assert_array_equal(fixed, cv2.resize(img, (24, 12), interpolation=cv2.INTER_CUBIC))


def test_rand_crop_image_is_a_random_resized_crop_with_its_ranges():
    compose = ops([{"RandCropImage": {"size": 24, "scale": [0.5, 1.0], "ratio": [0.9, 1.1]}}])
    op = compose.ops[0]
    assert type(op).__name__ == "RandomResizedCrop" and op.scale == (0.5, 1.0) and op.ratio == (0.9, 1.1)
    assert op(asymmetric(40, 50), np.random.default_rng(1)).shape == (24, 24, 3)


def test_decode_and_chw_are_implicit_and_other_layouts_refused():
    compose = ops([{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"ToCHWImage": None}])
    assert [type(op).__name__ for op in compose.ops] == ["ToCHWImage"]  # the one every pipeline ends with
    t = Translation({})
    translate_ops(t, [{"DecodeImage": {"to_rgb": False}}, {"ToCHWImage": None}, {"CropImage": {"size": 8}}], "o")
    assert set(t.refused) == {"o[0].DecodeImage", "o[1].ToCHWImage"}


def test_global_keys_map_to_their_paddle_dx_counterparts():
    raw = read_yaml(FIXTURES / "ResNet50_vd.yaml")
    raw["Global"].update(eval_during_train=False, to_static=True, use_gpu=False)
    del raw["Global"]["device"]
    config = load_config(raw=raw)
    g = config["Global"]
    assert (g["eval_interval"], g["engine"], g["device"]) == (20, "static", "cpu")  # evaluate after the last epoch
    raw["Arch"]["class_num"] = 5  # disagrees with Global.class_num: 102
    with pytest.raises(ConfigError, match="Global.class_num: = 102 but Arch.class_num = 5"):
        load_config(raw=raw)


def test_piecewise_and_warmup_schedules_per_epoch():
    from paddle_dx.engine.optimizer import build_optimizer

    model = paddle.nn.Linear(2, 2)

    def lrs(epochs, **cfg):
        base = {
            "name": "Momentum",
            "lr": 0.1,
            "weight_decay": 0.0,
            "momentum": 0.9,
            "grad_clip": None,
            "lr_schedule": "constant",
            "warmup_epochs": 0,
            "decay_epochs": None,
            "lr_values": None,
        }
        _, scheduler = build_optimizer({**base, **cfg}, model, epochs)
        out = []
        for _ in range(epochs):
            out.append(scheduler.get_lr())
            scheduler.step()
        return out

    np.testing.assert_allclose(
        lrs(5, lr_schedule="piecewise", decay_epochs=[2, 4], lr_values=[0.1, 0.01, 0.001]),
        [0.1, 0.1, 0.01, 0.01, 0.001],
    )
    np.testing.assert_allclose(
        lrs(4, lr_schedule="piecewise", lr=0.2, decay_epochs=[2], lr_values=[0.1, 0.01]), [0.2, 0.2, 0.02, 0.02]
    )  # a stage's lr scales the schedule
    warm = lrs(6, lr_schedule="cosine", warmup_epochs=2)
    np.testing.assert_allclose(warm[:3], [0.1 / 3, 0.2 / 3, 0.1])  # then cosine over the 4 epochs left
    np.testing.assert_allclose(warm[3:], [0.1 * (1 + np.cos(np.pi * k / 4)) / 2 for k in (1, 2, 3)])
    with pytest.raises(ConfigError, match="one more positive value"):
        lrs(3, lr_schedule="piecewise", decay_epochs=[2], lr_values=[0.1])


# ---- a PaddleClas config trains; PaddleClas-style weight prefixes work in every tool ---------------


def paddleclas_tiny(tmp_path):
    """ResNet50_vd.yaml pointed at a tiny dataset, with LeNet5 at 32 px (PaddleClas syntax kept)."""
    images, lists = make_tiny_dataset(tmp_path / "data")
    raw = read_yaml(FIXTURES / "ResNet50_vd.yaml")
    raw["Global"].update(
        device="cpu",
        class_num=2,
        epochs=1,
        image_shape=SHAPE,
        output_dir=str(tmp_path / "out"),
        save_inference_dir=str(tmp_path / "inference"),
    )
    raw["Arch"]["name"] = "LeNet5"
    raw["Optimizer"]["lr"]["warmup_epoch"] = 0
    for mode, split in (("Train", "train"), ("Eval", "val")):
        section = raw["DataLoader"][mode]
        section["dataset"].update(image_root=str(images), cls_label_path=str(lists / f"{split}_list.txt"))
        section["sampler"]["batch_size"] = 4
        section["loader"] = {"num_workers": 0, "use_shared_memory": False}
        for item in section["dataset"]["transform_ops"]:
            params = next(iter(item.values()))
            for key, value in {"size": 32, "resize_short": 36}.items():
                if key in (params or {}):
                    params[key] = value
    return raw


def test_paddleclas_config_trains_and_best_model_prefix_works_in_eval_export_and_fine_tuning(tmp_path):
    from paddle_dx.engine.eval_job import run_evaluation
    from paddle_dx.engine.trainer import Trainer
    from paddle_dx.inference.export import export_from_config
    from paddle_dx.models.weights import load_state

    raw = paddleclas_tiny(tmp_path)
    config = load_config(raw=copy.deepcopy(raw))
    out = Path(config["Global"]["output_dir"])
    result = Trainer(config).fit()
    assert len(result["history"]) == 1
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert not is_paddleclas(written) and written["Arch"]["class_num"] == 2

    prefix = f"Global.pretrained_model={out / 'best_model'}"  # no .pdparams, as PaddleClas writes it
    metrics = run_evaluation(load_config(raw=copy.deepcopy(raw), overrides=[prefix]))
    assert metrics["weights"] == str(out / "best_model.pdparams") and 0.0 <= metrics["accuracy"] <= 1.0
    spec = export_from_config(load_config(raw=copy.deepcopy(raw), overrides=[prefix]))
    assert spec["weights"] == str(out / "best_model.pdparams")
    assert spec["preprocess"][0] == {"ResizeImage": {"size": None, "resize_short": 36, "interpolation": "linear"}}
    start = Trainer(load_config(raw=copy.deepcopy(raw), overrides=[prefix, f"Global.output_dir={tmp_path / 'ft'}"]))
    best = load_state(out / "best_model.pdparams")
    for name, tensor in start.model.state_dict().items():  # fine-tuning starts from best_model
        np.testing.assert_array_equal(tensor.numpy(), np.asarray(best[name]))


def test_infer_transforms_that_differ_from_eval_ops_are_warned_about(caplog):
    raw = read_yaml(FIXTURES / "ResNet50_vd.yaml")
    raw["Global"]["device"] = "cpu"
    with caplog.at_level(logging.WARNING, logger="paddle_dx.config.paddleclas"):
        load_config(raw=copy.deepcopy(raw))
    assert "Infer.transforms differ" not in caplog.text  # the file's Infer ops are its Eval ops
    raw["Infer"]["transforms"][1]["ResizeImage"]["resize_short"] = 300
    with caplog.at_level(logging.WARNING, logger="paddle_dx.config.paddleclas"):
        load_config(raw=raw)
    assert "Infer.transforms differ from DataLoader.Eval's ops" in caplog.text


# ---- today's PaddleClas configs (with their AMP section) ------------------------------------------


def current_config_tiny(tmp_path, name):
    """A 2024 PaddleClas config pointed at a tiny dataset: data paths, class count, epochs and device
    overridden, plus what this machine needs (32 px, no ImageNet download, no loader workers) and a
    learning rate 100x lower: ImageNet's 0.1 on one batch of 4 images from scratch can reach NaN in
    one step, which would test the optimiser, not the config."""
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    raw = read_yaml(FIXTURES / name)
    raw["Global"].update(device="cpu", epochs=1, image_shape=SHAPE, output_dir=str(tmp_path / "out"))
    raw["Arch"].update(class_num=2, pretrained=False)
    lr = raw["Optimizer"]["lr"]
    lr["learning_rate"] /= 100
    if "values" in lr:
        lr["values"] = [v / 100 for v in lr["values"]]
    for mode, split in (("Train", "train"), ("Eval", "val")):
        section = raw["DataLoader"][mode]
        section["dataset"].update(image_root=str(images), cls_label_path=str(lists / f"{split}_list.txt"))
        section["loader"]["num_workers"] = 0
        for item in section["dataset"]["transform_ops"]:
            params = next(iter(item.values())) or {}
            for key, value in {"size": 32, "resize_short": 36}.items():
                if key in params:
                    params[key] = value
    return raw


@pytest.mark.parametrize(
    "name, arch, train",
    [("ResNet50_2024.yaml", "ResNet50", True), ("VGG16_2024.yaml", "VGG16", False)],  # VGG16: 500 MB per save
)
def test_todays_paddleclas_configs_load_with_their_amp_section_and_train(tmp_path, caplog, name, arch, train):
    from paddle_dx.engine.trainer import Trainer

    raw = current_config_tiny(tmp_path, name)
    assert raw["AMP"]["use_amp"] is False and raw["AMP"]["level"] == "O1"  # the file as PaddleClas ships it
    with caplog.at_level(logging.INFO, logger="paddle_dx.config.paddleclas"):
        config = load_config(raw=copy.deepcopy(raw))
    g = config["Global"]
    assert (g["use_amp"], g["amp_level"], g["amp_loss_scale"], g["amp_dynamic_loss_scaling"]) == (
        False,
        "O1",
        128.0,
        True,
    )
    assert "PaddleClas key AMP.use_amp -> paddle_dx Global.use_amp: False" in caplog.text
    assert config["Arch"]["name"] == arch
    if not train:
        assert (config["Optimizer"]["lr_schedule"], config["Optimizer"]["regularizer"]["coeff"]) == ("cosine", 0.0004)
        return
    result = Trainer(config).fit()
    assert len(result["history"]) == 1 and (Path(g["output_dir"]) / "best_model.pdparams").is_file()


def test_amp_section_maps_to_global_amp_keys_and_is_one_log_line_on_cpu(tmp_path, caplog):
    from paddle_dx.engine.trainer import Trainer

    raw = paddleclas_tiny(tmp_path)
    raw["AMP"] = {"scale_loss": 1024.0, "use_dynamic_loss_scaling": False, "level": "O2", "use_promote": True}
    config = load_config(raw=copy.deepcopy(raw))  # no use_amp: PaddleClas turns AMP on when the section is there
    g = config["Global"]
    assert (g["use_amp"], g["amp_level"], g["amp_loss_scale"], g["amp_dynamic_loss_scaling"]) == (
        True,
        "O2",
        1024.0,
        False,
    )
    raw["AMP"]["use_promote"] = False
    with pytest.raises(ConfigError, match="AMP.use_promote: False at O2"):
        load_config(raw=copy.deepcopy(raw))
    raw["AMP"] = None  # `AMP:` with nothing under it is off in PaddleClas
    assert load_config(raw=copy.deepcopy(raw))["Global"]["use_amp"] is False
    with caplog.at_level(logging.WARNING):
        Trainer(config).fit()
    amp_lines = [r.getMessage() for r in caplog.records if "use_amp" in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(amp_lines) == 1 and "float16 runs on GPUs only" in amp_lines[0], amp_lines
    assert "training in float32" in amp_lines[0]
