"""The proof an accelerated step owes before it trains: one step of it against one dygraph step,
from the same weights on the same batch with the same random state, for this config (optimizer,
regulariser, weight decay, frozen layers, loss, dropout). Two checks, each with its tolerance
(relative, per tensor, as norms ``||got - want|| / ||want||``):

- ``SAME_PROGRAM``: the Program compiled with Paddle's plain kernels must give dygraph's loss,
  gradients (as the optimizer receives them, after an L2 regulariser) and updated weights and
  BatchNorm statistics to ``1e-6``. The plain kernels are dygraph's own, so the two agree to the
  last bit when the Program computes the same function and updates with the same rule (measured:
  0.0 on ResNet-18/50 with Adam, AdamW, Momentum, L2); a missing decay, a regulariser applied
  twice or another optimizer shows here.
- ``SAME_KERNELS``: the Program that will train (oneDNN kernels, NHWC rewrites) must give the loss
  to ``1e-3`` and each gradient to ``0.1``. oneDNN rounds differently from the plain kernels
  (Winograd and blocked reductions), and back-propagation through batch norm over a small probe
  batch amplifies that: up to 0.025 on a random-init ResNet-50 at 64 px (AMD EPYC). A scrambled
  layout, a gradient transposed the wrong way or a dropped one gives a difference near 1 or
  above. The update rule was proven by the first check, so the second compares no weights.
  A gradient that is zero in exact arithmetic holds only rounding noise in either step, and
  two noises differ by about their own size: EfficientNet-Lite's projection batch norms feed a
  1 x 1 convolution and a training-mode batch norm, which removes any per-channel shift, so their
  bias gradients are 0.5-3e-8 of the whole gradient's norm (all tensors together; Lite0 at 32-224
  px, random or ImageNet weights), and one oneDNN step differed from dygraph by 1.1-2.5 times
  their own norm. So each gradient is measured against ``ZERO_FLOOR`` (1e-5) x the whole dygraph
  gradient's norm where that is larger than its own norm: such noise passes with a margin of
  ~10x, while every real gradient measured (the smallest: 2e-5-2e-3 of the whole) is still
  measured against its own norm.

Either failing sends the stage to dygraph, with the difference found in the log line.

- ``BF16``: with bf16 forward convolutions (``Global.use_amp``, ``amp_dtype: bfloat16``), the
  float32 oneDNN Program passes ``SAME_KERNELS`` first; the bf16 one is compiled by the same code
  with only its convolutions' precision changed, so its check bounds the rounding, not the
  structure: a finite loss within 25 % of dygraph's and finite gradients. Gradients are not
  compared: on the probe (4 random-noise images) bf16 rounding moves them as much as a wrong
  gradient would, in PyTorch's own bf16 autocast as much as here (the whole gradient's relative
  difference from float32, one step: EfficientNet-Lite0 at 224 px 0.80 in PyTorch, 0.59 here;
  at 64 px 1.38 / 1.04; ResNet-18 at 64 px 0.36 / 0.33; loss 1-10 % apart). Whether bf16 trains
  as well is measured over whole runs and seeds (benchmarks/bf16_accuracy.py). Failing it trains
  the stage with the float32 Program.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import paddle

PROBE_BATCH, PROBE_SEED = 4, 2026


@dataclass(frozen=True)
class Tolerance:
    """Largest relative differences accepted; ``update`` None: updated weights not compared."""

    loss: float
    gradient: float
    update: float | None
    zero_floor: float = 0.0  # gradients are measured against at least this x the whole gradient's norm


# below this fraction of the whole gradient's norm, a gradient is rounding noise (module docstring)
ZERO_FLOOR = 1e-5
SAME_PROGRAM = Tolerance(loss=1e-6, gradient=1e-6, update=1e-6)
SAME_KERNELS = Tolerance(loss=1e-3, gradient=0.1, update=None, zero_floor=ZERO_FLOOR)
BF16 = Tolerance(loss=0.25, gradient=math.inf, update=None)


def _gap(got: np.ndarray, want: np.ndarray, floor: float = 0.0) -> float:
    """``||got - want|| / max(||want||, floor)`` (the plain difference when both are 0)."""
    scale = max(float(np.linalg.norm(want)), floor)
    diff = float(np.linalg.norm(np.asarray(got, dtype="float64") - want))
    return diff / scale if scale > 0 else diff


def probe_batch(input_shape: list, class_num: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed small batch: standard-normal inputs, every class present when the batch allows."""
    rng = np.random.RandomState(PROBE_SEED)
    images = rng.standard_normal([PROBE_BATCH, *input_shape]).astype("float32")
    return images, (np.arange(PROBE_BATCH) % class_num).astype("int64")


