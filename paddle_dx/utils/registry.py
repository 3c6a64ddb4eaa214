"""Name -> component registries, so configs choose components without if-chains."""

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from paddle_dx.errors import ConfigError

T = TypeVar("T")


class Registry:
    """Maps names used in configs to classes or builder functions."""

    def __init__(self, kind) -> None:
        self.kind = kind
        self._items = {}

    def register(self, obj: T | None = None, *, name: str | None = None) -> T | Callable[[T], T]:
        def wrap(item):
            self._items[name or item.__name__] = item
            return item

        return wrap(obj) if obj is not None else wrap

    @staticmethod
    def suggest(name: object, options: Iterable[str]) -> str:
        match = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.5)
        return f" (did you mean '{match[0]}'?)" if match else ""

    def get(self, name: str, where: str | None = None) -> Any:
        if name not in self._items:
            place = f"{where}: " if where else ""
            raise ConfigError(
                f"{place}unknown {self.kind} '{name}'{self.suggest(name, self._items)}; "
                f"available: {sorted(self._items)}"
            )
        return self._items[name]

    def resolve(self, item: str | dict, where: str, internal: Sequence[str] = ()) -> tuple[Any, dict]:
        """Validate one ``{Name: {params}}`` config item (or a bare ``Name``).

        Returns (class, params dict). Unknown names and parameters are ConfigErrors naming
        ``where`` and the closest valid spelling; ``internal`` parameters are not user-settable.
        """
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            label = self.kind.split()[-1].capitalize() + "Name"
            raise ConfigError(f"{where} must be a single `{label}: {{params}}` mapping, got {item!r}")
        name, params = next(iter(item.items()))
        cls = self.get(name, where=where)
        params = dict(params or {})
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", *internal)]
        for key in params:
            if key not in accepted:
                raise ConfigError(
                    f"{where}.{name}: unknown parameter '{key}'{self.suggest(key, accepted)}; accepted: {accepted}"
                )
        return cls, params

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name) -> bool:
        return name in self._items


class LiveNames(Sequence):
    """A read-only list recomputed on every use, so components registered after import
    (plugins, tests) are valid config choices and table rows without any other edit."""

    def __init__(self, names) -> None:
        self._names = names

    def __getitem__(self, index):
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return repr(list(self))
