"""Reproduce a paper's study and write reports/<study>/report.md beside the published table.

paddle_dx reproduce --study NAME --data DIR
                    [--quick] [--source DIR] [--out reports] [--seed 42]
                    [--classes a,b,...] [--per-class N] [--sizes N N ...] [--source-epochs N]
                    [--ignore-groups] [--near-duplicates BITS] [--publish results] [--seeds N]
                    [--pair-epochs N] [--folds K] [--in-process] [-o Key=value ...]
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from paddle_dx.studies.catalog import STUDIES

    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--study", required=True, choices=STUDIES.names(), help="a study of paddle_dx/studies/papers.yaml"
    )
    parser.add_argument("--data", required=True, help="folder with one sub-folder per class")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="same pipeline at small size (subset, 64 px, few epochs, small model) for CI",
    )
    parser.add_argument(
        "--source", default=None, help="class-folder dataset to pretrain on; its backbone replaces ImageNet weights"
    )
    parser.add_argument("--out", default="reports")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--classes", default=None, help="comma-separated class folders of --data, in label order")
    parser.add_argument(
        "--per-class", type=int, default=None, help="use at most N images of each class (default with --quick: 40)"
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=(),
        metavar="N",
        help="also train every run on N training images each (accuracy vs training-set size, "
        "as the lung-nodule paper's comparison)",
    )
    parser.add_argument(
        "--source-epochs",
        type=int,
        default=None,
        metavar="N",
        help="epochs of the --source pretraining (default: as many as the transfer run)",
    )
    parser.add_argument(
        "--ignore-groups",
        action="store_true",
        help="split images one by one, not by patient (a sample with too few patients; "
        "the report says the accuracy is inflated)",
    )
    parser.add_argument(
        "--near-duplicates",
        type=int,
        default=None,
        metavar="BITS",
        help="keep images whose perceptual hashes differ in at most BITS of 64 on one side of "
        "the split, and out of the --source task (e.g. 6 for consecutive video frames)",
    )
    parser.add_argument(
        "--publish",
        default=None,
        metavar="DIR",
        help="also copy report.md, report.json and figures/ to DIR/<study>/ (no weights)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="train the study's ImageNet-vs-random-init pair (papers.yaml imagenet_pair) with N seeds "
        "on the same split (default: papers.yaml's seeds; 0: skip the pair)",
    )
    parser.add_argument(
        "--pair-epochs",
        type=int,
        default=None,
        metavar="N",
        help="epochs of each ImageNet and random-init run of the pair (default: its config's)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=None,
        metavar="K",
        help="compare the pair by K-fold cross-validation over the whole split (every image tested once) "
        "instead of seeds on its test list (default: papers.yaml's folds; 0: seeds)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="train every run in this process (default: each run in a process of its own, so memory "
        "is bounded by the largest run)",
    )
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        help="config override applied to every run, e.g. -o Global.device=cpu",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.data.duplicates import check_hamming

    check_hamming(args.near_duplicates)
    from paddle_dx.studies.reproduce import reproduce
    from paddle_dx.studies.runner import runs_in_children

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    with runs_in_children(not args.in_process):  # each run in a process of its own: memory of the largest run
        path = reproduce(
            args.study,
            args.data,
            args.out,
            args.quick,
            args.source,
            args.seed,
            classes,
            args.override,
            args.resamples,
            args.per_class,
            args.sizes,
            args.source_epochs,
            args.ignore_groups,
            args.publish,
            args.near_duplicates,
            args.seeds,
            args.pair_epochs,
            args.folds,
        )
    print(f"wrote {path}")
