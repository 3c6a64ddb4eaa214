"""``inference_cls.yaml``: the export's own preprocessing in PaddleClas's deploy syntax.

PaddleClas's predictor (``paddleclas/deploy/python/predict_cls.py``) ships a config whose
defaults are ImageNet's (resize 256, crop 224, ImageNet mean/std); run on a paddle_dx model
(usually ``[-1, 1]`` input at another size) it gives wrong answers without an error. Each export
therefore writes this file from ``inference.yml``'s ops, so the PaddleClas predictor sees exactly
what evaluation saw. An op PaddleClas's deploy code has no equivalent for (CropBorder, Grayscale,
...) means no file, and one warning saying which op.
"""

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PADDLECLAS_CONFIG = "inference_cls.yaml"
# paddle_dx interpolation names -> PaddleClas deploy's cv2 names (UnifiedResize)
INTERPOLATION = {"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest", "area": "area"}


def _wh(size):
    """paddle_dx sizes are int or [h, w]; PaddleClas's deploy ops take int or [w, h]."""
    return [int(size[1]), int(size[0])] if isinstance(size, (list, tuple)) else int(size)


def _resize(p):
    out = {"resize_short": int(p["resize_short"])} if p.get("resize_short") else {"size": _wh(p["size"])}
    out["interpolation"] = INTERPOLATION[p.get("interpolation", "area")]
    return {"ResizeImage": out}


def _normalize(p):
    return {
        "NormalizeImage": {
            "scale": float(p["scale"]),
            "mean": [float(v) for v in p["mean"]],
            "std": [float(v) for v in p["std"]],
            "order": "",
            "channel_num": 3,
        }
    }


OPS = {
    "ResizeImage": _resize,
    "CenterCrop": lambda p: {"CropImage": {"size": _wh(p["size"])}},
    "NormalizeImage": _normalize,
    "ToCHWImage": lambda p: {"ToCHWImage": None},
}


def paddleclas_ops(preprocess: list[dict[str, Any]]) -> tuple[list[dict[str, Any]] | None, str | None]:
    """(PaddleClas deploy ``transform_ops``, None), or (None, the first op that has no equivalent)."""
    out = []
    for item in preprocess:
        name, params = next(iter(item.items()))
        if name not in OPS:
            return None, name
        out.append(OPS[name](params or {}))
    return out, None


def paddleclas_config(spec: dict[str, Any], model_dir: Path) -> dict[str, Any] | None:
    """The ``predict_cls.py`` config for an export (``spec`` = its inference.yml), or None."""
    ops, missing = paddleclas_ops(spec["preprocess"])
    if ops is None:
        log.warning(
            "no %s written: PaddleClas's deploy preprocessing has no op like %s (predict with tools/infer.py)",
            PADDLECLAS_CONFIG,
            missing,
        )
        return None
    names = list(spec["class_names"])
    return {
        "Global": {
            "infer_imgs": "./images",
            "inference_model_dir": str(Path(model_dir).absolute()),
            "batch_size": 1,
            "use_gpu": False,
            "enable_mkldnn": True,
            "cpu_num_threads": 4,
            "enable_benchmark": False,
            "use_fp16": False,
            "ir_optim": True,
            "use_tensorrt": False,
            "gpu_mem": 8000,
            "enable_profile": False,
        },
        "PreProcess": {"transform_ops": ops},
        "PostProcess": {"main_indicator": "Topk", "Topk": {"topk": min(5, len(names)), "label_list": names}},
    }
