"""The ``paddle_dx`` console command: ``paddle_dx NAME [options]`` runs the command module NAME.

Each module here owns one command's argparse (``build_parser(prog)``) and ``main(argv, prog)``;
``tools/*.py`` are thin wrappers around the same modules, so both take the same flags. Modules
are imported only when their command runs (``paddle_dx --help`` stays fast)."""

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from paddle_dx import __version__

# command name -> module of paddle_dx.commands (the tools/ script it replaces in the comment)
COMMANDS = {
    "train": "train",  # tools/train.py
    "eval": "eval",  # tools/eval.py
    "export": "export",  # tools/export_model.py
    "infer": "infer",  # tools/infer.py
    "gradcam": "gradcam",  # tools/gradcam.py
    "serve": "serve",  # tools/serve.py
    "split": "split",  # tools/split_dataset.py
    "make-demo-data": "make_demo_data",  # tools/make_demo_data.py
    "prepare-lidc": "prepare_lidc",  # tools/prepare_lidc.py
    "reproduce": "reproduce",  # tools/reproduce.py
    "cross-validate": "cross_validate",  # tools/cross_validate.py
    "compare-runs": "compare_runs",  # tools/compare_runs.py
    "verify": "verify",  # tools/verify_run.py
    "configs": "configs",
}


def load(name: str) -> ModuleType:
    """The module of command ``name``."""
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


def summary(name: str) -> str:
    return load(name).__doc__.strip().splitlines()[0]


def top_parser() -> argparse.ArgumentParser:
    width = max(map(len, COMMANDS))
    listing = "\n".join(f"  {name:<{width}}  {summary(name)}" for name in COMMANDS)
    parser = argparse.ArgumentParser(
        prog="paddle_dx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="paddle_dx COMMAND [options]   (paddle_dx COMMAND --help for its options)",
        description="Transfer learning for small labelled medical image sets on PaddlePaddle.",
        epilog=f"commands:\n{listing}\n\nexample: paddle_dx train -c demo -o Global.epochs=1",
    )
    parser.add_argument("--version", action="version", version=f"paddle_dx {__version__}")
    parser.add_argument("command", choices=COMMANDS, metavar="COMMAND", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int | None:
    """``paddle_dx COMMAND ...`` (console script and ``python -m paddle_dx``); returns the exit code."""
    from paddle_dx.cli import run

    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        top_parser().parse_args(argv[:1])  # help, --version, or a usage error naming the commands
        return 2  # not reached: parse_args exits
    name, rest = argv[0], argv[1:]
    command = load(name)
    return run(lambda: command.main(rest, prog=f"paddle_dx {name}"))
