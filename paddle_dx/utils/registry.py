"""Name -> component registries, so configs choose components without if-chains."""
import difflib

from paddle_dx.errors import ConfigError


class Registry:
    """Maps names used in configs to classes or builder functions."""

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, obj=None, *, name=None):
        def wrap(item):
            self._items[name or item.__name__] = item
            return item
        return wrap(obj) if obj is not None else wrap

    @staticmethod
    def suggest(name, options):
        match = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.5)
        return f" (did you mean '{match[0]}'?)" if match else ""

    def get(self, name, where=None):
        if name not in self._items:
            place = f"{where}: " if where else ""
            raise ConfigError(f"{place}unknown {self.kind} '{name}'{self.suggest(name, self._items)}; "
                              f"available: {sorted(self._items)}")
        return self._items[name]

    def names(self):
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items
