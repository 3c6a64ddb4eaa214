"""Inference speed, ResNet-50 (or --arch EfficientNetLite0) at 224 px, batch 1 and 16: paddle_dx dygraph eval, Paddle
Inference with oneDNN on and off (paddle_dx.inference.Predictor on an export_model directory),
and plain PyTorch eager. Model time only (input already preprocessed); see preprocess.py.

    python benchmarks/inference.py [--rounds 3] [--batches 1 16] [--arch ResNet50|EfficientNetLite0]

EfficientNet-Lite0's PyTorch side is the reference definition (PyPI efficientnet-lite-pytorch)
that paddle_dx's port matches to 1e-4; its results go to inference_efficientnetlite0.md.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import (
    GFLOP_PER_IMAGE_224,
    PEAK_GFLOPS,
    alternate,
    fmt,
    machine,
    summary,
    threads,
    time_repeated,
    write_results,
)  # noqa: E402

ENGINES = ("paddle_dygraph", "paddle_inference_onednn", "paddle_inference_no_onednn", "torch")
SIZE = 224


def _reps(batch):
    return (2, 10) if batch == 1 else (1, 3)


def paddle_case(engine, batch, arch):
    import paddle

    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.models import build_model
    from paddle_dx.utils.device import select_device

    select_device("cpu", threads())
    config = load_config(
        raw={"Global": {"image_shape": [3, SIZE, SIZE], "device": "cpu"}, "Arch": {"name": arch, "class_num": 2}}
    )
    model = build_model(config["Arch"], config["Global"]["image_shape"])
    model.eval()
    x = np.random.default_rng(0).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)
    if engine == "paddle_dygraph":
        tensor = paddle.to_tensor(x)

        def run():
            with paddle.no_grad():
                model(tensor).numpy()
    else:
        from paddle_dx.inference import Predictor
        from paddle_dx.inference.export import export_model

        out = Path(tempfile.mkdtemp(prefix="bench_export_"))
        export_model(model, config, out)
        predictor = Predictor(out, enable_mkldnn=engine == "paddle_inference_onednn", threads=threads())

        def run():
            predictor._run(x)  # the engine call alone, on an already preprocessed batch

    return run


def torch_model(arch, class_num):
    """The PyTorch twin of ``arch``: benchmarks/torch_resnet.py, or EfficientNet-Lite's reference."""
    if arch.startswith("EfficientNetLite"):
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name(f"efficientnet-lite{arch[-1]}", num_classes=class_num)
    from benchmarks.torch_resnet import build

    return build(arch, class_num)


def torch_case(batch, arch):
    import torch

    torch.set_num_threads(threads())
    model = torch_model(arch, 2).eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32))

    def run():
        with torch.no_grad():
            model(x).numpy()

    return run


def worker(engine, batch, arch):
    run = torch_case(batch, arch) if engine == "torch" else paddle_case(engine, batch, arch)
    seconds = time_repeated(run, *_reps(batch))
    return {"images_per_s": batch / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("ENGINE", "BATCH", "ARCH"))
    parser.add_argument("--arch", default="ResNet50", choices=("ResNet18", "ResNet50", "EfficientNetLite0"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    if args.worker:
        import json

        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.worker[2])))
        return
    arch = args.arch
    started = machine()
    rows = []
    for batch in args.batches:
        cases = {engine: (__file__, [engine, batch, arch]) for engine in ENGINES}
        values = alternate(cases, args.rounds)
        torch_median = summary(values["torch"])[0]
        for engine in ENGINES:
            med = summary(values[engine])[0]
            gflop = GFLOP_PER_IMAGE_224.get(arch)
            peak = "n/a" if gflop is None else f"{med * gflop / PEAK_GFLOPS:.0%}"
            rows.append([batch, engine, fmt(values[engine]), f"{med / torch_median:.2f}", peak])
    write_results(
        "inference" if arch == "ResNet50" else f"inference_{arch.lower()}",
        f"Inference, {arch} {SIZE} px, images/s",
        "python benchmarks/inference.py " + " ".join(sys.argv[1:]),
        ["batch", "engine", "images/s", "vs torch", "of peak FLOP/s"],
        rows,
        [
            f"peak = {PEAK_GFLOPS} GFLOP/s (2048^3 fp32 matmul, ../shared/PERF_NOTES.md); "
            f"{arch} forward = {GFLOP_PER_IMAGE_224.get(arch, 'n/a')} GFLOP/image",
            "random weights, 2 classes; the input batch is already preprocessed (see preprocess.md)",
            "paddle_inference_* = paddle_dx.inference.Predictor on a paddle_dx export_model directory",
        ],
        started,
    )


if __name__ == "__main__":
    main()
