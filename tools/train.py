"""Train a classifier from a YAML config: python tools/train.py -c CONFIG [-o Key=value ...]"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import config_parser, overrides, run  # noqa: E402


def main():
    args = config_parser(__doc__).parse_args()
    from paddle_dx.config import load_config
    from paddle_dx.engine.distributed import init_distributed
    from paddle_dx.engine.distributed_trace import start_trace
    from paddle_dx.engine.trainer import Interrupted, Trainer
    config = load_config(args.config, overrides(args))
    try:
        rank, world_size = init_distributed(config["Global"]["device"])  # (0, 1) unless launched on several
        trace = start_trace(config, rank, world_size)  # None unless PADDLE_DX_TRACE_DIR is set
        trainer = Trainer(config, rank, world_size)
        if trace:
            trace.attach(trainer)
        trainer.fit()
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run(main)
