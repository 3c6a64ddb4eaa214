"""Rerun a finished run from its manifest.json and report, metric by metric, whether it reproduces.

python tools/verify_run.py output/RUN [--output DIR] [--atol X]
Exit code 0: every metric and data digest matches; 1: something differs; 2: bad input.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="output_dir of the run to verify (holds manifest.json)")
    parser.add_argument("--output", default=None, help="where to retrain (default: RUN-verify-<time>)")
    parser.add_argument("--atol", type=float, default=None,
                        help="allowed absolute difference (default 0 on CPU, 1e-3 when either run used a GPU)")
    args = parser.parse_args(argv)
    from paddle_dx.engine.verification import format_report, verify_run
    report = verify_run(args.run_dir, args.output, args.atol)
    print("\n".join(format_report(report)))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(run(main))
