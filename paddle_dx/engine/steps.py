"""How one stage's training step runs (``Global.engine``), so the training loop never asks.

A step strategy serves an epoch: ``begin_epoch`` returns the epoch's batches (whole images, or
cached outputs of the frozen front when engine/feature_cache.py serves the epoch: that is what
the step trains on), ``step`` trains one batch, ``end_epoch`` leaves the trained weights in the
dygraph model (the source of truth for evaluation, checkpoints and export), and
``optimizer_state_owner`` is what checkpoints save and resume the optimizer's state from.
``choose_step`` picks one per stage (a stage brings a new freeze and a new optimizer).
"""

import logging
from dataclasses import dataclass, field
from typing import Any

import paddle

from paddle_dx.engine.static_step import StaticTrainStep
from paddle_dx.utils.registry import Registry

log = logging.getLogger(__name__)
STEPS = Registry("training engine")


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
class StaticSpec:
    """The config values a compiled static step needs (engine/static_step.py)."""

    arch: dict
    image_shape: list
    loss: list  # Loss.Train
    optimizer: dict  # Optimizer
    freeze: str
    train_labels: list


def resolve_engine(wanted, device, world_size):
    """The engine that runs here: static is for one CPU process (oneDNN convolutions)."""
    if wanted == "static" and (device != "cpu" or world_size > 1):
        log.info(
            "Global.engine: static is for one CPU process (oneDNN convolutions); using dygraph on %s",
            "several devices" if world_size > 1 else "the GPU",
        )
        return "dygraph"
    return wanted


class TrainStep:
    """Base: the epoch's batches come from the feature cache (or the loader), nothing to close."""

    def __init__(self, parts):
        self.parts = parts
        self.forward = parts.model  # the model, or CachedForward when this epoch trains on cached outputs

    def begin_epoch(self, epoch):
        p = self.parts
        batches, self.forward = p.feature_cache.epoch_batches(p.model, p.sampler, p.loader, epoch)
        return batches

    def step(self, images, labels):
        raise NotImplementedError

    def end_epoch(self):
        """Leave the trained weights in the dygraph model (safe to call more than once)."""

    @property
    def optimizer_state_owner(self):
        return self.parts.optimizer


class DygraphStep(TrainStep):
    """Paddle's eager step (with the AMP scaler on GPU, data-parallel wrapping on several devices)."""

    def step(self, images, labels):
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
def _dygraph(parts, spec):
    return DygraphStep(parts)


class StaticProgramStep(TrainStep):
    """A compiled static Program (``StaticTrainStep``): weights pushed in at an epoch's start,
    pulled back at its end; the Program's scope holds the optimizer's moments."""

    def __init__(self, parts, compiled):
        super().__init__(parts)
        self.compiled, self._active = compiled, False

    def begin_epoch(self, epoch):
        batches = super().begin_epoch(epoch)
        self.compiled.push()
        self._active = True
        return batches

    def step(self, images, labels):
        return self.compiled(images, labels)

    def end_epoch(self):
        if self._active:
            self.compiled.pull()
            self._active = False

    @property
    def optimizer_state_owner(self):
        return self.compiled


@STEPS.register(name="static")
def _static_or_dygraph(parts, spec):
    """The stage's step as a static Program, over whole images or cached front outputs; dygraph
    when only the head trains on cached vectors (no convolution to speed up, dygraph is faster)
    or when Paddle's legacy static mode cannot compile it."""
    model, cache = parts.model, parts.feature_cache
    front_shape = cache.front_shape(model) if cache.applies(model) else None
    if front_shape is not None and not model.frozen_front()[1]:
        return DygraphStep(parts)
    try:
        compiled = StaticTrainStep(
            model,
            spec.arch,
            spec.image_shape,
            spec.loss,
            spec.optimizer,
            spec.freeze,
            parts.scheduler or parts.optimizer.get_lr(),
            spec.train_labels,
            front_shape,
        )
    except Exception as exc:  # Paddle 3.3's legacy static mode lacks some APIs (e.g. grad clipping)
        log.warning(
            "Global.engine: static could not compile this training step in Paddle %s's legacy "
            "static mode (%s: %s); this stage trains in dygraph",
            paddle.__version__,
            type(exc).__name__,
            str(exc).strip().splitlines()[0][:200],
        )
        return DygraphStep(parts)
    log.info(
        "static engine: training step compiled (freeze %s%s), oneDNN convolutions",
        spec.freeze,
        f", from cached front outputs {list(front_shape)}" if front_shape else "",
    )
    return StaticProgramStep(parts, compiled)


def choose_step(engine, parts, spec):
    """The step strategy for a stage under ``engine`` (as returned by ``resolve_engine``)."""
    return STEPS.get(engine, where="Global.engine")(parts, spec)
