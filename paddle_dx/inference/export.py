"""Write a TransferModel as a Paddle Inference model plus its ``inference.yml``.

The exported graph ends in a softmax, so every runtime (this Predictor, C++, Serving) gets
probabilities. The dygraph weights are saved beside it (``weights.pdparams``) so tools that
need the layers themselves (Grad-CAM) work from the export folder alone. The preprocessing
stored is ``transforms_for(DataSection.of(config, "Eval")).spec()`` and nothing else: whatever ops evaluation
used (including ones other modules register) travel with the model; ``inference_cls.yaml``
restates it for PaddleClas's own predictor.

``Global.export_format``: ``paddle`` (Paddle 3's PIR ``inference.json``), ``paddle_legacy``
(``inference.pdmodel``, for PaddleClas's deploy predictor) or ``onnx`` (``paddle`` plus
``inference.onnx``). The folder is built beside the old one and swapped in at the end, so a
failed re-export leaves the previous export whole.
"""

import logging
from pathlib import Path

import paddle
import yaml

import paddle_dx
from paddle_dx.config import config_hash
from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import class_names, transforms_for
from paddle_dx.errors import ConfigError
from paddle_dx.inference.legacy_program import write_legacy_program
from paddle_dx.inference.onnx_export import ONNX_FILE, require_onnx_tools, write_onnx
from paddle_dx.inference.paddleclas_deploy import PADDLECLAS_CONFIG, paddleclas_config
from paddle_dx.inference.probabilities import Probabilities
from paddle_dx.inference.spec import MODEL_PREFIX, PARAMS_SUFFIX, SPEC_FILE, write_spec
from paddle_dx.models import TransferModel, build_model, load_model_weights
from paddle_dx.models.weights import resolve_weights, save_weights
from paddle_dx.utils.files import atomic_path, check_writable, staged_directory
from paddle_dx.utils.hashing import file_sha256
from paddle_dx.utils.paddle_inference import PROGRAM_SUFFIXES, find_program

log = logging.getLogger(__name__)
DYGRAPH_WEIGHTS = "weights.pdparams"


# what an export writes: files of an earlier export that the new one lacks are not carried over
EXPORT_FILES = (
    *(f"{MODEL_PREFIX}{suffix}" for suffix in (*PROGRAM_SUFFIXES, PARAMS_SUFFIX, PARAMS_SUFFIX + ".info")),
    SPEC_FILE,
    DYGRAPH_WEIGHTS,
    PADDLECLAS_CONFIG,
    ONNX_FILE,
)


def _write_program(model, config, stage, dygraph):
    """The inference program + params in ``stage`` in Global.export_format's IR."""
    g = config["Global"]
    if g["export_format"] == "paddle_legacy":
        write_legacy_program(config["Arch"], g["image_shape"], dygraph, stage / MODEL_PREFIX)
        return
    spec_in = paddle.static.InputSpec([None, *g["image_shape"]], "float32", name="x")
    static = paddle.jit.to_static(Probabilities(model), input_spec=[spec_in], full_graph=True)
    paddle.jit.save(static, str(stage / MODEL_PREFIX))


def export_model(
    model: TransferModel, config: dict, out_dir: Path | str, weights_path: Path | str | None = None
) -> dict:
    """Export ``model`` (a TransferModel built from ``config``) to ``out_dir``; return the spec dict.

    ``weights_path`` is the file the weights were loaded from; its SHA-256 goes into the spec.
    """
    g = config["Global"]
    out_dir = Path(out_dir)
    check_writable(out_dir.absolute().parent)
    transforms = transforms_for(DataSection.of(config, "Eval"))
    if transforms.is_random:
        log.warning(
            "DataLoader.Eval transform_ops contain random ops (%s): exported predictions will vary",
            [type(op).__name__ for op in transforms.ops if op.random],
        )
    names = class_names(DataSection.of(config, "Train"))
    if g["export_format"] == "onnx":
        require_onnx_tools()
    model.eval()
    with staged_directory(out_dir, stale=EXPORT_FILES) as stage:
        dygraph = stage / DYGRAPH_WEIGHTS  # Grad-CAM (paddle_dx.explain) needs the dygraph model
        save_weights(dygraph, model)
        _write_program(model, config, stage, dygraph)
        program = find_program(stage, MODEL_PREFIX)
        params = stage / f"{MODEL_PREFIX}{PARAMS_SUFFIX}"
        spec = {
            "paddle_dx_version": paddle_dx.__version__,
            "paddle_version": paddle.__version__,
            "arch": model.arch_name,
            "class_num": len(names),
            "class_names": names,
            "image_shape": [int(v) for v in g["image_shape"]],
            "preprocess": transforms.spec(),
            "input": {"name": "x", "layout": "NCHW", "dtype": "float32"},
            "output": "probabilities (softmax over classes)",
            "weights": str(weights_path) if weights_path else None,
            "weights_sha256": file_sha256(weights_path) if weights_path else None,
            "config_sha256": config_hash(config),
            "export_format": g["export_format"],
            "model_file": program.name,
            "params_file": params.name,
            "params_sha256": file_sha256(params),
            "dygraph_weights": dygraph.name,
            "dygraph_weights_sha256": file_sha256(dygraph),
        }
        if g["export_format"] == "onnx":
            spec["onnx"] = write_onnx(program, params, stage / ONNX_FILE, spec["image_shape"])
        deploy = paddleclas_config(spec, out_dir)
        if deploy is not None:
            with atomic_path(stage / PADDLECLAS_CONFIG) as tmp:
                tmp.write_text(yaml.safe_dump(deploy, sort_keys=False, allow_unicode=True), encoding="utf-8")
        spec["paddleclas_config"] = PADDLECLAS_CONFIG if deploy is not None else None
        write_spec(stage, spec)
    log.info("exported %s to %s (%s, %s, %s)", model.arch_name, out_dir, program.name, params.name, SPEC_FILE)
    return spec


def export_from_config(config: dict) -> dict:
    """What tools/export_model.py does: load Global.pretrained_model, export to save_inference_dir."""
    g = config["Global"]
    if not g["pretrained_model"] and config["Arch"]["pretrained"]:  # the pretrained network itself
        model = build_model(config["Arch"], g["image_shape"])
        if model.pretrained_report.get("head_kept"):
            return export_model(model, config, g["save_inference_dir"], model.pretrained_report["source"])
    if not g["pretrained_model"]:
        raise ConfigError(
            "tools/export_model.py needs trained weights: -o Global.pretrained_model=output/.../best_model "
            "(or Arch.pretrained with Arch.class_num=1000, to export the ImageNet network itself)"
        )
    weights = resolve_weights(g["pretrained_model"])
    model = build_model(dict(config["Arch"], pretrained=False), g["image_shape"])
    load_model_weights(model, weights)
    return export_model(model, config, g["save_inference_dir"], weights)
