"""The dygraph network behind an export, for tools that need its layers (Grad-CAM).

An exported program hides feature maps and gradients, so the ``TransferModel`` named in
``inference.yml`` is rebuilt and given the dygraph weights the export saved beside the program
(``dygraph_weights``), or else the ``weights`` file it was exported from. Either must have the
SHA-256 the export recorded: the rebuilt network is the very model that made the prediction.
"""

from pathlib import Path

from paddle_dx.errors import WeightsError
from paddle_dx.inference.spec import SPEC_FILE, load_spec
from paddle_dx.models import TransferModel, build_model, load_model_weights
from paddle_dx.utils.hashing import file_sha256


def find_weights(model_dir: Path | str, spec: dict) -> Path:
    """The dygraph weights of the exported model, checked against the hash in the spec."""
    model_dir = Path(model_dir)
    candidates = [
        (model_dir / spec["dygraph_weights"], spec.get("dygraph_weights_sha256"))
        if spec.get("dygraph_weights")
        else None,
        (Path(spec["weights"]), spec.get("weights_sha256")) if spec.get("weights") else None,
    ]
    candidates = [c for c in candidates if c is not None]
    for path, expected in candidates:
        if path.is_file() and expected and file_sha256(path) == expected:
            return path
    tried = ", ".join(str(p) for p, _ in candidates) or "none named"
    raise WeightsError(
        f"{model_dir / SPEC_FILE}: Grad-CAM needs the dygraph weights the model was exported "
        f"with (tried: {tried}; each must exist with the SHA-256 recorded there); "
        f"export again with tools/export_model.py"
    )


def load_dygraph_model(model_dir: Path | str, spec: dict | None = None) -> TransferModel:
    """The TransferModel behind an export, in eval mode, with its trained weights."""
    spec = spec or load_spec(model_dir)
    weights = find_weights(model_dir, spec)
    model = build_model(
        {"name": spec["arch"], "class_num": len(spec["class_names"]), "pretrained": False}, spec["image_shape"]
    )
    load_model_weights(model, weights)
    return model.eval()
