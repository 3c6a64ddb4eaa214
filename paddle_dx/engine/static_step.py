"""The training step as a compiled static Program with oneDNN convolutions (``Global.engine: static``).

Why: on CPU, Paddle 3.3.1's dygraph convolutions run im2col + sgemm and never reach oneDNN;
its oneDNN kernels are reachable from a legacy static Program, by the ``use_mkldnn`` attribute of
each op. Which ops, and in which layout, was measured (benchmarks/static_levers.py, results in
benchmarks/results/static_levers.md):

- ResNets over whole images compute in NHWC, with every convolution, batch norm, relu and max
  pooling (forward and backward) on oneDNN. oneDNN's forward convolutions write nhwc, which the
  next op then reads as it is; in NCHW each of them was followed by a reorder, and batch norm or
  relu backward on oneDNN met gradients in mixed formats and fell back to oneDNN's reference
  kernels (2x slower steps). Two rewrites make Paddle 3.3's conversions right for NHWC
  (``_nhwc_rewrites``), checked on a scratch step before training (``_nhwc_rewrites_hold``).
- Over cached stage maps (partial freezes) the Program stays NCHW with every convolution on
  oneDNN; other networks over whole images, NCHW with the spatial (k x k, k > 1) convolutions on
  oneDNN (the 1x1 ones in the early, large stages were slower through oneDNN).

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
# forward convolutions write (benchmarks/static_levers.py). relu_grad needs its gradient input
# made plain first where a convolution's backward wrote it (in a blocked format): oneDNN's eltwise
# backward on a blocked gradient with an nhwc input falls back to its reference kernel (10x slower)
NHWC_ONEDNN_OPS = ("batch_norm", "batch_norm_grad", "relu", "relu_grad")
# the NHWC Program's rewrites (_nhwc_rewrites) follow how Paddle 3.3 converts oneDNN tensors
NHWC_PADDLE = "3.3."
ONEDNN_LAYOUT, PLAIN_LAYOUT = 5, 2  # phi::DataLayout ONEDNN, NCHW (the conversion then follows the model's NHWC)


def channels_last(spec, cached_front):
    """Whether the step's Program computes in NHWC: over whole images, for backbones that can
    (BackboneSpec.channels_last), when it uses oneDNN at all. oneDNN's forward convolutions
    choose nhwc for their output on this CPU path, so in NCHW every one of them is followed by a
    reorder (~12 % of a ResNet-18 step); over cached stage maps the Program stays NCHW (the
    maps are stored so). Only on the Paddle minor version the Program's rewrites were made for
    (``NHWC_PADDLE``)."""
    return bool(ONEDNN_OPS) and not cached_front and spec.channels_last and paddle.__version__.startswith(NHWC_PADDLE)


def use_onednn(op, block, cached_front, nhwc=False):
    """Whether one op of the step's Program runs through oneDNN (module docstring; the
    alternatives are measured by benchmarks/static_levers.py):
    - NHWC (``channels_last``): every convolution, batch norm and relu forward and backward,
      max pooling forward and backward;
    - NCHW over cached feature maps: every convolution;
    - NCHW over whole images: the spatial (k x k, k > 1) convolutions."""
    if op.type not in ONEDNN_OPS:
        return nhwc and (op.type in NHWC_ONEDNN_OPS or _max_pool(op))
    return nhwc or cached_front or max(block.var(op.input("Filter")[0]).shape[-2:]) > 1


def _max_pool(op):
    """A (non-adaptive) max pooling op or its gradient: oneDNN has both; its average pooling
    backward refuses the adaptive global pool Paddle 3.3.1 gives it."""
    return op.type in ("pool2d", "pool2d_grad") and op.attr("pooling_type") == "max" and not op.attr("adaptive")


class NhwcRewrites:
    """What ``_nhwc_rewrites`` changed in a Program: ``transposed`` {weight gradient: its OIHW
    shape}, ``plain`` {convolution's input gradient: its plain copy relu_grad now reads}."""

    def __init__(self):
        self.transposed, self.plain = {}, {}

    def __bool__(self):
        return bool(self.transposed or self.plain)


def _nhwc_rewrites(block):
    """Fix up an NHWC Program for Paddle 3.3's oneDNN conversions (a probe checks them,
    ``_nhwc_rewrites_hold``):

    - a k x k convolution's weight gradient goes to the optimizer's plain kernel converted by the
      thread's model layout, which the NHWC Program sets to NHWC, so it arrives rotated to O, H,
      W, I (its data in that order): a transpose back follows each convolution's backward (1 x 1
      kernels are the same in both orders);
    - a convolution's input gradient is converted to plain before a relu_grad on oneDNN reads it
      (see NHWC_ONEDNN_OPS)."""
    rewrites, conv_input_grads, index = NhwcRewrites(), set(), 0
    while index < len(block.ops):
        op = block.ops[index]
        if op.type == "relu_grad" and op.attr("use_mkldnn") and op.input("Out@GRAD")[0] in conv_input_grads:
            grad = op.input("Out@GRAD")[0]
            rewrites.plain[grad] = _insert_reading(
                block,
                index,
                "transfer_layout",
                grad,
                "@PLAIN",
                {"src_layout": ONEDNN_LAYOUT, "dst_layout": PLAIN_LAYOUT},
            )
            index += 1
        index += 1
        if op.type not in ONEDNN_OPS or not op.type.endswith("_grad"):
            continue
        conv_input_grads.update(op.output("Input@GRAD"))
        for grad in op.output("Filter@GRAD"):
            if max(block.var(grad).shape[-2:]) > 1:
                rewrites.transposed[grad] = block.var(grad).shape
                _insert_reading(block, index, "transpose2", grad, "@OIHW", {"axis": [0, 3, 1, 2]})
                index += 1
    return rewrites


def _insert_reading(block, position, op_type, name, suffix, attrs):
    """Insert ``op_type`` at ``position``, reading ``name`` and writing ``name + suffix``, which
    the ops after it then read instead; return the new name."""
    var = block.var(name)
    new = block.create_var(name=name + suffix, shape=var.shape, dtype=var.dtype)
    for later in block.ops[position:]:
        later._rename_input(name, new.name)
    outputs = {"Out": [new]}
    if op_type == "transpose2":
        outputs["XShape"] = [block.create_var(name=new.name + "_XSHAPE", shape=(0, *var.shape), dtype=var.dtype)]
    block._insert_op(position, type=op_type, inputs={"X": [name]}, outputs=outputs, attrs=attrs)
    return new.name


def _nhwc_rewrites_hold(executor, program, startup, image_shape, rewrites):
    """Whether this Paddle converts oneDNN tensors as ``_nhwc_rewrites`` expects: one step on two
    random images in a scratch scope, fetching (a fetch converts as a plain kernel's input is
    converted) the first transposed weight gradient before its transpose (it must come rotated,
    O, H, W, I) and the first plain copy of a convolution's input gradient with its original (they
    must be equal). Guards the rewrites against a Paddle that converts otherwise, where they would
    scramble the update."""
    grad = next(iter(rewrites.transposed), None)
    copy = next(iter(rewrites.plain.items()), None)
    fetch = [name for name in (grad, *(copy or ())) if name]
    scope = paddle.static.Scope()
    executor.run(startup, scope=scope)
    rng = np.random.RandomState(0)
    feed = {"images": rng.standard_normal([2, *image_shape]).astype("float32"), "labels": np.array([0, 1])}
    try:
        with _serial_ops():
            values = dict(zip(fetch, executor.run(program, feed=feed, fetch_list=fetch, scope=scope)))
    except Exception:  # noqa: BLE001 - a Paddle that converts otherwise may refuse the rewritten shapes
        return False
    if grad:
        o, i, h, w = rewrites.transposed[grad]
        if list(values[grad].shape) != [o, h, w, i]:
            return False
    return copy is None or np.array_equal(values[copy[0]], values[copy[1]])


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
            twin, startup, rewrites = self._compile(*recipe, self.channels_last)
            if rewrites and not _nhwc_rewrites_hold(self.executor, self.program, startup, image_shape, rewrites):
                log.warning(
                    "static engine: this Paddle converts oneDNN tensors for plain kernels otherwise "
                    "than Paddle 3.3.1 did; computing in NCHW (slower) instead"
                )
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
        self.optimizer_vars = sorted(
            v.name
            for v in self.program.list_vars()
            if v.persistable and v.name in used and v.name not in own and not v.name.startswith("learning_rate")
        )
        dygraph_names = {n: p.name for n, p in model.named_parameters()}
        self._to_dygraph = {self.weights[n]: dygraph_names[n] for n in dygraph_names if n in self.weights}

    def _compile(self, arch, image_shape, loss, optimizer, freeze, lr, train_labels, front_shape, nhwc):
        """Build the step's Program (``self.program``, ``self.logits``, ``self.loss``); return
        the model twin it was built from, its startup Program and the NHWC rewrites
        (``_nhwc_rewrites``; None in NCHW)."""
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
        return twin, startup, _nhwc_rewrites(block) if nhwc else None

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
            loss, logits = self.executor.run(
                self.program, feed=feed, fetch_list=[self.loss, self.logits], scope=self.scope
            )
        return paddle.to_tensor(loss), paddle.to_tensor(logits)

    # ---- the optimizer's state, for checkpoints ------------------------------------------
    def state_dict(self):
        raw = {name: np.array(self._tensor(name)) for name in self.optimizer_vars}
        return rename_optimizer_state(raw, self._to_dygraph)

    def set_state_dict(self, state):
        wanted = rename_optimizer_state({n: None for n in self.optimizer_vars}, self._to_dygraph)
        missing = [k for k in wanted if k not in state]
        if missing:
            raise WeightsError(
                f"the checkpoint's optimizer state lacks {missing[:3]} (written with another Optimizer or stage?)"
            )
        for name, key in zip(self.optimizer_vars, wanted):
            value = state[key]
            self._tensor(name).set(np.asarray(value.numpy() if hasattr(value, "numpy") else value), self.place)
