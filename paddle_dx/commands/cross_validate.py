"""k-fold cross-validation of a config: one training per fold, per-fold and mean ± sd metrics.

paddle_dx cross-validate -c CONFIG [--folds 5] [--seed 42] [--group-regex REGEX]
                         [--near-duplicates HAMMING] [--include-test] [-o Key=value ...]

The images of the config's Train and Eval lists are pooled and dealt into stratified folds
(identical images, and with --group-regex a patient's images, stay in one fold); the Test list
stays held out and every fold's best model is scored on it. Writes <Global.output_dir>/lists/,
fold_<k>/ (one run folder per fold), cv_results.json, cv_report.md and cv_folds.png. Run the
same command again after an interruption: finished folds are not retrained.
"""

import argparse
import sys
from collections.abc import Sequence

from paddle_dx.cli import config_parser, overrides


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = config_parser(__doc__, prog)
    parser.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the fold assignment (default 42)")
    parser.add_argument(
        "--group-regex",
        default=None,
        help="regex on the file name; its first group (or match) names the patient/exam kept in one fold",
    )
    parser.add_argument(
        "--near-duplicates",
        type=int,
        default=None,
        metavar="HAMMING",
        help="also keep images whose pHashes (64 bits) differ in at most HAMMING bits in one fold",
    )
    parser.add_argument(
        "--include-test",
        action="store_true",
        help="pool the Test list into the folds too (no held-out test set; for a test set too small to score)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.engine.interrupts import Interrupted, startup_signals

    try:
        with startup_signals():  # before Paddle is imported: SIGTERM while starting up is one line
            from paddle_dx.config.shipped import resolve_config
            from paddle_dx.data.duplicates import check_hamming
            from paddle_dx.studies.cross_validation import CVSettings, cross_validate

            check_hamming(args.near_duplicates)
            settings = CVSettings(args.folds, args.seed, args.group_regex, args.near_duplicates, args.include_test)
            path = cross_validate(resolve_config(args.config), overrides(args), settings)
    except Interrupted as exc:
        print(f"interrupted: {exc}; run the same command again to go on from there", file=sys.stderr)
        sys.exit(exc.exit_code)
    print(f"wrote {path}, {path.with_name('cv_report.md')} and {path.with_name('cv_folds.png')}")
