"""Where a whole paddle_dx training run spends its time besides the steps: the paddle_dx side of
``time_to_accuracy.py`` (same split, config and overrides) under cProfile, summed into phases
(imports, building the Trainer, compile + check, steps, data loading, evaluations with their
export + predictor, checkpoints and outputs).

    python benchmarks/run_phases.py --study brain --config brain_ct_resnet18 --epochs 2 \\
        -o Arch.name=ResNet50 -o Arch.pretrained=false

cProfile adds a little to Python-heavy phases (imports, to_static conversion) and nothing
measurable to Paddle's kernels. Writes ``benchmarks/results/run_phases_<study>_<network>.md``.
"""

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import machine, write_results  # noqa: E402

# phase -> (file suffix, function name) whose cumulative time it is
PHASES = {
    "run": ("benchmarks/time_to_accuracy.py", "paddle_worker"),
    "Trainer build": ("paddle_dx/engine/trainer.py", "__init__"),
    "training epochs": ("paddle_dx/engine/trainer.py", "train_epoch"),
    "compile + check": ("paddle_dx/engine/steps.py", "compile_checked"),
    "steps": ("paddle_dx/accel/static_program.py", "__call__"),
    "evaluations": ("paddle_dx/engine/trainer.py", "evaluate"),
    "export + predictor": ("paddle_dx/engine/eval_backend.py", "session"),
    "checkpoints": ("paddle_dx/engine/trainer.py", "save_latest"),
    "outputs (metrics, figures)": ("paddle_dx/engine/trainer.py", "finish"),
}


def cumulative(stats, suffix, name):
    return sum(v[3] for (file, _, func), v in stats.stats.items() if file.endswith(suffix) and func == name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="brain")
    parser.add_argument("--config", default="brain_ct_resnet18")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("-o", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    started = machine()
    import paddle_dx.engine.components  # noqa: F401  (what a run imports first: paddle, paddleclas, paddle_dx)
    import paddle_dx.engine.trainer  # noqa: F401
    from benchmarks import time_to_accuracy as tta

    before = time.perf_counter() - STARTED
    split_start = time.perf_counter()
    lists = Path(tempfile.mkdtemp(prefix="phases_")) / args.study
    image_root, _ = tta.make_split(args.study, lists)
    split_seconds = time.perf_counter() - split_start
    profile = cProfile.Profile()
    profile.enable()
    result = tta.paddle_worker(args.config, image_root, lists, args.epochs, "static", args.overrides)
    profile.disable()
    stats = pstats.Stats(profile)
    t = {phase: cumulative(stats, *where) for phase, where in PHASES.items()}
    loading = t["training epochs"] - t["compile + check"] - t["steps"]
    rows = [
        ["imports (paddle, paddleclas, paddle_dx)", f"{before:.1f}"],
        ["building the Trainer (model, data checks, loaders)", f"{t['Trainer build']:.1f}"],
        ["compile + check of the static step", f"{t['compile + check']:.1f}"],
        [f"training steps ({args.epochs} epochs)", f"{t['steps']:.1f}"],
        ["data loading and the rest of the training epochs", f"{loading:.1f}"],
        ["evaluations: export + predictor", f"{t['export + predictor']:.1f}"],
        ["evaluations: the rest (forward passes, metrics)", f"{t['evaluations'] - t['export + predictor']:.1f}"],
        ["checkpoints (latest/, best_model)", f"{t['checkpoints']:.1f}"],
        ["metrics.json, figures", f"{t['outputs (metrics, figures)']:.1f}"],
    ]
    named = sum(float(r[1]) for r in rows[1:])
    rows.append(["other (config, callbacks, imports inside the run)", f"{t['run'] - named:.1f}"])
    rows.append(["**whole run** (imports included)", f"**{before + t['run']:.1f}**"])
    network = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("Arch.name=")), args.config)
    write_results(
        f"run_phases_{args.study}_{network.lower()}",
        f"Where a paddle_dx run's time goes: {args.config} ({network}) on the {args.study} images, {args.epochs} epochs",
        " ".join(["python benchmarks/run_phases.py"] + sys.argv[1:]),
        ["phase", "seconds"],
        rows,
        notes=[
            f"best validation accuracy {result['best_val_accuracy']:.3f}; Global.engine static; one process under cProfile",
            "steps: the compiled Program's runs (forward, backward, optimizer); evaluations: Global.eval_engine auto",
            f"not in the run: making the split, {split_seconds:.1f} s (time_to_accuracy.py makes it once for both sides)",
        ],
        started=started,
        method="One process, cProfile's cumulative time per phase.",
    )


if __name__ == "__main__":
    main()
