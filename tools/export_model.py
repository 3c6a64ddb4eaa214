"""Export trained weights to Paddle Inference with their preprocessing in inference.yml.

python tools/export_model.py -c CONFIG -o Global.pretrained_model=output/.../best_model.pdparams \
                             -o Global.save_inference_dir=inference/NAME
"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import config_parser, overrides, run  # noqa: E402


def main():
    args = config_parser(__doc__).parse_args()
    from paddle_dx.config import load_config
    from paddle_dx.inference import export_from_config
    config = load_config(args.config, overrides(args))
    spec = export_from_config(config)
    print(f"exported {spec['arch']} ({', '.join(spec['class_names'])}) to {config['Global']['save_inference_dir']}")


if __name__ == "__main__":
    run(main)
