"""How one stage's training step runs (``Global.engine``), so the training loop never asks.

A step strategy serves an epoch: ``begin_epoch`` returns the epoch's batches (whole images, or
cached outputs of the frozen front when engine/feature_cache.py serves the epoch: that is what
the step trains on), ``step`` trains one batch, ``end_epoch`` leaves the trained weights in the
dygraph model (the source of truth for evaluation, checkpoints and export), and
``optimizer_state_owner`` is what checkpoints save and resume the optimizer's state from.
``choose_step`` picks one per stage (a stage brings a new freeze and a new optimizer).

``dygraph`` is the reference on every device and Paddle version. ``static`` asks the
acceleration layer (paddle_dx/accel/, imported only then) for a compiled step, and uses it only
when one step of it matches the dygraph step (accel/parity.py); otherwise the stage trains in
dygraph and one log line says why.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paddle

from paddle_dx.engine.feature_cache import CachedForward
from paddle_dx.engine.loss import build_loss
from paddle_dx.engine.optimizer import make_optimizer, trainable_parameters
from paddle_dx.models import TransferModel, apply_freeze, build_model
from paddle_dx.utils.registry import Registry

log = logging.getLogger(__name__)
STEPS = Registry("training engine")
# a compiled step of the acceleration layer (accel/static_program.py's StaticTrainStep): the
# engine imports paddle_dx.accel only inside the functions that use it, not even for typing
CompiledTrainStep = Any


@dataclass
class StepParts:
    """What every step strategy works with; one stage's optimizer and scheduler."""

    model: Any
    optimizer: Any
    scheduler: Any
    loss_fn: Any
    feature_cache: Any
    sampler: Any
    loader: Any
    parallel: Any  # engine/distributed.py's Parallel (a pass-through on one device)
    scaler: Any = None  # paddle.amp.GradScaler (GPU with Global.use_amp), kept across stages
    amp: dict = field(default_factory=dict)  # auto_cast's level and dtype (Global.amp_level, amp_dtype)


@dataclass
class StageSpec:
    """The config sections a compiled step is built from (Arch, Loss.Train, Optimizer), the
    stage's freeze and the training labels (class-weighted losses)."""

    arch: dict
    image_shape: list
    loss: list
    optimizer: dict
    freeze: str
    train_labels: list
    bf16: bool = False  # forward convolutions in bfloat16 (engine/precision.py decides)


def resolve_engine(wanted: str, device: str, world_size: int) -> str:
    """The engine that runs here: static is for one CPU process (oneDNN kernels)."""
    if wanted == "static" and (device != "cpu" or world_size > 1):
        log.info(
            "Global.engine: static is for one CPU process (oneDNN kernels); using dygraph on %s",
            "several devices" if world_size > 1 else "the GPU",
        )
        return "dygraph"
    return wanted


