"""Transfer learning: head surgery on a 1000-class checkpoint, PaddleClas weights offline, freezing."""

import logging
import shutil
import urllib.error

import numpy as np
import paddle
import pytest

from paddle_dx.engine.optimizer import build_optimizer
from paddle_dx.errors import ConfigError, WeightsError
from paddle_dx.models import build_model, get_backbone, pretrained_url
from paddle_dx.models import pretrained as pretrained_mod
from paddle_dx.models.transfer import TransferModel, apply_freeze, load_model_weights

OPTIMIZER = {
    "name": "Adam",
    "lr": 0.01,
    "weight_decay": 0.0,
    "momentum": 0.9,
    "lr_schedule": "constant",
    "grad_clip": None,
}


def imagenet_checkpoint(path, seed=3):
    """A PaddleClas-style ResNet18 state dict with its 1000-class ``fc``, saved by the test itself."""
    from paddleclas.ppcls.arch.backbone import ResNet18

    paddle.seed(seed)
    net = ResNet18(pretrained=False, class_num=1000)
    state = {k: v.numpy() + 0.01 for k, v in net.state_dict().items()}  # distinct from any fresh init
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path))
    return state


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """(path, state) of one 1000-class ResNet18 checkpoint shared by this module's tests."""
    path = tmp_path_factory.mktemp("weights") / "ResNet18_imagenet.pdparams"
    return path, imagenet_checkpoint(path)


def snapshot(layer):
    return {k: v.numpy().copy() for k, v in layer.state_dict().items()}


def one_step(model, steps=1, size=32):
    """Train ``steps`` Adam steps on random data in train mode."""
    optimizer, _ = build_optimizer(OPTIMIZER, model, epochs=1)
    model.train()
    for i in range(steps):
        paddle.seed(i)
        x = paddle.randn([4, 3, size, size])
        y = paddle.to_tensor(np.array([0, 1, 2, 1]), dtype="int64")
        loss = paddle.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()


def changed(before, after):
    return {k for k in before if not np.array_equal(before[k], after[k])}


def test_1000_class_checkpoint_loads_into_a_3_class_model_with_a_new_head(imagenet_file, caplog):
    path, saved = imagenet_file
    with caplog.at_level(logging.INFO, logger="paddle_dx.models.pretrained"):
        # the .pdparams suffix may be left out, as in PaddleClas configs
        model = build_model({"name": "ResNet18", "class_num": 3, "pretrained": str(path)[: -len(".pdparams")]})
    report = model.pretrained_report
    assert sorted(report["skipped"]) == ["fc.bias", "fc.weight"]  # the old 1000-class head
    assert report["missing"] == [] and report["mismatched"] == []
    assert len(report["loaded"]) == len(saved) - 2
    backbone = model.backbone.state_dict()
    for name in report["loaded"]:  # weights and BatchNorm statistics, bit for bit
        assert np.array_equal(backbone[name].numpy(), saved[name]), name
    head = model.head.weight.numpy()
    assert head.shape == (512, 3) and model.head.bias.shape == [3]
    assert not np.allclose(head, saved["fc.weight"][:, :3])
    assert "2 skipped (fc.weight, fc.bias)" in caplog.text or "2 skipped (fc.bias, fc.weight)" in caplog.text
    probs = paddle.nn.functional.softmax(model.eval()(paddle.randn([2, 3, 32, 32])), axis=1).numpy()
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_report_lists_tensors_the_file_lacks_and_rejects_foreign_files(imagenet_file, tmp_path):
    saved = imagenet_file[1]
    dropped = "blocks.7.conv1.conv.weight"
    partial = {k: paddle.to_tensor(v) for k, v in saved.items() if k != dropped}
    paddle.save(partial, str(tmp_path / "partial.pdparams"))
    report = build_model(
        {"name": "ResNet18", "class_num": 2, "pretrained": str(tmp_path / "partial.pdparams")}
    ).pretrained_report
    assert report["missing"] == [dropped]
    paddle.save({"something.else": paddle.zeros([3])}, str(tmp_path / "foreign.pdparams"))
    with pytest.raises(WeightsError, match="foreign.pdparams: none of its 1 tensors fit"):
        build_model({"name": "ResNet18", "class_num": 2, "pretrained": str(tmp_path / "foreign.pdparams")})
    with pytest.raises(WeightsError, match="pretrained weights not found: .*absent.pdparams"):
        build_model({"name": "ResNet18", "class_num": 2, "pretrained": str(tmp_path / "absent.pdparams")})


