"""Config loading and validation (PaddleClas-style YAML with ``-o`` overrides)."""

from paddle_dx.config.loader import apply_overrides, config_hash, dump_config, load_config, validate

__all__ = ["apply_overrides", "config_hash", "dump_config", "load_config", "validate"]
