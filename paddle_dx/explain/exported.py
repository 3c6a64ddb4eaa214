"""Grad-CAM for an exported model: the same weights, rebuilt as the dygraph network.

An exported program hides the feature maps and their gradients, so the explainer rebuilds the
``TransferModel`` named in ``inference.yml`` and loads the dygraph weights the export saved
beside the program (``dygraph_weights``), or else the ``weights`` file it was exported from.
Either must have the SHA-256 the export recorded, so the heat map explains the very model
that made the prediction.
"""
from pathlib import Path

import numpy as np

from paddle_dx.data.io import file_sha256
from paddle_dx.errors import WeightsError
from paddle_dx.explain.gradcam import GradCAM, overlay_heatmap
from paddle_dx.inference.spec import SPEC_FILE, load_spec

def find_weights(model_dir, spec):
    """The dygraph weights of the exported model, checked against the hash in the spec."""
    model_dir = Path(model_dir)
    candidates = [(model_dir / spec["dygraph_weights"], spec.get("dygraph_weights_sha256"))
                  if spec.get("dygraph_weights") else None,
                  (Path(spec["weights"]), spec.get("weights_sha256")) if spec.get("weights") else None]
    candidates = [c for c in candidates if c is not None]
    for path, expected in candidates:
        if path.is_file() and expected and file_sha256(path) == expected:
            return path
    tried = ", ".join(str(p) for p, _ in candidates) or "none named"
    raise WeightsError(f"{model_dir / SPEC_FILE}: Grad-CAM needs the dygraph weights the model was exported "
                       f"with (tried: {tried}; each must exist with the SHA-256 recorded there); "
                       f"export again with tools/export_model.py")


def load_dygraph_model(model_dir, spec=None):
    """The TransferModel behind an export, in eval mode, with its trained weights."""
    from paddle_dx.models import build_model, load_model_weights
    spec = spec or load_spec(model_dir)
    weights = find_weights(model_dir, spec)
    model = build_model({"name": spec["arch"], "class_num": len(spec["class_names"]), "pretrained": False},
                        spec["image_shape"])
    load_model_weights(model, weights)
    return model.eval()


def model_view(transforms, rgb):
    """The image as the network sees it: the preprocessing up to its last RGB uint8 step
    (resized and cropped, not yet normalised), so the heat map lines up with it."""
    view = img = rgb
    for op in transforms.ops:
        img = op(img, np.random.default_rng(0))
        if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
            view = img
    return np.asarray(view)


class Explainer:
    """Heat-map overlays for a ``Predictor``'s model: ``overlays(rgb_list, class_ids)``."""

    def __init__(self, predictor, model=None):
        self.predictor = predictor
        self.gradcam = GradCAM(model if model is not None else load_dygraph_model(predictor.model_dir,
                                                                                 predictor.spec))

    def overlays(self, images, class_ids=None, batch_size=8):
        """One RGB uint8 overlay per image, explaining ``class_ids`` (default: predicted)."""
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            ids = None if class_ids is None else class_ids[start:start + batch_size]
            cams, _ = self.gradcam(np.stack([self.predictor.preprocess(img) for img in chunk]), ids)
            out += [overlay_heatmap(model_view(self.predictor.transforms, img), cam) for img, cam in zip(chunk, cams)]
        return out
