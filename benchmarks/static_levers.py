"""Full fine-tuning with the static engine: which ops to hand to oneDNN, measured side by side
with PyTorch eager (ResNet-18 / ResNet-50, 224 px, batch 8, Adam, random weights, a fixed batch).

    python benchmarks/static_levers.py [--rounds 2] [--arch ResNet18 ResNet50]

Each lever is one layout (NHWC or NCHW) and choice of ops for oneDNN (accel/onednn_program.py's wants_nhwc
and use_onednn, patched in a fresh worker process); the rows are images/s (median, min-max over
rounds) and the ratio to PyTorch of the same run. Writes benchmarks/results/static_levers.md.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import alternate, fmt, machine, summary, write_results  # noqa: E402

DEFAULT = "NHWC: convs, batch_norm, relu, max pool; freed memory kept (paddle_dx default)"
MALLOC_DEFAULTS = "NHWC, glibc malloc defaults"
TORCH, TORCH_KEPT = "torch", "torch, freed memory kept"
# name -> (layout, op types added to the layout's default choice, op types taken from it)
LEVERS = {
    DEFAULT: ("NHWC", (), ()),
    MALLOC_DEFAULTS: ("NHWC", (), ()),
    "NHWC, relu_grad plain": ("NHWC", (), ("relu_grad",)),
    "NHWC, batch_norm plain": ("NHWC", (), ("batch_norm", "batch_norm_grad")),
    "NCHW: spatial convs (the previous default)": ("NCHW", (), ()),
    "NCHW, no oneDNN": ("NCHW", None, ()),
}


def patch(lever):
    """Set static_step's layout and op choice, and the malloc settings, to the lever's."""
    import paddle_dx.accel.onednn_program as static_step
    import paddle_dx.utils.memory as memory

    layout, added, removed = LEVERS[lever]
    default, nhwc = static_step.use_onednn, layout == "NHWC"
    static_step.wants_nhwc = lambda channels_last, cached_front: nhwc and not cached_front and channels_last
    if lever == MALLOC_DEFAULTS:
        memory._applied = False  # keep_freed_memory() then leaves glibc as it is

    def choice(op, block, cached_front, channels_last=False):
        if added is None or op.type in removed:
            return False
        return default(op, block, cached_front, channels_last) or op.type in added

    static_step.use_onednn = choice


def worker(lever, arch):
    from benchmarks.train import FULL, paddle_full, torch_full

    warmup, reps = next((w, r) for a, w, r in FULL if a == arch)
    if lever in (TORCH, TORCH_KEPT):
        if lever == TORCH_KEPT:
            from paddle_dx.utils.memory import keep_freed_memory

            keep_freed_memory()
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
        names = [*LEVERS, TORCH, TORCH_KEPT]
        values = alternate({n: (__file__, [n, arch]) for n in names}, args.rounds)
        med = {n: summary(v)[0] for n, v in values.items()}
        for n in names:
            rows.append(
                [
                    f"full fine-tuning {arch}, batch 8",
                    n,
                    fmt(values[n]),
                    f"{med[n] / med[TORCH]:.2f}",
                    f"{med[n] / med[DEFAULT]:.2f}",
                ]
            )
    write_results(
        "static_levers",
        "Static engine levers: layout and ops on oneDNN, full fine-tuning images/s at 224 px",
        "python benchmarks/static_levers.py " + " ".join(sys.argv[1:]),
        ["work", "static Program variant / framework", "images/s", "vs torch", "vs default"],
        rows,
        [
            "each variant is paddle_dx's static engine with its layout and oneDNN op choice patched, in "
            "its own process; the NHWC variants put every convolution on oneDNN, the NCHW ones the spatial "
            "convolutions, except 'no oneDNN'",
            "the NHWC rows include the Program's rewrites (accel/onednn_program.nhwc_rewrites: k x k weight "
            "gradients transposed back to OIHW, plain copies of gradients for relu_grad)",
            "freed memory kept: glibc's mmap threshold at 32 MiB and trim threshold at 2 GiB "
            "(paddle_dx/utils/memory.py, set by select_device); every row but 'glibc malloc defaults' "
            "and 'torch' has it",
            "PyTorch 2.13 eager, same threads, same batch and optimizer (benchmarks/train.py's full part)",
        ],
        started,
    )


if __name__ == "__main__":
    main()
