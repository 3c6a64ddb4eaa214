"""A ready training config for a fresh split (``tools/split_dataset.py --write-config``).

Starting from a shipped config (``configs/<name>.yaml``, default the demo) or any YAML file,
it sets what a split decides, so a first run needs no ``-o`` path overrides: the image root
and the three list files of DataLoader.Train/Eval/Test, ``Arch.class_num`` and
``Global.class_names``. The result is validated like any config before it is written.
"""

from collections.abc import Iterable
from pathlib import Path

import yaml

from paddle_dx.config.loader import load_config, read_yaml
from paddle_dx.config.shipped import resolve_config, shipped_configs
from paddle_dx.errors import ConfigError
from paddle_dx.utils.registry import Registry

DEFAULT_BASE = "demo"
MODES = {"Train": "train", "Eval": "val", "Test": "test"}


def base_config_path(name_or_path: Path | str) -> Path:
    """A YAML file, or the name of a shipped config (``demo``, ``esophagus_resnet50``, ...:
    paddle_dx.config.shipped, the same lookup as ``-c NAME``)."""
    shipped = shipped_configs()
    try:
        path = Path(resolve_config(str(name_or_path)))
    except ConfigError:
        path = None
    if path is None or not path.is_file():
        raise ConfigError(
            f"--from {name_or_path}: no such config file, nor a shipped config"
            f"{Registry.suggest(str(name_or_path), shipped)}; shipped: {', '.join(shipped)}"
        )
    return path


def split_config(
    raw: dict, image_root: Path | str, lists_dir: Path | str, class_names: Iterable[str], test_size: int
) -> dict:
    """``raw`` (a config's YAML mapping) pointed at this split's images, lists and classes."""
    raw = dict(raw)
    raw["Global"] = {**(raw.get("Global") or {}), "class_names": list(class_names)}
    raw["Arch"] = {**(raw.get("Arch") or {}), "class_num": len(class_names)}
    loaders = dict(raw.get("DataLoader") or {})
    for mode, split in MODES.items():
        section = dict(loaders.get(mode) or {})
        listed = test_size > 0 or mode != "Test"  # an empty test split (--ratios 8 2 0): no Test list
        section["dataset"] = {
            **(section.get("dataset") or {}),
            "image_root": str(image_root),
            "cls_label_path": str(Path(lists_dir) / f"{split}_list.txt") if listed else "",
        }
        section["dataset"].pop("label_list", None)  # label_list.txt beside the lists
        loaders[mode] = section
    raw["DataLoader"] = loaders
    return raw


def write_split_config(
    path: Path | str, base: Path | str, image_root: Path | str, lists_dir: Path | str, counts: dict[str, dict[str, int]]
) -> Path:
    """Write the config for the split ``counts`` ({split: {class: n}}) at ``path``; return ``path``."""
    base_path = base_config_path(base)
    path = Path(path)
    if path.exists() and path.resolve() == base_path.resolve():
        raise ConfigError(
            f"--write-config {path} would overwrite the config it starts from (--from): give another file name"
        )
    names = list(counts["train"])
    raw = split_config(read_yaml(base_path), image_root, lists_dir, names, sum(counts["test"].values()))
    load_config(raw=raw)  # refuse to write a config that would not load
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Written by tools/split_dataset.py --write-config from {base_path.name}: images {image_root},\n"
        f"# lists {lists_dir}, classes {', '.join(names)}. Train: python tools/train.py -c {path}\n"
    )
    path.write_text(header + yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=120), encoding="utf-8")
    return path
