"""Where one full fine-tuning step spends its time: paddle_dx dygraph, paddle_dx's static engine
and PyTorch eager, EfficientNet-Lite0 and ResNet-18, 224 px, batch 16, Adam.

    python benchmarks/profile_step.py [--arch EfficientNetLite0 ResNet18] [--batch 16] [--top 12]
    python benchmarks/profile_step.py --arch ResNet50 --name profile_step_resnet50

Per case, two fresh processes after the same 2 warm-up steps: one times a step under the
framework's profiler (``paddle.profiler``: the static executor's operators or dygraph's kernel
launches; ``torch.profiler``: the aten operators' self time), the other runs a step with
``ONEDNN_VERBOSE=1`` and sums oneDNN's own record of each primitive it ran (kind, implementation,
propagation): which kernel ran, e.g. a depthwise convolution's weight gradient on oneDNN's
``jit_dw`` kernel or on its ``gemm`` fallback. No oneDNN line in a case means its ops ran on
the framework's plain kernels. Writes benchmarks/results/profile_step.md. Shares are of the
profiled step's wall time; on a shared machine they move less than the absolute times do.
"""

import argparse
import collections
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import machine, run_worker, thread_env, threads, write_results  # noqa: E402

WARMUP = 2
CASES = ("paddle_dx dygraph", "paddle_dx static", "PyTorch eager")
MARK, END = "=====STEP=====", "=====END====="


def _step(case, arch, batch):
    """(one training step, what runs it) for a case, built as benchmarks/lite0_step.py builds it."""
    from benchmarks import lite0_step as bench

    if case == "PyTorch eager":
        import torch

        from benchmarks.torch_resnet import adam_step

        torch.set_num_threads(threads())
        x, y = (torch.from_numpy(a) for a in bench._batch(batch))
        return adam_step(bench.torch_model(arch).train(), x, y), "PyTorch eager (NCHW)"
    model, config, loss_fn, optimizer, x, y = bench.paddle_setup(arch, batch)
    if case.endswith("dygraph"):
        return bench.dygraph_step(model, loss_fn, optimizer, x, y), "dygraph (Paddle's eager CPU kernels)"
    static = bench.compiled_step(model, config, loss_fn, optimizer)
    ops = static.program.global_block().ops
    marked = sorted({op.type for op in ops if op.has_attr("use_mkldnn") and op.attr("use_mkldnn")})
    layout = "NHWC" if static.channels_last else "NCHW"
    return (lambda: float(static(x, y)[0])), f"static Program, {layout}; on oneDNN: {', '.join(marked)}"


def _paddle_profile(step):
    """{op type: milliseconds} of one step, and the step's wall milliseconds."""
    import paddle.profiler as profiler

    # on_trace_ready: nothing (Paddle's default writes ./profiler_log/); the trace is exported below
    prof = profiler.Profiler(targets=[profiler.ProfilerTarget.CPU], on_trace_ready=lambda _: None)
    prof.start()
    start = time.perf_counter()
    step()
    wall = time.perf_counter() - start
    prof.step()
    prof.stop()
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"profile_step_{os.getpid()}.json"
    prof.export(str(path), format="json")
    events = json.loads(path.read_text())
    path.unlink()
    events = events["traceEvents"] if isinstance(events, dict) else events
    times = collections.Counter()
    for e in events:
        if e.get("ph") != "X":
            continue
        name = re.sub(r"\[.*", "", e["name"])
        if e.get("cat") == "Operator" and not name.startswith(("Global_", "Local_")) and " " not in name:
            times[name] += e["dur"] / 1e3  # static executor: one event per operator
        elif e.get("cat") == "DygraphKernelLaunch":
            times[name.replace(" kernel launch", "")] += e["dur"] / 1e3  # dygraph: the kernel itself
    return times, wall * 1e3


