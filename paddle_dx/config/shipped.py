"""The study configs that ship with paddle_dx, so ``-c esophagus_resnet50`` works after a plain
``pip install``: the repository keeps them in ``configs/``, a wheel maps that folder to
``paddle_dx/configs`` (pyproject.toml ``package-dir``)."""

import os
from pathlib import Path

from paddle_dx.errors import ConfigError
from paddle_dx.utils.registry import Registry

PACKAGE = Path(__file__).resolve().parents[1]
SUFFIX = ".yaml"


def configs_dir() -> Path:
    """``paddle_dx/configs`` in an installed wheel, else the ``configs/`` of the source tree
    (a checkout on ``sys.path`` or an editable install)."""
    for folder in (PACKAGE / "configs", PACKAGE.parent / "configs"):
        if folder.is_dir():
            return folder
    raise ConfigError(f"no shipped configs beside {PACKAGE} (reinstall paddle_dx)")


def shipped_configs() -> dict[str, Path]:
    """{name: path} of every shipped config, sorted by name."""
    return {path.stem: path for path in sorted(configs_dir().glob(f"*{SUFFIX}"))}


def describe(path: Path | str) -> str:
    """A config's one-line description: the text of its first comment line."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def resolve_config(value: str) -> str:
    """``-c VALUE`` -> a file path: an existing file wins; a bare name (no folder, no extension)
    names a shipped config; anything else is returned unchanged for the loader to report."""
    path = Path(value)
    if os.path.lexists(value) or path.suffix or len(path.parts) != 1:
        return value
    shipped = shipped_configs()
    if value not in shipped:
        raise ConfigError(
            f"-c {value}: no such file and no shipped config of that name"
            f"{Registry.suggest(value, shipped)}; shipped: {', '.join(shipped)} "
            f"(paddle_dx configs describes them)"
        )
    return str(shipped[value])