@dataclass
class Reference:
    """One dygraph step: its loss, the gradients the optimizer received and the weights and
    BatchNorm statistics before and after it (by structured name)."""

    loss: float
    gradients: dict
    before: dict
    after: dict


def dygraph_reference(
    model: paddle.nn.Layer,
    forward: Callable,
    loss_fn: Callable,
    fresh_optimizer: Callable,
    batch: tuple[np.ndarray, np.ndarray],
) -> Reference:
    """One dygraph step on ``batch`` with ``fresh_optimizer()`` (an optimizer like the stage's,
    with no state yet); ``forward(images)`` is the dygraph step's forward. The model's weights and
    mode are left as they were."""
    images, labels = batch
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    names = {p.name: n for n, p in model.named_parameters()}
    was_training = model.training
    try:
        model.train()  # as the trainer steps it (frozen BatchNorm layers stay in eval)
        paddle.seed(PROBE_SEED)
        optimizer = fresh_optimizer()
        loss = loss_fn(forward(paddle.to_tensor(images)), paddle.to_tensor(labels))
        loss.backward()
        gradients = _received_gradients(optimizer, names)
        optimizer.clear_grad()
        after = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        return Reference(float(loss), gradients, before, after)
    finally:
        model.set_state_dict({k: paddle.to_tensor(v) for k, v in before.items()})
        if not was_training:
            model.eval()


def _received_gradients(optimizer: paddle.optimizer.Optimizer, names: dict[str, str]) -> dict:
    """Run ``optimizer.step()`` and return the gradients its update used, by structured name: as
    its own L2 regulariser left them (Paddle's dygraph step regularises in
    ``append_regularization_ops``, after AdamW's decoupled decay), which is also what a Program's
    gradient variables hold once its regulariser has added to them in place."""
    received = {}
    regularize = optimizer.append_regularization_ops

    def recording(params_grads, regularization=None):
        out = regularize(params_grads, regularization)
        received.update({names[p.name]: g.numpy().copy() for p, g in out})
        return out

    optimizer.append_regularization_ops = recording
    try:
        optimizer.step()
    finally:
        del optimizer.append_regularization_ops
    return received


class ProbedStep(Protocol):
    """What ``step_gap`` uses of a compiled step (accel/static_program.py's StaticTrainStep)."""

    gradients: dict[str, str]  # structured name -> the gradient variable the step computes

    def reset(self) -> None: ...

    def run(self, images: np.ndarray, labels: np.ndarray, fetch: Sequence[str] = ()) -> list[np.ndarray]: ...

    def weights_now(self) -> dict[str, np.ndarray]: ...


def step_gap(
    compiled: ProbedStep, reference: Reference, batch: tuple[np.ndarray, np.ndarray], tol: Tolerance
) -> str | None:
    """None when one step of ``compiled`` from the reference's weights matches it within ``tol``,
    else the first difference found, as a short phrase. The compiled step is reset afterwards."""
    missing = sorted(set(reference.gradients) - set(compiled.gradients))
    if missing:
        return f"the compiled step trains no gradient for {missing[0]}"
    names = list(reference.gradients)
    compiled.reset()
    try:
        paddle.seed(PROBE_SEED)
        loss, _, *grads = compiled.run(*batch, [compiled.gradients[n] for n in names])
        after = compiled.weights_now()
    finally:
        compiled.reset()
    loss = float(np.asarray(loss).reshape(-1)[0])
    if not np.isfinite(loss) or abs(loss - reference.loss) > tol.loss * max(abs(reference.loss), 1e-12):
        return f"loss {loss:.6g} against dygraph's {reference.loss:.6g}"
    floor = tol.zero_floor * float(
        np.sqrt(sum(np.sum(np.square(g, dtype="float64")) for g in reference.gradients.values()))
    )
    for name, got in zip(names, grads):
        want = reference.gradients[name]
        if not np.all(np.isfinite(got)):
            return f"the gradient of {name} is not finite"
        if np.shape(got) != want.shape or _gap(got, want, floor) > tol.gradient:
            return f"the gradient of {name} differs ({_describe(got, want, floor)})"
    for name, start in reference.before.items() if tol.update is not None else ():
        got, want = after[name] - start, reference.after[name] - start
        if _gap(got, want) > tol.update:
            return f"the update of {name} differs ({_describe(got, want)})"
    return None


def _describe(got: np.ndarray, want: np.ndarray, floor: float = 0.0) -> str:
    if np.shape(got) != np.shape(want):
        return f"shape {list(np.shape(got))} against {list(np.shape(want))}"
    return f"relative difference {_gap(got, want, floor):.2g}"
