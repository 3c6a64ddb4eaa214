"""Generate the synthetic demo dataset (clearly labelled, no patient data).

paddle_dx make-demo-data --out demo_data/images [--per-class 60] [--size 96]
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="demo_data/images")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.data.synthetic import write_demo_dataset

    root = write_demo_dataset(args.out, args.per_class, args.size, args.seed)
    print(f"wrote synthetic demo images to {root}")
