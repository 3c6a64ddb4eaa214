"""Full fine-tuning with the static engine: which ops to hand to oneDNN, measured side by side
with PyTorch eager (ResNet-18 / ResNet-50, 224 px, batch 8, Adam, random weights, a fixed batch).

    python benchmarks/static_levers.py [--rounds 2] [--arch ResNet18 ResNet50]

Each lever is one choice of paddle_dx.engine.static_step.use_onednn, patched in a fresh worker
process; the rows are images/s (median, min-max over rounds) and the ratio to PyTorch of the same
run. Writes benchmarks/results/static_levers.md.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import alternate, fmt, machine, summary, write_results  # noqa: E402

SPATIAL_CONVS = "spatial convs (paddle_dx default)"
LEVERS = {  # name -> op types that also go to oneDNN, on top of the default's spatial convolutions
    SPATIAL_CONVS: (),
    "+ 1x1 convs": ("conv2d", "conv2d_grad"),
    "+ batch_norm fwd/bwd": ("batch_norm", "batch_norm_grad"),
    "+ relu fwd/bwd": ("relu", "relu_grad"),
    "+ elementwise_add fwd/bwd": ("elementwise_add", "elementwise_add_grad"),
    "+ pool2d fwd": ("pool2d",),
    "no oneDNN": None,
}


def patch(lever):
    """Replace static_step.use_onednn by the lever's choice."""
    import paddle_dx.engine.static_step as static_step
    default = static_step.use_onednn
    extra = LEVERS[lever]

    def choice(op, block, cached_front):
        if extra is None:
            return False
        return default(op, block, cached_front) or op.type in extra

    static_step.use_onednn = choice


def worker(lever, arch):
    from benchmarks.train import FULL, paddle_full, torch_full
    warmup, reps = next((w, r) for a, w, r in FULL if a == arch)
    if lever == "torch":
        return {"images_per_s": torch_full(arch, warmup, reps)}
    patch(lever)
    return {"images_per_s": paddle_full(arch, warmup, reps, "static")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("LEVER", "ARCH"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--arch", nargs="+", default=["ResNet18", "ResNet50"])
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    started, rows = machine(), []
    for arch in args.arch:
        names = [*LEVERS, "torch"]
        values = alternate({n: (__file__, [n, arch]) for n in names}, args.rounds)
        med = {n: summary(v)[0] for n, v in values.items()}
        for n in names:
            rows.append([f"full fine-tuning {arch}, batch 8", n, fmt(values[n]), f"{med[n] / med['torch']:.2f}",
                         f"{med[n] / med[SPATIAL_CONVS]:.2f}"])
    write_results("static_levers", "Static engine levers: ops on oneDNN, full fine-tuning images/s at 224 px",
                  "python benchmarks/static_levers.py " + " ".join(sys.argv[1:]),
                  ["work", "static Program variant / framework", "images/s", "vs torch", "vs default"], rows,
                  ["each variant is paddle_dx's static engine with use_onednn patched in its own process; "
                   "every variant keeps the default's spatial convolutions on oneDNN except 'no oneDNN'",
                   "PyTorch 2.13 eager, same threads, same batch and optimizer (benchmarks/train.py's full part)"],
                  started)


if __name__ == "__main__":
    main()
