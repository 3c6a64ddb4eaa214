"""Predict images with an exported model; preprocessing comes from its inference.yml.

paddle_dx infer --model-dir inference/NAME --input PATH [--batch-size N] [--output preds.csv]
                [--use-gpu [--gpu-id N]] [--enable-mkldnn | --disable-mkldnn] [--threads N] [--image-root DIR]
PATH: an image, a folder (searched recursively) or a list file of `path [label]` lines.
"""

import argparse
from collections.abc import Sequence


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", required=True, help="folder written by `paddle_dx export`")
    parser.add_argument("--input", required=True, help="image, folder or list file")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", default=None, help="CSV file (default: CSV on stdout)")
    parser.add_argument("--use-gpu", action="store_true", help="run on the GPU when one is available")
    parser.add_argument(
        "--gpu-id",
        type=int,
        default=None,
        help="which GPU with --use-gpu (default: the launcher's FLAGS_selected_gpus, else 0)",
    )
    parser.add_argument(
        "--enable-mkldnn",
        dest="enable_mkldnn",
        action="store_true",
        default=True,
        help="use oneDNN (MKLDNN) on CPU (default)",
    )
    parser.add_argument("--disable-mkldnn", dest="enable_mkldnn", action="store_false")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: all cores this process may use)"
    )
    parser.add_argument(
        "--image-root",
        default=None,
        help="folder a list file's relative paths are under (default: the list file's folder)",
    )
    return parser


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.batch_size < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--batch-size and --threads must be >= 1")
    if args.gpu_id is not None and args.gpu_id < 0:
        parser.error("--gpu-id must be >= 0")
    return args


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = parse_args(argv, prog)
    from paddle_dx.inference import Predictor
    from paddle_dx.inference.inputs import collect_inputs
    from paddle_dx.inference.job import run_inference_job
    from paddle_dx.utils.files import check_output_file

    if args.output:
        check_output_file(args.output)
    paths = collect_inputs(args.input, args.image_root)
    predictor = Predictor(
        args.model_dir,
        use_gpu=args.use_gpu,
        enable_mkldnn=args.enable_mkldnn,
        threads=args.threads,
        gpu_id=args.gpu_id,
    )
    result = run_inference_job(predictor, paths, args.batch_size, args.output)
    if not result.rows:
        from paddle_dx.errors import DataError

        raise DataError(f"{args.input}: no image could be predicted ({len(result.skipped)} unreadable, listed above)")
