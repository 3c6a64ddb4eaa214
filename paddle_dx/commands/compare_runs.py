"""Compare finished runs: final metrics table (Markdown + CSV) and their training curves.

paddle_dx compare-runs RUN_DIR [RUN_DIR ...] --out DIR

Reads each run folder's metrics.json; writes DIR/comparison.md, comparison.csv (every metric,
validation and test) and comparison_curves.png (train/validation loss and accuracy per epoch,
the runs overlaid). Test metrics get 95 % bootstrap intervals when the run saved
test_predictions.csv (study runs do).
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (Global.output_dir of each training)")
    parser.add_argument("--out", required=True, help="folder to write the comparison into")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.studies.run_comparison import compare_runs

    written = compare_runs(args.runs, args.out)
    print("wrote " + ", ".join(str(p) for p in written.values()))
