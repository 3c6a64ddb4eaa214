"""Train a classifier from a YAML config.

paddle_dx train -c CONFIG [-o Key=value ...]      (or: python tools/train.py ...)
"""

import argparse
import sys
from collections.abc import Sequence

from paddle_dx.cli import config_parser, load_config_args


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    return config_parser(__doc__, prog)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.engine.interrupts import Interrupted, startup_signals

    try:
        with startup_signals():  # before Paddle is imported: SIGTERM while starting up is one line
            from paddle_dx.engine.distributed import init_distributed
            from paddle_dx.engine.distributed_trace import start_trace
            from paddle_dx.engine.trainer import Trainer

            config = load_config_args(args)
            rank, world_size = init_distributed(config["Global"]["device"])  # (0, 1) unless launched on several
            trace = start_trace(config, rank, world_size)  # None unless PADDLE_DX_TRACE_DIR is set
            Trainer(config, rank, world_size, callbacks=[trace] if trace else []).fit()
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
