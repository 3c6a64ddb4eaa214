"""The head trained from cached backbone features equals the head trained the slow way."""
import logging

import numpy as np
import pytest

from conftest import make_tiny_dataset, tiny_config
from paddle_dx.engine.trainer import Trainer
from paddle_dx.errors import ConfigError

DETERMINISTIC = [{"ResizeImage": {}}, {"NormalizeImage": {}}]


def _config(tmp_path, out, **overrides):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=8, size=32)
    # ResNet18 from scratch: its BatchNorm running statistics (0, 1) differ from batch
    # statistics, so a frozen BN layer accidentally put in train mode changes the result.
    base = {"Arch.name": "ResNet18", "Arch.freeze": "backbone", "Arch.dropout": 0.5, "Global.epochs": 2,
            "DataLoader.Train.dataset.transform_ops": DETERMINISTIC}
    return tiny_config(images, lists, tmp_path / out, **{**base, **overrides})


def _fit(config):
    trainer = Trainer(config)
    result = trainer.fit()
    return trainer, result


def test_cached_head_equals_slow_head(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    slow, slow_result = _fit(_config(tmp_path, "slow", **{"Global.feature_cache": "off"}))
    fast, fast_result = _fit(_config(tmp_path, "fast", **{"Global.feature_cache": "on",
                                                          "Global.feature_cache_engine": "dygraph"}))
    assert "feature cache: on" in caplog.text
    cached = list((tmp_path / "fast" / "cache" / "features").rglob("*.npy"))
    assert len(cached) == len(fast.train_set) + len(fast.eval_set)
    for name in ("head.weight", "head.bias"):
        np.testing.assert_allclose(fast.model.state_dict()[name].numpy(), slow.model.state_dict()[name].numpy(),
                                   rtol=1e-5, atol=1e-6)
    # the backbone (weights and BN statistics) did not move in either run
    for name, value in slow.model.backbone.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), fast.model.backbone.state_dict()[name].numpy())
    for slow_epoch, fast_epoch in zip(slow_result["history"], fast_result["history"]):
        assert fast_epoch["train_loss"] == pytest.approx(slow_epoch["train_loss"], rel=1e-5)
        assert fast_epoch["val_loss"] == pytest.approx(slow_epoch["val_loss"], rel=1e-5)


def test_oneDNN_engine_features_close_to_dygraph(tmp_path):
    """Paddle Inference + oneDNN computes the same features to float tolerance (~1e-4 relative)."""
    config = _config(tmp_path, "run", **{"Global.feature_cache": "on"})
    trainer = Trainer(config)
    fast = trainer.feature_cache.features(trainer.model, "Train")
    cache_dygraph = type(trainer.feature_cache)(
        _config(tmp_path, "run2", **{"Global.feature_cache": "on", "Global.feature_cache_engine": "dygraph"}),
        trainer.train_set, trainer.eval_set)
    exact = cache_dygraph.features(trainer.model, "Train")
    assert fast.shape == exact.shape == (len(trainer.train_set), 512)
    np.testing.assert_allclose(fast, exact, rtol=1e-3, atol=1e-3 * float(np.abs(exact).max()))


def test_random_augmentation_turns_auto_off_and_on_refuses(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    flip = [{"ResizeImage": {}}, {"RandomFlip": {}}, {"NormalizeImage": {}}]
    config = _config(tmp_path, "auto", **{"DataLoader.Train.dataset.transform_ops": flip, "Global.epochs": 1})
    trainer = Trainer(config)
    assert not trainer.feature_cache.applies(trainer.model)
    assert "feature cache: off because" in caplog.text and "random ops" in caplog.text
    config = _config(tmp_path, "on", **{"DataLoader.Train.dataset.transform_ops": flip,
                                        "Global.feature_cache": "on"})
    trainer = Trainer(config)
    with pytest.raises(ConfigError, match="Global.feature_cache"):
        trainer.feature_cache.applies(trainer.model)
    views = _config(tmp_path, "views", **{"DataLoader.Train.dataset.transform_ops": flip,
                                          "Global.feature_cache_views": 2, "Global.feature_cache_engine": "dygraph"})
    trainer = Trainer(views)
    assert trainer.feature_cache.applies(trainer.model)
    view0 = trainer.feature_cache.features(trainer.model, "Train", view=0)
    view1 = trainer.feature_cache.features(trainer.model, "Train", view=1)
    assert not np.allclose(view0, view1)  # flips differ between the two augmented views