def _torch_profile(step):
    import torch.profiler as tp

    with tp.profile(activities=[tp.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        step()
        wall = time.perf_counter() - start
    times = collections.Counter()
    for e in prof.key_averages():
        if e.key.startswith("aten::"):
            times[e.key] += e.self_cpu_time_total / 1e3
    return times, wall * 1e3


def worker(mode, case, arch, batch):
    step, description = _step(case, arch, int(batch))
    for _ in range(WARMUP):
        step()
    if mode == "verbose":  # ONEDNN_VERBOSE=1 is set in this process's environment
        print(MARK, flush=True)
        start = time.perf_counter()
        step()
        wall = time.perf_counter() - start
        print(END, flush=True)
        return {"description": description, "wall_ms": wall * 1e3}
    times, wall = (_torch_profile if case == "PyTorch eager" else _paddle_profile)(step)
    return {"description": description, "ops_ms": dict(times), "wall_ms": wall}


def _onednn_summary(stdout):
    """{(kind, implementation, propagation): [count, ms]} from one step's ONEDNN_VERBOSE lines."""
    text = stdout.split(MARK)[-1].split(END)[0]
    out = collections.defaultdict(lambda: [0, 0.0])
    for line in text.splitlines():
        parts = line.split(",")
        if not line.startswith("onednn_verbose") or "exec" not in parts:
            continue
        i = parts.index("exec")
        key = (parts[i + 2], parts[i + 3], parts[i + 4])
        out[key][0] += 1
        out[key][1] += float(parts[-1])
    return out


def _verbose_run(case, arch, batch):
    """oneDNN's record of one step (_onednn_summary) and that step's wall milliseconds."""
    import subprocess

    env = {**thread_env(threads()), "ONEDNN_VERBOSE": "1"}
    cmd = [sys.executable, __file__, "--worker", "verbose", case, arch, str(batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    return _onednn_summary(proc.stdout), result["wall_ms"]


OPTIMIZER_OPS = ("adam", "momentum", "sgd", "_foreach")


def _part(name):
    """forward, backward or optimizer, from an operator's name."""
    if any(key in name.lower() for key in OPTIMIZER_OPS):
        return "optimizer"
    return "backward" if name.endswith("_grad") or "backward" in name.lower() else "forward"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "CASE", "ARCH", "BATCH"))
    parser.add_argument("--arch", nargs="+", default=["EfficientNetLite0", "ResNet18"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--name", default="profile_step", help="result file name (benchmarks/results/<name>.md)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    started, rows, notes = machine(), [], []
    for arch in args.arch:
        for case in CASES:
            result = run_worker(__file__, ["profile", case, arch, args.batch])
            onednn, verbose_wall = (
                (_onednn_summary(""), 0.0) if case == "paddle_dx dygraph" else _verbose_run(case, arch, args.batch)
            )
            wall = result["wall_ms"]
            ops = collections.Counter(result["ops_ms"])
            notes.append(
                f"{arch}, {case}: {result['description']}; profiled step {wall / 1e3:.2f} s"
                + (f", step with ONEDNN_VERBOSE {verbose_wall / 1e3:.2f} s" if verbose_wall else "")
            )
            for direction in ("forward", "backward", "optimizer"):
                chosen = [(n, t) for n, t in ops.most_common() if _part(n) == direction][: args.top]
                for name, ms in chosen:
                    rows.append(
                        [f"{arch}, batch {args.batch}", case, direction, name, f"{ms:.0f}", f"{100 * ms / wall:.1f} %"]
                    )
            for (kind, impl, prop), (count, ms) in sorted(onednn.items(), key=lambda kv: -kv[1][1])[: args.top]:
                rows.append(
                    [
                        f"{arch}, batch {args.batch}",
                        case,
                        f"oneDNN {prop}",
                        f"{kind} `{impl}` x{count}",
                        f"{ms:.0f}",
                        f"{100 * ms / verbose_wall:.1f} %",
                    ]
                )
    write_results(
        args.name,
        "One full fine-tuning step, 224 px, Adam: top operators and the oneDNN kernels that ran",
        "python benchmarks/profile_step.py " + " ".join(sys.argv[1:]),
        ["work", "engine", "part", "operator / oneDNN primitive (implementation x calls)", "ms", "share of the step"],
        rows,
        [
            *notes,
            "operator rows: the profiler's time per operator type over one step (paddle: the static executor's "
            "operators or dygraph's kernel launches; torch: aten operators' self time), split by name into "
            "backward (`_grad`, `backward`), optimizer (`adam`, `momentum`, `_foreach`) and forward (the rest)",
            "oneDNN rows: ONEDNN_VERBOSE=1 in a second process, one step after the same warm-up: oneDNN's own "
            "timing of each primitive, its share of that process's step (a ms here is inside an operator above; "
            "verbose output costs some time); "
            "`gemm` implementations are oneDNN's im2col + GEMM fallback, `jit_dw` / `brdgmm_dw` its depthwise "
            "kernels, `jit_1x1` / `brgconv_1x1` its 1x1 kernels, `ref` its reference (slowest) kernels",
            "dygraph has no oneDNN rows: Paddle 3.3's dygraph runs its plain CPU kernels (convolutions: im2col + "
            "GEMM per image and group, depthwise included)",
        ],
        started,
        method="One process per case and measurement; 2 warm-up steps, then the profiled step.",
    )


if __name__ == "__main__":
    main()
