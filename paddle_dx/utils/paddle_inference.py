"""One Paddle Inference session: program + params -> ``run(batch) -> outputs``.

Shared by the exported-model Predictor and the frozen-backbone feature cache, so device,
oneDNN and thread settings are decided in one place.
"""

import logging
from pathlib import Path

import numpy as np
from paddle import inference as paddle_infer

from paddle_dx.errors import WeightsError
from paddle_dx.utils.device import gpu_available, restore_threads, select_gpu, usable_cores
from paddle_dx.utils.device_spec import parse_device

log = logging.getLogger(__name__)
PROGRAM_SUFFIXES = (".json", ".pdmodel")  # Paddle 3 (PIR) writes .json, Paddle 2 .pdmodel
GPU_MEMORY_MB = 256  # the predictor's initial GPU memory pool; it grows on demand


def find_program(directory: Path | str, prefix: str) -> Path:
    """The program file ``paddle.jit.save`` wrote for ``prefix`` (json or pdmodel)."""
    for suffix in PROGRAM_SUFFIXES:
        candidate = Path(directory) / f"{prefix}{suffix}"
        if candidate.is_file():
            return candidate
    raise WeightsError(f"{directory}: no {prefix}{' or '.join(PROGRAM_SUFFIXES)} model file found")


def config_calls(device: str, enable_mkldnn: bool = True, threads: int | None = None) -> list[tuple[str, tuple]]:
    """The ``paddle.inference.Config`` method calls for ``device`` ("cpu", "gpu:N"), as (name, args).

    A pure function of its arguments (no device is probed), so what a GPU run would set can be
    checked on a machine without one: the GPU's index goes to ``enable_use_gpu``; oneDNN and
    the math threads apply on the CPU only."""
    kind, index = parse_device(device, where="inference device")
    if kind == "gpu":
        return [("enable_use_gpu", (GPU_MEMORY_MB, 0 if index is None else index))]
    return [
        ("disable_gpu", ()),
        ("enable_mkldnn" if enable_mkldnn else "disable_mkldnn", ()),
        ("set_cpu_math_library_num_threads", (int(threads or usable_cores()),)),
    ]


class InferenceSession:
    """A created predictor with its first input and output handles.

    GPU when asked and present (a warning and the CPU otherwise): GPU ``gpu_id``, else the one
    the launcher gave this process (FLAGS_selected_gpus), else 0. On CPU, oneDNN on or off and
    ``threads`` math threads (None or 0 = every core this process may use).
    """

    def __init__(self, program, params, use_gpu=False, enable_mkldnn=True, threads=None, gpu_id=None) -> None:
        config = paddle_infer.Config(str(program), str(params))
        self.gpu_id = None
        if use_gpu and gpu_available():
            self.gpu_id = select_gpu(gpu_id)
        elif use_gpu:
            log.warning("GPU requested but none is available (CPU build of Paddle or no device): using the CPU")
        self.device = "cpu" if self.gpu_id is None else "gpu"
        for name, args in config_calls("cpu" if self.gpu_id is None else f"gpu:{self.gpu_id}", enable_mkldnn, threads):
            getattr(config, name)(*args)
        config.disable_glog_info()
        self.predictor = paddle_infer.create_predictor(config)
        restore_threads()
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Outputs for one float32 NCHW batch (not thread-safe: callers serialise)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self._input.reshape(list(batch.shape))
        self._input.copy_from_cpu(batch)
        self.predictor.run()
        restore_threads()  # the predictor leaves the process at 1 math thread
        return self._output.copy_to_cpu()
