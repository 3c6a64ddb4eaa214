"""Each preprocessing op on tiny generated images, and the pipeline built from a config."""

import cv2
import numpy as np
import pytest

from paddle_dx.data.io import read_image
from paddle_dx.data.transforms import (
    TRANSFORMS,
    CenterCrop,
    ColorJitter,
    CropBorder,
    Denoise,
    Grayscale,
    NormalizeImage,
    RandomFlip,
    RandomResizedCrop,
    RandomRotation,
    ResizeImage,
    build_transforms,
)
from paddle_dx.errors import ConfigError


def rng(seed=0):
    return np.random.default_rng(seed)


def gradient(h=40, w=60):
    """RGB uint8 with distinct rows/columns, so flips and crops are visible."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4, y * 6, (x + y) * 2], axis=2).clip(0, 255).astype(np.uint8)


def test_read_image_gives_rgb_for_colour_grey_and_rgba_files(tmp_path):
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "g.png"), np.full((8, 10), 77, np.uint8))
    bgra = np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), np.full((8, 10), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert read_image(tmp_path / "c.png")[0, 0].tolist() == [200, 0, 0]
    assert read_image(tmp_path / "g.png")[0, 0].tolist() == [77, 77, 77]
    assert read_image(tmp_path / "a.png").shape == (8, 10, 3)
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 0]


def test_crop_border_removes_the_dark_endoscope_frame():
    img = np.zeros((50, 70, 3), np.uint8)
    img[10:40, 15:60] = 180
    img[12, 20] = 5  # below threshold: still part of the field, not of the frame
    out = CropBorder(threshold=10)(img, rng())
    assert out.shape == (30, 45, 3) and out.min() >= 5
    assert CropBorder(threshold=10, margin=2)(img, rng()).shape == (34, 49, 3)
    black = np.zeros((20, 20, 3), np.uint8)
    assert CropBorder()(black, rng()).shape == black.shape  # nothing to crop to: unchanged


@pytest.mark.parametrize("method", Denoise.METHODS)
def test_denoise_reduces_noise_and_keeps_shape(method):
    clean = np.full((32, 32, 3), 128, np.uint8)
    noisy = np.clip(clean + rng(1).normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    out = Denoise(method=method, h=10)(noisy, rng())
    assert out.shape == noisy.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - 128).mean() < 0.8 * np.abs(noisy.astype(int) - 128).mean()


def test_denoise_rejects_unknown_method():
    with pytest.raises(ConfigError, match="Denoise.method 'nlm'"):
        Denoise(method="nlm")


def test_resize_to_size_or_short_side():
    img = gradient(40, 60)
    assert ResizeImage(size=[20, 30])(img, rng()).shape == (20, 30, 3)
    assert ResizeImage(size=16)(img, rng()).shape == (16, 16, 3)
    assert ResizeImage(resize_short=20)(img, rng()).shape == (20, 30, 3)
    assert ResizeImage(size=[20, 30], interpolation="linear")(img, rng()).shape == (20, 30, 3)
    with pytest.raises(ConfigError, match="interpolation 'bicubic'"):
        ResizeImage(size=8, interpolation="bicubic")


def test_center_crop_takes_the_middle_and_pads_small_images():
    img = gradient(40, 60)
    out = CenterCrop(size=[20, 30])(img, rng())
    assert np.array_equal(out, img[10:30, 15:45])
    small = CenterCrop(size=50)(img, rng())
    assert small.shape == (50, 50, 3)


def test_random_resized_crop_has_the_output_size_and_depends_only_on_the_seed():
    op = RandomResizedCrop(size=[24, 24], scale=(0.2, 0.5))
    img = gradient(40, 60)
    a, b, c = op(img, rng(3)), op(img, rng(3)), op(img, rng(4))
    assert a.shape == (24, 24, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_random_flip_probabilities():
    img = gradient(8, 12)
    assert np.array_equal(RandomFlip(horizontal=1.0, vertical=0.0)(img, rng()), img[:, ::-1])
    assert np.array_equal(RandomFlip(horizontal=0.0, vertical=1.0)(img, rng()), img[::-1])
    assert np.array_equal(RandomFlip(horizontal=0.0, vertical=0.0)(img, rng()), img)
    flipped = [not np.array_equal(RandomFlip(horizontal=0.5)(img, rng(s)), img) for s in range(200)]
    assert 0.35 < np.mean(flipped) < 0.65


def test_random_rotation_is_small_and_seeded():
    img = np.zeros((41, 41, 3), np.uint8)
    img[18:23, :] = 255  # a horizontal bar
    assert np.array_equal(RandomRotation(degrees=0)(img, rng()), img)
    out = RandomRotation(degrees=30)(img, rng(5))
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert np.array_equal(out, RandomRotation(degrees=30)(img, rng(5)))
    # the centre stays on the bar whatever the angle
    assert out[20, 20].min() > 200


def test_color_jitter_changes_brightness_and_contrast_within_bounds_and_clips():
    img = gradient(20, 30)
    for seed in range(20):
        out = ColorJitter(brightness=0.1, contrast=0.0)(img, rng(seed))
        shift = out.astype(int) - img.astype(int)
        inside = (img > 30) & (img < 225)  # away from clipping
        assert np.ptp(shift[inside]) <= 1 and np.abs(shift[inside]).max() <= 26
    dark = np.zeros((4, 4, 3), np.uint8)
    darker = ColorJitter(brightness=0.2, contrast=0.0)
    # a negative shift on black stays black (no absolute-value wrap-around): about half the seeds
    outs = [darker(dark, rng(s)) for s in range(40)]
    assert 10 <= sum(o.max() == 0 for o in outs) <= 30 and max(o.max() for o in outs) <= 51
    mid = (gradient(20, 30) // 2 + 60).astype(np.uint8)  # 60..187: no clipping at +-50 % contrast
    for seed in range(5):
        alpha = 1.0 + rng(seed).uniform(-0.5, 0.5)  # the op's first draw
        out = ColorJitter(brightness=0.0, contrast=0.5)(mid, rng(seed))
        expected = (mid - mid.mean()) * alpha + mid.mean()  # contrast scales around the mean
        assert np.abs(out - expected).max() <= 0.51 and abs(alpha - 1) > 0.01


def test_grayscale_keeps_three_identical_channels_or_one():
    img = gradient(10, 10)
    out = Grayscale()(img, rng())
    assert out.shape == (10, 10, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
    assert np.array_equal(out[..., 0], cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))
    assert Grayscale(channels=1)(img, rng()).shape == (10, 10, 1)


def test_normalize_minus_one_to_one_is_x_over_127_5_minus_1():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    out = NormalizeImage()(img, rng())
    assert out.dtype == np.float32
    assert out[0, 0].tolist() == [-1.0, -1.0, -1.0] and out[-1, -1].tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_allclose(out, img / 127.5 - 1.0, atol=1e-6)


def test_normalize_imagenet_preset_and_custom_mean_std():
    img = np.full((2, 2, 3), 255, np.uint8)
    out = NormalizeImage(preset="imagenet")(img, rng())
    np.testing.assert_allclose(
        out[0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), rtol=1e-5
    )
    custom = NormalizeImage(preset="custom", mean=[0, 0, 0], std=[2, 2, 2], scale=1.0)(img, rng())
    assert custom[0, 0].tolist() == [127.5, 127.5, 127.5]
    with pytest.raises(ConfigError, match="NormalizeImage.preset 'imgnet'"):
        NormalizeImage(preset="imgnet")


def test_every_registered_core_op_is_tested_here():
    core = {
        "CropBorder",
        "Denoise",
        "ResizeImage",
        "CenterCrop",
        "RandomResizedCrop",
        "RandomFlip",
        "RandomRotation",
        "ColorJitter",
        "Grayscale",
        "NormalizeImage",
        "ToCHWImage",
    }
    assert core <= set(TRANSFORMS.names())


def test_pipeline_takes_sizes_from_image_shape_unless_an_op_sets_its_own():
    ops = [{"CropBorder": {}}, {"ResizeImage": {"resize_short": 40}}, {"CenterCrop": {}}, {"NormalizeImage": {}}]
    pipeline = build_transforms(ops, [3, 32, 32])
    out = pipeline(gradient(50, 80), rng())
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    spec = pipeline.spec()
    assert spec[2] == {"CenterCrop": {"size": [32, 32]}}
    assert spec[1]["ResizeImage"]["resize_short"] == 40 and spec[-1] == {"ToCHWImage": {}}
    own = build_transforms([{"ResizeImage": {"size": [20, 24]}}, "NormalizeImage"], [3, 32, 32])
    assert own(gradient(), rng()).shape == (3, 20, 24)
    # the spec rebuilds exactly the same pipeline (what export stores)
    again = build_transforms(spec, [3, 99, 99])
    assert np.array_equal(again(gradient(50, 80), rng()), out)


def test_pipeline_config_errors_name_the_op_and_parameter():
    with pytest.raises(ConfigError, match=r"transform_ops\[1\]: unknown transform op 'Resize'.*did you mean"):
        build_transforms([{"CropBorder": {}}, {"Resize": {}}], [3, 32, 32])
    with pytest.raises(
        ConfigError,
        match=r"transform_ops\[0\].RandomFlip: unknown parameter 'horizontl'"
        r".*did you mean 'horizontal'",
    ):
        build_transforms([{"RandomFlip": {"horizontl": 0.5}}], [3, 32, 32])
    with pytest.raises(ConfigError, match="single `OpName: {params}` mapping"):
        build_transforms([{"RandomFlip": {}, "CenterCrop": {}}], [3, 32, 32])


@pytest.mark.parametrize(
    "op, error",
    [
        (
            {"NormalizeImage": {"scale": "1.0/255.0"}},
            r"transform_ops\[0\]\.NormalizeImage\.scale: expected number, got str",
        ),
        ({"ResizeImage": {"size": [1.5, 3]}}, r"transform_ops\[0\]\.ResizeImage\.size: expected int or a list of ints"),
        (
            {"RandomFlip": {"horizontal": True}},
            r"transform_ops\[0\]\.RandomFlip\.horizontal: expected number, got bool",
        ),
        ({"RandomResizedCrop": {"scale": [0.5, "x"]}}, r"RandomResizedCrop\.scale: expected a list of numbers"),
        ({"Denoise": {"method": "nlm"}}, r"transform_ops\[0\]\.Denoise\.method 'nlm' is not one of"),
    ],
)
def test_op_parameters_of_the_wrong_type_are_refused_when_the_pipeline_is_built(op, error):
    with pytest.raises(ConfigError, match=error):
        build_transforms([op], [3, 32, 32], where="DataLoader.Train.dataset.transform_ops")


def test_op_parameters_of_the_right_type_are_accepted_ints_as_numbers():
    ops = [
        {"CropBorder": {"threshold": 5}},
        {"ResizeImage": {"size": 32, "interpolation": "linear"}},
        {"RandomResizedCrop": {"size": [32, 32], "scale": [0.5, 1], "ratio": [1, 1]}},
        {"NormalizeImage": {"mean": [0, 0, 0], "std": [1, 1, 1], "scale": 1}},
    ]
    out = build_transforms(ops, [3, 32, 32])(gradient(), rng())
    assert out.shape == (3, 32, 32) and out.max() > 1  # scale 1: values stay 0..255
