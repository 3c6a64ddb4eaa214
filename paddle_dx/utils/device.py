"""Choose the device: GPU when Paddle is built with CUDA and one is present, else CPU."""
import logging

import paddle

from paddle_dx.errors import ConfigError

log = logging.getLogger(__name__)


def gpu_available():
    return paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def select_device(requested="auto", num_threads=0):
    """Set and return 'gpu' or 'cpu'. ``num_threads`` > 0 sets Paddle's CPU math threads."""
    if requested == "gpu" and not gpu_available():
        raise ConfigError("Global.device is 'gpu' but no CUDA device is available "
                          "(install paddlepaddle-gpu, or set Global.device=auto)")
    device = "gpu" if requested == "gpu" or (requested == "auto" and gpu_available()) else "cpu"
    paddle.set_device(device)
    if num_threads and device == "cpu":
        paddle.base.core.set_num_threads(int(num_threads))
    return device
