"""Split a class-per-folder image tree into PaddleClas list files (train/val/test + label_list).

python tools/split_dataset.py --image-root DIR --out DIR [--ratios 6 2 2] [--seed 42]
                              [--group-regex REGEX] [--classes name0,name1,...]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import run  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-root", required=True, help="folder with one sub-folder per class")
    parser.add_argument("--out", required=True, help="where to write the list files")
    parser.add_argument("--ratios", nargs=3, type=float, default=[6, 2, 2], metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--group-regex", default=None,
                        help="regex on the file name; its first group (or match) names the patient/exam kept on one side")
    parser.add_argument("--classes", default=None, help="comma-separated class folder names in label-id order")
    args = parser.parse_args()
    from paddle_dx.data.split import SPLIT_NAMES, write_split
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    counts, duplicates = write_split(args.image_root, args.out, args.ratios, args.seed, args.group_regex, classes)
    for split in SPLIT_NAMES:
        total = sum(counts[split].values())
        print(f"{split:<6}{total:>6}  " + ", ".join(f"{k}: {v}" for k, v in counts[split].items()))
    if duplicates:
        print(f"WARNING: {len(duplicates)} image(s) have identical content in more than one split (see warnings above)")
    print(f"wrote {args.out}/train_list.txt, val_list.txt, test_list.txt, label_list.txt")


if __name__ == "__main__":
    run(main)
