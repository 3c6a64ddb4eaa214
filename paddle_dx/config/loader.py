"""Load a YAML config, apply ``-o Section.key=value`` overrides, validate against the schema."""

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Any

import yaml

from paddle_dx.config.choices import run_checks
from paddle_dx.config.paddleclas import translate as translate_paddleclas
from paddle_dx.config.schema import SCHEMA, STAGE_SCHEMA, Key
from paddle_dx.errors import ConfigError, shown_path
from paddle_dx.utils.files import why_not_a_file
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
        raise ConfigError(
            f"config key '{path}' has the wrong type: expected {_type_names(spec.types)}, got bool ({value!r})"
        )
    if float in spec.types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if float in spec.types and str not in spec.types and isinstance(value, str):
        value = _yaml11_float(value)  # PyYAML reads 1e-4 (no dot) as a string
    if spec.types == (str,) and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # YAML reads `-o Global.output_dir=2024` as a number; a path was meant
    if not isinstance(value, spec.types):
        raise ConfigError(
            f"config key '{path}' has the wrong type: expected {_type_names(spec.types)}, "
            f"got {type(value).__name__} ({value!r})"
        )
    if spec.choices and value not in spec.choices:
        raise ConfigError(
            f"config key '{path}' = {value!r} is not one of {list(spec.choices)}"
            f"{_closest(str(value), map(str, spec.choices))}"
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_range(path, spec, value)
    return value


def _range_text(spec, value):
    """``'>= 1'``, ``'a finite number > 0'``, ``'>= 0 and <= 1'``: the values a key accepts."""
    low = None if spec.min is None else f"{'>' if spec.min_open else '>='} {spec.min}"
    high = None if spec.max is None else f"<= {spec.max}"
    bounds = " and ".join(part for part in (low, high) if part)
    if spec.finite and isinstance(value, float):
        return f"a finite number {bounds}".strip()
    return bounds


def _check_range(path, spec, value):
    """Refuse a number outside the key's ``min`` / ``max`` (or NaN / infinity where ``finite``)."""
    bad = (
        (spec.finite and not math.isfinite(value))
        or (spec.min is not None and (value <= spec.min if spec.min_open else value < spec.min))
        or (spec.max is not None and value > spec.max)
    )
    if bad:
        raise ConfigError(f"config key '{path}' = {value!r} is out of range: accepted {_range_text(spec, value)}")


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


def _shown(text, most=120):
    """``text`` cut for an error line: a pasted megabyte must not become a megabyte of terminal."""
    return text if len(text) <= most else f"{text[: most - 20]}... ({len(text):,} characters)"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``Section.key=value`` into (['Section', 'key'], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"override '{_shown(text)}' must look like Section.key=value")
    dotted, raw = text.split("=", 1)
    try:
        value = _override_value(raw, text) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{_shown(text)}': value is not valid YAML ({exc})") from None
    return dotted.strip().split("."), value


def _override_value(raw, text):
    """The YAML value of ``raw`` (``[3,224,224]``, ``True``, ``1e-4`` keep their types), except that
    a ``#`` is never a comment: ``runs/a #2`` is a path a shell passed whole, not ``runs/a``. A
    scalar cut short by a comment is the whole text instead; a list or mapping is refused."""
    source = f"override '{_shown(text)}'"
    try:
        node = yaml.compose(raw, Loader=_StrictLoader)
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply to read; a config is a few levels") from None
    end = node.end_mark.index if node is not None else 0
    if end >= len(raw.rstrip()):
        return safe_load_bounded(raw, source)
    if node is None or isinstance(node, yaml.ScalarNode):
        return raw.strip()
    raise ConfigError(f"{source}: '#' inside a list or mapping value would be read as a YAML comment; quote it")


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Set each ``Section.key=value`` on the raw (unvalidated) config dict."""
    raw = copy.deepcopy(raw)
    for text in overrides or []:
        keys, value = parse_override(text)
        node, schema = raw, SCHEMA
        for i, key in enumerate(keys[:-1]):
            if isinstance(node.get(key), dict):  # in the file (a PaddleClas key such as Optimizer.lr.*)
                schema = schema.get(key) if isinstance(schema, dict) else None
                node = node[key]
                continue
            if not isinstance(schema, dict) or key not in schema:
                where = ".".join(keys[: i + 1])
                raise ConfigError(
                    f"override '{_shown(text)}': unknown config key '{where}'"
                    f"{_closest(key, schema if isinstance(schema, dict) else [])}"
                )
            schema = schema[key]
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[keys[-1]] = value
    return raw


# A config is a few hundred values; these bounds refuse YAML that expands to millions of nodes
# through aliases ("billion laughs": a 1 kB file that fills memory) or nests deeper than any
# config could, before anything is built from it.
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 50


def _expanded_size(node, source, sizes, depth=0):
    """Nodes ``node`` stands for once every alias is expanded (memoised per node, so an alias
    bomb is measured without being expanded)."""
    if depth > MAX_YAML_DEPTH:
        raise ConfigError(f"{source}: YAML nested more than {MAX_YAML_DEPTH} levels deep; a config is a few levels")
    if id(node) in sizes:
        return sizes[id(node)]
    children = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [item for pair in node.value for item in pair]
    total = 1 + sum(_expanded_size(child, source, sizes, depth + 1) for child in children)
    if total > MAX_YAML_NODES:
        raise ConfigError(
            f"{source}: YAML expands to more than {MAX_YAML_NODES} values (nested aliases?); refusing to load it"
        )
    sizes[id(node)] = total
    return total


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently,
    so a second ``lr:`` further down a section would quietly win). ``<<`` merges may still be
    overridden: that is what they are for."""

    source = "YAML"

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in first:
                        raise ConfigError(
                            f"{self.source}: line {line}: duplicate key {key!r} (first given at line "
                            f"{first[key]}); keep one"
                        )
                    first[key] = line
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it
        return super().construct_mapping(node, deep)


def safe_load_bounded(text: str, source: str) -> Any:
    """``yaml.safe_load`` that refuses alias bombs, absurd nesting and duplicate keys with one line
    naming ``source``."""
    loader = _StrictLoader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, source, {})
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply to read; a config is a few levels") from None
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    problem = why_not_a_file(path)
    if problem == "file not found":
        raise ConfigError(f"config file not found: {shown_path(path)}")
    if problem:
        raise ConfigError(f"config file {shown_path(path)}: {problem}")
    try:
        data = safe_load_bounded(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): a YAML config is a text file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (Global, Arch, ...), got {type(data).__name__}")
    return data


