"""Which knobs make Paddle's dygraph CPU training faster? The `make demo` step (ResNet-18,
64 px, batch 16, Adam) under each setting, in fresh processes, with PyTorch beside it.

    python benchmarks/flags.py [--rounds 3] [--size 64] [--batch 16]
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import (
    GFLOP_PER_IMAGE_224,
    PEAK_GFLOPS,
    alternate,
    dygraph_step,
    fmt,
    machine,
    summary,
    thread_env,
    threads,
    time_repeated,
    write_results,
)  # noqa: E402

VARIANTS = {
    # name: (extra environment, description)
    "paddle, 1 thread (Paddle's default)": ({}, "FLAGS_paddle_num_threads=1 is Paddle's default"),
    "paddle_dx default (all cores)": ({}, "select_device sets paddle.base.core.set_num_threads(cores)"),
    "+ FLAGS_use_onednn=1 FLAGS_use_mkldnn=1": ({"FLAGS_use_onednn": "1", "FLAGS_use_mkldnn": "1"}, ""),
    "+ channels-last (PaddleClas data_format=NHWC)": ({}, ""),
    "+ paddle.jit.to_static forward": ({}, ""),
    "static graph (legacy IR), oneDNN conv + conv_grad": (
        {"FLAGS_enable_pir_api": "0"},
        "paddle.static Program + Executor; use_mkldnn on conv ops",
    ),
    "static graph (legacy IR), plain kernels": ({"FLAGS_enable_pir_api": "0"}, "the same Program, no oneDNN"),
    "+ KMP_BLOCKTIME=1 KMP_AFFINITY=compact": (
        {"KMP_BLOCKTIME": "1", "KMP_AFFINITY": "granularity=fine,compact,1,0", "OMP_PROC_BIND": "true"},
        "",
    ),
    "torch eager (same threads)": ({}, ""),
}


def static_step(variant, size, batch):
    """The same training step as a legacy static Program run by the Executor. oneDNN is switched
    on per op (``use_mkldnn`` attribute) for conv2d and its gradient only: with FLAGS_use_mkldnn
    for every op, reduce_mean_grad and pool2d_grad fail in Paddle 3.3.1 ("could not reshape a
    memory descriptor", "could not create a descriptor for a pooling backward primitive")."""
    import paddle
    from paddleclas.ppcls.arch.backbone import ResNet18

    paddle.base.core.set_num_threads(threads())
    paddle.enable_static()
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        x = paddle.static.data("x", [None, 3, size, size], "float32")
        y = paddle.static.data("y", [None], "int64")
        loss = paddle.nn.CrossEntropyLoss()(ResNet18(class_num=2)(x), y)
        paddle.optimizer.Adam(1e-3, use_multi_tensor=True).minimize(loss)
    if "oneDNN" in variant:
        for op in main.global_block().ops:
            if op.type in ("conv2d", "conv2d_grad"):
                op._set_attr("use_mkldnn", True)
    executor = paddle.static.Executor(paddle.CPUPlace())
    executor.run(startup)
    rng = np.random.default_rng(0)
    feed = {"x": rng.standard_normal((batch, 3, size, size)).astype(np.float32), "y": rng.integers(0, 2, batch)}
    return lambda: float(executor.run(main, feed=feed, fetch_list=[loss])[0])


def paddle_step(variant, size, batch):
    import paddle

    if variant.startswith("static graph"):
        return static_step(variant, size, batch)
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.engine.optimizer import build_optimizer
    from paddle_dx.models import build_model

    if "1 thread" not in variant:
        paddle.base.core.set_num_threads(threads())
    config = load_config(raw={"Arch": {"name": "ResNet18", "class_num": 2}, "Optimizer": {"name": "Adam"}})
    if "NHWC" in variant:
        from paddleclas.ppcls.arch.backbone import ResNet18

        model = ResNet18(class_num=2, data_format="NHWC")
    else:
        model = build_model(config["Arch"])
    model.train()
    optimizer, _ = build_optimizer(config["Optimizer"], model, 1)
    forward = paddle.jit.to_static(model, full_graph=True) if "to_static" in variant else model
    rng = np.random.default_rng(0)
    x = paddle.to_tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = paddle.to_tensor(rng.integers(0, 2, batch))
    loss_fn = paddle.nn.CrossEntropyLoss()

    return dygraph_step(forward, loss_fn, optimizer, x, y)


def torch_step(size, batch):
    import torch

    from benchmarks.torch_resnet import adam_step, build

    torch.set_num_threads(threads())
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    return adam_step(build("ResNet18", 2).train(), x, torch.from_numpy(rng.integers(0, 2, batch)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("VARIANT", "SIZE", "BATCH"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    if args.worker:
        variant, size, batch = args.worker[0], int(args.worker[1]), int(args.worker[2])
        step = torch_step(size, batch) if variant.startswith("torch") else paddle_step(variant, size, batch)
        seconds = time_repeated(step, 2, 5)
        print(json.dumps({"seconds_per_step": seconds, "images_per_s": batch / seconds}))
        return
    started = machine()
    cases = {
        name: (__file__, [name, args.size, args.batch], {**thread_env(threads()), **env})
        for name, (env, _) in VARIANTS.items()
    }
    values = alternate(cases, args.rounds, key="seconds_per_step")
    base = summary(values["paddle_dx default (all cores)"])[0]
    gflop = 3 * GFLOP_PER_IMAGE_224["ResNet18"] * (args.size / 224) ** 2 * args.batch
    rows = []
    for name, v in values.items():
        med = summary(v)[0]
        rows.append([name, fmt(v, 3), f"{base / med:.2f}", f"{gflop / med:.0f} ({gflop / med / PEAK_GFLOPS:.0%})"])
    write_results(
        "flags",
        f"Dygraph training knobs: ResNet-18 {args.size} px, batch {args.batch}, Adam, s/step",
        "python benchmarks/flags.py " + " ".join(sys.argv[1:]),
        ["setting", "s/step", "speed vs paddle_dx default", "GFLOP/s (of peak)"],
        rows,
        [
            f"training FLOPs = 3 x forward = {gflop:.1f} GFLOP per step; peak {PEAK_GFLOPS} GFLOP/s",
            "each row: 2 warm-up steps, median of 5 timed steps, in a fresh process",
        ],
        started,
    )


if __name__ == "__main__":
    main()
