"""Load a YAML config, apply ``-o Section.key=value`` overrides, validate against the schema."""
import copy
import difflib
import re
from pathlib import Path

import yaml

from paddle_dx.config.schema import SCHEMA, STAGE_SCHEMA, Key
from paddle_dx.errors import ConfigError
from paddle_dx.utils.hashing import json_sha256


def _type_names(types):
    return " or ".join(t.__name__ for t in types)


def _closest(name, options):
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _defaults(schema):
    out = {}
    for name, spec in schema.items():
        out[name] = copy.deepcopy(spec.default) if isinstance(spec, Key) else _defaults(spec)
    return out


def _yaml11_float(text):
    """``'1e-4'`` -> 1e-4: YAML 1.1 floats need a dot, so scientific notation as people write
    it (``lr: 1e-4``, ``-o Optimizer.lr=3e-4``) arrives as a string. Other text is returned
    unchanged for the type check to report."""
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", text.strip()):
        return float(text)
    return text


def _check_leaf(path, spec, value):
    if value is None:
        if spec.nullable or spec.default is None:
            return value
        raise ConfigError(f"config key '{path}' must not be empty: expected {_type_names(spec.types)}")
    if isinstance(value, bool) and bool not in spec.types:
        raise ConfigError(f"config key '{path}' has the wrong type: expected {_type_names(spec.types)}, got bool ({value!r})")
    if float in spec.types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if float in spec.types and str not in spec.types and isinstance(value, str):
        value = _yaml11_float(value)  # PyYAML reads 1e-4 (no dot) as a string
    if spec.types == (str,) and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # YAML reads `-o Global.output_dir=2024` as a number; a path was meant
    if not isinstance(value, spec.types):
        raise ConfigError(
            f"config key '{path}' has the wrong type: expected {_type_names(spec.types)}, "
            f"got {type(value).__name__} ({value!r})")
    if spec.choices and value not in spec.choices:
        raise ConfigError(f"config key '{path}' = {value!r} is not one of {list(spec.choices)}"
                          f"{_closest(str(value), map(str, spec.choices))}")
    return value


def _merge(path, schema, user):
    """Return defaults updated with ``user``, raising on unknown keys and wrong types."""
    if not isinstance(user, dict):
        raise ConfigError(f"config key '{path or '<root>'}' must be a mapping, got {type(user).__name__}")
    merged = _defaults(schema)
    for name, value in user.items():
        key_path = f"{path}.{name}" if path else str(name)
        if name not in schema:
            raise ConfigError(f"unknown config key '{key_path}'{_closest(str(name), schema)}")
        spec = schema[name]
        if isinstance(spec, Key):
            merged[name] = _check_leaf(key_path, spec, value)
        else:
            merged[name] = _merge(key_path, spec, value or {})
    return merged


def parse_override(text):
    """Split ``Section.key=value`` into (['Section', 'key'], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like Section.key=value")
    dotted, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML ({exc})") from None
    return dotted.strip().split("."), value


def apply_overrides(raw, overrides):
    """Set each ``Section.key=value`` on the raw (unvalidated) config dict."""
    raw = copy.deepcopy(raw)
    for text in overrides or []:
        keys, value = parse_override(text)
        node, schema = raw, SCHEMA
        for i, key in enumerate(keys[:-1]):
            if not isinstance(schema, dict) or key not in schema:
                where = ".".join(keys[: i + 1])
                raise ConfigError(f"override '{text}': unknown config key '{where}'"
                                  f"{_closest(key, schema if isinstance(schema, dict) else [])}")
            schema = schema[key]
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return raw


def read_yaml(path):
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (Global, Arch, ...), got {type(data).__name__}")
    return data


def validate(raw):
    """Return the full config: defaults filled in, every key and type checked."""
    config = _merge("", SCHEMA, raw)
    shape = config["Global"]["image_shape"]
    if len(shape) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape) \
            or shape[0] != 3:
        raise ConfigError(f"config key 'Global.image_shape' must be [3, height, width] (the backbones take RGB; "
                          f"grey images are replicated to 3 channels, see the Grayscale op), got {shape!r}")
    if config["Stages"] is not None:
        config["Stages"] = _validate_stages(config, raw)
    return config


def _validate_stages(config, raw):
    """Check each stage like a section, fill freeze/lr from Arch/Optimizer, derive Global.epochs."""
    stages = config["Stages"]
    if not stages:
        raise ConfigError("config key 'Stages' is an empty list: give at least one {name, epochs} stage or remove it")
    out = [_merge(f"Stages[{i}]", STAGE_SCHEMA, item) for i, item in enumerate(stages)]
    for i, stage in enumerate(out):
        if not stage["name"] or stage["epochs"] < 1:
            raise ConfigError(f"config key 'Stages[{i}]' needs a name and epochs >= 1, got {stage}")
        stage["freeze"] = config["Arch"]["freeze"] if stage["freeze"] is None else stage["freeze"]
        stage["lr"] = float(config["Optimizer"]["lr"] if stage["lr"] is None else stage["lr"])
    names = [s["name"] for s in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'Stages' has repeated stage names: {names}")
    total = sum(s["epochs"] for s in out)
    given = (raw.get("Global") or {}).get("epochs")
    if given is not None and given != total:
        raise ConfigError(f"config key 'Global.epochs' = {given} but the Stages add up to {total} epochs: "
                          f"remove Global.epochs (it is derived from Stages) or make them agree")
    config["Global"]["epochs"] = total
    return out


def load_config(path=None, overrides=None, raw=None):
    """Read ``path`` (or use ``raw``), apply overrides, validate. The single entry point."""
    data = read_yaml(path) if path is not None else copy.deepcopy(raw or {})
    return validate(apply_overrides(data, overrides))


def config_hash(config):
    """Stable SHA-256 of a resolved config (key order does not matter)."""
    return json_sha256(config)


def dump_config(config, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
