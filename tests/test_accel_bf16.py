"""bf16 forward convolutions (Global.use_amp, amp_dtype: bfloat16, Global.engine: static) on a CPU
with avx512_bf16 / AMX: the run trains on the bf16 Program and records it; the bf16 step really
computes in bf16 (its loss moves by bf16's rounding, not by float32's). On a CPU without bf16
instructions these tests skip: tests/test_engine_precision.py covers the float32 fallback there."""

import json

import numpy as np
import pytest

from tests.conftest import tiny_config

pytestmark = pytest.mark.slow  # compiles ResNet-18 Programs and trains a tiny run (~20 s)


@pytest.fixture(autouse=True)
def _needs_bf16_cpu():
    from paddle_dx import accel

    why = accel.bf16_refusal()
    if why:
        pytest.skip(why)


def test_a_run_trains_on_the_bf16_step_and_records_it(tiny_dataset, tmp_path, caplog):
    from paddle_dx.engine.trainer import Trainer

    images, lists = tiny_dataset
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{
            "Arch.name": "ResNet18",
            "Global.engine": "static",
            "Global.use_amp": "true",
            "Global.amp_dtype": "bfloat16",
        },
    )
    Trainer(config).fit()
    history = json.loads((tmp_path / "out" / "metrics.json").read_text())["history"]
    assert [h["train_step"] for h in history] == ["static (NHWC, bf16 forward convolutions)"] * 2
    assert all(np.isfinite(h["train_loss"]) for h in history)


def test_the_bf16_step_rounds_as_bf16_does():
    """One step from the same weights on the probe batch: the float32 oneDNN Program's loss is
    within 1e-4 of dygraph's (float32 rounding), the bf16 Program's is not but within BF16's
    bound (8 bits of mantissa in every forward convolution)."""
    from paddle_dx.accel.parity import BF16, dygraph_reference, probe_batch
    from paddle_dx.accel.static_program import StaticTrainStep
    from paddle_dx.engine.optimizer import make_optimizer, trainable_parameters
    from paddle_dx.engine.steps import _recipe_for
    from tests.test_accel_efficientnet_lite import _setup

    model, spec, loss_fn = _setup(name="ResNet18", size=32)
    recipe = _recipe_for(spec, model)
    batch = probe_batch(recipe.input_shape, 2)
    reference = dygraph_reference(
        model, model, loss_fn, lambda: make_optimizer(spec.optimizer, 1e-3, trainable_parameters(model)), batch
    )
    losses = {}
    for bf16 in (False, True):
        step = StaticTrainStep(model, recipe, 1e-3, nhwc=True, bf16=bf16)
        step.reset()
        losses[bf16] = float(np.asarray(step.run(*batch)[0]).reshape(-1)[0])
    gap = {bf16: abs(loss - reference.loss) / reference.loss for bf16, loss in losses.items()}
    assert gap[False] < 1e-4
    assert 1e-4 < gap[True] < BF16.loss, gap