def test_pretrained_true_offline_fails_at_once_naming_url_and_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(tmp_path / "cache"))
    attempts = []

    def offline(url, timeout=None):
        attempts.append((url, timeout))
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(pretrained_mod.urllib.request, "urlopen", offline)
    url = pretrained_url("ResNet18")
    assert url.startswith("https://") and url.endswith("/ResNet18_pretrained.pdparams")
    with pytest.raises(WeightsError) as err:
        build_model({"name": "ResNet18", "class_num": 3, "pretrained": True})
    message = str(err.value)
    assert url in message and str(tmp_path / "cache" / "ResNet18_pretrained.pdparams") in message
    assert len(attempts) == 1 and attempts[0][1] <= 10  # one try with a short timeout, no retry storm
    assert not list((tmp_path / "cache").glob("*"))  # no half-written file left in the cache


def test_pretrained_true_uses_the_file_placed_in_the_cache(imagenet_file, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(cache))
    monkeypatch.setattr(
        pretrained_mod.urllib.request,
        "urlopen",
        lambda *a, **k: pytest.fail("must not touch the network when the file is cached"),
    )
    shutil.copy(imagenet_file[0], cache / "ResNet18_pretrained.pdparams")
    saved = imagenet_file[1]
    model = build_model({"name": "ResNet18", "class_num": 3, "pretrained": True})
    assert model.pretrained_report["source"] == str(cache / "ResNet18_pretrained.pdparams")
    assert np.array_equal(model.backbone.state_dict()["stem.0.conv.weight"].numpy(), saved["stem.0.conv.weight"])


def test_untrusted_weight_url_is_refused_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_DX_WEIGHTS_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained_mod.urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(WeightsError, match="refusing to download weights from https://example.com/x.pdparams"):
        build_model({"name": "LeNet5", "class_num": 2, "pretrained": "https://example.com/x.pdparams"})
    with pytest.raises(WeightsError, match="no ImageNet weights for 'LeNet5'"):
        build_model({"name": "LeNet5", "class_num": 2, "pretrained": True})


def test_freeze_backbone_trains_only_the_head_and_keeps_batchnorm_statistics():
    paddle.seed(0)
    model = build_model({"name": "ResNet18", "class_num": 3, "freeze": "backbone"})
    before = snapshot(model)
    one_step(model, steps=2)
    assert model.training
    bns = [l for l in model.backbone.sublayers() if isinstance(l, (paddle.nn.BatchNorm, paddle.nn.BatchNorm2D))]
    assert bns and all(not bn.training for bn in bns) and len(model.frozen_bn) == len(bns)
    assert changed(before, snapshot(model)) == {"head.weight", "head.bias"}


def test_freeze_until_stage_2_freezes_stem_and_first_two_stages_only():
    paddle.seed(0)
    model = build_model({"name": "ResNet18", "class_num": 3, "freeze": "until stage 2"})
    before = snapshot(model)
    one_step(model)
    moved = changed(before, snapshot(model))
    frozen_prefixes = (
        "backbone.stem.",
        "backbone.blocks.0.",
        "backbone.blocks.1.",  # stage 1: blocks 0-1
        "backbone.blocks.2.",
        "backbone.blocks.3.",
    )  # stage 2: blocks 2-3
    assert not {k for k in moved if k.startswith(frozen_prefixes)}
    for prefix in ("backbone.blocks.4.", "backbone.blocks.7.", "head."):
        assert any(k.startswith(prefix) for k in moved), prefix
    # running statistics of a trained stage's BatchNorm do move
    assert any(k.startswith("backbone.blocks.5.") and k.endswith("_mean") for k in moved)
    assert not model.backbone.blocks[3].conv0.bn.training and model.backbone.blocks[4].conv0.bn.training


def test_freeze_none_unfreezes_and_bad_freeze_values_are_config_errors():
    model = build_model({"name": "LeNet5", "class_num": 2, "freeze": "backbone"})
    assert all(p.stop_gradient for p in model.backbone.parameters())
    assert apply_freeze(model, "none") == 0
    assert not any(p.stop_gradient for p in model.parameters())
    assert apply_freeze(model, "until stage 1") == 4  # stem (conv1) and stage 1 (conv2): weights, biases
    assert not model.head.weight.stop_gradient and not model.backbone.fc1[0].weight.stop_gradient
    with pytest.raises(ConfigError, match="LeNet5 has only 1 stages after its stem"):
        apply_freeze(model, "until stage 2")
    with pytest.raises(ConfigError, match="'Arch.freeze' = 'everything'"):
        apply_freeze(model, "everything")


