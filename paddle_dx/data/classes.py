"""Class names and ``Arch.class_num`` from Global.class_names or a list's label list.

``Arch.class_num`` may be left out (null): it is then the number of class names, resolved
when the config is loaded so the run's config.yaml, export and evaluation all hold the number.
"""

from pathlib import Path

from paddle_dx.config.sections import DataSection, label_list_path
from paddle_dx.data.list_file import read_label_list
from paddle_dx.errors import ConfigError


def found_class_names(data: DataSection) -> list[str] | None:
    """Global.class_names, else the label list's names, else None (no list file yet)."""
    names = data.class_names
    if not names:
        path = label_list_path(data.dataset)
        names = read_label_list(path) if path and Path(path).is_file() else None
    return [str(n) for n in names] if names else None


def resolve_class_num(config: dict) -> dict:
    """Fill a null ``Arch.class_num`` with the number of class names, when they can be found
    (a check the config loader runs on every config, see engine/components.py)."""
    if config["Arch"]["class_num"] is None:
        names = found_class_names(DataSection.of(config, "Train"))
        if names is not None:
            if len(names) < 2:
                raise ConfigError(
                    f"Arch.class_num is taken from the class names, but only {len(names)} were "
                    f"found ({names}): a classifier needs at least 2"
                )
            config["Arch"]["class_num"] = len(names)
    return config


def require_class_num(data: DataSection) -> int:
    """``Arch.class_num``, or a one-line error saying where the number comes from."""
    if data.class_num is None:
        raise ConfigError(
            f"Arch.class_num is not set and no class names were found: set Arch.class_num or "
            f"Global.class_names, or put label_list.txt at {data.class_list} "
            f"(tools/split_dataset.py writes it)"
        )
    return data.class_num


def class_names(data: DataSection) -> list[str]:
    """Class names by label id: Global.class_names, else the label list, else '0', '1', ..."""
    class_num = require_class_num(data)
    names = found_class_names(data) or [str(i) for i in range(class_num)]
    if len(names) != class_num:
        raise ConfigError(f"Arch.class_num is {class_num} but {len(names)} class names were found ({names})")
    return names
