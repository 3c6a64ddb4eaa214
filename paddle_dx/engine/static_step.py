"""The training step as a compiled static Program with oneDNN convolutions (``Global.engine: static``).

Why: on CPU, Paddle 3.3.1's dygraph convolutions run im2col + sgemm and never reach oneDNN;
its oneDNN conv kernels (forward and backward) are reachable from a legacy static Program, by
the ``use_mkldnn`` attribute of each conv op. benchmarks/results/flags.md: the ResNet-18 64 px
step takes ~1.1 s in dygraph, ~0.37 s as a static Program with oneDNN convolutions, PyTorch ~0.35 s.
Which convolutions go to oneDNN was measured (ResNet-50, 224 px, batch 8): over whole images,
only the spatial (k x k, k > 1) ones: 1.38-1.46 img/s, against 1.06 with every convolution and
1.00 with none (the 1x1 ones in the early, large stages were slower through oneDNN); over
cached stage-2 maps (stages 3-4 trained), every convolution: 4.1 img/s against 2.2 with the
spatial ones only (one run each; benchmarks/results/train.md has the 4.1). With oneDNN on every op, pool2d_grad and reduce_mean_grad fail in Paddle 3.3.1.

The dygraph model stays the source of truth for evaluation, checkpoints and export: ``push``
copies its weights into the Program's scope (at an epoch's start), ``pull`` copies the trained
weights and BatchNorm statistics back (at an epoch's end and before an interrupted run saves).
The optimizer's moments live in the scope; ``state_dict`` / ``set_state_dict`` give them to the
checkpoint under the dygraph parameters' names, so a static run resumes exactly.
"""
import contextlib

import numpy as np
import paddle
from paddle.base.framework import _dygraph_guard
from paddle.pir_utils import OldIrGuard
from paddle.utils import unique_name

from paddle_dx.engine.checkpoint import rename_optimizer_state
from paddle_dx.engine.feature_cache import CachedForward
from paddle_dx.engine.loss import build_loss
from paddle_dx.engine.optimizer import OPTIMIZERS
from paddle_dx.errors import WeightsError
from paddle_dx.models import apply_freeze, build_model

ONEDNN_OPS = ("conv2d", "conv2d_grad", "depthwise_conv2d", "depthwise_conv2d_grad")


def use_onednn(op, block, cached_front):
    """Whether one op of the step's Program runs through oneDNN: convolutions, all of them over
    cached feature maps, only the spatial (k x k, k > 1) ones over whole images (module docstring;
    benchmarks/static_levers.py measures the alternatives)."""
    if op.type not in ONEDNN_OPS:
        return False
    return cached_front or max(block.var(op.input("Filter")[0]).shape[-2:]) > 1


@contextlib.contextmanager
def _legacy_static_mode():
    """Legacy-IR static mode for building and running the Program (the Executor refuses to
    run in dygraph mode); the rest of the process stays in dygraph, with the same tracer
    (``_dygraph_guard``, not enable_static/disable_static, which start a new one) and the same
    unique-name generator: OldIrGuard leaves a fresh generator behind, after which new layers
    would reuse earlier layers' parameter names and their optimizer state keys would collide."""
    names = unique_name.switch()  # the process's generator and name checker (switch installs fresh ones ...)
    unique_name.switch(*names)  # ... so put them straight back
    try:
        with OldIrGuard(), _dygraph_guard(None):
            yield
    finally:
        unique_name.switch(*names)


@contextlib.contextmanager
def _serial_ops():
    """Run the Program's ops one after another in this thread.

    Why: Paddle's executor runs its first pass over a Program op by op, and later passes with
    independent ops side by side; oneDNN convolutions sharing the cores with another op then split
    their work differently, so with 2+ threads their gradients differ in the last digits between a
    fresh Executor and a used one, and a run resumed in a new process drifted from the uninterrupted
    run (ResNet-18, 2 threads: weights 1.6e-5 apart after 3 epochs). Serial execution computes the
    same thing on every pass, and is faster on 2 cores: ResNet-18, 128 px, batch 16, 0.44-0.45 s a step
    serial against 0.65-0.66 s side by side (one process per mode, two runs each).
    """
    previous = paddle.get_flags(["FLAGS_new_executor_serial_run"])
    paddle.set_flags({"FLAGS_new_executor_serial_run": True})
    try:
        yield
    finally:
        paddle.set_flags(previous)


def _static_optimizer(cfg, lr):
    """The configured optimizer for a static Program. AdamW is Paddle's own here: the dygraph
    multi-tensor AdamW (engine/optimizer.py) applies its decay in ``step()``, which a Program
    never calls."""
    clip = paddle.nn.ClipGradByGlobalNorm(cfg["grad_clip"]) if cfg["grad_clip"] else None
    if cfg["name"] == "AdamW":
        return paddle.optimizer.AdamW(learning_rate=lr, weight_decay=cfg["weight_decay"], grad_clip=clip)
    return OPTIMIZERS.get(cfg["name"], where="Optimizer.name")(lr, None, cfg, clip)


