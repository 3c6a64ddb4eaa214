"""Export trained weights to Paddle Inference with their preprocessing in inference.yml.

paddle_dx export -c CONFIG -o Global.pretrained_model=output/.../best_model.pdparams \
                 -o Global.save_inference_dir=inference/NAME
"""

import argparse
from collections.abc import Sequence

from paddle_dx.cli import config_parser, load_config_args


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    return config_parser(__doc__, prog)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.inference import export_from_config

    config = load_config_args(args)
    spec = export_from_config(config)
    print(f"exported {spec['arch']} ({', '.join(spec['class_names'])}) to {config['Global']['save_inference_dir']}")
