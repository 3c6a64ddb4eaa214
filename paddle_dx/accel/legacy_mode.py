"""The two private Paddle switches the static program needs, kept in one place.

``legacy_static_mode`` builds and runs a legacy-IR Program while the rest of the process stays in
dygraph; ``serial_ops`` makes the executor run the Program's ops one after another.
"""

import contextlib
from collections.abc import Iterator

import paddle
from paddle.base.framework import _dygraph_guard
from paddle.pir_utils import OldIrGuard
from paddle.utils import unique_name


@contextlib.contextmanager
def legacy_static_mode() -> Iterator[None]:
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
def serial_ops() -> Iterator[None]:
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
