"""Console logging for tools/: short lines in one format, no noise from Paddle's C++ INFO lines,
the ccache warning or PaddleClas's deprecation notices (they break the progress bar and say
nothing a user can act on). Every diagnostic goes to stderr: stdout carries only a command's
result (``infer``'s CSV, ``gradcam``'s rows), so it can be piped or redirected whole."""

import logging
import os
import sys
import warnings
from pathlib import Path

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def quiet_native_logs() -> None:
    """Hide Paddle's glog INFO lines and the ccache warning. Must run before ``import paddle``
    (glog reads its level once); a user's own GLOG_minloglevel / GLOG_v is kept."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("FLAGS_call_stack_level", "0")
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)


class _ThroughOurHandlers(logging.Filter):
    """PaddleClas logs through its own handler and date format: drop its ``init_res`` deprecation
    notice and hand everything else to paddle_dx's handlers, so the terminal has one format."""

    def filter(self, record):
        if "init_res" not in record.getMessage():
            logging.getLogger("paddle_dx.ppcls").handle(record)
        return False


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record: pytest's capture and
    notebooks swap it, and a handler holding the old, closed stream fails on every later line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def setup_logging(level: int = logging.INFO, logfile: Path | str | None = None) -> None:
    handlers = [_CurrentStderr()]
    if logfile:
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="[%(asctime)s] %(levelname)s %(message)s",
        datefmt=DATE_FORMAT,
        handlers=handlers,
        force=True,
    )
    for noisy in ("faiss", "faiss.loader", "ppcls", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ppcls = logging.getLogger("ppcls")
    if not any(isinstance(f, _ThroughOurHandlers) for f in ppcls.filters):
        ppcls.addFilter(_ThroughOurHandlers())
