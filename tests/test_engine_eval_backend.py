"""Evaluation through Paddle Inference (Global.eval_engine) gives dygraph's probabilities within
oneDNN's tolerance, and metrics.json says which engine evaluated."""

import json
import logging

import numpy as np
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.engine.eval_backend import MIN_IMAGES, EvalBackend
from paddle_dx.engine.eval_job import run_evaluation
from paddle_dx.engine.trainer import Trainer

TOL = 1e-3  # tests/test_inference_export_predict.py's parity tolerance with oneDNN


def _config(tmp_path, out, **overrides):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=8, size=32)
    # ResNet18 from scratch, every layer trained: BatchNorm must use its running statistics in
    # the exported graph, as in dygraph's eval mode
    base = {"Arch.name": "ResNet18", "Global.epochs": 1, "Global.eval_engine": "inference"}
    return tiny_config(images, lists, tmp_path / out, **{**base, **overrides})


def test_validation_and_test_through_inference_match_dygraph(tmp_path):
    trainer = Trainer(_config(tmp_path, "run"))
    result = trainer.fit()
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["val"]["eval_engine"] == "inference" and written["test"]["eval_engine"] == "inference"
    fast, fast_probs, fast_labels = trainer.evaluate()
    trainer.eval_backend = EvalBackend("dygraph", "cpu", 1, [3, 32, 32])
    slow, slow_probs, slow_labels = trainer.evaluate()
    assert slow["eval_engine"] == "dygraph"
    np.testing.assert_array_equal(fast_labels, slow_labels)
    np.testing.assert_allclose(fast_probs, slow_probs, atol=TOL)
    assert fast["loss"] == pytest.approx(slow["loss"], abs=TOL)
    assert result["val"]["loss"] == pytest.approx(slow["loss"], abs=TOL)  # best epoch = the only epoch
    assert not np.allclose(slow_probs, 0.5, atol=1e-3)  # a real model, not a constant


def test_eval_tool_through_inference_matches_dygraph(tmp_path):
    trainer = Trainer(_config(tmp_path, "run", **{"Global.eval_engine": "dygraph"}))
    trainer.fit()
    weights = str(tmp_path / "run" / "best_model.pdparams")
    results = {}
    for engine in ("inference", "dygraph"):
        config = _config(
            tmp_path, f"eval_{engine}", **{"Global.eval_engine": engine, "Global.pretrained_model": weights}
        )
        results[engine] = run_evaluation(config)
        written = json.loads((tmp_path / f"eval_{engine}" / "eval_val_list_metrics.json").read_text())
        assert written["eval_engine"] == engine
    assert results["inference"]["loss"] == pytest.approx(results["dygraph"]["loss"], abs=TOL)
    assert results["inference"]["auc"] == pytest.approx(results["dygraph"]["auc"], abs=0.02)


def test_auto_chooses_by_device_and_set_size(caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.eval_backend")
    auto = EvalBackend("auto", "cpu", 1, [3, 32, 32])
    assert auto.choose(MIN_IMAGES - 1) == "dygraph" and auto.choose(MIN_IMAGES) == "inference"
    assert "exporting would cost more than it saves" in caplog.text
    for device, world_size in (("gpu", 1), ("cpu", 2)):
        assert EvalBackend("inference", device, world_size, [3, 32, 32]).choose(10**6) == "dygraph"
    assert "dygraph on the GPU" in caplog.text and "dygraph on several devices" in caplog.text


def test_cached_features_evaluate_as_feature_cache(tmp_path):
    frozen = {
        "Arch.freeze": "backbone",
        "Global.feature_cache_engine": "dygraph",
        "DataLoader.Train.dataset.transform_ops": [{"ResizeImage": {}}, {"NormalizeImage": {}}],
    }
    trainer = Trainer(_config(tmp_path, "frozen", **frozen))
    result = trainer.fit()
    assert result["val"]["eval_engine"] == "feature cache"
    assert result["test"]["eval_engine"] == "inference"  # the test list is not cached


def test_a_later_evaluation_exports_the_new_weights_through_the_copy_converted_once():
    import paddle

    from paddle_dx.engine.eval_backend import EvalExport
    from paddle_dx.models import build_model

    paddle.seed(3)
    model = build_model({"name": "ResNet18", "class_num": 2}, [3, 32, 32])
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype("float32")
    export = EvalExport([3, 32, 32], None)

    def both():
        model.eval()
        want = model(paddle.to_tensor(x)).numpy()
        model.train()
        return export.session(model).run(x), want

    first, want = both()
    np.testing.assert_allclose(first, want, rtol=1e-4, atol=TOL)
    converted = export._copy[1]
    rng = np.random.default_rng(1)
    for p in model.parameters():  # new weights, as an epoch of training gives
        if not p.stop_gradient:
            p.set_value(p.numpy() + 0.05 * rng.standard_normal(p.shape).astype("float32"))
    second, want = both()
    assert export._copy[1] is converted  # converted once, given the new weights
    np.testing.assert_allclose(second, want, rtol=1e-4, atol=TOL)  # logits of ~100: relative
    assert not np.allclose(second, first, atol=10 * TOL)  # not the first weights' outputs
    other = build_model({"name": "ResNet18", "class_num": 3}, [3, 32, 32])
    assert export.session(other).run(x).shape == (4, 3) and export._copy[1] is not converted
