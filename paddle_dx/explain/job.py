"""What tools/gradcam.py does: one heat-map overlay PNG per input image, for reports."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2

from paddle_dx.errors import ConfigError, DataError
from paddle_dx.inference.inputs import read_batches
from paddle_dx.utils.files import atomic_path, check_writable

if TYPE_CHECKING:
    from paddle_dx.explain.exported import Explainer

log = logging.getLogger(__name__)


def overlay_name(path: Path | str, root: Path | str) -> str:
    """``a/b/img.jpg`` under ``root`` -> ``a__b__img_gradcam.png`` (unique, flat)."""
    path = Path(path)
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    return "__".join(rel.with_suffix("").parts) + "_gradcam.png"


def _warn_skipped(path, reason):
    log.warning("skipped %s: %s", path, reason)


def write_overlay_pngs(
    explainer: Explainer,
    paths: Iterable[Path | str],
    out_dir: Path | str,
    root: Path | str | None = None,
    class_name: str | None = None,
    batch_size: int = 8,
) -> list[tuple[str, str, float, str, str]]:
    """Predict and explain ``paths``; write ``out_dir/<name>_gradcam.png``; return rows of
    (path, predicted class, its probability, explained class, overlay file). Unreadable
    images are skipped with a warning."""
    out_dir = Path(out_dir)
    check_writable(out_dir)
    predictor = explainer.predictor
    if class_name is not None and class_name not in predictor.class_names:
        raise ConfigError(f"--class '{class_name}' is not a class of this model; classes: {predictor.class_names}")
    root = Path(root) if root else None
    rows = []
    for good, images in read_batches(paths, batch_size, on_skip=_warn_skipped):
        probs = predictor.predict_arrays(images, batch_size)
        ids = probs.argmax(axis=1) if class_name is None else [predictor.class_names.index(class_name)] * len(images)
        for path, p, cid, overlay in zip(good, probs, ids, explainer.overlays(images, list(ids), batch_size)):
            target = out_dir / overlay_name(path, root or Path(path).parent)
            with atomic_path(target) as tmp:
                ok, png = cv2.imencode(".png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise DataError(f"{target}: the overlay of {path} could not be encoded as PNG")
                tmp.write_bytes(png.tobytes())
            best = int(p.argmax())
            rows.append(
                (str(path), predictor.class_names[best], float(p[best]), predictor.class_names[int(cid)], str(target))
            )
    return rows
