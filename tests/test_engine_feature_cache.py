"""The head trained from cached backbone features equals the head trained the slow way."""

import logging

import numpy as np
import paddle
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.engine.trainer import Trainer
from paddle_dx.errors import ConfigError

DETERMINISTIC = [{"ResizeImage": {}}, {"NormalizeImage": {}}]


def _config(tmp_path, out, **overrides):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=8, size=32)
    # ResNet18 from scratch: its BatchNorm running statistics (0, 1) differ from batch
    # statistics, so a frozen BN layer accidentally put in train mode changes the result.
    base = {
        "Arch.name": "ResNet18",
        "Arch.freeze": "backbone",
        "Arch.dropout": 0.5,
        "Global.epochs": 2,
        "DataLoader.Train.dataset.transform_ops": DETERMINISTIC,
    }
    return tiny_config(images, lists, tmp_path / out, **{**base, **overrides})


def _fit(config):
    trainer = Trainer(config)
    result = trainer.fit()
    return trainer, result


def test_cached_head_equals_slow_head(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    slow, slow_result = _fit(_config(tmp_path, "slow", **{"Global.feature_cache": "off"}))
    fast, fast_result = _fit(
        _config(tmp_path, "fast", **{"Global.feature_cache": "on", "Global.feature_cache_engine": "dygraph"})
    )
    assert "feature cache: on" in caplog.text
    cached = list((tmp_path / "fast" / "cache" / "features").rglob("*.npy"))
    assert len(cached) == len(fast.train_set) + len(fast.eval_set)
    for name in ("head.weight", "head.bias"):
        np.testing.assert_allclose(
            fast.model.state_dict()[name].numpy(), slow.model.state_dict()[name].numpy(), rtol=1e-5, atol=1e-6
        )
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
        trainer.train_set,
        trainer.eval_set,
    )
    exact = cache_dygraph.features(trainer.model, "Train")
    assert fast.shape == exact.shape == (len(trainer.train_set), 512)
    np.testing.assert_allclose(fast, exact, rtol=1e-3, atol=1e-3 * float(np.abs(exact).max()))


FLIPS = [{"ResizeImage": {}}, {"RandomFlip": {"horizontal": 0.5, "vertical": 0.5}}, {"NormalizeImage": {}}]


@pytest.mark.parametrize("engine", ["dygraph", "static"])
def test_random_flips_train_exactly_from_cached_variants(tmp_path, caplog, engine):
    """RandomFlip has four outcomes: each image's four flipped variants are cached and every step
    takes the variant its sample's generator draws, so the head trains as without the cache."""
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    flips = {"DataLoader.Train.dataset.transform_ops": FLIPS, "Global.epochs": 3, "Global.engine": engine}
    slow, slow_result = _fit(_config(tmp_path, "slow", **flips, **{"Global.feature_cache": "off"}))
    fast, fast_result = _fit(_config(tmp_path, "fast", **flips, **{"Global.feature_cache_engine": "dygraph"}))
    assert "exact: 4 variants" in caplog.text
    cached = list((tmp_path / "fast" / "cache" / "features").rglob("*.npy"))
    assert len(cached) == 4 * len(fast.train_set) + len(fast.eval_set)  # reused across the 3 epochs
    for name in ("head.weight", "head.bias"):
        np.testing.assert_allclose(
            fast.model.state_dict()[name].numpy(), slow.model.state_dict()[name].numpy(), rtol=1e-5, atol=1e-6
        )
    for slow_epoch, fast_epoch in zip(slow_result["history"], fast_result["history"]):
        assert fast_epoch["train_loss"] == pytest.approx(slow_epoch["train_loss"], rel=1e-5)
        assert fast_epoch["val_loss"] == pytest.approx(slow_epoch["val_loss"], rel=1e-5)


