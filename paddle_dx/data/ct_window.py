"""CT windowing (Hounsfield units -> 8-bit grey), defined once for the DICOM reader, the
``CTWindow`` preprocessing op and the LIDC crop tool.

Why an op: the window is part of preprocessing, so it belongs in ``transform_ops`` where
training, evaluation, ``inference.yml`` and deployment all read it from the same config. The
DICOM reader returns a normal RGB uint8 image (windowed with the default: lung for CT) that
also carries its Hounsfield units (:class:`DicomImage`); ``CTWindow``, listed first in
``transform_ops``, re-windows those units. On PNG/JPEG input (e.g. crops that were windowed
when they were cut) it does nothing.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from paddle_dx.data.transforms import TRANSFORMS, Op
from paddle_dx.errors import ConfigError

# (level, width) in HU
WINDOWS = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "bone": (400.0, 1800.0),
}
AUTO = "auto"  # the reader's default: lung for CT, the file's own window (or full range) otherwise
DEFAULT_CT_WINDOW = "lung"


def resolve_window(
    window: str | Sequence[float], auto: tuple[float, float] | None = None, where: str = "window"
) -> tuple[float, float]:
    """``'lung'`` / ``'mediastinum'`` / ``'bone'`` / ``[level, width]`` (/ ``'auto'``) -> (level, width)."""
    if isinstance(window, str):
        if window == AUTO and auto is not None:
            return auto
        if window in WINDOWS:
            return WINDOWS[window]
        raise ConfigError(
            f"{where}: unknown window {window!r}; use one of {sorted(WINDOWS) + [AUTO]} or [level, width] in HU"
        )
    if (
        isinstance(window, (list, tuple))
        and len(window) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in window)
        and window[1] > 0
    ):
        return float(window[0]), float(window[1])
    raise ConfigError(f"{where}: window must be a name or [level, width] with width > 0, got {window!r}")


def apply_window(hu: npt.ArrayLike, level: float, width: float, invert: bool = False) -> np.ndarray:
    """Map [level - width/2, level + width/2] HU linearly to 0..255 (clipped); uint8, same shape."""
    low = level - width / 2.0
    grey = np.clip((np.asarray(hu, np.float32) - np.float32(low)) * np.float32(255.0 / width), 0, 255)
    grey = np.rint(grey).astype(np.uint8)
    return 255 - grey if invert else grey


class DicomImage(np.ndarray):
    """HxWx3 uint8 RGB read from DICOM that still holds the slice's Hounsfield units.

    ``hu`` (HxW float32), ``invert`` (MONOCHROME1) and ``auto_window`` travel only with the
    array the reader returned: anything derived from it (a crop, a flip) is a plain image.
    """

    def __new__(cls, hu, invert=False, auto_window=WINDOWS[DEFAULT_CT_WINDOW]):
        grey = apply_window(hu, *auto_window, invert=invert)
        obj = np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2)).view(cls)
        obj.hu, obj.invert, obj.auto_window = np.asarray(hu, np.float32), bool(invert), tuple(auto_window)
        return obj

    def __array_finalize__(self, obj):
        self.hu, self.invert, self.auto_window = None, False, None

    def windowed(self, window: str | Sequence[float]) -> np.ndarray:
        """A plain RGB uint8 copy windowed with ``window`` (name or [level, width])."""
        grey = apply_window(self.hu, *resolve_window(window, self.auto_window), invert=self.invert)
        return np.repeat(grey[:, :, None], 3, axis=2)


@TRANSFORMS.register
class CTWindow(Op):
    """Window a DICOM slice to 8-bit grey. List it first in transform_ops; no-op on PNG/JPEG."""

    first_only = (
        "it windows the DICOM slice's Hounsfield units, which any op before it discards, "
        "so it would silently do nothing"
    )

    def __init__(self, window=DEFAULT_CT_WINDOW) -> None:
        resolve_window(window, auto=(0.0, 1.0), where="CTWindow.window")
        self.window = list(window) if isinstance(window, (list, tuple)) else window

    def __call__(self, img, rng):
        if getattr(img, "hu", None) is None:
            return img
        return img.windowed(self.window)
