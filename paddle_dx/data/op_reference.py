"""The transform-op table of docs/config_reference.md, rendered from the op registry (names, parameters, defaults)."""

import inspect

from paddle_dx.config.reference import md_cell
from paddle_dx.data.transforms import TRANSFORMS


def _params(op_cls):
    out = []
    for name, param in inspect.signature(op_cls.__init__).parameters.items():
        if name == "self":
            continue
        default = param.default
        if isinstance(default, tuple):
            default = list(default)
        out.append(f"`{name}={default!r}`" if default is not inspect.Parameter.empty else f"`{name}`")
    return ", ".join(out) or "-"


def ops_table() -> str:
    """Markdown table: op, parameters with defaults, what it does (first docstring line)."""
    rows = ["| op | parameters (defaults) | what it does |", "|---|---|---|"]
    for name in TRANSFORMS.names():
        op_cls = TRANSFORMS.get(name)
        doc = " ".join((inspect.getdoc(op_cls) or "").split("\n\n")[0].split())
        kind = "random; " if getattr(op_cls, "random", False) else ""
        size = "size from `Global.image_shape` if unset; " if getattr(op_cls, "sized", False) else ""
        rows.append(f"| `{name}` | {_params(op_cls)} | {md_cell(kind + size + doc)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(ops_table())
