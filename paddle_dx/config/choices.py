"""The names and checks the layers above hand down to the config schema.

A config names components that data/, models/ and engine/ build (``Arch.name: ResNet50``,
``Optimizer.name: Adam``) and holds values only the data layer can check (a transform pipeline
that runs, ``Arch.class_num`` from the label list). The config package sits below them, so it
never imports them: their registries and checks are offered to it, downward, by the layer that
owns them (``paddle_dx/engine/components.py`` offers all of them when it is imported). The
schema's ``choices`` read the offered registry live, so a component registered later (a plugin,
a test) is a valid config value with no other edit.

Loading a config before anything was offered is a programming error, said in one line: a config
checked without its registries would let ``Arch.name: ResNet05`` through to an hour of training.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from paddle_dx.utils.registry import LiveNames


class Names(Protocol):
    """What a registry offers: the sorted names it builds components for."""

    def names(self) -> list[str]: ...


_NAMES: dict[str, Names] = {}
_CHECKS: dict[str, Callable[[dict], Any]] = {}

NOT_OFFERED = (
    "no component names were offered to the config schema for {what}: load configs through "
    "paddle_dx.api.load_config (or import paddle_dx.engine.components first, as the commands and the Trainer do)"
)


def offer(names: Mapping[str, Names], checks: Iterable[Callable[[dict], Any]] = ()) -> None:
    """Offer registries by the config key whose values they name, and checks run on every
    validated config (in order; each may fill in defaults). Offering again replaces."""
    _NAMES.update(names)
    for check in checks:
        _CHECKS[f"{check.__module__}.{check.__qualname__}"] = check


def names_of(key: str) -> LiveNames:
    """The live names of the registry offered for ``key`` (e.g. ``"Arch.name"``)."""

    def current():
        if key not in _NAMES:
            raise RuntimeError(NOT_OFFERED.format(what=key))
        return _NAMES[key].names()

    return LiveNames(current)


def run_checks(config: dict) -> dict:
    """Run every offered check on a validated ``config`` (they may fill in defaults)."""
    if not _CHECKS:
        raise RuntimeError(NOT_OFFERED.format(what="its data checks"))
    for check in _CHECKS.values():
        check(config)
    return config