class TrainStep:
    """Base: the epoch's batches come from the feature cache (or the loader), nothing to close."""

    def __init__(self, parts: StepParts) -> None:
        self.parts = parts
        self.forward = parts.model  # the model, or CachedForward when this epoch trains on cached outputs

    def begin_epoch(self, epoch: int) -> Iterable:
        p = self.parts
        batches, self.forward = p.feature_cache.epoch_batches(p.model, p.sampler, p.loader, epoch)
        return batches

    def step(self, images: paddle.Tensor, labels: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        """One batch trained: (loss, logits)."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Leave the trained weights in the dygraph model (safe to call more than once)."""

    def describe(self) -> str:
        """What trains each batch, for the epoch's history record (metrics.json ``train_step``)."""
        return "dygraph"

    @property
    def optimizer_state_owner(self) -> paddle.optimizer.Optimizer | CompiledTrainStep:
        return self.parts.optimizer


class DygraphStep(TrainStep):
    """Paddle's eager step (with the AMP scaler on GPU, data-parallel wrapping on several devices)."""

    def step(self, images: paddle.Tensor, labels: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        p = self.parts
        with paddle.amp.auto_cast(enable=p.scaler is not None, **p.amp):
            logits = p.parallel.wrap(self.forward)(images)
            loss = p.loss_fn(logits, labels)
        if p.scaler:
            p.scaler.scale(loss).backward()
            p.scaler.minimize(p.optimizer, loss)
        else:
            loss.backward()
            p.optimizer.step()
        p.optimizer.clear_grad()
        return loss, logits


@STEPS.register(name="dygraph")
def _dygraph(parts: StepParts, spec: StageSpec) -> TrainStep:
    return DygraphStep(parts)


class CompiledStep(TrainStep):
    """An accelerated step from paddle_dx/accel/: weights pushed in at an epoch's start, pulled
    back at its end; the compiled step holds the optimizer's moments."""

    def __init__(self, parts: StepParts, compiled: CompiledTrainStep) -> None:
        super().__init__(parts)
        self.compiled, self._active = compiled, False

    def begin_epoch(self, epoch: int) -> Iterable:
        batches = super().begin_epoch(epoch)
        self.compiled.push()
        self._active = True
        return batches

    def step(self, images: paddle.Tensor, labels: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        return self.compiled(images, labels)

    def end_epoch(self) -> None:
        if self._active:
            self.compiled.pull()
            self._active = False

    @property
    def optimizer_state_owner(self) -> CompiledTrainStep:
        return self.compiled

    def describe(self) -> str:
        c = self.compiled
        return f"static ({'NHWC' if c.channels_last else 'NCHW'}{', bf16 forward convolutions' if c.bf16 else ''})"


@STEPS.register(name="static")
def _static_or_dygraph(parts: StepParts, spec: StageSpec) -> TrainStep:
    """The stage's step as a static Program that proved itself against dygraph, over whole images
    or cached front outputs; dygraph when only the head trains on cached vectors (no convolution
    to speed up, dygraph is faster), on an untested Paddle, or when no compiled form passes."""
    model, cache = parts.model, parts.feature_cache
    front_shape = cache.front_shape(model) if cache.applies(model) else None
    if front_shape is not None and not model.frozen_front()[1]:
        return DygraphStep(parts)
    from paddle_dx import accel  # private Paddle internals: imported only when asked for

    reason = accel.refusal()
    if reason:
        log.warning("Global.engine: static: %s; this stage trains in dygraph", reason)
        return DygraphStep(parts)
    lr = parts.optimizer.get_lr()
    compiled, failures = compile_checked(parts.model, spec, lr, parts.scheduler, parts.loss_fn, front_shape)
    if compiled is None:
        log.warning(
            "Global.engine: static: this stage trains in dygraph, as the compiled step does not match it (%s)",
            "; ".join(failures),
        )
        return DygraphStep(parts)
    step = CompiledStep(parts, compiled)
    log.info(
        "static engine: training step compiled (freeze %s%s) and checked against dygraph: %s",
        spec.freeze,
        f", from cached front outputs {list(front_shape)}" if front_shape else "",
        step.describe(),
    )
    return step


def compile_checked(
    model: TransferModel,
    spec: StageSpec,
    lr: float,
    scheduler: paddle.optimizer.lr.LRScheduler | None,
    loss_fn: Callable,
    front_shape: Sequence[int] | None = None,
) -> tuple[CompiledTrainStep | None, list[str]]:
    """The first compiled form of the stage's step (NHWC where the backbone has one, then NCHW)
    whose step matches the dygraph step from ``model``'s weights; (None, why each failed) when
    none does. ``lr``: the stage's current rate; ``scheduler``: its LRScheduler or None."""
    from paddle_dx.accel.onednn_program import wants_nhwc
    from paddle_dx.accel.parity import BF16, SAME_KERNELS, SAME_PROGRAM, dygraph_reference, probe_batch, step_gap
    from paddle_dx.accel.static_program import StaticTrainStep

    recipe = _recipe_for(spec, model, front_shape)
    forward = CachedForward(model, model.frozen_front()[1]) if front_shape else model

    def fresh_optimizer():
        return make_optimizer(spec.optimizer, lr, trainable_parameters(model))

    batch = probe_batch(recipe.input_shape, spec.arch["class_num"])
    reference = dygraph_reference(model, forward, loss_fn, fresh_optimizer, batch)
    layouts = (True, False) if wants_nhwc(recipe.channels_last, recipe.cached_front) else (False,)
    failures = []
    # first the Program on dygraph's kernels (same function, same update rule), then the fast one
    for nhwc, onednn, tol in ((False, False, SAME_PROGRAM), *((n, True, SAME_KERNELS) for n in layouts)):
        kind = f"{'NHWC' if nhwc else 'NCHW'}{', oneDNN' if onednn else ', plain kernels'}"
        try:
            compiled = StaticTrainStep(model, recipe, scheduler or lr, nhwc, onednn)
            gap = step_gap(compiled, reference, batch, tol)
        except Exception as exc:  # noqa: BLE001 - Paddle's legacy static mode lacks some APIs (e.g. grad clipping)
            gap = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
        if gap is not None:
            failures.append(f"{kind}: {gap}")
            if not onednn:
                break  # another function or update rule: no faster kernel can fix that
        elif onednn:
            bf16 = _in_bf16(model, recipe, scheduler or lr, nhwc, reference, batch, BF16) if spec.bf16 else None
            return bf16 or compiled, []
    return None, failures


def _recipe_for(spec: StageSpec, model: TransferModel, front_shape: Sequence[int] | None = None) -> Any:
    """What the acceleration layer compiles the stage's step from (accel/static_program.py's
    ProgramRecipe): the engine's own builders, so the Program computes what dygraph does."""
    from paddle_dx.accel.static_program import ProgramRecipe

    return ProgramRecipe(
        network=lambda nhwc: _frozen(build_model(dict(spec.arch, pretrained=False), channels_last=nhwc), spec.freeze),
        forward=(lambda net: CachedForward(net, net.frozen_front()[1])) if front_shape else (lambda net: net),
        loss=lambda: build_loss(spec.loss, "Loss.Train", spec.train_labels, spec.arch["class_num"]),
        optimizer=lambda rate: make_optimizer(spec.optimizer, rate, None),
        input_shape=list(front_shape or spec.image_shape),
        cached_front=front_shape is not None,
        channels_last=model.spec.channels_last,
    )


def _in_bf16(model, recipe, lr, nhwc, reference, batch, tol) -> CompiledTrainStep | None:
    """The checked float32 Program's bf16 twin if its step is within bf16's rounding of dygraph's
    (accel/parity.py, BF16); else one warning and None: the float32 Program trains."""
    from paddle_dx.accel.parity import step_gap
    from paddle_dx.accel.static_program import StaticTrainStep

    try:
        compiled = StaticTrainStep(model, recipe, lr, nhwc, onednn=True, bf16=True)
        gap = step_gap(compiled, reference, batch, tol)
    except Exception as exc:  # noqa: BLE001 - as compile_checked: any failure keeps float32
        gap = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
    if gap is None:
        return compiled
    log.warning("bf16: the bf16 step differs from dygraph beyond bf16's rounding (%s); training in float32", gap)
    return None


def _frozen(net: TransferModel, freeze: str) -> TransferModel:
    apply_freeze(net, freeze)
    return net


def choose_step(engine: str, parts: StepParts, spec: StageSpec) -> TrainStep:
    """The step strategy for a stage under ``engine`` (as returned by ``resolve_engine``)."""
    return STEPS.get(engine, where="Global.engine")(parts, spec)
