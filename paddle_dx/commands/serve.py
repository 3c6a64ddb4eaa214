"""Serve the diagnosis assistant (web page + JSON API) for an exported model.

paddle_dx serve --model-dir inference/NAME [--host 127.0.0.1] [--port 8050] [--no-gradcam]
                [--phrases phrases.yml] [--max-file-mb 20] [--max-megapixels 40] [--max-files 16]
                [--allow-host NAME]
Open http://127.0.0.1:8050/ ; scripts POST images to /api/predict (field `images`).
"""

import argparse
from collections.abc import Sequence


def check_limits(args: argparse.Namespace) -> None:
    """Refuse limits that would start a server refusing every upload (or none): one line, exit 2."""
    from paddle_dx.errors import ConfigError

    checks = [
        ("--max-file-mb", args.max_file_mb, 0, 2048),
        ("--max-megapixels", args.max_megapixels, 0, 1000),
        ("--max-files", args.max_files, 0, 1000),
        ("--port", args.port, -1, 65535),
    ]
    for flag, value, above, most in checks:
        if not (above < value <= most):  # also refuses nan
            raise ConfigError(f"{flag} {value} is out of range: accepted > {above} and <= {most}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads} is out of range: accepted >= 1")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", required=True, help="folder written by `paddle_dx export`")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this computer only)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--no-gradcam", dest="gradcam", action="store_false", help="do not compute heat maps")
    parser.add_argument(
        "--phrases",
        default=None,
        help="YAML mapping class name -> spoken finding, e.g. `lung_aca: Lung adenocarcinoma suspected`",
    )
    parser.add_argument("--max-file-mb", type=float, default=20.0, help="largest upload per image (MB)")
    parser.add_argument("--max-megapixels", type=float, default=40.0, help="largest decoded image (megapixels)")
    parser.add_argument("--max-files", type=int, default=16, help="most images per request")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        help="another name the page is opened by (e.g. a reverse proxy's), repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> None:
    args = build_parser(prog).parse_args(argv)
    check_limits(args)
    from paddle_dx.ui.server import build_assistant, serve
    from paddle_dx.ui.uploads import UploadLimits

    limits = UploadLimits(
        max_file_bytes=int(args.max_file_mb * 1024 * 1024),
        max_pixels=int(args.max_megapixels * 1_000_000),
        max_files=args.max_files,
    )
    assistant = build_assistant(
        args.model_dir, gradcam=args.gradcam, phrases_file=args.phrases, limits=limits, threads=args.threads
    )
    serve(assistant, args.host, args.port, allowed_hosts=args.allow_host)
