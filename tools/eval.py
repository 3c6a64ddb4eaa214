"""Evaluate trained weights on a list file and print the diagnostic metrics table.

python tools/eval.py -c CONFIG -o Global.pretrained_model=PATH [-o DataLoader.Eval.dataset.cls_label_path=LIST]
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import config_parser, overrides, run  # noqa: E402


def main():
    args = config_parser(__doc__).parse_args()
    from paddle_dx.config import load_config
    from paddle_dx.engine.evaluation_job import run_evaluation
    config = load_config(args.config, overrides(args))
    run_evaluation(config)


if __name__ == "__main__":
    run(main)
