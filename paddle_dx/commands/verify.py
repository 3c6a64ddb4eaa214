"""Rerun a finished run from its manifest.json and report, metric by metric, whether it reproduces.

paddle_dx verify output/RUN [--output DIR] [--atol X]
Exit code 0: every metric and data digest matches; 1: something differs; 2: bad input.
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="output_dir of the run to verify (holds manifest.json)")
    parser.add_argument("--output", default=None, help="where to retrain (default: RUN-verify-<time>)")
    parser.add_argument(
        "--atol",
        type=float,
        default=None,
        help="allowed absolute difference (default 0 on CPU, 1e-3 when either run used a GPU)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.engine.verification import format_report, verify_run

    report = verify_run(args.run_dir, args.output, args.atol)
    print("\n".join(format_report(report)))
    return 0 if report["ok"] else 1
