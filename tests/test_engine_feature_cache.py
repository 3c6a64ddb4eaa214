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
        _config(tmp_path, "run2", **{"Global.feature_cache": "on", "Global.feature_cache_engine": "dygraph"})["Global"],
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


def test_partial_freeze_trains_the_same_from_cached_stage_maps(tmp_path, caplog):
    """``until stage 2``: the stem and two stages are cached as feature maps; stages 3-4 (with
    their BatchNorm in train mode) and the head train exactly as they would the slow way."""
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    partial = {"Arch.freeze": "until stage 2"}
    start = {k: v.numpy().copy() for k, v in Trainer(_config(tmp_path, "start", **partial)).model.state_dict().items()}
    slow, slow_result = _fit(_config(tmp_path, "slow", **partial, **{"Global.feature_cache": "off"}))
    fast, fast_result = _fit(_config(tmp_path, "fast", **partial, **{"Global.feature_cache": "on",
                                                                     "Global.feature_cache_engine": "dygraph"}))
    assert "feature cache: on for the frozen front (6 of 13 backbone layers" in caplog.text
    cached = np.load(next((tmp_path / "fast" / "cache" / "features").rglob("*.npy")))
    assert cached.shape == (128, 4, 4)  # ResNet18 stage 2 output at 32 px
    slow_state, fast_state = slow.model.state_dict(), fast.model.state_dict()
    moved = [k for k in slow_state if not np.array_equal(slow_state[k].numpy(), start[k])]
    assert any(k.startswith("backbone.blocks.4") for k in moved) and "head.weight" in moved
    assert not any(k.startswith(("backbone.stem", "backbone.blocks.0", "backbone.blocks.3")) for k in moved)
    for name, value in slow_state.items():  # trained stages, their BN statistics, the head
        np.testing.assert_allclose(fast_state[name].numpy(), value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    for slow_epoch, fast_epoch in zip(slow_result["history"], fast_result["history"]):
        assert fast_epoch["train_loss"] == pytest.approx(slow_epoch["train_loss"], rel=1e-5)
        assert fast_epoch["val_loss"] == pytest.approx(slow_epoch["val_loss"], rel=1e-5)


def test_cache_too_large_turns_auto_off_and_on_refuses(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    tiny_budget = {"Arch.freeze": "until stage 1", "Global.feature_cache_max_gb": 1e-6}
    trainer = Trainer(_config(tmp_path, "auto", **tiny_budget))
    trainer.model.train()
    assert not trainer.feature_cache.applies(trainer.model)
    assert "would take" in caplog.text and "Global.feature_cache_max_gb" in caplog.text
    trainer = Trainer(_config(tmp_path, "on", **tiny_budget, **{"Global.feature_cache": "on"}))
    with pytest.raises(ConfigError, match="feature_cache_max_gb"):
        trainer.feature_cache.applies(trainer.model)


def test_nothing_frozen_means_no_cache(tmp_path):
    trainer = Trainer(_config(tmp_path, "none", **{"Arch.freeze": "none", "Global.feature_cache": "on"}))
    with pytest.raises(ConfigError, match="nothing is frozen"):
        trainer.feature_cache.applies(trainer.model)


def test_front_stops_before_dropout_in_a_frozen_vgg():
    """A frozen VGG's classifier draws dropout masks every step: the cache holds the output
    before the first dropout, and the frozen layers after it run in every step."""
    from paddle_dx.models import apply_freeze, build_model
    model = build_model({"name": "VGG11", "class_num": 2, "freeze": "backbone"})
    front, rest = model.frozen_front()
    assert [type(layer).__name__ for layer in rest] == ["Dropout", "Linear", "ReLU", "Dropout", "Identity"]
    assert type(front[-1]).__name__ == "ReLU" and len(front) + len(rest) == len(model.sequence())
    apply_freeze(model, "until stage 3")
    front, rest = model.frozen_front()
    assert front == [model.backbone.conv_block_1, model.backbone.conv_block_2, model.backbone.conv_block_3,
                     model.backbone.conv_block_4]
