"""bf16 against float32 on a real study: the same EfficientNet-Lite0 fine-tuning from ImageNet,
``Global.engine: static``, float32 and ``Global.use_amp: true, amp_dtype: bfloat16`` (forward
convolutions in bf16 on oneDNN), over several seeds, on one split of the study's images.

Each run is a fresh process (``tools/train.py``'s Trainer, as a user runs it); both precisions of a
seed start from the same weights and see the same batches. Reported per seed: validation accuracy
of the last and of the best epoch, the training seconds (epochs' ``seconds``, evaluation left
out) and what trained each step (metrics.json ``train_step``: a bf16 run that fell back to
float32 is flagged, never tabulated as bf16). The claim to check (issue 27): bf16's accuracy is
within float32's seed-to-seed spread.

    python benchmarks/bf16_accuracy.py --study brain --per-class 100 --epochs 4 --seeds 1 2 3
    python benchmarks/bf16_accuracy.py --study brain --config brain_ct_resnet18 --epochs 3 \
        -o Arch.name=ResNet50 -o Arch.pretrained=false

Writes ``benchmarks/results/bf16_accuracy_<study>.md`` (EfficientNet-Lite0) or
``bf16_accuracy_<study>_<arch>[_scratch].md`` (another network).
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import machine, run_worker, threads, write_results  # noqa: E402
from benchmarks.time_to_accuracy import STUDY_DATA, _recipe, config_overrides, make_split  # noqa: E402

PRECISIONS = {"float32": [], "bf16": ["Global.use_amp=true", "Global.amp_dtype=bfloat16"]}


def worker(config, image_root, lists, epochs, seed, precision, overrides="[]"):
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.config.shipped import resolve_config
    from paddle_dx.engine.trainer import Trainer

    extra = [*json.loads(overrides), f"Global.seed={seed}", f"Global.num_threads={threads()}", *PRECISIONS[precision]]
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(
            resolve_config(config), config_overrides(image_root, lists, out, int(epochs), "static", extra)
        )
        Trainer(cfg).fit()
        history = json.loads((Path(out) / "metrics.json").read_text())["history"]
    val = [h["val_accuracy"] for h in history if h.get("val_accuracy") is not None]
    return {
        "last": val[-1],
        "best": max(val),
        "train_seconds": sum(h["seconds"] for h in history),
        "train_step": sorted({h["train_step"] for h in history}),
        "final_train_loss": history[-1]["train_loss"],
    }


def _mean_sd(values):
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worker", nargs=7, metavar=("CONFIG", "ROOT", "LISTS", "EPOCHS", "SEED", "PRECISION", "OVERRIDES")
    )
    parser.add_argument("--study", choices=sorted(STUDY_DATA), default="brain")
    parser.add_argument("--config", default=None, help="a shipped config (default: the study's EfficientNet-Lite0 one)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--per-class", type=int, default=None, help="at most N images of each class")
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        help="config override for every run, e.g. -o Arch.name=ResNet50 -o Arch.pretrained=false",
    )
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    config = (
        args.config or {"brain": "brain_ct_efficientnet_lite0", "esophagus": "esophagus_efficientnet_lite0"}[args.study]
    )
    recipe = _recipe(config, args.override)  # the network every run trains, as the config resolves it
    name = f"bf16_accuracy_{args.study}"
    if recipe["arch"] != "EfficientNetLite0":
        name += f"_{recipe['arch'].lower()}" + ("" if recipe["pretrained"] else "_scratch")
    started = machine()
    lists = Path(tempfile.mkdtemp(prefix="bf16_")) / args.study
    image_root, _ = make_split(args.study, lists, args.per_class)
    runs = {p: {} for p in PRECISIONS}
    for seed in args.seeds:
        for precision in PRECISIONS:  # both precisions of a seed back to back
            worker_args = [config, image_root, lists, args.epochs, seed, precision, json.dumps(args.override)]
            run = run_worker(__file__, worker_args, timeout=7200)
            runs[precision][seed] = run
            print(f"  seed {seed} {precision}: {run}", flush=True)
    fell_back = [s for s, r in runs["bf16"].items() if not all("bf16" in t for t in r["train_step"])]
    rows = []
    for seed in args.seeds:
        f32, b16 = runs["float32"][seed], runs["bf16"][seed]
        rows.append(
            [
                seed,
                f"{f32['last']:.3f} / {b16['last']:.3f}" + (" (bf16 fell back)" if seed in fell_back else ""),
                f"{f32['best']:.3f} / {b16['best']:.3f}",
                f"{f32['train_seconds']:.0f} / {b16['train_seconds']:.0f}",
                f"{f32['train_seconds'] / b16['train_seconds']:.2f}x",
            ]
        )
    good = [s for s in args.seeds if s not in fell_back]
    last = {p: [runs[p][s]["last"] for s in good] for p in PRECISIONS}
    best = {p: [runs[p][s]["best"] for s in good] for p in PRECISIONS}
    if good:
        rows.append(
            [
                "mean ± sd",
                f"{_mean_sd(last['float32'])} / {_mean_sd(last['bf16'])}",
                f"{_mean_sd(best['float32'])} / {_mean_sd(best['bf16'])}",
                "",
                "",
            ]
        )
    counts = {n: len((lists / f"{n}_list.txt").read_text().splitlines()) for n in ("train", "val")}
    steps = {p: sorted({t for r in runs[p].values() for t in r["train_step"]}) for p in PRECISIONS}
    write_results(
        name,
        f"bf16 vs float32: {recipe['arch']} ({config}{' ' + ' '.join(args.override) if args.override else ''}) on the {args.study} study's images, {args.epochs} epochs, seeds {args.seeds}",
        " ".join(["python benchmarks/bf16_accuracy.py"] + sys.argv[1:]),
        ["seed", "val accuracy, last epoch: float32 / bf16", "best epoch", "training s", "bf16 speed"],
        rows,
        notes=[
            f"Split: {counts['train']} training and {counts['val']} validation images (the study's split, seed 42).",
            f"What trained each step: float32 {steps['float32']}, bf16 {steps['bf16']}.",
            "Training seconds are the epochs' own (evaluation excluded); 'bf16 speed' is float32 seconds / bf16 "
            "seconds of the same seed, run back to back.",
            *([f"bf16 fell back to float32 for seeds {fell_back}: not tabulated in the mean."] if fell_back else []),
        ],
        started=started,
        method="Each run is a fresh process; the float32 and bf16 runs of a seed ran back to back.",
    )


if __name__ == "__main__":
    main()
