"""Global.sync_bn: every BatchNorm of a model becomes a SyncBatchNorm on the same tensors, the
PaddleClas backbones' legacy ``nn.BatchNorm`` (which Paddle's own converter skips) included; on
CPU or one device the option is ignored with one log line.

Paddle's SyncBatchNorm kernel is GPU-only, so here the converted layers' forward is checked with
Paddle's plain batch norm standing in for the kernel (one process: the same statistics)."""

import copy
import logging

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddle_dx.config import load_config
from paddle_dx.engine.distributed import Parallel
from paddle_dx.models import build_model
from paddle_dx.models.sync_batchnorm import convert_sync_batchnorm


def _resnet18(freeze="none"):
    config = load_config(
        raw={"Global": {"image_shape": [3, 32, 32]}, "Arch": {"name": "ResNet18", "class_num": 2, "freeze": freeze}}
    )
    paddle.seed(0)
    return build_model(config["Arch"], config["Global"]["image_shape"])


def _norms(model):
    return [layer for layer in model.sublayers() if "BatchNorm" in type(layer).__name__]


def _plain_batch_norm(self, x):
    """What the GPU kernel computes on one device: batch norm, then the legacy layer's activation."""
    out = F.batch_norm(
        x,
        self._mean,
        self._variance,
        self.weight,
        self.bias,
        training=self.training,
        momentum=self._momentum,
        epsilon=self._epsilon,
        data_format=self._data_format,
    )
    return out if self._act is None else getattr(F, self._act)(out)


def test_a_paddleclas_backbone_has_every_batchnorm_converted_on_the_same_tensors():
    model = _resnet18()
    before = {name: id(t) for name, t in model.state_dict().items()}
    legacy = [layer for layer in _norms(model) if type(layer) is paddle.nn.BatchNorm]
    assert legacy and convert_sync_batchnorm(model) == len(legacy)
    assert all(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in _norms(model))
    assert {name: id(t) for name, t in model.state_dict().items()} == before  # same names, same tensors


def _mixed():
    """A legacy BatchNorm with a fused activation and a BatchNorm2D."""
    paddle.seed(0)
    return paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 4, 3),
        paddle.nn.BatchNorm(4, act="relu"),
        paddle.nn.Conv2D(4, 4, 3),
        paddle.nn.BatchNorm2D(4),
    )


def test_the_legacy_fused_activation_is_kept_and_batchnorm2d_converted_too():
    model = _mixed()
    assert convert_sync_batchnorm(model) == 2
    synced = [(isinstance(model[i], paddle.nn.SyncBatchNorm), model[i]._act) for i in (1, 3)]
    assert synced == [(True, "relu"), (True, None)]


def test_frozen_batchnorm_layers_stay_frozen_after_conversion():
    model = _resnet18(freeze="backbone")
    convert_sync_batchnorm(model)
    model.train()
    assert model.frozen_bn and all(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in model.frozen_bn)
    assert {id(layer) for layer in model.frozen_bn} == {id(layer) for layer in _norms(model)}
    assert not any(layer.training for layer in model.frozen_bn)


@pytest.mark.parametrize("build", [_resnet18, _mixed], ids=["ResNet18", "fused_act"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_the_converted_model_computes_what_the_original_did(monkeypatch, build, mode):
    monkeypatch.setattr(paddle.nn.SyncBatchNorm, "forward", _plain_batch_norm)
    original = build()
    converted = copy.deepcopy(original)
    convert_sync_batchnorm(converted)
    x = paddle.to_tensor(np.random.RandomState(0).randn(4, 3, 32, 32).astype("float32"))
    for model in (original, converted):
        getattr(model, mode)()
    np.testing.assert_allclose(converted(x).numpy(), original(x).numpy(), rtol=1e-5, atol=1e-5)
    stats = [(a.numpy(), b.numpy()) for a, b in zip(original.state_dict().values(), converted.state_dict().values())]
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in stats)  # running statistics updated alike


@pytest.mark.parametrize(
    "world_size,device,message",
    [(1, "cpu", "ignored on one device (cpu)"), (1, "gpu", "ignored on one device (gpu)"), (2, "cpu", "GPU-only")],
)
def test_sync_bn_is_ignored_with_one_line_off_multi_gpu(caplog, world_size, device, message):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.distributed")
    model = _resnet18()
    Parallel(0, world_size).sync_batchnorm(model, True, device)
    lines = [r.getMessage() for r in caplog.records if "sync_bn" in r.getMessage()]
    assert len(lines) == 1 and message in lines[0]
    assert not any(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in model.sublayers())


def test_sync_bn_converts_on_several_gpus_and_says_so(caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.distributed")
    model = _resnet18()
    Parallel(1, 4).sync_batchnorm(model, True, "gpu")  # no process group needed to convert
    assert all(isinstance(layer, paddle.nn.SyncBatchNorm) for layer in _norms(model))
    assert [r.getMessage() for r in caplog.records] == [
        f"Global.sync_bn: {len(_norms(model))} BatchNorm layers normalise over all 4 GPUs' batches"
    ]


def test_the_trainer_passes_sync_bn_and_logs_it_is_ignored_on_cpu(tmp_path, caplog):
    from conftest import make_tiny_dataset, tiny_config

    from paddle_dx.engine.trainer import Trainer

    caplog.set_level(logging.INFO, logger="paddle_dx.engine.distributed")
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    Trainer(tiny_config(images, lists, tmp_path / "out", **{"Global.sync_bn": True}))
    assert [r.getMessage() for r in caplog.records if "sync_bn" in r.getMessage()] == [
        "Global.sync_bn: ignored on one device (cpu); BatchNorm stays per device"
    ]
