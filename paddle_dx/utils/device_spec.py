"""``Global.device`` values: ``auto``, ``cpu``, ``gpu`` or ``gpu:N`` (without importing Paddle).

Which GPU: ``gpu:N`` names it; a plain ``gpu`` takes the one the launcher gave this process
(``python -m paddle.distributed.launch --gpus 2,3`` sets ``FLAGS_selected_gpus`` per process),
else GPU 0. The config schema checks values with ``DeviceChoices`` when a config loads.
"""

import os
import re
from collections.abc import Sequence

from paddle_dx.errors import ConfigError

NAMES = ("auto", "cpu", "gpu")
PATTERN = re.compile(r"(auto|cpu|gpu)(?::(\d+))?")


def parse_device(value: str, where: str = "Global.device") -> tuple[str, int | None]:
    """``"gpu:1"`` -> ``("gpu", 1)``, ``"cpu"`` -> ``("cpu", None)``; ConfigError otherwise."""
    match = PATTERN.fullmatch(str(value).strip().lower())
    if not match or (match.group(2) is not None and match.group(1) != "gpu"):
        raise ConfigError(f"{where} = {value!r}: expected auto, cpu, gpu or gpu:N (N = the GPU's index)")
    return match.group(1), None if match.group(2) is None else int(match.group(2))


def launcher_gpu(environ: dict[str, str] | None = None) -> int | None:
    """The GPU ``paddle.distributed.launch`` gave this process (FLAGS_selected_gpus), or None."""
    selected = (os.environ if environ is None else environ).get("FLAGS_selected_gpus", "").strip()
    first = selected.split(",")[0].strip()
    return int(first) if first.isdigit() else None


def gpu_index(requested: int | None, count: int, environ: dict[str, str] | None = None) -> int:
    """The GPU to use out of ``count``: ``requested``, else the launcher's, else 0."""
    index = requested if requested is not None else launcher_gpu(environ)
    index = 0 if index is None else index
    if not 0 <= index < count:
        source = "Global.device" if requested is not None else "FLAGS_selected_gpus"
        raise ConfigError(f"{source}: GPU {index} does not exist (this machine has {count}: 0..{count - 1})")
    return index


class DeviceChoices(Sequence):
    """The schema's choices for Global.device: the names, and ``gpu:N`` for any N."""

    def __contains__(self, value) -> bool:
        try:
            parse_device(value)
        except ConfigError:
            return False
        return True

    def __getitem__(self, index):
        return (*NAMES, "gpu:N")[index]

    def __len__(self) -> int:
        return len(NAMES) + 1

    def __repr__(self) -> str:
        return repr(list(self))
