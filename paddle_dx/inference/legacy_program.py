"""Write the legacy (pre-PIR) program ``inference.pdmodel`` that PaddleClas's deploy predictor reads.

Paddle 3 saves PIR programs (``inference.json``); PaddleClas 2.6's ``deploy/python/predict_cls.py``
fails on them in ``memory_optimize_pass`` and works only with a ``.pdmodel`` under
``FLAGS_enable_pir_api=0``. That flag is read when Paddle starts (``paddle.pir_utils.OldIrGuard``
refuses a model whose parameters were made in PIR mode), so a child process started with it
rebuilds the model from the export's dygraph weights and saves the program.

Child: ``python -m paddle_dx.inference.legacy_program JOB_JSON``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import paddle_dx
from paddle_dx.errors import PaddleDxError

TIMEOUT_S = 600


def write_legacy_program(arch: dict[str, Any], image_shape: list[int], weights: Path, prefix: Path) -> None:
    """``prefix``.pdmodel + ``prefix``.pdiparams of softmax(model) for ``weights`` (a .pdparams)."""
    job = {"arch": arch, "image_shape": list(image_shape), "weights": str(weights), "prefix": str(prefix)}
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    package_root = str(Path(paddle_dx.__file__).resolve().parents[1])  # the paddle_dx this process runs
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "paddle_dx.inference.legacy_program", json.dumps(job, default=str)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    if result.returncode != 0 or not Path(f"{prefix}.pdmodel").is_file():
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise PaddleDxError(f"Global.export_format=paddle_legacy: writing {prefix}.pdmodel failed: {tail}")


def main(argv: list[str]) -> None:
    import paddle

    from paddle_dx.inference.probabilities import Probabilities
    from paddle_dx.models import build_model, load_model_weights

    job = json.loads(argv[0])
    model = build_model(dict(job["arch"], pretrained=False), job["image_shape"])
    load_model_weights(model, job["weights"])
    model.eval()
    spec = paddle.static.InputSpec([None, *job["image_shape"]], "float32", name="x")
    static = paddle.jit.to_static(Probabilities(model), input_spec=[spec], full_graph=True)
    paddle.jit.save(static, job["prefix"])


if __name__ == "__main__":
    main(sys.argv[1:])
