"""Named pause points, so fault tests can kill a run at an exact place instead of racing a timer.

With ``PADDLE_DX_PAUSE_AT="name:count"`` set, the ``count``-th time a process passes
``pause_point(name)`` it creates the file ``PADDLE_DX_PAUSE_MARKER`` (so the test knows the
run is there) and sleeps for up to ``PADDLE_DX_PAUSE_SECONDS`` (default 60), returning early
once ``until()`` is true (e.g. a stop signal arrived). Unset, a pause point costs one lookup.
"""

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

_passes = Counter()


def pause_point(name: str, until: Callable[[], bool] | None = None) -> None:
    spec = os.environ.get("PADDLE_DX_PAUSE_AT")
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _passes[name] += 1
    if _passes[name] != int(count or 1):
        return
    marker = os.environ.get("PADDLE_DX_PAUSE_MARKER")
    if marker:
        Path(marker).write_text(f"{name}:{_passes[name]} pid {os.getpid()}\n", encoding="utf-8")
    deadline = time.monotonic() + float(os.environ.get("PADDLE_DX_PAUSE_SECONDS", "60"))
    while time.monotonic() < deadline and not (until and until()):
        time.sleep(0.02)