class StaticTrainStep:
    """One stage's training step (model, loss, optimizer) compiled once, run per batch."""

    def __init__(self, model, arch, image_shape, loss, optimizer, freeze, lr, train_labels, front_shape=None):
        """``arch``, ``loss``, ``optimizer``: the Arch, Loss.Train and Optimizer config sections;
        ``front_shape``: the step takes cached outputs of the frozen front of this shape
        (engine/feature_cache.py) and runs only the rest of the network; None: whole images."""
        self.model = model
        arch = dict(arch, pretrained=False)
        self.scope = paddle.static.Scope()
        self.place = paddle.CPUPlace()
        with _legacy_static_mode():
            self.program, startup = paddle.static.Program(), paddle.static.Program()
            with paddle.static.program_guard(self.program, startup), unique_name.guard():
                twin = build_model(arch)
                apply_freeze(twin, freeze)
                twin.train()
                for layer in twin.sublayers():
                    if hasattr(layer, "_is_test"):  # the legacy nn.BatchNorm reads this, not .training, in a Program
                        layer._is_test = not layer.training
                images = paddle.static.data("images", [None, *(front_shape or image_shape)], "float32")
                labels = paddle.static.data("labels", [None], "int64")
                self.logits = (CachedForward(twin, twin.frozen_front()[1]) if front_shape else twin)(images)
                loss_fn = build_loss(loss, "Loss.Train", train_labels, arch["class_num"])
                self.loss = loss_fn(self.logits, labels)
                _static_optimizer(optimizer, lr).minimize(self.loss)
            block = self.program.global_block()
            for op in block.ops:
                if use_onednn(op, block, bool(front_shape)):
                    op._set_attr("use_mkldnn", True)
            self.executor = paddle.static.Executor(self.place)
            self.executor.run(startup, scope=self.scope)
        # structured name ("backbone.stem.0.conv.weight") -> variable name in the Program
        self.weights = {name: var.name for name, var in twin.state_dict().items()}
        # the optimizer's state: persistable variables the step's ops use that are not weights (the
        # learning rate is set by the optimizer or its scheduler each run; the replaced 1000-class
        # classifier's weights were created at build time but no op uses them)
        own = set(self.weights.values())
        used = {n for op in block.ops for n in (*op.input_arg_names, *op.output_arg_names)}
        self.optimizer_vars = sorted(v.name for v in self.program.list_vars() if v.persistable and v.name in used
                                     and v.name not in own and not v.name.startswith("learning_rate"))
        dygraph_names = {n: p.name for n, p in model.named_parameters()}
        self._to_dygraph = {self.weights[n]: dygraph_names[n] for n in dygraph_names if n in self.weights}

    def _tensor(self, name):
        var = self.scope.find_var(name)
        if var is None:
            raise WeightsError(f"static engine: no variable {name} in the compiled step")
        return var.get_tensor()

    def push(self):
        """Dygraph model -> Program (weights and BatchNorm statistics)."""
        for name, value in self.model.state_dict().items():
            self._tensor(self.weights[name]).set(value.numpy(), self.place)

    def pull(self):
        """Program -> dygraph model."""
        state = self.model.state_dict()
        for name, value in state.items():
            value.set_value(np.array(self._tensor(self.weights[name])))

    def __call__(self, images, labels):
        """One step on a batch: (loss, logits) as dygraph tensors, for the trainer's bookkeeping."""
        feed = {"images": images.numpy(), "labels": labels.numpy().reshape([-1])}
        with _legacy_static_mode(), _serial_ops():
            loss, logits = self.executor.run(self.program, feed=feed, fetch_list=[self.loss, self.logits],
                                             scope=self.scope)
        return paddle.to_tensor(loss), paddle.to_tensor(logits)

    # ---- the optimizer's state, for checkpoints ------------------------------------------
    def state_dict(self):
        raw = {name: np.array(self._tensor(name)) for name in self.optimizer_vars}
        return rename_optimizer_state(raw, self._to_dygraph)

    def set_state_dict(self, state):
        wanted = rename_optimizer_state({n: None for n in self.optimizer_vars}, self._to_dygraph)
        missing = [k for k in wanted if k not in state]
        if missing:
            raise WeightsError(f"the checkpoint's optimizer state lacks {missing[:3]} (written with another "
                               f"Optimizer or stage?)")
        for name, key in zip(self.optimizer_vars, wanted):
            value = state[key]
            self._tensor(name).set(np.asarray(value.numpy() if hasattr(value, "numpy") else value), self.place)
