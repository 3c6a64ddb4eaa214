"""``DataLoader.*.loader.num_workers`` and ``use_shared_memory``: ``auto`` resolved by device.

CPU: the training step's math threads already use every core, so DataLoader worker processes
only compete with them; on 2 cores no setting trained an epoch faster than loading in the main
process (benchmarks/results/loader_workers.md), so ``auto`` is 0 there. GPU: the step runs on the
device and the CPU's work is decoding and preprocessing, so ``auto`` gives each rank one worker
per spare core, at most ``MAX_GPU_WORKERS`` (PaddleClas's shipped default). Not measured: no GPU
here. Shared memory hands a batch over without pickling it through a pipe; ``auto`` uses it
when /dev/shm has room for every batch in flight (a container's 64 MB /dev/shm does not, and
a worker writing past it dies with a bus error).
"""

import shutil
from collections.abc import Sequence

AUTO = "auto"
MAX_GPU_WORKERS = 4
PREFETCH = 2  # batches in flight per worker (paddle.io.DataLoader's prefetch_factor default)
SHM_HEADROOM = 2  # /dev/shm must hold this many times the batches in flight


class WorkerChoices(Sequence):
    """The schema's choices for num_workers: ``auto`` or a whole number >= 0."""

    def __contains__(self, value) -> bool:
        return value == AUTO or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)

    def __getitem__(self, index):
        return (AUTO, "0, 1, 2, ...")[index]

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return repr(list(self))


def resolve_workers(value: int | str, device: str, cores: int, world_size: int = 1) -> int:
    """Worker processes for one rank's loader: ``value`` itself, or for ``auto`` 0 on CPU and
    on GPU the cores left per rank after its own process (at least 1, at most MAX_GPU_WORKERS)."""
    if value != AUTO:
        return int(value)
    if not str(device).startswith("gpu"):
        return 0
    spare = cores // max(int(world_size), 1) - 1
    return max(1, min(MAX_GPU_WORKERS, spare))


def resolve_shared_memory(value: bool | str, workers: int, batch_bytes: int, shm_free: int | None) -> bool:
    """Shared memory on or off: ``value`` itself, or for ``auto`` on when there are workers and
    ``shm_free`` bytes (None: no /dev/shm) hold SHM_HEADROOM x their batches in flight."""
    if workers == 0:
        return False
    if value != AUTO:
        return bool(value)
    return shm_free is not None and shm_free >= SHM_HEADROOM * PREFETCH * workers * batch_bytes


def shm_free_bytes(path: str = "/dev/shm") -> int | None:
    """Free bytes in the shared-memory filesystem, or None where there is none (macOS, Windows)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
