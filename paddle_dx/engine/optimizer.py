"""Optimizers by name, with their two kinds of weight decay kept apart in the config:

- ``Optimizer.regularizer: {name: L2, coeff}`` (PaddleClas's spelling): L2 regularisation, the
  coefficient times the weight added to its gradient before the update, for every optimizer;
- ``Optimizer.weight_decay``: decoupled decay (Loshchilov & Hutter), ``w *= 1 - lr * coeff``
  before the update, which AdamW applies; the other optimizers refuse a non-zero value rather
  than silently change what it means.

Adam, AdamW and Momentum always use Paddle's multi-tensor kernels: on CPU the per-tensor Adam
slows every later matmul/conv in the process 4-5x (../shared/PERF_NOTES.md, pitfall 1;
benchmarks/optimizer_slowdown.py measures it, tests/test_engine_optimizer.py keeps the choice).
"""

import paddle

from paddle_dx.errors import ConfigError
from paddle_dx.utils.registry import Registry

OPTIMIZERS = Registry("optimizer")


def _regularizer(cfg):
    reg = cfg.get("regularizer") or {}
    return paddle.regularizer.L2Decay(float(reg["coeff"])) if reg.get("coeff") else None


def _no_decoupled_decay(cfg):
    if cfg.get("weight_decay"):
        raise ConfigError(
            f"Optimizer.weight_decay {cfg['weight_decay']} is decoupled decay, which only AdamW applies; for L2 "
            f"regularisation with {cfg['name']} write Optimizer.regularizer: {{name: L2, coeff: {cfg['weight_decay']}}}"
        )


@OPTIMIZERS.register(name="Adam")
def _adam(lr, params, cfg, clip):
    _no_decoupled_decay(cfg)
    return paddle.optimizer.Adam(
        learning_rate=lr, parameters=params, weight_decay=_regularizer(cfg), grad_clip=clip, use_multi_tensor=True
    )


class Adam(paddle.optimizer.Adam):
    """AdamW (decoupled weight decay) on the multi-tensor Adam kernel.

    Named ``Adam`` on purpose: Paddle 3.3 takes its multi-tensor path, in dygraph and in a static
    Program alike, only for an optimizer whose class is named exactly 'Adam' or 'Momentum'
    (``self.__class__.__name__ in [...]`` in paddle/optimizer/optimizer.py); a subclass named
    otherwise silently runs the per-tensor kernel that slows the process. ``paddle.optimizer.AdamW``
    has no multi-tensor option at all. Decay is applied as ``p *= 1 - lr * weight_decay`` before
    the Adam update, which is what ``paddle.optimizer.AdamW`` does (tested to match it); the static
    program applies the same decay as ops of its own (accel/static_program.py).
    """

    def __init__(self, learning_rate, parameters, weight_decay, grad_clip=None, regularizer=None) -> None:
        super().__init__(
            learning_rate=learning_rate,
            parameters=parameters,
            weight_decay=regularizer,
            grad_clip=grad_clip,
            use_multi_tensor=True,
        )
        self.decoupled_weight_decay = float(weight_decay)

    @paddle.no_grad()
    def step(self) -> None:
        if self.decoupled_weight_decay:
            factor = 1.0 - self.get_lr() * self.decoupled_weight_decay
            for param in self._parameter_list:
                if not param.stop_gradient and param.grad is not None:
                    param.scale_(factor)
        super().step()


@OPTIMIZERS.register(name="AdamW")
def _adamw(lr, params, cfg, clip):
    return Adam(
        learning_rate=lr,
        parameters=params,
        weight_decay=cfg["weight_decay"],
        grad_clip=clip,
        regularizer=_regularizer(cfg),
    )


@OPTIMIZERS.register(name="Momentum")
def _momentum(lr, params, cfg, clip):
    _no_decoupled_decay(cfg)
    return paddle.optimizer.Momentum(
        learning_rate=lr,
        momentum=cfg["momentum"],
        parameters=params,
        weight_decay=_regularizer(cfg),
        grad_clip=clip,
        use_multi_tensor=True,
    )


def make_optimizer(
    cfg: dict, lr: "float | paddle.optimizer.lr.LRScheduler", params: list | None
) -> paddle.optimizer.Optimizer:
    """The configured optimizer at ``lr`` (a float or an LRScheduler) over ``params`` (None: the
    parameters of the static Program being built)."""
    clip = paddle.nn.ClipGradByGlobalNorm(cfg["grad_clip"]) if cfg["grad_clip"] else None
    return OPTIMIZERS.get(cfg["name"], where="Optimizer.name")(lr, params, cfg, clip)


SCHEDULES = Registry("lr_schedule")  # Optimizer.lr_schedule -> per-epoch scheduler (None: constant)


@SCHEDULES.register(name="constant")
def _constant(base_lr, epochs, cfg):
    return None


@SCHEDULES.register(name="cosine")
def _cosine(base_lr, epochs, cfg):
    return paddle.optimizer.lr.CosineAnnealingDecay(learning_rate=base_lr, T_max=max(1, epochs))


@SCHEDULES.register(name="piecewise")
def _piecewise(base_lr, epochs, cfg):
    """PaddleClas's Piecewise at epoch granularity (its boundaries are whole epochs too)."""
    bounds, values = cfg.get("decay_epochs"), cfg.get("lr_values")
    if (
        not bounds
        or not values
        or len(values) != len(bounds) + 1
        or list(bounds) != sorted(set(bounds))
        or any(not isinstance(v, (int, float)) or v <= 0 for v in values)
    ):
        raise ConfigError(
            f"Optimizer.lr_schedule 'piecewise' needs decay_epochs (increasing epochs) and lr_values "
            f"(one more positive value), got decay_epochs={bounds!r}, lr_values={values!r}"
        )
    scale = base_lr / float(values[0])  # a stage's own lr scales the whole schedule
    return paddle.optimizer.lr.PiecewiseDecay(
        boundaries=[int(b) for b in bounds], values=[float(v) * scale for v in values]
    )


def _with_warmup(schedule, base_lr, warmup):
    """Epoch k < warmup trains at base_lr*(k+1)/(warmup+1): no epoch is spent at lr 0."""
    return paddle.optimizer.lr.LinearWarmup(
        learning_rate=schedule if schedule is not None else base_lr,
        warmup_steps=warmup,
        start_lr=base_lr / (warmup + 1),
        end_lr=base_lr,
    )


def build_optimizer(
    cfg: dict, model: paddle.nn.Layer, epochs: int, lr: float | None = None
) -> tuple[paddle.optimizer.Optimizer, paddle.optimizer.lr.LRScheduler | None]:
    """Optimizer over the model's trainable parameters, and its per-epoch LR scheduler (or None)."""
    base_lr = float(cfg["lr"] if lr is None else lr)
    warmup = int(cfg.get("warmup_epochs") or 0)
    scheduler = SCHEDULES.get(cfg["lr_schedule"], where="Optimizer.lr_schedule")(base_lr, max(1, epochs - warmup), cfg)
    if warmup:
        scheduler = _with_warmup(scheduler, base_lr, warmup)
    optimizer = make_optimizer(cfg, scheduler or base_lr, trainable_parameters(model))
    return optimizer, scheduler


def trainable_parameters(model: paddle.nn.Layer) -> list:
    return [p for p in model.parameters() if not p.stop_gradient]
