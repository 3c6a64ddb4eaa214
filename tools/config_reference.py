"""The config-key and transform-op tables of docs/config_reference.md, rendered from the code
(the config schema and the op registry) so the page cannot drift from what the loader accepts.

    python tools/config_reference.py           # print both tables (Markdown)
    python tools/config_reference.py --write   # rewrite the generated blocks of the page
    python tools/config_reference.py --check   # exit 1 when the committed page is stale

Each table sits in the page between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``;
everything outside the markers is hand-written and left untouched."""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

PAGE = Path(__file__).resolve().parents[1] / "docs" / "config_reference.md"
WRITE_COMMAND = "python tools/config_reference.py --write"


def tables():
    """{block name: Markdown table} for every generated block of the page."""
    import paddle_dx.engine.components  # noqa: F401  (the registries name the choices)
    from paddle_dx.config.reference import schema_table
    from paddle_dx.data.op_reference import ops_table

    return {"schema": schema_table(), "ops": ops_table()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite the generated blocks of {PAGE.name}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the page differs from the code")
    args = parser.parse_args(argv)
    blocks = tables()
    if not (args.write or args.check):
        print("\n\n".join(blocks.values()))
        return 0
    from paddle_dx.utils.generated_blocks import update

    stale = update(PAGE, blocks, args.write)
    if args.write:
        print(f"{PAGE}: {'updated' if stale else 'already up to date'}")
        return 0
    if stale:
        print(f"{PAGE} is stale: run {WRITE_COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
