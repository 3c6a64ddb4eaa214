"""Run a frozen backbone over images as fast as this machine allows.

Dygraph convolutions on CPU do not use oneDNN (see benchmarks/README.md); Paddle Inference
does, and is 5-8x faster for the same ResNet forward. A frozen backbone never changes, so it
is exported once (``paddle.jit.save``) and run through the inference engine. The ``dygraph``
engine gives bit-for-bit the features the training forward would compute (oneDNN differs
by ~1e-4 relative), which the equivalence test relies on.
"""
import copy
import hashlib
import logging
from pathlib import Path

import numpy as np
import paddle

from paddle_dx.utils.device import usable_cores
from paddle_dx.utils.registry import Registry

log = logging.getLogger(__name__)
EXTRACTORS = Registry("feature cache engine")


def weights_hash(layer):
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

    def __init__(self, backbone, export_dir=None, threads=0):
        self.backbone = _eval_copy(backbone)

    @paddle.no_grad()
    def __call__(self, images):
        return self.backbone(paddle.to_tensor(images)).numpy()


@EXTRACTORS.register(name="inference")
class InferenceExtractor:
    """The backbone exported once and run by Paddle Inference with oneDNN."""

    def __init__(self, backbone, export_dir, threads=0):
        from paddle import inference
        prefix = Path(export_dir) / "backbone"
        if not prefix.with_suffix(".pdiparams").is_file():
            spec = [paddle.static.InputSpec([None, None, None, None], "float32", "x")]
            paddle.jit.save(paddle.jit.to_static(_eval_copy(backbone), input_spec=spec, full_graph=True), str(prefix))
        model_file = next(p for p in (prefix.with_suffix(".json"), prefix.with_suffix(".pdmodel")) if p.is_file())
        config = inference.Config(str(model_file), str(prefix.with_suffix(".pdiparams")))
        config.disable_gpu()
        config.enable_onednn()
        config.set_cpu_math_library_num_threads(int(threads) or usable_cores())
        config.disable_glog_info()
        self.predictor = inference.create_predictor(config)
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def __call__(self, images):
        images = np.ascontiguousarray(images, dtype=np.float32)
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(images)
        self.predictor.run()
        return self.output.copy_to_cpu()


def build_extractor(engine, backbone, export_dir, threads=0):
    return EXTRACTORS.get(engine, where="Global.feature_cache_engine")(backbone, export_dir, threads)
