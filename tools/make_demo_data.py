"""Generate the synthetic demo dataset (clearly labelled, no patient data).

python tools/make_demo_data.py --out demo_data/images [--per-class 60] [--size 96]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_data/images")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from paddle_dx.data.synthetic import write_demo_dataset
    root = write_demo_dataset(args.out, args.per_class, args.size, args.seed)
    print(f"wrote synthetic demo images to {root}")


if __name__ == "__main__":
    run(main)
