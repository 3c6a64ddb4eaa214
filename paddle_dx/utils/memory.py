"""Keep freed memory in the process between training steps (glibc's malloc settings).

Why: a training step allocates and frees the same large activation buffers every step. By
default glibc maps blocks above a moving threshold fresh from the system and hands a freed heap
top back, so in some steps the kernel faults in and zeroes hundreds of MB again. On 2 cores a
ResNet-18 static step (224 px, batch 8) switched between ~0.49 s and ~0.70 s in phases of
several steps; with the mmap threshold at glibc's maximum (32 MiB) and the heap trimmed only
above 2 GiB of free top, every step took ~0.44 s (benchmarks/results/static_levers.md). Either
setting alone kept the slow phases. The memory kept is what the next step allocates again.
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1
_applied = None


def keep_freed_memory() -> bool:
    """Apply the settings once per process on glibc (Linux); elsewhere do nothing. Returns
    whether they are in effect."""
    global _applied
    if _applied is None:
        _applied = _mallopt()
        log.debug("glibc malloc keeps freed memory: %s", _applied)
    return _applied


def _mallopt():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        _ = libc.gnu_get_libc_version  # only glibc has mallopt with these parameters (not musl, macOS, Windows)
    except (OSError, AttributeError, TypeError):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
