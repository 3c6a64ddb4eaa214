"""One training per run folder: an OS lock on ``Global.output_dir`` that a killed process releases.

Two trainings writing into one folder delete each other's half-written checkpoints and leave one
run's best model beside the other's metrics. The lock is ``flock`` on a file in the folder
(``msvcrt.locking`` on Windows): the kernel drops it when its process dies, however it dies, so
there is no stale lock to clean up by hand. The file keeps the holder's pid, host, start time and
command, which a refused run prints.
"""

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Self

from paddle_dx.errors import PaddleDxError

LOCK_NAME = ".paddle_dx.lock"

try:
    import fcntl

    def _try_lock(fd):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd):
        fcntl.flock(fd, fcntl.LOCK_UN)
except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd):
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd):
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


class RunFolderBusy(PaddleDxError):
    """Another live process holds the run folder."""


class RunLock:
    """``with RunLock(output_dir):`` holds the folder for the block; a second holder is refused."""

    def __init__(self, directory) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd = None

    def acquire(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _try_lock(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"{self.path.parent} is in use by another training ({holder}); wait for it to "
                f"finish or set another Global.output_dir"
            ) from None
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *_exc):
        self.release()


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: {info.get('command')}"
