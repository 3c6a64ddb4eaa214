"""A run's hyper-parameters for VisualDL's hyper-parameter view, so runs of one study can be
compared side by side (``visualdl --logdir output/``): which settings gave which metrics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

# the scalar tags VisualDLLogger writes each epoch, shown against the hyper-parameters
if TYPE_CHECKING:
    from visualdl import LogWriter

METRICS = ["val/accuracy", "val/auc", "val/macro_f1", "val/loss", "train/accuracy", "train/loss"]

# name shown in VisualDL -> where it lives in the config
CONFIG_KEYS = {
    "arch": ("Arch", "name"),
    "pretrained": ("Arch", "pretrained"),
    "freeze": ("Arch", "freeze"),
    "optimizer": ("Optimizer", "name"),
    "lr": ("Optimizer", "lr"),
    "lr_schedule": ("Optimizer", "lr_schedule"),
    "weight_decay": ("Optimizer", "weight_decay"),
    "batch_size": ("DataLoader", "Train", "sampler", "batch_size"),
    "epochs": ("Global", "epochs"),
    "seed": ("Global", "seed"),
}


def _lookup(config, path):
    for key in path:
        config = config.get(key) if isinstance(config, dict) else None
    return config


def _item_name(item):
    return item if isinstance(item, str) else "+".join(item)


def run_hparams(config: dict) -> dict[str, int | float | str]:
    """{name: int | float | str} of the settings that distinguish one run from another.

    VisualDL stores only int, float and str: booleans (and true/false/path ``pretrained``)
    become text, lists become text such as "224x224".
    """
    values = {name: _lookup(config, path) for name, path in CONFIG_KEYS.items()}
    values["image_size"] = "x".join(str(v) for v in config["Global"]["image_shape"][1:])
    values["loss"] = "+".join(_item_name(item) for item in config["Loss"]["Train"])
    if config.get("Stages"):
        values["stages"] = " > ".join(
            f"{s['name']} ({s['epochs']} ep, freeze {s['freeze']}, lr {s['lr']:g})" for s in config["Stages"]
        )
    return {
        name: value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else str(value)
        for name, value in values.items()
        if value is not None
    }


def log_hparams(writer: LogWriter, config: dict, metrics: Iterable[str] | None = None) -> None:
    """Record the run's hyper-parameters with a VisualDL ``LogWriter`` (once per run)."""
    writer.add_hparams(hparams_dict=run_hparams(config), metrics_list=list(metrics or METRICS))
