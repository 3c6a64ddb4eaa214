"""Global.use_amp / amp_dtype resolved per machine (engine/precision.py): GPU mixed precision, bf16
forward convolutions on a CPU with bf16 instructions under the static engine, and float32 with one
log line naming the reason everywhere else."""

import logging

import numpy as np
import pytest

from paddle_dx.engine.precision import Precision, resolve_precision


def _g(use_amp=True, dtype="bfloat16"):
    return {"use_amp": use_amp, "amp_dtype": dtype}


def _fast_bf16(monkeypatch, fast):
    from paddle.base import core

    monkeypatch.setattr(core, "supports_bfloat16_fast_performance", lambda: fast)


def test_off_is_float32_everywhere_without_a_word(caplog):
    with caplog.at_level(logging.INFO):
        assert resolve_precision(_g(use_amp=False), "cpu", "static") == Precision()
        assert resolve_precision(_g(use_amp=False), "gpu", "dygraph") == Precision()
    assert "use_amp" not in caplog.text


def test_gpu_gets_paddles_mixed_precision_in_either_dtype():
    for dtype in ("float16", "bfloat16"):
        assert resolve_precision(_g(dtype=dtype), "gpu", "dygraph") == Precision(gpu_amp=True)


@pytest.mark.parametrize(
    "dtype, engine, fast, reason",
    [
        ("float16", "static", True, "float16 runs on GPUs only"),
        ("bfloat16", "dygraph", True, "Global.engine: static"),
        ("bfloat16", "static", False, "no avx512_bf16 or AMX"),
    ],
)
def test_cpu_falls_back_to_float32_with_one_line_naming_why(monkeypatch, caplog, dtype, engine, fast, reason):
    _fast_bf16(monkeypatch, fast)
    with caplog.at_level(logging.INFO):
        assert resolve_precision(_g(dtype=dtype), "cpu", engine) == Precision()
    lines = [r for r in caplog.records if "use_amp" in r.getMessage()]
    assert len(lines) == 1 and reason in lines[0].getMessage() and "float32" in lines[0].getMessage()


def test_cpu_with_bf16_instructions_and_the_static_engine_gets_bf16_convolutions(monkeypatch, caplog):
    _fast_bf16(monkeypatch, True)
    with caplog.at_level(logging.INFO):
        assert resolve_precision(_g(), "cpu", "static") == Precision(cpu_bf16=True)
    assert "bfloat16" in caplog.text


def test_the_bf16_program_differs_from_the_float32_one_only_in_its_forward_convolutions():
    """Same ops, same order; the forward convolutions on oneDNN carry bf16 compute with float32
    output, their gradients none (the backward stays float32)."""
    import paddle

    from paddle_dx.accel.static_program import StaticTrainStep
    from paddle_dx.engine.steps import _recipe_for
    from tests.test_accel_efficientnet_lite import _setup

    model, spec, loss_fn = _setup(name="ResNet18", size=32)
    recipe = _recipe_for(spec, model)
    programs = {bf16: StaticTrainStep(model, recipe, 1e-3, nhwc=True, bf16=bf16).program for bf16 in (False, True)}
    ops = {bf16: programs[bf16].global_block().ops for bf16 in programs}
    assert [op.type for op in ops[False]] == [op.type for op in ops[True]]
    marked = [op for op in ops[True] if op.has_attr("onednn_data_type") and op.attr("onednn_data_type") == "bfloat16"]
    assert marked and all(op.type in ("conv2d", "depthwise_conv2d") and op.attr("force_fp32_output") for op in marked)
    assert len(marked) == sum(op.type == "conv2d" for op in ops[True])  # every forward convolution
    assert not any(op.has_attr("onednn_data_type") and op.attr("onednn_data_type") == "bfloat16" for op in ops[False])
    assert paddle.in_dynamic_mode()


def test_a_non_finite_gradient_fails_every_check():
    from paddle_dx.accel.parity import BF16, SAME_KERNELS, Reference, step_gap

    class Step:
        gradients = {"w": "w@GRAD"}

        def reset(self):
            pass

        def run(self, images, labels, fetch=()):
            return [np.float32(1.0), None, np.array([np.nan, 1.0], dtype="float32")]

        def weights_now(self):
            return {}

    reference = Reference(1.0, {"w": np.array([1.0, 1.0])}, {}, {})
    batch = (np.zeros([1, 3, 2, 2], "float32"), np.zeros([1], "int64"))
    for tol in (SAME_KERNELS, BF16):
        assert step_gap(Step(), reference, batch, tol) == "the gradient of w is not finite"
