"""Split a class-per-folder image tree into PaddleClas list files (train/val/test + label_list).

paddle_dx split --image-root DIR --out DIR [--ratios 6 2 2] [--seed 42]
                [--group-regex REGEX] [--classes name0,name1,...]
                [--near-duplicates HAMMING]
                [--write-config CONFIG [--from CONFIG_OR_SHIPPED_NAME]]

Images with identical decoded pixels always stay on one side of the split; with
--near-duplicates, so do images whose 64-bit perceptual hashes differ in at most HAMMING bits.
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image-root", required=True, help="folder with one sub-folder per class")
    parser.add_argument("--out", required=True, help="where to write the list files")
    parser.add_argument("--ratios", nargs=3, type=float, default=[6, 2, 2], metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--group-regex",
        default=None,
        help="regex on the file name; its first group (or match) names the patient/exam kept on one side",
    )
    parser.add_argument("--classes", default=None, help="comma-separated class folder names in label-id order")
    parser.add_argument(
        "--near-duplicates",
        type=int,
        default=None,
        metavar="HAMMING",
        help="also keep images whose pHashes (64 bits) differ in at most HAMMING bits on one side "
        "(e.g. 4; 0 = same pHash)",
    )
    parser.add_argument(
        "--write-config",
        default=None,
        metavar="CONFIG",
        help="also write a ready training config: this split's image root, three lists, "
        "Arch.class_num and Global.class_names, the rest from --from",
    )
    parser.add_argument(
        "--from",
        dest="base_config",
        default="demo",
        metavar="CONFIG_OR_SHIPPED_NAME",
        help="config that --write-config starts from: a YAML file or a shipped name "
        "(configs/<name>.yaml, e.g. esophagus_resnet50); default: demo",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.data.duplicates import check_hamming
    from paddle_dx.data.split import SPLIT_NAMES, write_split

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    if args.write_config:
        from paddle_dx.data.config_writer import base_config_path

        base_config_path(args.base_config)  # a wrong --from stops before the split, not after
    check_hamming(args.near_duplicates)
    counts, copies = write_split(
        args.image_root, args.out, args.ratios, args.seed, args.group_regex, classes, args.near_duplicates
    )
    for split in SPLIT_NAMES:
        total = sum(counts[split].values())
        print(f"{split:<6}{total:>6}  " + ", ".join(f"{k}: {v}" for k, v in counts[split].items()))
    if copies:
        kind = "identical or near-identical" if args.near_duplicates is not None else "identical"
        print(f"kept {len(copies)} group(s) of {kind} images ({sum(map(len, copies))} files) each on one side")
    print(f"wrote {args.out}/train_list.txt, val_list.txt, test_list.txt, label_list.txt")
    if args.write_config:
        import paddle_dx.engine.components  # noqa: F401  (the written config is validated)
        from paddle_dx.data.config_writer import write_split_config

        path = write_split_config(args.write_config, args.base_config, args.image_root, args.out, counts)
        print(f"wrote {path}; train with: python tools/train.py -c {path}  (or: paddle_dx train -c {path})")
