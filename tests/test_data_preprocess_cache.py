"""The on-disk cache of deterministic preprocessing gives exactly the uncached result, and
Denoise runs after resizing unless the config says otherwise."""

import logging

import numpy as np
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import build_dataset
from paddle_dx.data.preprocess_cache import PrefixCache
from paddle_dx.data.transforms import build_transforms

OPS = [
    {"Denoise": {"method": "median"}},
    {"CropBorder": {}},
    {"ResizeImage": {}},
    {"RandomFlip": {}},
    {"NormalizeImage": {}},
]


def test_prefix_cache_matches_uncached_pipeline(tmp_path):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4, size=48)
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{"Global.preprocess_cache": True, "DataLoader.Train.dataset.transform_ops": OPS},
    )
    cached, _ = build_dataset(DataSection.of(config, "Train"))
    assert isinstance(cached.prefix_cache, PrefixCache)
    assert [type(op).__name__ for op in cached.prefix_cache.prefix] == ["CropBorder", "ResizeImage", "Denoise"]
    plain = type(cached)(cached.samples, cached.transforms, seed=cached.seed)
    for epoch in (0, 1):  # the second epoch reads every prefix from disk
        for i in range(len(cached)):
            np.testing.assert_array_equal(cached.load(i, epoch)[0], plain.load(i, epoch)[0])
    entries = list((tmp_path / "out" / "cache" / "preprocess").rglob("*.npy"))
    assert len(entries) == len(cached)
    assert all(np.load(e).dtype == np.uint8 and np.load(e).shape == (32, 32, 3) for e in entries)


def test_prefix_cache_key_follows_the_op_spec(tmp_path):
    images, _ = make_tiny_dataset(tmp_path / "data", per_class=4, size=48)
    path = next(images.rglob("*.png"))
    small = PrefixCache(tmp_path / "c", build_transforms([{"ResizeImage": {}}], [3, 16, 16]))
    large = PrefixCache(tmp_path / "c", build_transforms([{"ResizeImage": {}}], [3, 24, 24]))
    assert small.prefix_output(path).shape == (16, 16, 3)
    assert large.prefix_output(path).shape == (24, 24, 3)  # not the 16 px entry


def test_denoise_moves_after_resize_unless_told_not_to():
    order = lambda c: [type(op).__name__ for op in c.ops]  # noqa: E731
    moved = build_transforms([{"Denoise": {}}, {"ResizeImage": {}}, {"NormalizeImage": {}}], [3, 32, 32])
    assert order(moved) == ["ResizeImage", "Denoise", "NormalizeImage", "ToCHWImage"]
    kept = build_transforms([{"Denoise": {"after_resize": False}}, {"ResizeImage": {}}], [3, 32, 32])
    assert order(kept) == ["Denoise", "ResizeImage", "ToCHWImage"]


def test_auto_caches_only_a_prefix_with_an_expensive_op(tmp_path, caplog):
    """``Global.preprocess_cache: auto`` (the default): on for fastNlMeans before the first random
    op, off for cheap prefixes and for fastNlMeans placed after a random op; true/false force it."""
    caplog.set_level(logging.INFO, logger="paddle_dx.data.preprocess_cache")
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4, size=32)
    nlm = {"Denoise": {"method": "fastNlMeans"}}
    cases = [
        ([{"ResizeImage": {}}, nlm, {"RandomFlip": {}}, {"NormalizeImage": {}}], "auto", True),
        ([{"ResizeImage": {}}, {"Denoise": {"method": "median"}}, {"NormalizeImage": {}}], "auto", False),
        ([{"ResizeImage": {}}, {"RandomFlip": {}}, nlm, {"NormalizeImage": {}}], "auto", False),
        ([{"ResizeImage": {}}, {"NormalizeImage": {}}], True, True),
        ([{"ResizeImage": {}}, nlm, {"NormalizeImage": {}}], False, False),
    ]
    for n, (ops, setting, cached) in enumerate(cases):
        config = tiny_config(
            images,
            lists,
            tmp_path / f"out{n}",
            **{"Global.preprocess_cache": setting, "DataLoader.Train.dataset.transform_ops": ops},
        )
        dataset, _ = build_dataset(DataSection.of(config, "Train"))
        assert (dataset.prefix_cache is not None) is cached, (ops, setting)
    assert "preprocess cache: on for DataLoader.Train" in caplog.text and "expensive Denoise" in caplog.text
    assert "preprocess cache: off for DataLoader.Train" in caplog.text
