"""``inference.onnx`` beside the Paddle program (``Global.export_format=onnx``), checked on the spot.

paddle2onnx converts Paddle 3's PIR program (``inference.json``) directly. The ONNX model is then
run by onnxruntime and by Paddle Inference on the same inputs; the largest difference of the
probabilities is recorded in inference.yml, and an export whose ONNX model disagrees is refused.
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np

from paddle_dx.errors import ConfigError, WeightsError
from paddle_dx.utils.paddle_inference import InferenceSession

log = logging.getLogger(__name__)
ONNX_FILE = "inference.onnx"
OPSET = 13
MAX_ABS_DIFF = 1e-4  # on probabilities; float32 conversions measure ~1e-7
INSTALL = "pip install -c constraints.txt '.[onnx]'"


def require_onnx_tools() -> None:
    """Fail before exporting anything when paddle2onnx or onnxruntime is missing."""
    for module in ("paddle2onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(
                f"Global.export_format=onnx needs {module}: {INSTALL} (paddle2onnx has no wheel for Python 3.13 yet)"
            ) from None


def write_onnx(program: Path, params: Path, target: Path, image_shape: list[int]) -> dict[str, Any]:
    """Convert ``program`` + ``params`` to ``target``; return what inference.yml records of it."""
    import onnxruntime
    import paddle2onnx

    # enable_optimize=False: its Polygraphy pass pip-installs onnx_graphsurgeon at run time;
    # onnxruntime folds constants itself when it loads the model.
    paddle2onnx.export(str(program), str(params), str(target), opset_version=OPSET, enable_optimize=False)
    batch = np.random.default_rng(0).uniform(-1, 1, (2, *image_shape)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: batch})[0]
    paddle_out = InferenceSession(program, params, enable_mkldnn=False).run(batch)
    diff = float(np.abs(onnx_out - paddle_out).max())
    if not diff <= MAX_ABS_DIFF:
        raise WeightsError(
            f"{target}: onnxruntime and Paddle Inference differ by {diff:.3g} (> {MAX_ABS_DIFF:g}) on the "
            f"same input; the ONNX conversion is wrong for this model: export with Global.export_format=paddle"
        )
    log.info("%s: onnxruntime vs Paddle Inference max |diff| %.3g on 2 random inputs", target.name, diff)
    return {"file": target.name, "opset": OPSET, "max_abs_diff_vs_paddle": diff}
