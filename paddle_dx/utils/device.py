"""Choose the device: GPU when Paddle is built with CUDA and one is present, else CPU.

Which GPU (``gpu:N``, the launcher's, or 0) is decided by ``utils.device_spec``."""

import logging
import os

import paddle

from paddle_dx.errors import ConfigError
from paddle_dx.utils.device_spec import gpu_index, parse_device
from paddle_dx.utils.memory import keep_freed_memory

log = logging.getLogger(__name__)
_threads = None  # the CPU math threads select_device set for this process


def restore_threads() -> None:
    """Set Paddle's CPU math threads back to what select_device chose.

    Creating or running a Paddle Inference predictor leaves the process's math threads at 1
    (measured: dygraph gradients after a predictor ran match a 1-thread run's, whatever the
    predictor's own thread setting), so a training that built a feature cache through Paddle
    Inference then computed differently from one that did not (a resumed run drifted)."""
    if _threads is not None:
        paddle.base.core.set_num_threads(_threads)


def gpu_available() -> bool:
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def select_gpu(index: int | None = None) -> int:
    """The index of the GPU to run on (``gpu:N``'s N, else the launcher's, else 0)."""
    return gpu_index(index, paddle.device.cuda.device_count())


def select_device(requested: str = "auto", num_threads: int = 0) -> str:
    """Set and return 'gpu' or 'cpu', and Paddle's CPU math threads (0 = all usable cores); on
    CPU, keep freed memory for the next step (utils/memory.py).

    Paddle's own default is one thread (FLAGS_paddle_num_threads=1): on a 2-core machine that
    alone made ResNet18 training ~1.6x slower (benchmarks/README.md)."""
    kind, index = parse_device(requested)
    if kind == "gpu" and not gpu_available():
        raise ConfigError(
            f"Global.device is '{requested}' but no CUDA device is available "
            "(install paddlepaddle-gpu, or set Global.device=auto)"
        )
    device = "gpu" if kind == "gpu" or (kind == "auto" and gpu_available()) else "cpu"
    paddle.set_device(f"gpu:{select_gpu(index)}" if device == "gpu" else "cpu")
    if device == "cpu":
        global _threads
        _threads = int(num_threads) or usable_cores()
        paddle.base.core.set_num_threads(_threads)
        keep_freed_memory()
    return device
