"""Does one optimizer step slow every later matmul in the process? (Not a test: timing.)

PERF_NOTES.md pitfall 1: after one step of Paddle's per-tensor Adam/AdamW on a parameter of
>= 512 elements, with 2 threads, later matmuls ran 4-7x slower on the AMD EPYC machines. paddle_dx
builds multi-tensor optimizers everywhere (dygraph: engine/optimizer.py; the static program:
merged_adam, with AdamW's decoupled decay as its own ops, accel/static_program.py). This script
times a 512x512 matmul before and after one step of each, each case in a fresh process, and
writes results/optimizer_slowdown.md. Cases: paddle_dx's dygraph Adam / AdamW / Momentum, its
static-engine Adam / AdamW (ResNet-18, 32 px), and Paddle's per-tensor Adam as the known-bad
reference.

    python benchmarks/optimizer_slowdown.py [--rounds 3]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
CASES = ["dygraph Adam", "dygraph AdamW", "dygraph Momentum", "static Adam", "static AdamW", "Paddle per-tensor Adam"]


def _matmul_seconds(paddle, a, b, rounds=7, reps=10):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            out = paddle.matmul(a, b)
        float(out[0, 0])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(case):
    import paddle

    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.engine.loss import build_loss
    from paddle_dx.engine.optimizer import build_optimizer
    from paddle_dx.engine.steps import StageSpec, compile_checked
    from paddle_dx.models import build_model
    from paddle_dx.utils.device import select_device

    select_device("cpu")
    a, b = paddle.randn([512, 512]), paddle.randn([512, 512])
    _matmul_seconds(paddle, a, b, rounds=2)
    before = _matmul_seconds(paddle, a, b)
    engine, name = case.split()[0], case.split()[-1]
    opt = {"name": name, "lr": 0.001, **({"weight_decay": 0.01} if name == "AdamW" else {})}
    if case.startswith("Paddle"):
        model = paddle.nn.Sequential(paddle.nn.Linear(256, 256), paddle.nn.Linear(256, 2))
        optimizer = paddle.optimizer.Adam(parameters=model.parameters(), use_multi_tensor=False)
        model(paddle.randn([8, 256])).mean().backward()
        optimizer.step()
    elif engine == "dygraph":
        config = load_config(raw={"Optimizer": opt})
        model = paddle.nn.Sequential(paddle.nn.Linear(256, 256), paddle.nn.Linear(256, 2))
        optimizer, _ = build_optimizer(config["Optimizer"], model, 1)
        model(paddle.randn([8, 256])).mean().backward()
        optimizer.step()
    else:
        config = load_config(
            raw={"Global": {"image_shape": [3, 32, 32]}, "Arch": {"name": "ResNet18", "class_num": 2}, "Optimizer": opt}
        )
        model = build_model(config["Arch"])
        loss_fn = build_loss(config["Loss"]["Train"], "Loss.Train", [0, 1], 2)
        optimizer, _ = build_optimizer(config["Optimizer"], model, 1)
        spec = StageSpec(config["Arch"], [3, 32, 32], config["Loss"]["Train"], config["Optimizer"], "none", [0, 1])
        compiled, failures = compile_checked(model, spec, 0.001, None, loss_fn)
        assert compiled is not None, failures
        compiled.push()
        compiled(paddle.randn([4, 3, 32, 32]), paddle.to_tensor([0, 1, 0, 1]))
    after = min(_matmul_seconds(paddle, a, b), _matmul_seconds(paddle, a, b))
    print(json.dumps({"ratio": after / before}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    from benchmarks.harness import alternate, fmt, machine, write_results

    started = machine()
    cases = {case: (Path(__file__), [case]) for case in CASES}
    ratios = alternate(cases, args.rounds, key="ratio")
    write_results(
        "optimizer_slowdown",
        "Matmul time after one optimizer step / before it (1.0 = no slowdown)",
        f"python benchmarks/optimizer_slowdown.py --rounds {args.rounds}",
        ["case", "ratio, median (min-max)"],
        [(case, fmt(values)) for case, values in ratios.items()],
        notes=["A 512x512 paddle.matmul, 7 rounds of 10, median; after: the better of two such measurements."],
        started=started,
    )


if __name__ == "__main__":
    main()