def test_flip_variants_are_the_flipped_images_features(tmp_path):
    """Variant (h, v) holds the front output of the image flipped so, normalised after the flip."""
    trainer = Trainer(
        _config(
            tmp_path,
            "run",
            **{"DataLoader.Train.dataset.transform_ops": FLIPS, "Global.feature_cache_engine": "dygraph"},
        )
    )
    cache, dataset = trainer.feature_cache, trainer.train_set
    outcomes = dataset.transforms.variants()
    assert outcomes == [((False, False),), ((False, True),), ((True, False),), ((True, True),)]
    front = paddle.nn.Sequential(*trainer.model.frozen_front()[0])
    front.eval()
    rng = np.random.default_rng(3)
    image = dataset.transforms.ops[0](rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), None)
    unflipped = dataset.transforms.ops[-2](image, None)  # NormalizeImage
    for view, ((h, v),) in enumerate(outcomes):
        expected = unflipped[:, ::-1] if h else unflipped
        expected = expected[::-1] if v else expected
        got = dataset.transforms.apply(image, outcomes[view], start=1)
        np.testing.assert_array_equal(got, np.ascontiguousarray(expected.transpose(2, 0, 1)))
    variants = [cache.features(trainer.model, "Train", view=v) for v in range(4)]
    for v in range(1, 4):
        assert not np.allclose(variants[0], variants[v])
    first = cache._load(dataset, 0, 3)
    with paddle.no_grad():
        np.testing.assert_allclose(
            variants[3][0], front(paddle.to_tensor(first[None])).numpy()[0], rtol=1e-5, atol=1e-6
        )


def test_random_augmentation_turns_auto_off_and_on_refuses(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    flip = [{"ResizeImage": {}}, {"RandomRotation": {"degrees": 20}}, {"NormalizeImage": {}}]
    config = _config(tmp_path, "auto", **{"DataLoader.Train.dataset.transform_ops": flip, "Global.epochs": 1})
    trainer = Trainer(config)
    assert not trainer.feature_cache.applies(trainer.model)
    assert "feature cache: off because" in caplog.text and "random ops" in caplog.text
    config = _config(tmp_path, "on", **{"DataLoader.Train.dataset.transform_ops": flip, "Global.feature_cache": "on"})
    trainer = Trainer(config)
    with pytest.raises(ConfigError, match="Global.feature_cache"):
        trainer.feature_cache.applies(trainer.model)
    views = _config(
        tmp_path,
        "views",
        **{
            "DataLoader.Train.dataset.transform_ops": flip,
            "Global.feature_cache_views": 2,
            "Global.feature_cache_engine": "dygraph",
        },
    )
    trainer = Trainer(views)
    assert trainer.feature_cache.applies(trainer.model)
    view0 = trainer.feature_cache.features(trainer.model, "Train", view=0)
    view1 = trainer.feature_cache.features(trainer.model, "Train", view=1)
    assert not np.allclose(view0, view1)  # rotations differ between the two augmented views


def test_partial_freeze_trains_the_same_from_cached_stage_maps(tmp_path, caplog):
    """``until stage 2``: the stem and two stages are cached as feature maps; stages 3-4 (with
    their BatchNorm in train mode) and the head train exactly as they would the slow way."""
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    partial = {"Arch.freeze": "until stage 2"}
    start = {k: v.numpy().copy() for k, v in Trainer(_config(tmp_path, "start", **partial)).model.state_dict().items()}
    slow, slow_result = _fit(_config(tmp_path, "slow", **partial, **{"Global.feature_cache": "off"}))
    fast, fast_result = _fit(
        _config(tmp_path, "fast", **partial, **{"Global.feature_cache": "on", "Global.feature_cache_engine": "dygraph"})
    )
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
    assert front == [
        model.backbone.conv_block_1,
        model.backbone.conv_block_2,
        model.backbone.conv_block_3,
        model.backbone.conv_block_4,
    ]


def test_flip_variants_count_against_the_cache_budget(tmp_path, caplog):
    """Four variants per training image: a budget that holds one output per image but not four
    turns ``auto`` off (logged) instead of caching."""
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.feature_cache")
    probe = Trainer(_config(tmp_path, "probe"))
    n_train, n_eval = len(probe.train_set), len(probe.eval_set)
    one_each = (n_train + n_eval) * 512 * 4  # ResNet18 features, float32
    budget = (one_each + 2 * n_train * 512 * 4) / 2**30  # room for 3 of the 4 variants
    trainer = Trainer(
        _config(
            tmp_path,
            "flips",
            **{"DataLoader.Train.dataset.transform_ops": FLIPS, "Global.feature_cache_max_gb": budget},
        )
    )
    assert not trainer.feature_cache.applies(trainer.model)
    assert "would take" in caplog.text
    trainer = Trainer(_config(tmp_path, "plain", **{"Global.feature_cache_max_gb": budget}))
    assert trainer.feature_cache.applies(trainer.model)  # one output per image fits