def validate(raw: dict) -> dict:
    """Return the full config: defaults filled in, every key and type checked."""
    config = _merge("", SCHEMA, raw)
    _check_image_shape(config["Global"]["image_shape"])
    _check_output_dir(config)
    if config["Stages"] is not None:
        config["Stages"] = _validate_stages(config, raw)
    # Checks the data layer offers (config/choices.py): a null Arch.class_num from the label list,
    # and each transform pipeline built and run once on a test image, so a wrong op parameter or
    # an output other than Global.image_shape is refused here rather than inside the DataLoader.
    return run_checks(config)


# Smaller than 16 px, LeNet5's two 5x5 convs and pools have nothing left to pool (ResNet and VGG
# run from 16 px; InceptionV3 is meant for >= 75); the largest keeps one image's tensors within
# a few hundred MB.
IMAGE_SIDE_RANGE = (16, 4096)


def _check_image_shape(shape):
    low, high = IMAGE_SIDE_RANGE
    if (
        len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        or shape[0] != 3
        or not all(low <= v <= high for v in shape[1:])
    ):
        raise ConfigError(
            f"config key 'Global.image_shape' must be [3, height, width] with height and width "
            f"{low}..{high} (the backbones take RGB; grey images are replicated to 3 channels, "
            f"see the Grayscale op), got {shape!r}"
        )


def _check_output_dir(config):
    """The run folder inside an image root would be read back as data (a class called ``latest``)."""
    out = Path(config["Global"]["output_dir"]).expanduser().resolve()
    for mode, section in config["DataLoader"].items():
        root_text = section["dataset"]["image_root"]
        if not root_text:
            continue
        root = Path(root_text).expanduser().resolve()
        if out == root or root in out.parents:
            raise ConfigError(
                f"config key 'Global.output_dir' = {config['Global']['output_dir']!r} is inside "
                f"DataLoader.{mode}.dataset.image_root ({root_text}): put the run folder outside "
                f"the images, or split tools will read checkpoints as a class"
            )


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
        raise ConfigError(
            f"config key 'Global.epochs' = {given} but the Stages add up to {total} epochs: "
            f"remove Global.epochs (it is derived from Stages) or make them agree"
        )
    config["Global"]["epochs"] = total
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, raw: dict | None = None) -> dict:
    """Read ``path`` (or use ``raw``), apply overrides, translate a PaddleClas config, validate.
    The single entry point."""
    data = read_yaml(path) if path is not None else copy.deepcopy(raw or {})
    data = translate_paddleclas(apply_overrides(data, overrides), str(path or "config"))
    return validate(data)


def config_hash(config: dict) -> str:
    """Stable SHA-256 of a resolved config (key order does not matter)."""
    return json_sha256(config)


def dump_config(config: dict, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
