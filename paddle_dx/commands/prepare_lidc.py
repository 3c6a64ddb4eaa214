"""Cut labelled crops from LIDC-IDRI CT series and their radiologists' XML.

paddle_dx prepare-lidc --lidc-root DIR --out DIR [--crop 64] [--window lung] [--min-readers 1]
                       [--format png|npy] [--per-reader] [--cluster-mm 5] [--skip-bad]

Writes OUT/{nodule_ge3mm,nodule_lt3mm,non_nodule}/*.png and OUT/crops.csv; then split by patient:
paddle_dx split --image-root OUT --out LISTS --group-regex '^(LIDC-IDRI-\\d+)'
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lidc-root", required=True, help="folder holding LIDC-IDRI-XXXX case folders (or one case)")
    parser.add_argument("--out", required=True, help="new or empty folder for the crops and crops.csv")
    parser.add_argument(
        "--crop", type=int, default=64, help="crop side in pixels, 2..2048 (crop/2 each side of the centre)"
    )
    parser.add_argument("--window", default="lung", help="lung | mediastinum | bone | LEVEL,WIDTH")
    parser.add_argument("--min-readers", type=int, default=1, help="keep findings marked by at least this many readers")
    parser.add_argument("--format", choices=("png", "npy"), default="png", help="lossless PNG or .npy (uint8 HxW)")
    parser.add_argument("--per-reader", action="store_true", help="one crop per reader's mark instead of per finding")
    parser.add_argument(
        "--cluster-mm",
        type=float,
        default=5.0,
        help="marks of different readers within this distance (or the nodule radius) on the same "
        "or adjacent slices are one finding",
    )
    parser.add_argument("--skip-bad", action="store_true", help="warn and skip bad files/marks instead of stopping")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.prepare.lidc import prepare_lidc

    summary = prepare_lidc(
        args.lidc_root,
        args.out,
        crop=args.crop,
        window=args.window,
        min_readers=args.min_readers,
        fmt=args.format,
        per_reader=args.per_reader,
        cluster_mm=args.cluster_mm,
        skip_bad=args.skip_bad,
    )
    print(f"{summary['series']} series, crops: " + ", ".join(f"{k}: {v}" for k, v in summary["crops"].items()))
    if summary["series_without_xml"]:
        print(f"{len(summary['series_without_xml'])} series without LIDC XML were skipped (see warnings)")
    print(f"wrote {summary['csv']}")
