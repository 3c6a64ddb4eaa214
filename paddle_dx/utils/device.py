"""Choose the device: GPU when Paddle is built with CUDA and one is present, else CPU."""
import logging
import os

import paddle

from paddle_dx.errors import ConfigError

log = logging.getLogger(__name__)


def gpu_available():
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def usable_cores():
    """CPU cores this process may run on (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def select_device(requested="auto", num_threads=0):
    """Set and return 'gpu' or 'cpu', and Paddle's CPU math threads (0 = all usable cores).

    Paddle's own default is one thread (FLAGS_paddle_num_threads=1): on a 2-core machine that
    alone made ResNet18 training ~1.6x slower (benchmarks/README.md)."""
    if requested == "gpu" and not gpu_available():
        raise ConfigError("Global.device is 'gpu' but no CUDA device is available "
                          "(install paddlepaddle-gpu, or set Global.device=auto)")
    device = "gpu" if requested == "gpu" or (requested == "auto" and gpu_available()) else "cpu"
    paddle.set_device(device)
    if device == "cpu":
        paddle.base.core.set_num_threads(int(num_threads) or usable_cores())
    return device
