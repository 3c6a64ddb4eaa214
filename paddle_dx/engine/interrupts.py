"""A stop signal (SIGTERM from a scheduler, Ctrl-C) ends a training with one line, never a traceback.

Paddle installs a C++ handler for SIGTERM when it is imported, which answers with a
"FatalError: Termination signal" dump. A training command therefore owns SIGTERM from its
first line: ``startup_signals`` makes it raise ``Interrupted`` at once while the run is being
built (nothing has been trained, nothing is lost), holding the signal while Paddle is imported
so that Paddle's handler never sees it. ``Trainer.fit`` then installs its own handlers, which
stop after the current step with a resumable checkpoint.
"""

import contextlib
import signal
from collections.abc import Iterator


class Interrupted(Exception):
    """A stop signal ended the run. ``exit_code``: 130 after a resumable checkpoint was written
    (the shell's code for Ctrl-C), 128 + the signal's number when it came before any training."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def before_training(signum: int, what: str) -> Interrupted:
    """The Interrupted of a stop signal that came before the first step."""
    return Interrupted(f"stopped by {signal.Signals(signum).name} {what}", 128 + signum)


def _raise_at_once(signum, _frame):
    raise before_training(signum, "during start-up, before training began; nothing to resume")


@contextlib.contextmanager
def startup_signals() -> Iterator[None]:
    """For the block, SIGTERM raises Interrupted (Ctrl-C is Python's KeyboardInterrupt already).

    Paddle is imported here, with SIGTERM blocked, and the handler installed again after it: a
    SIGTERM sent during the import is delivered to this handler once it is back in place."""
    blocking = hasattr(signal, "pthread_sigmask")  # not on Windows
    previous = signal.signal(signal.SIGTERM, _raise_at_once)
    try:
        if blocking:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            import paddle  # noqa: F401  (its C++ SIGTERM handler replaces ours here)

            signal.signal(signal.SIGTERM, _raise_at_once)
        finally:
            if blocking:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
