"""``python tests/loader_fault_driver.py train|eval ARGS...``: a tool run with the test op
``FaultOn`` registered, which raises (or stalls) on the one image that is 33 pixels high."""

import runpy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paddle_dx.data.transforms import TRANSFORMS, Op  # noqa: E402

ODD_HEIGHT = 33


@TRANSFORMS.register
class FaultOn(Op):
    """``action: raise`` raises ValueError on the odd image; ``stall`` touches ``marker`` and sleeps."""

    def __init__(self, action="raise", marker="", seconds=6):
        self.action, self.marker, self.seconds = action, marker, seconds

    def __call__(self, img, rng):
        if img.shape[0] == ODD_HEIGHT:
            if self.action == "raise":
                raise ValueError("injected failure")
            Path(self.marker).touch()
            time.sleep(self.seconds)
        return img


if __name__ == "__main__":
    tool = sys.argv.pop(1)
    sys.argv[0] = str(ROOT / "tools" / f"{tool}.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
