"""Class names and ``Arch.class_num`` from the config's Global.class_names or label list.

``Arch.class_num`` may be left out (null): it is then the number of class names, resolved
when the config is loaded so the run's config.yaml, export and evaluation all hold the number.
"""

from pathlib import Path

from paddle_dx.data.list_file import read_label_list
from paddle_dx.errors import ConfigError


def label_list_path(config, mode="Train"):
    """``DataLoader.<mode>.dataset.label_list``, else label_list.txt beside its list file (or None)."""
    ds = config["DataLoader"][mode]["dataset"]
    if ds["label_list"]:
        return ds["label_list"]
    return str(Path(ds["cls_label_path"]).parent / "label_list.txt") if ds["cls_label_path"] else None


def found_class_names(config, mode="Train"):
    """Global.class_names, else the label list's names, else None (no list file yet)."""
    names = config["Global"]["class_names"]
    if not names:
        path = label_list_path(config, mode)
        names = read_label_list(path) if path and Path(path).is_file() else None
    return [str(n) for n in names] if names else None


def resolve_class_num(config):
    """Fill a null ``Arch.class_num`` with the number of class names, when they can be found."""
    if config["Arch"]["class_num"] is None:
        names = found_class_names(config)
        if names is not None:
            if len(names) < 2:
                raise ConfigError(
                    f"Arch.class_num is taken from the class names, but only {len(names)} were "
                    f"found ({names}): a classifier needs at least 2"
                )
            config["Arch"]["class_num"] = len(names)
    return config


def require_class_num(config):
    """``Arch.class_num``, or a one-line error saying where the number comes from."""
    class_num = config["Arch"]["class_num"]
    if class_num is None:
        raise ConfigError(
            f"Arch.class_num is not set and no class names were found: set Arch.class_num or "
            f"Global.class_names, or put label_list.txt at {label_list_path(config)} "
            f"(tools/split_dataset.py writes it)"
        )
    return class_num
