"""Side-by-side timing: every case in a fresh process, frameworks alternated, several rounds.

A fresh process per case keeps one framework's thread pools (and Paddle's per-tensor Adam
slowdown, ../shared/PERF_NOTES.md) from leaking into the next case; alternating the cases
within each round spreads a shared machine's load over all of them. Results are medians
with min-max over rounds, and ratios are taken between medians of the same run.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
PEAK_GFLOPS = 363.0  # measured fp32 peak of this machine class (2048^3 matmul), PERF_NOTES.md
GFLOP_PER_IMAGE_224 = {
    "ResNet18": 3.63,
    "ResNet50": 8.18,
    "EfficientNetLite0": 0.77,
}  # forward (2 x multiply-adds; Lite0 counted over its convolutions and fc); training ~3x


def threads():
    """Threads for both frameworks: BENCH_THREADS, else every core this process may use."""
    return int(os.environ.get("BENCH_THREADS") or len(os.sched_getaffinity(0)))


def thread_env(n):
    """The same OpenMP/MKL thread count for every framework's worker process."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": str(n),
        "MKL_NUM_THREADS": str(n),
        "BENCH_THREADS": str(n),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "GLOG_minloglevel": "2",
    }


def run_worker(script, args, env=None, timeout=1800):
    """Run ``python script --worker args...``; return the JSON dict its last stdout line holds."""
    cmd = [sys.executable, str(script), "--worker", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env or thread_env(threads()))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def alternate(cases, rounds, key="images_per_s"):
    """``cases`` = {name: (script, args[, env])}; run all of them once per round, in rotating order.

    Returns {name: [value per round]} (a case's worker may return several keys: all are kept
    under ``name/key`` when ``key`` is None).
    """
    names = list(cases)
    out = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            script, args, *env = cases[name]
            result = run_worker(script, args, env[0] if env else None)
            out[name].append(result if key is None else result[key])
            print(f"  round {r + 1}/{rounds} {name}: {result}", flush=True)
    return out


def summary(values):
    """(median, min, max) of a list of numbers."""
    return statistics.median(values), min(values), max(values)


def fmt(values, digits=2):
    med, lo, hi = summary(values)
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def dygraph_step(forward, loss_fn, optimizer, x, y):
    """One Paddle dygraph training step on a fixed batch, as a callable for ``time_repeated``."""

    def step():
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        float(loss)

    return step


def time_repeated(fn, warmup, reps):
    """Median seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine():
    """What the numbers were measured on."""
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for module in ("paddle", "torch"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    return {
        "cores": os.cpu_count(),
        "usable cores": len(os.sched_getaffinity(0)),
        "threads": threads(),
        "cpu": model,
        "python": platform.python_version(),
        "load average at start": tuple(round(x, 2) for x in os.getloadavg()),
        **versions,
    }


FRESH_PROCESS = (
    "Values: median (min-max) over rounds; each round runs every case once in a fresh process, in rotating order."
)


def write_results(name, title, command, header, rows, notes=(), started=None, method=FRESH_PROCESS):
    """Write ``benchmarks/results/<name>.md``: machine, command, one table, notes."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    info = started or machine()
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`",
        "",
        "Machine: "
        + ", ".join(f"{k} {v}" for k, v in info.items())
        + f"; load average at end {tuple(round(x, 2) for x in os.getloadavg())}.",
        "",
        method,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lines += [""] + [f"- {n}" for n in notes]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(path.read_text())
    return path
