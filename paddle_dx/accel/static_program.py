"""The training step as a compiled legacy static Program with oneDNN kernels (``Global.engine: static``).

The dygraph model stays the source of truth for evaluation, checkpoints and export: ``push``
copies its weights into the Program's scope (at an epoch's start), ``pull`` copies the trained
weights and BatchNorm statistics back (at an epoch's end and before an interrupted run saves).
The optimizer's moments live in the scope; ``state_dict`` / ``set_state_dict`` give them to the
checkpoint under the dygraph parameters' names, so a static run resumes exactly. Which ops run on
oneDNN, and in which layout: accel/onednn_program.py.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle
from paddle.base.framework import Block
from paddle.utils import unique_name

from paddle_dx.accel.legacy_mode import legacy_static_mode, serial_ops
from paddle_dx.accel.onednn_program import mark_bf16_convolutions, mark_onednn_ops, nhwc_rewrites
from paddle_dx.errors import WeightsError
from paddle_dx.utils.state_names import rename_optimizer_state


@dataclass
class ProgramRecipe:
    """What the engine hands over to compile one stage's step (the accel layer imports nothing
    from the engine): ``network(nhwc)`` -> an untrained twin of the model, frozen as the stage
    is; ``forward(net)`` -> the callable the step runs on its input (the net, or the rest of it
    after a cached frozen front); ``loss()`` -> the Loss.Train callable; ``optimizer(lr)`` -> the
    configured optimizer over the Program's parameters; ``input_shape``: one input's shape
    (an image, or a cached front output); ``cached_front``: the input is a cached front output;
    ``channels_last``: the backbone can compute in NHWC."""

    network: Callable[[bool], Any]
    forward: Callable[[Any], Callable]
    loss: Callable[[], Callable]
    optimizer: Callable[[Any], Any]
    input_shape: list
    cached_front: bool
    channels_last: bool


OPTIMIZER_OPS = ("adam", "adamw", "merged_adam", "momentum", "merged_momentum", "sgd")
OPTIMIZE_ROLE = 0x0002  # OpRole::kOptimize: regulariser and optimizer ops


class StaticTrainStep:
    """One stage's training step (model, loss, optimizer) compiled once, run per batch."""

    def __init__(
        self,
        model: paddle.nn.Layer,
        recipe: ProgramRecipe,
        lr: float | paddle.optimizer.lr.LRScheduler,
        nhwc: bool,
        onednn: bool = True,
        bf16: bool = False,
    ) -> None:
        """``model``: the dygraph model whose weights the step trains; ``lr``: a float or the
        stage's LRScheduler; ``nhwc``: compute in NHWC; ``onednn``: mark ops for oneDNN
        (accel/onednn_program.py; without it the Program runs dygraph's own kernels); ``bf16``:
        the oneDNN forward convolutions compute in bfloat16."""
        self.model, self.recipe, self.channels_last, self.onednn = model, recipe, nhwc and onednn, onednn
        self.bf16 = bf16 and onednn
        self.scope = paddle.static.Scope()
        self.place = paddle.CPUPlace()
        with legacy_static_mode():
            self.executor = paddle.static.Executor(self.place)
            twin, self.startup = self._compile(lr)
            self.executor.run(self.startup, scope=self.scope)
        block = self.program.global_block()
        # structured name ("backbone.stem.0.conv.weight") -> variable name in the Program
        self.weights = {name: var.name for name, var in twin.state_dict().items()}
        # the optimizer's state: persistable variables the step's ops use that are not weights (the
        # learning rate is set by the optimizer or its scheduler each run; the replaced 1000-class
        # classifier's weights were created at build time but no op uses them)
        own = set(self.weights.values())
        used = {n for op in block.ops for n in (*op.input_arg_names, *op.output_arg_names)}
        self.optimizer_vars = sorted(
            v.name
            for v in self.program.list_vars()
            if v.persistable and v.name in used and v.name not in own and not v.name.startswith("learning_rate")
        )
        dygraph_names = {n: p.name for n, p in model.named_parameters()}
        self._to_dygraph = {self.weights[n]: dygraph_names[n] for n in dygraph_names if n in self.weights}
        # structured name -> the gradient the backward pass computed (before any regulariser)
        trained = {p for op in block.ops if op.type in OPTIMIZER_OPS for p in op.input("Param")}
        self.gradients = {name: self._gradient_name(block, var) for name, var in self.weights.items() if var in trained}

    def _compile(self, lr: float | paddle.optimizer.lr.LRScheduler) -> tuple[paddle.nn.Layer, paddle.static.Program]:
        """Build the step's Program (``self.program``, ``self.logits``, ``self.loss``); return
        the twin network it was built from and its startup Program."""
        recipe = self.recipe
        self.program, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(self.program, startup), unique_name.guard():
            twin = recipe.network(self.channels_last)
            twin.train()
            for layer in twin.sublayers():
                if hasattr(layer, "_is_test"):  # the legacy nn.BatchNorm reads this, not .training, in a Program
                    layer._is_test = not layer.training
            images = paddle.static.data("images", [None, *recipe.input_shape], "float32")
            labels = paddle.static.data("labels", [None], "int64")
            self.logits = recipe.forward(twin)(images)
            self.loss = recipe.loss()(self.logits, labels)
            optimizer = recipe.optimizer(lr)
            optimizer.minimize(self.loss)
        block = self.program.global_block()
        if self.onednn:
            mark_onednn_ops(block, recipe.cached_front, self.channels_last)
        if self.bf16:
            mark_bf16_convolutions(block)
        if self.channels_last:
            nhwc_rewrites(block)
        decay = getattr(optimizer, "decoupled_weight_decay", 0.0)
        if decay:
            _insert_decoupled_decay(block, decay)
        return twin, startup

    @staticmethod
    def _gradient_name(block: Block, weight: str) -> str:
        grad = f"{weight}@GRAD"
        return f"{grad}@OIHW" if block.has_var(f"{grad}@OIHW") else grad

    def _tensor(self, name: str):
        var = self.scope.find_var(name)
        if var is None:
            raise WeightsError(f"static engine: no variable {name} in the compiled step")
        return var.get_tensor()

    def push(self) -> None:
        """Dygraph model -> Program (weights and BatchNorm statistics)."""
        for name, value in self.model.state_dict().items():
            self._tensor(self.weights[name]).set(value.numpy(), self.place)

    def pull(self) -> None:
        """Program -> dygraph model."""
        for name, value in self.model.state_dict().items():
            value.set_value(np.array(self._tensor(self.weights[name])))

    def weights_now(self) -> dict:
        """The Program's weights and BatchNorm statistics, by structured name (NumPy copies)."""
        return {name: np.array(self._tensor(var)) for name, var in self.weights.items()}

    def reset(self) -> None:
        """Fresh optimizer state (moments, step counters) and the dygraph model's weights."""
        with legacy_static_mode():
            self.executor.run(self.startup, scope=self.scope)
        self.push()

    def run(self, images: np.ndarray, labels: np.ndarray, fetch: Sequence[str] = ()) -> list[np.ndarray]:
        """One step on NumPy arrays: [loss, logits, *fetch] as NumPy arrays."""
        feed = {"images": images, "labels": labels.reshape([-1])}
        with legacy_static_mode(), serial_ops():
            return self.executor.run(
                self.program, feed=feed, fetch_list=[self.loss, self.logits, *fetch], scope=self.scope
            )

    def __call__(self, images: paddle.Tensor, labels: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        """One step on a batch: (loss, logits) as dygraph tensors, for the trainer's bookkeeping."""
        loss, logits = self.run(images.numpy(), labels.numpy())
        return paddle.to_tensor(loss), paddle.to_tensor(logits)

    # ---- the optimizer's state, for checkpoints ------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        raw = {name: np.array(self._tensor(name)) for name in self.optimizer_vars}
        return rename_optimizer_state(raw, self._to_dygraph)

    def set_state_dict(self, state: dict) -> None:
        wanted = rename_optimizer_state({n: None for n in self.optimizer_vars}, self._to_dygraph)
        missing = [k for k in wanted if k not in state]
        if missing:
            raise WeightsError(
                f"the checkpoint's optimizer state lacks {missing[:3]} (written with another Optimizer or stage?)"
            )
        for name, key in zip(self.optimizer_vars, wanted):
            value = state[key]
            self._tensor(name).set(np.asarray(value.numpy() if hasattr(value, "numpy") else value), self.place)


def _insert_decoupled_decay(block: Block, coeff: float) -> None:
    """AdamW's decoupled decay, ``w *= 1 - lr * coeff`` before the update, as ops in front of the
    optimizer's: what engine/optimizer.py's multi-tensor AdamW does in ``step()``, which a Program
    never calls (Paddle's own per-tensor AdamW slows every later matmul in the process on CPU)."""
    first = next(op for op in block.ops if op.type in OPTIMIZER_OPS)
    lr = first.input("LearningRate")[0]
    params = [p for op in block.ops if op.type in OPTIMIZER_OPS for p in op.input("Param")]
    # before the optimize-role ops (an L2 regulariser's, then the update), as dygraph decays
    # before its step() regularises and updates
    index = next(i for i, op in enumerate(block.ops) if op.attr("op_role") & OPTIMIZE_ROLE)
    factor = block.create_var(name=f"{lr}@DECAY_FACTOR", shape=[1], dtype="float32")
    ops = [("scale", {"X": [lr]}, {"Out": [factor]}, {"scale": -float(coeff), "bias": 1.0, "bias_after_scale": True})]
    for param in params:
        var = block.var(param)
        decayed = block.create_var(name=f"{param}@DECAYED", shape=var.shape, dtype=var.dtype)
        ops.append(("elementwise_mul", {"X": [param], "Y": [factor]}, {"Out": [decayed]}, {"axis": -1}))
        ops.append(("assign", {"X": [decayed]}, {"Out": [param]}, {}))
    for offset, (op_type, inputs, outputs, attrs) in enumerate(ops):
        block._insert_op(index + offset, type=op_type, inputs=inputs, outputs=outputs, attrs=attrs)
