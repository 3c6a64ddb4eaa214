"""Acceleration: faster ways to run a training step that prove themselves before they run.

Nothing here is needed for correct training: the engine's dygraph step is the reference on every
CPU, GPU and Paddle version paddle_dx supports. A config opts in (``Global.engine: static``); the
engine then imports this package (lazily: it relies on private Paddle internals), compiles the
step, and uses it only if ``parity.step_parity`` shows one step of it gives the dygraph step's loss,
gradients and updated weights within the stated tolerances. Otherwise one log line says why and
training goes on in dygraph. The package sits below the engine: it receives the model, the loss
and the optimizer it compiles, and imports nothing from ``paddle_dx.engine``.

Room for more accelerations (fused depthwise kernels, program passes): each is a module here behind the same two calls, ``refusal()`` and a compiled step with
``push`` / ``pull`` / ``__call__`` / ``state_dict`` / ``set_state_dict``.
"""

import paddle

# The Paddle minor versions the static program and its NHWC rewrites were written and tested for:
# they use legacy-IR internals (OldIrGuard, block._insert_op, op attributes) that change between
# releases, so another version gets a one-line refusal and the dygraph step.
TESTED_PADDLE = ("3.3.",)


def refusal(version: str | None = None) -> str | None:
    """Why acceleration cannot run on this Paddle, or None when it may try."""
    version = version or paddle.__version__
    if not version.startswith(TESTED_PADDLE):
        return f"Paddle {version} is not one the static program was tested on ({', '.join(TESTED_PADDLE)}x)"
    return None


def bf16_refusal() -> str | None:
    """Why bf16 convolutions would not pay on this CPU (no avx512_bf16 or AMX: oneDNN would
    emulate them, slower than float32), or None when they may run."""
    from paddle.base import core

    if not core.supports_bfloat16_fast_performance():
        return "this CPU has no avx512_bf16 or AMX instructions (oneDNN would emulate bf16, slower than float32)"
    return None
