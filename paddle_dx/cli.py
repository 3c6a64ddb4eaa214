"""What every command (``paddle_dx NAME``, ``tools/*.py``) shares: ``-c CONFIG -o Key=value``
parsing and clean error exits."""

import argparse
import logging
import sys
from collections.abc import Callable

from paddle_dx.errors import PaddleDxError
from paddle_dx.utils.logger import quiet_native_logs, setup_logging

quiet_native_logs()  # before any tool imports paddle


def config_parser(description: str | None, prog: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with PaddleClas's ``-c`` / ``-o`` options."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-c",
        "--config",
        required=True,
        help="YAML config file, or the name of a shipped one (`paddle_dx configs` lists them)",
    )
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        nargs="+",
        help="override a config key, e.g. -o Global.epochs=3 (repeatable)",
    )
    return parser


def overrides(args: argparse.Namespace) -> list[str]:
    return [item for group in args.override for item in group]


def load_config_args(args: argparse.Namespace) -> dict:
    """The validated config of ``-c`` (a file, else a shipped config's name) with ``-o`` applied."""
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.config import load_config
    from paddle_dx.config.shipped import resolve_config

    return load_config(resolve_config(args.config), overrides(args))


# modules installed apart from paddle_dx's own dependencies (docs/install.md), and how
MISSING_HINTS = {
    "paddle": "PaddlePaddle is not installed: pip install 'paddle_dx[cpu]' (CPU) or paddlepaddle-gpu",
    "paddleclas": "paddleclas is not installed: pip install --no-deps paddleclas==2.6.0",
}


def run(main: Callable[[], int | None]) -> int | None:
    """Call ``main()``; a PaddleDxError becomes one clear line on stderr and exit code 2,
    Ctrl-C one line and exit code 130 (the shell's code for SIGINT), not a traceback; so does
    a missing PaddlePaddle or paddleclas (exit code 2), with how to install it."""
    setup_logging()
    try:
        return main()
    except PaddleDxError as exc:
        logging.getLogger("paddle_dx").debug("error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as exc:
        if exc.name not in MISSING_HINTS:
            raise
        print(f"error: {MISSING_HINTS[exc.name]} (see docs/install.md)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        logging.getLogger("paddle_dx").debug("interrupted", exc_info=True)
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(130)
