"""``inference.yml``: the contract between an exported model and whoever runs it.

It records what a deployment needs to reproduce evaluation exactly (class names, input shape,
the resolved Eval preprocessing ops) and where the numbers came from (architecture, SHA-256 of
the trained weights and of the exported parameters, paddle_dx and Paddle versions).
"""

from pathlib import Path

import yaml

from paddle_dx.config.loader import read_yaml
from paddle_dx.errors import ConfigError, WeightsError
from paddle_dx.utils.files import atomic_path
from paddle_dx.utils.hashing import file_sha256

SPEC_FILE = "inference.yml"
MODEL_PREFIX = "inference"
# Paddle 3 (PIR) writes .json programs, Paddle 2 wrote .pdmodel: load whichever is there.
PARAMS_SUFFIX = ".pdiparams"
REQUIRED = ("class_names", "image_shape", "preprocess", "model_file", "params_file")


def write_spec(directory: Path | str, spec: dict) -> None:
    with atomic_path(Path(directory) / SPEC_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")


def load_spec(model_dir: Path | str) -> dict:
    """Read and check ``<model_dir>/inference.yml``; errors name the file and the key."""
    path = Path(model_dir) / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: not found; export the model first with tools/export_model.py")
    spec = read_yaml(path)
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise ConfigError(f"{path}: missing key(s) {missing}")
    shape = spec["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise ConfigError(f"{path}: image_shape must be [channels, height, width], got {shape!r}")
    if not isinstance(spec["preprocess"], list):
        raise ConfigError(f"{path}: preprocess must be a list of `OpName: {{params}}`, got {spec['preprocess']!r}")
    if not isinstance(spec["class_names"], list) or len(spec["class_names"]) < 2:
        raise ConfigError(f"{path}: class_names must list at least 2 names, got {spec['class_names']!r}")
    spec["class_names"] = [str(n) for n in spec["class_names"]]
    return spec


def model_files(model_dir: Path | str, spec: dict) -> tuple[Path, Path]:
    """(program, params) paths named in the spec; the params hash is checked if recorded."""
    model_dir = Path(model_dir)
    program, params = model_dir / spec["model_file"], model_dir / spec["params_file"]
    for f in (program, params):
        if not f.is_file():
            raise WeightsError(f"{f}: named in {model_dir / SPEC_FILE} but not found")
    expected = spec.get("params_sha256")
    if expected and file_sha256(params) != expected:
        raise WeightsError(
            f"{params}: SHA-256 differs from the one in {model_dir / SPEC_FILE}; "
            f"the parameters were replaced after export: export again"
        )
    return program, params
