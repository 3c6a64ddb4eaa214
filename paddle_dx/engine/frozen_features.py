"""Run a frozen backbone over images as fast as this machine allows.

Dygraph convolutions on CPU do not use oneDNN (see benchmarks/README.md); Paddle Inference
does, and is ~4-5x faster for the same ResNet-50 forward (benchmarks/results/inference.md). A
frozen backbone never changes, so it is exported once (``paddle.jit.save``) and run through the
inference engine, on the run's GPU when it trains on one. The ``dygraph`` engine gives
bit-for-bit the features the training forward would compute (oneDNN differs by ~1e-4
relative), which the equivalence test relies on.
"""

import copy
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import paddle

from paddle_dx.utils.device_spec import parse_device
from paddle_dx.utils.paddle_inference import InferenceSession, find_program
from paddle_dx.utils.registry import Registry

log = logging.getLogger(__name__)
EXTRACTORS = Registry("feature cache engine")


def weights_hash(layer: paddle.nn.Layer) -> str:
    """SHA-256 over a layer's parameters and buffers (names, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, value in sorted(layer.state_dict().items()):
        array = np.ascontiguousarray(value.numpy())
        digest.update(f"{name}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _eval_copy(backbone):
    """A detached eval-mode copy: exporting or running it never touches the training model."""
    frozen = copy.deepcopy(backbone)
    frozen.eval()
    return frozen


@EXTRACTORS.register(name="dygraph")
class DygraphExtractor:
    """The backbone's own dygraph forward in eval mode (exactly what training computes)."""

    def __init__(self, backbone, export_dir=None, threads=0, device="cpu") -> None:
        self.backbone = _eval_copy(backbone)  # on Paddle's current device, the run's

    @paddle.no_grad()
    def __call__(self, images):
        return self.backbone(paddle.to_tensor(images)).numpy()


@EXTRACTORS.register(name="inference")
class InferenceExtractor:
    """The backbone exported once and run by Paddle Inference: on the run's GPU (``device``
    "gpu:N", as ``paddle.device.get_device()`` names it), else on the CPU with oneDNN."""

    def __init__(self, backbone, export_dir, threads=0, device="cpu") -> None:
        prefix = Path(export_dir) / "backbone"
        if not prefix.with_suffix(".pdiparams").is_file():
            spec = [paddle.static.InputSpec([None, None, None, None], "float32", "x")]
            paddle.jit.save(paddle.jit.to_static(_eval_copy(backbone), input_spec=spec, full_graph=True), str(prefix))
        kind, index = parse_device(device, where="feature cache device")
        self.session = InferenceSession(
            find_program(export_dir, "backbone"),
            prefix.with_suffix(".pdiparams"),
            use_gpu=kind == "gpu",
            enable_mkldnn=True,
            threads=threads,
            gpu_id=index,
        )

    def __call__(self, images):
        return self.session.run(images)


def build_extractor(
    engine: str, backbone: paddle.nn.Layer, export_dir: Path | str | None, threads: int = 0, device: str = "cpu"
) -> Callable[[np.ndarray], np.ndarray]:
    return EXTRACTORS.get(engine, where="Global.feature_cache_engine")(backbone, export_dir, threads, device)
