"""The config-key table of docs/config_reference.md, rendered from SCHEMA so the two cannot drift apart."""

import json
from collections.abc import Iterator
from typing import Any

from paddle_dx.config.schema import SCHEMA, STAGE_SCHEMA


def _type_text(spec):
    names = " \\| ".join(t.__name__ for t in spec.types)
    if spec.choices:
        names += ": " + " \\| ".join(f"`{c}`" for c in spec.choices)
    return names


def _default_text(spec):
    return "`null`" if spec.default is None else f"`{json.dumps(spec.default)}`"


def md_cell(text: object) -> str:
    """Escape a Markdown table cell."""
    return str(text).replace("|", "\\|")


def leaves(tree: dict, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted key, leaf) for every non-mapping value of ``tree``, in order: the Keys of a
    schema, or the values of a config (resume_check compares configs key by key)."""
    for name, value in tree.items():
        path = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, dict):
            yield from leaves(value, path)
        else:
            yield path, value


def display_key(path: str) -> str:
    """DataLoader.Train/Eval/Test share one set of keys: show them once as DataLoader.*."""
    parts = path.split(".")
    if parts[0] == "DataLoader" and len(parts) > 2:
        return ".".join(["DataLoader", "*", *parts[2:]])
    return path


def schema_table() -> str:
    """Markdown table: key, type (and allowed values), default, meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    seen = set()
    for path, spec in leaves(SCHEMA):
        shown = display_key(path)
        if shown in seen:
            continue
        seen.add(shown)
        rows.append(f"| `{shown}` | {_type_text(spec)} | {_default_text(spec)} | {md_cell(spec.doc)} |")
    for path, spec in leaves(STAGE_SCHEMA, "Stages[]"):
        rows.append(f"| `{path}` | {_type_text(spec)} | {_default_text(spec)} | {md_cell(spec.doc)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(schema_table())
