"""Grad-CAM for an exported model: the same weights, rebuilt as the dygraph network.

An exported program hides the feature maps and their gradients, so the explainer works on
the ``TransferModel`` that :func:`paddle_dx.inference.dygraph.load_dygraph_model` rebuilds
from the export (its weights checked against the SHA-256 the export recorded), so the heat
map explains the very model that made the prediction.
"""

from collections.abc import Sequence

import numpy as np

from paddle_dx.data.transforms import Compose
from paddle_dx.explain.gradcam import GradCAM, overlay_heatmap
from paddle_dx.inference.dygraph import load_dygraph_model


def model_view(transforms: Compose, rgb: np.ndarray) -> np.ndarray:
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

    def __init__(self, predictor, model=None) -> None:
        self.predictor = predictor
        self.gradcam = GradCAM(model if model is not None else load_dygraph_model(predictor.model_dir, predictor.spec))

    def overlays(
        self, images: Sequence[np.ndarray], class_ids: Sequence[int] | None = None, batch_size: int = 8
    ) -> list[np.ndarray]:
        """One RGB uint8 overlay per image, explaining ``class_ids`` (default: predicted)."""
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            ids = None if class_ids is None else class_ids[start : start + batch_size]
            cams, _ = self.gradcam(np.stack([self.predictor.preprocess(img) for img in chunk]), ids)
            out += [overlay_heatmap(model_view(self.predictor.transforms, img), cam) for img, cam in zip(chunk, cams)]
        return out
