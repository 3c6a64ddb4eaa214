"""Write Grad-CAM heat-map overlays (PNG) for an image or a folder, with an exported model.

paddle_dx gradcam --model-dir inference/NAME --input PATH --out DIR [--class NAME] [--batch-size N]
PATH: an image, a folder (searched recursively) or a list file. The heat map explains the
predicted class (or --class) and is drawn over the image as the model sees it (resized/cropped).
"""

import argparse
import os
import sys
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", required=True, help="folder written by `paddle_dx export`")
    parser.add_argument("--input", required=True, help="image, folder or list file")
    parser.add_argument("--out", required=True, help="folder for the overlay PNGs")
    parser.add_argument("--class", dest="class_name", default=None, help="explain this class (default: predicted)")
    parser.add_argument("--batch-size", type=int, default=8)
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    from paddle_dx.explain.exported import Explainer
    from paddle_dx.explain.job import write_overlay_pngs
    from paddle_dx.inference import Predictor
    from paddle_dx.inference.inputs import collect_inputs

    paths = collect_inputs(args.input)
    root = args.input if os.path.isdir(args.input) else None
    explainer = Explainer(Predictor(args.model_dir))
    rows = write_overlay_pngs(explainer, paths, args.out, root, args.class_name, args.batch_size)
    if not rows:
        from paddle_dx.errors import DataError

        raise DataError(f"{args.input}: no image could be explained (all {len(paths)} unreadable, listed above)")
    for path, predicted, prob, explained, overlay in rows:
        print(f"{path}\t{predicted}\t{prob:.4f}\texplains {explained}\t{overlay}")
    print(f"wrote {len(rows)} overlay(s) to {args.out}", file=sys.stderr)