def test_checkpoint_of_another_class_count_is_refused(tmp_path):
    three = build_model({"name": "LeNet5", "class_num": 3})
    paddle.save(three.state_dict(), str(tmp_path / "three.pdparams"))
    two = build_model({"name": "LeNet5", "class_num": 2})
    with pytest.raises(WeightsError, match="checkpoint has 3 classes but Arch.class_num is 2"):
        load_model_weights(two, tmp_path / "three.pdparams")
    again = load_model_weights(build_model({"name": "LeNet5", "class_num": 3}), tmp_path / "three.pdparams")
    assert isinstance(again, TransferModel)
    assert np.array_equal(again.head.weight.numpy(), three.head.weight.numpy())


def test_a_pytorch_state_dict_is_renamed_and_transposed_for_the_paddle_network(tmp_path):
    """Arch.pretrained may name a .pth with the network's own layer names: BatchNorm's
    running_mean / running_var become _mean / _variance, num_batches_tracked is dropped, Linear
    weights are transposed from PyTorch's (out, in); with class_num 1000 the classifier is kept."""
    from torch_files import write_torch

    paddle.seed(0)
    net = get_backbone("EfficientNetLite0").build(1000)
    paddle_state = {k: v.numpy() + 0.5 for k, v in net.state_dict().items()}
    torch_state = {}
    for name, value in paddle_state.items():
        name = name.replace("._mean", ".running_mean").replace("._variance", ".running_var")
        torch_state[name] = value.T.copy() if name == "_fc.weight" else value
        if name.endswith(".running_var"):
            torch_state[name.replace("running_var", "num_batches_tracked")] = np.array(7, dtype=np.int64)
    path = write_torch(tmp_path / "lite0.pth", torch_state, "zip")
    model = build_model({"name": "EfficientNetLite0", "class_num": 1000, "pretrained": str(path)})
    report = model.pretrained_report
    assert report["missing"] == [] and report["skipped"] == [] and report["head_kept"]
    loaded = model.backbone.state_dict()
    for name, value in paddle_state.items():
        if not name.startswith("_fc."):
            np.testing.assert_array_equal(loaded[name].numpy(), value, err_msg=name)
    np.testing.assert_array_equal(model.head.weight.numpy(), paddle_state["_fc.weight"])
    three = build_model({"name": "EfficientNetLite0", "class_num": 3, "pretrained": str(path)}).pretrained_report
    assert sorted(three["skipped"]) == ["_fc.bias", "_fc.weight"] and "head_kept" not in three


def test_vgg_bn_puts_a_batch_norm_after_every_convolution_and_has_no_imagenet_weights():
    """VGG19_BN: PaddleClas's VGG19 with torchvision's vgg19_bn layout, for training from scratch."""
    paddle.seed(5)
    plain = build_model({"name": "VGG19", "class_num": 3}, [3, 32, 32])
    model = build_model({"name": "VGG19_BN", "class_num": 3}, [3, 32, 32])
    convs = [m for m in model.sublayers() if isinstance(m, paddle.nn.Conv2D)]
    norms = [m for m in model.sublayers() if isinstance(m, paddle.nn.BatchNorm2D)]
    assert len(convs) == len(norms) == 16 and all(n._num_features == c._out_channels for c, n in zip(convs, norms))
    assert len(plain.parameters()) + 4 * 16 == len(model.parameters())  # scale, shift, running mean, variance
    assert get_backbone("VGG19_BN").head == "fc3" and pretrained_url("VGG19_BN") is None
    with pytest.raises(WeightsError, match="no ImageNet weights for 'VGG19_BN'"):
        build_model({"name": "VGG19_BN", "class_num": 3, "pretrained": True}, [3, 32, 32])
    model.train()
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype("float32"))
    out = model(x).numpy()
    assert out.shape == (6, 3) and out.std(axis=0).min() > 0.05  # the output depends on the input
    frozen = build_model({"name": "VGG19_BN", "class_num": 3, "freeze": "backbone"}, [3, 32, 32])
    assert [p.stop_gradient for p in frozen.head.parameters()] == [False, False]
    assert all(p.stop_gradient for n, p in frozen.named_parameters() if "conv_block" in n)
