"""The Python entry points for scripts and notebooks, loaded as the commands load them.

``from paddle_dx.api import load_config, Trainer`` gives the config loader with every registry's
names and data checks offered to its schema (``engine/components.py``; the config package sits
below the layers whose names it checks, so it never imports them itself) and the Trainer."""

import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
from paddle_dx.config import load_config
from paddle_dx.engine.trainer import Trainer

__all__ = ["Trainer", "load_config"]
