"""Full fine-tuning speed of this checkout against another commit's, side by side with PyTorch
eager in one run: the check that an engine change did not slow the shipped path.

Each case is benchmarks/train.py's ``full`` worker (ResNet-18 and ResNet-50, 224 px, batch 8,
Adam, steps timed past warm-up) in a fresh process, rounds in rotating order (harness.py). The
other commit runs from its own checkout (``git worktree add DIR COMMIT``), so both sides use
their own paddle_dx with the same Paddle and PyTorch. Writes results/engine_before_after.md.

    git worktree add /tmp/before 636922c
    python benchmarks/before_after.py --before /tmp/before [--rounds 2]
"""

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.harness import alternate, fmt, machine, summary, thread_env, threads, write_results  # noqa: E402
from benchmarks.train import FULL  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a checkout of the commit to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    before = Path(args.before).resolve()
    label = subprocess.run(["git", "-C", str(before), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    old = label.stdout.strip() or before.name
    env_before = {**thread_env(threads()), "PYTHONPATH": str(before)}
    started, rows = machine(), []
    for arch, _, _ in FULL:
        cases = {
            "PyTorch eager": (HERE / "train.py", ["full", "torch", arch, 0]),
            "paddle_dx static, this checkout": (HERE / "train.py", ["full", "paddle_dx static", arch, 0]),
            f"paddle_dx static, {old}": (
                before / "benchmarks" / "train.py",
                ["full", "paddle_dx static", arch, 0],
                env_before,
            ),
            "paddle_dx dygraph, this checkout": (HERE / "train.py", ["full", "paddle_dx", arch, 0]),
        }
        values = alternate(cases, args.rounds)
        torch = summary(values["PyTorch eager"])[0]
        for name, v in values.items():
            rows.append([f"full fine-tuning {arch}, batch 8", name, fmt(v), f"{summary(v)[0] / torch:.2f}"])
    write_results(
        "engine_before_after",
        f"Full fine-tuning, images/s: this checkout against {old}, with PyTorch eager in the same run",
        f"python benchmarks/before_after.py --before {before} --rounds {args.rounds}",
        ["work", "who", "images/s, median (min-max)", "/ PyTorch"],
        rows,
        started=started,
    )


if __name__ == "__main__":
    main()
