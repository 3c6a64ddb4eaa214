"""Grad-CAM puts the heat where the known answer is, and its overlays are well-formed."""

import numpy as np
import pytest
from corner_model import SIZE, corner_image, train_corner_model


@pytest.fixture(scope="module")
def corner_run(tmp_path_factory):
    from paddle_dx.models.transfer import build_model, load_model_weights

    config = train_corner_model(tmp_path_factory.mktemp("corner"))
    model = build_model(config["Arch"])
    load_model_weights(model, config["Global"]["output_dir"] + "/best_model.pdparams")
    return config, model


def _batch(config, images):
    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import transforms_for

    compose = transforms_for(DataSection.of(config, "Eval"))
    return np.stack([compose(img) for img in images])


def test_heat_is_in_the_corner_that_decides_the_class(corner_run):
    from paddle_dx.explain import GradCAM

    config, model = corner_run
    rng = np.random.default_rng(123)
    images = [corner_image(1, rng, distractor=True) for _ in range(8)]
    cams, probs = GradCAM(model)(_batch(config, images), class_ids=[1] * 8)
    assert (probs.argmax(axis=1) == 1).mean() >= 0.75, probs  # the model did learn the task
    half = SIZE // 2
    shares = []
    for cam in cams:
        quadrants = [cam[:half, :half].sum(), cam[:half, half:].sum(), cam[half:, :half].sum(), cam[half:, half:].sum()]
        assert sum(quadrants) > 0 and int(np.argmax(quadrants)) == 0, quadrants
        shares.append(quadrants[0] / sum(quadrants))
        y, x = np.unravel_index(cam.argmax(), cam.shape)
        assert y < half and x < half, (y, x)
    # untrained LeNet5s gave mean shares of 0.32-0.52 here; the trained one ~0.95
    assert np.mean(shares) > 0.75, shares


def test_cams_are_normalised_and_match_input_size(corner_run):
    from paddle_dx.explain import GradCAM

    config, model = corner_run
    rng = np.random.default_rng(5)
    cams, probs = GradCAM(model)(_batch(config, [corner_image(i % 2, rng) for i in range(3)]))
    assert cams.shape == (3, SIZE, SIZE)
    assert cams.min() >= 0 and cams.max() <= 1 + 1e-6
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    # the hook is removed after the call: no hooks left on the layer
    assert not model.last_conv()._forward_post_hooks


def test_overlay_keeps_image_shape_and_colours_the_hot_region():
    from paddle_dx.explain import overlay_heatmap

    rgb = np.full((40, 60, 3), 128, np.uint8)
    cam = np.zeros((10, 10), np.float32)
    cam[:3, :3] = 1.0
    out = overlay_heatmap(rgb, cam)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    hot, cold = out[2, 2].astype(int), out[-2, -2].astype(int)
    assert hot[0] > hot[2], hot  # JET: hot is red
    assert cold[2] > cold[0], cold  # cold is blue


@pytest.fixture(scope="module")
def exported_corner(corner_run, tmp_path_factory):
    from paddle_dx.config import load_config
    from paddle_dx.inference import export_from_config

    config, _ = corner_run
    out = tmp_path_factory.mktemp("corner_export")
    export_from_config(
        load_config(
            raw=config,
            overrides=[
                f"Global.pretrained_model={config['Global']['output_dir']}/best_model.pdparams",
                f"Global.save_inference_dir={out}",
            ],
        )
    )
    return out


def test_gradcam_tool_writes_overlays_for_a_folder_and_skips_bad_files(exported_corner, tmp_path):
    import cv2

    from paddle_dx.explain.exported import Explainer
    from paddle_dx.explain.job import write_overlay_pngs
    from paddle_dx.inference import Predictor
    from paddle_dx.inference.inputs import collect_inputs

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(9)
    for rel in ("a.png", "sub/a.png"):
        cv2.imwrite(str(folder / rel), corner_image(1, rng, distractor=True)[:, :, ::-1])
    (folder / "broken.png").write_bytes(b"not a png")
    predictor = Predictor(exported_corner)
    rows = write_overlay_pngs(Explainer(predictor), collect_inputs(folder), tmp_path / "out", root=folder)
    assert sorted(r[4].rsplit("/", 1)[1] for r in rows) == ["a_gradcam.png", "sub__a_gradcam.png"]
    for path, predicted, _prob, explained, overlay in rows:
        img = cv2.imread(overlay)
        assert img.shape == (SIZE, SIZE, 3)
        assert predicted == explained == predictor.predict([path])[0]["class_name"]


def test_explainer_refuses_weights_that_are_not_the_exported_ones(exported_corner, tmp_path):
    import shutil

    from paddle_dx.errors import WeightsError
    from paddle_dx.inference import load_spec
    from paddle_dx.inference.dygraph import load_dygraph_model

    copy = tmp_path / "export"
    shutil.copytree(exported_corner, copy)
    model = load_dygraph_model(copy)  # the saved dygraph weights pass their SHA-256 check
    assert model.arch_name == "LeNet5"
    spec = load_spec(copy)
    (copy / "weights.pdparams").write_bytes(b"tampered")
    spec["weights"] = None  # no fallback to the training output
    with pytest.raises(WeightsError, match="SHA-256"):
        load_dygraph_model(copy, spec)


def test_gradcam_tool_with_nothing_readable_fails_instead_of_exiting_0(exported_corner, tmp_path):
    from paddle_dx.commands.gradcam import main
    from paddle_dx.errors import DataError

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="no image could be explained"):
        main(["--model-dir", str(exported_corner), "--input", str(folder), "--out", str(tmp_path / "out")])
    assert not list((tmp_path / "out").glob("*.png"))
