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
import logging

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

log = logging.getLogger(__name__)
ONEDNN_OPS = ("conv2d", "conv2d_grad", "depthwise_conv2d", "depthwise_conv2d_grad")
# in NHWC, also these: their oneDNN kernels meet their inputs in the plain nhwc format oneDNN's
# forward convolutions write (benchmarks/static_levers.py); relu_grad stays plain, because the
# gradients the convolutions return come in a blocked format, and oneDNN's eltwise backward on a
# blocked gradient with an nhwc input falls back to its reference kernel (10x slower)
NHWC_ONEDNN_OPS = ("batch_norm", "batch_norm_grad", "relu")


def channels_last(spec, cached_front):
    """Whether the step's Program computes in NHWC: over whole images, for backbones that can
    (BackboneSpec.channels_last), when it uses oneDNN at all. oneDNN's forward convolutions
    choose nhwc for their output on this CPU path, so in NCHW every one of them is followed by a
    reorder (~12 % of a ResNet-18 step); over cached stage maps the Program stays NCHW (the
    maps are stored so)."""
    return bool(ONEDNN_OPS) and not cached_front and spec.channels_last


def use_onednn(op, block, cached_front, nhwc=False):
    """Whether one op of the step's Program runs through oneDNN (module docstring; the
    alternatives are measured by benchmarks/static_levers.py):
    - NHWC (``channels_last``): every convolution, batch norm forward and backward, relu
      forward, max pooling forward and backward;
    - NCHW over cached feature maps: every convolution;
    - NCHW over whole images: the spatial (k x k, k > 1) convolutions."""
    if op.type not in ONEDNN_OPS:
        return nhwc and (op.type in NHWC_ONEDNN_OPS or _max_pool(op))
    return nhwc or cached_front or max(block.var(op.input("Filter")[0]).shape[-2:]) > 1


def _max_pool(op):
    """A (non-adaptive) max pooling op or its gradient: oneDNN has both; its average pooling
    backward refuses the adaptive global pool Paddle 3.3.1 gives it."""
    return op.type in ("pool2d", "pool2d_grad") and op.attr("pooling_type") == "max" and not op.attr("adaptive")


def _unrotate_filter_grads(block):
    """Put the k x k convolution weight gradients back in OIHW order after oneDNN (NHWC only).

    Why: Paddle 3.3.1 converts a oneDNN tensor for a plain kernel (here the optimizer) by the
    thread's model layout, which the NHWC Program sets to NHWC, so a 4-D weight gradient arrives
    rotated to O, H, W, I (its data in that order). A transpose back right after each
    convolution's backward fixes that; 1 x 1 kernels are the same in both orders. Returns
    {gradient name: its OIHW shape} of the gradients transposed."""
    index, transposed = 0, {}
    while index < len(block.ops):
        op = block.ops[index]
        index += 1
        if op.type not in ONEDNN_OPS or not op.type.endswith("_grad") or not op.output("Filter@GRAD"):
            continue
        grad = op.output("Filter@GRAD")[0]
        shape = block.var(grad).shape
        if max(shape[-2:]) == 1:
            continue
        fixed = block.create_var(name=grad + "@OIHW", shape=shape, dtype="float32")
        xshape = block.create_var(name=grad + "@OIHW_XSHAPE", shape=(0, *shape), dtype="float32")
        for later in block.ops[index:]:
            later._rename_input(grad, fixed.name)
        block._insert_op(index, type="transpose2", inputs={"X": [grad]},
                         outputs={"Out": [fixed], "XShape": [xshape]}, attrs={"axis": [0, 3, 1, 2]})
        index += 1
        transposed[grad] = shape
    return transposed


def _rotates_filter_grads(executor, program, startup, image_shape, transposed):
    """Whether this Paddle hands a k x k weight gradient out of oneDNN rotated (O, H, W, I) as
    ``_unrotate_filter_grads`` expects: one step on two blank images in a scratch scope, the first
    such gradient fetched (a fetch converts it as the optimizer's input is converted). Guards the
    transposes against a Paddle that converts otherwise (they would then scramble the update)."""
    grad, shape = next(iter(transposed.items()))
    scope = paddle.static.Scope()
    executor.run(startup, scope=scope)
    feed = {"images": np.zeros([2, *image_shape], "float32"), "labels": np.zeros([2], "int64")}
    try:
        with _serial_ops():
            value, = executor.run(program, feed=feed, fetch_list=[grad], scope=scope)
    except Exception:  # noqa: BLE001 - a Paddle whose conversion differs may refuse the transposed shapes
        return False
    return list(np.shape(value)) == [shape[0], shape[2], shape[3], shape[1]]


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
        self.scope = paddle.static.Scope()
        self.place = paddle.CPUPlace()
        recipe = (dict(arch, pretrained=False), image_shape, loss, optimizer, freeze, lr, train_labels, front_shape)
        self.channels_last = channels_last(model.spec, bool(front_shape))
        with _legacy_static_mode():
            self.executor = paddle.static.Executor(self.place)
            twin, startup, rotated = self._compile(*recipe, self.channels_last)
            if rotated and not _rotates_filter_grads(self.executor, self.program, startup, image_shape, rotated):
                log.warning("static engine: this Paddle hands oneDNN weight gradients to the optimizer in "
                            "another order than Paddle 3.3.1; computing in NCHW (slower) instead")
                self.channels_last = False
                twin, startup, _ = self._compile(*recipe, False)
            self.executor.run(startup, scope=self.scope)
        block = self.program.global_block()
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

    def _compile(self, arch, image_shape, loss, optimizer, freeze, lr, train_labels, front_shape, nhwc):
        """Build the step's Program (``self.program``, ``self.logits``, ``self.loss``); return
        the model twin it was built from, its startup Program and the k x k weight gradients
        transposed back from oneDNN's order (``_unrotate_filter_grads``; NHWC only)."""
        self.program, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(self.program, startup), unique_name.guard():
            twin = build_model(arch, channels_last=nhwc)
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
            if use_onednn(op, block, bool(front_shape), nhwc):
                op._set_attr("use_mkldnn", True)
        return twin, startup, _unrotate_filter_grads(block) if nhwc else {}

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
