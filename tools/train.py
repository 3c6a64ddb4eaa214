"""Train a classifier from a YAML config: python tools/train.py -c CONFIG [-o Key=value ...]"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import config_parser, overrides, run  # noqa: E402


def main():
    args = config_parser(__doc__).parse_args()
    from paddle_dx.config import load_config
    from paddle_dx.engine.trainer import Interrupted, Trainer
    config = load_config(args.config, overrides(args))
    try:
        Trainer(config).fit()
    except Interrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    run(main)
