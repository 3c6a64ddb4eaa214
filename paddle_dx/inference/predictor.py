"""Paddle Inference predictor whose preprocessing comes only from ``inference.yml``.

The pipeline is rebuilt by ``paddle_dx.data.transforms.build_transforms`` from the spec the
export stored, so a deployment cannot drift from what evaluation measured.
"""

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paddle_dx.data.io import read_image
from paddle_dx.data.transforms import build_transforms
from paddle_dx.errors import DataError, ImageReadError
from paddle_dx.inference.spec import SPEC_FILE, load_spec, model_files
from paddle_dx.utils.paddle_inference import InferenceSession

log = logging.getLogger(__name__)


def check_rgb(image: object, name: object) -> np.ndarray:
    """Arrays given to the predictor must be what ``read_image`` returns: HxWx3 RGB uint8."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = (
            f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
            if isinstance(image, np.ndarray)
            else type(image).__name__
        )
        raise ImageReadError(name, f"expected an HxWx3 RGB uint8 array or an image path, got {got}")
    return image


class Predictor:
    """``Predictor(model_dir).predict(["a.png", rgb_array])`` -> one dict per image.

    Runs are serialised by a lock, so one Predictor can serve several threads (e.g. a web UI).
    ``gpu_id``: which GPU with ``use_gpu`` (default: the launcher's FLAGS_selected_gpus, else 0).
    """

    def __init__(self, model_dir, use_gpu=False, enable_mkldnn=True, threads=None, gpu_id=None) -> None:
        self.model_dir = Path(model_dir)
        self.spec = load_spec(self.model_dir)
        self.class_names = list(self.spec["class_names"])
        self.image_shape = tuple(self.spec["image_shape"])
        self.transforms = build_transforms(
            self.spec["preprocess"], self.image_shape, where=f"{self.model_dir / SPEC_FILE}: preprocess"
        )
        program, params = model_files(self.model_dir, self.spec)
        self._session = InferenceSession(program, params, use_gpu, enable_mkldnn, threads, gpu_id)
        self.device = self._session.device
        self._lock = threading.Lock()

    def preprocess(self, rgb: np.ndarray, name: object = "<array>") -> np.ndarray:
        """HxWx3 RGB uint8 -> CHW float32, exactly as evaluation preprocessed it."""
        chw = self.transforms(check_rgb(rgb, name))
        if chw.shape != self.image_shape:
            raise DataError(
                f"{self.model_dir / SPEC_FILE}: preprocessing gives shape {list(chw.shape)} but the "
                f"model takes {list(self.image_shape)} (a resize or crop op missing?)"
            )
        return chw

    def _run(self, batch):
        with self._lock:
            return self._session.run(batch)

    def predict_arrays(self, images: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
        """Probabilities [N, C] for a list of HxWx3 RGB uint8 arrays."""
        out = [np.zeros((0, len(self.class_names)), np.float32)]
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            batch = np.stack([self.preprocess(img, f"<array {start + i}>") for i, img in enumerate(chunk)])
            out.append(self._run(np.ascontiguousarray(batch, dtype=np.float32)))
        return np.concatenate(out)

    @staticmethod
    def _load(item: Path | str | np.ndarray, index: int) -> tuple[str | None, np.ndarray]:
        """(path or None, RGB array) for a path or an array; unreadable paths raise ImageReadError."""
        if isinstance(item, (str, os.PathLike)):
            return str(item), read_image(item)
        return None, check_rgb(item, f"<array {index}>")

    def predict(
        self, images: Path | str | np.ndarray | Sequence[Path | str | np.ndarray], batch_size: int = 8
    ) -> list[dict]:
        """``[{"path", "class_id", "class_name", "probs": {name: p}}]`` for paths and/or RGB arrays."""
        if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim == 3):
            images = [images]  # one image given on its own, not a list
        results = []
        for start in range(0, len(images), batch_size):
            loaded = [self._load(item, start + i) for i, item in enumerate(images[start : start + batch_size])]
            probs = self.predict_arrays([img for _, img in loaded], batch_size)
            results += [self.describe(row, path) for (path, _), row in zip(loaded, probs)]
        return results

    def describe(self, probs: np.ndarray, path: Path | str | None = None) -> dict:
        """One prediction as a dict: the top class and every class's probability."""
        best = int(np.argmax(probs))
        return {
            "path": path,
            "class_id": best,
            "class_name": self.class_names[best],
            "probs": {name: float(p) for name, p in zip(self.class_names, probs)},
        }
