"""Evaluate trained weights on a list file and print the diagnostic metrics table.

paddle_dx eval -c CONFIG -o Global.pretrained_model=PATH [-o DataLoader.Eval.dataset.cls_label_path=LIST]
"""

import argparse
from collections.abc import Sequence

from paddle_dx.cli import config_parser, load_config_args


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    return config_parser(__doc__, prog)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.engine.eval_job import run_evaluation

    run_evaluation(load_config_args(args))
