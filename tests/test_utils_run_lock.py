"""One training per run folder (paddle_dx.utils.run_lock): a second holder is refused, naming the
first; a holder killed with SIGKILL leaves no stale lock."""

import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT

from paddle_dx.utils.run_lock import RunFolderBusy, RunLock

HOLD = (
    "import sys, time; sys.path.insert(0, {root!r}); from paddle_dx.utils.run_lock import RunLock; "
    "lock = RunLock({folder!r}).acquire(); print('held', flush=True); time.sleep(120)"
)


def _holder(folder):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(root=str(ROOT), folder=str(folder))], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_naming_the_first_and_sigkill_frees_the_folder(tmp_path):
    proc = _holder(tmp_path / "run")
    try:
        with pytest.raises(RunFolderBusy, match=rf"run is in use by another training \(pid {proc.pid} on .*started"):
            RunLock(tmp_path / "run").acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with RunLock(tmp_path / "run") as lock:  # the kernel released the dead holder's lock
        assert lock.path.is_file()
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()  # also within one process: a second training is refused
    RunLock(tmp_path / "run").acquire().release()
