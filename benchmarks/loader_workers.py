"""DataLoader workers and shared memory on this CPU: seconds per training epoch, and per loader pass.

On a machine with few cores, DataLoader worker processes compete with the training step's math
threads, so the loader alone is not the measure: each case times a whole ``Trainer.train_epoch``
(the config's engine, every layer trained) as well as one pass over the loader without training.

Pipelines, over real HyperKvasir lower-GI frames (/work/shared/datasets/hyperkvasir_lower_gi):
- esophagus, first epoch: configs/esophagus_resnet50.yaml's Train ops (CropBorder, ResizeImage,
  fastNlMeans Denoise, RandomFlip, NormalizeImage) with Global.preprocess_cache off, i.e. what
  every image costs before its denoised copy is cached;
- esophagus, prefix cache warm: the same ops, the denoised images read from the preprocessing
  cache (every later epoch with the default Global.preprocess_cache: auto);
- resize: ResizeImage + NormalizeImage only.

One process per pipeline builds the Trainer once (one untimed warm-up epoch: static compile,
cache filling), then each round runs every loader setting once in rotating order, changing only
the loader's ``num_workers`` / ``use_shared_memory`` (workers are started per epoch).

    python benchmarks/loader_workers.py [--rounds 2] [--images 48] [--arch ResNet18] [--engine static]
"""

import argparse
import copy
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import fmt, machine, run_worker, threads, write_results  # noqa: E402

DATA = Path("/work/shared/datasets/hyperkvasir_lower_gi")
ESO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "esophagus_resnet50.yaml"
CLASSES = ("normal-cecum", "polyp")  # two folders of the set: label 0 and 1
BATCH, SIZE = 8, 224
SETTINGS = ((0, False), (1, False), (1, True), (2, False), (2, True))  # (num_workers, use_shared_memory)
PLAIN_OPS = [{"ResizeImage": {}}, {"NormalizeImage": {"preset": "minus_one_to_one"}}]
PIPELINES = {  # name: (transform ops or None = the esophagus config's, Global.preprocess_cache)
    "esophagus, first epoch": (None, "off"),
    "esophagus, prefix cache warm": (None, "on"),
    "resize": (PLAIN_OPS, "off"),
}


def _list_file(root, n_images):
    """``n_images`` frames, half from each of CLASSES, as a paddle_dx list file under ``root``."""
    lines = []
    for label, name in enumerate(CLASSES):
        files = sorted((DATA / name).glob("*.jpg"))[: n_images // 2]
        lines += [f"{name}/{f.name} {label}" for f in files]
    path = root / "train_list.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(pipeline, n_images, arch, engine, out):
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config

    raw = yaml.safe_load(ESO_CONFIG.read_text())
    ops, preprocess_cache = PIPELINES[pipeline]
    list_file = _list_file(out, n_images)
    for mode in ("Train", "Eval", "Test"):
        section = raw["DataLoader"][mode]
        section["dataset"].update(image_root=str(DATA), cls_label_path=str(list_file))
        if ops is not None:
            section["dataset"]["transform_ops"] = copy.deepcopy(ops)
        section["sampler"]["batch_size"] = BATCH
    raw["Global"].update(
        device="cpu",
        output_dir=str(out / "run"),
        use_visualdl=False,
        num_threads=threads(),
        engine=engine,
        eval_engine="dygraph",
        feature_cache="off",
        preprocess_cache=preprocess_cache,
        image_shape=[3, SIZE, SIZE],
    )
    raw["Arch"].update(name=arch, pretrained=False, freeze="none")
    return load_config(raw=raw)


def worker(pipeline, n_images, arch, engine, rounds):
    """{setting: {"train": [s per round], "loader": [s per round]}} for one pipeline."""
    from paddle_dx.engine.trainer import Trainer

    out = Path(tempfile.mkdtemp(prefix="bench_loader_"))
    try:
        trainer = Trainer(_config(pipeline, n_images, arch, engine, out))
        loader, sampler = trainer.train_loader, trainer.train_sampler
        trainer.train_epoch(0)  # untimed: static compile, parity check, preprocessing cache filled
        times = {f"{w}/{s}": {"train": [], "loader": []} for w, s in SETTINGS}
        epoch = 1
        for r in range(rounds):
            for workers, shared in SETTINGS[r % len(SETTINGS) :] + SETTINGS[: r % len(SETTINGS)]:
                loader.num_workers, loader.use_shared_memory = workers, shared and workers > 0
                sampler.set_epoch(epoch)
                start = time.perf_counter()
                for _ in loader:
                    pass
                times[f"{workers}/{shared}"]["loader"].append(time.perf_counter() - start)
                start = time.perf_counter()
                trainer.train_epoch(epoch)
                times[f"{workers}/{shared}"]["train"].append(time.perf_counter() - start)
                epoch += 1
        return {"images": len(trainer.train_set), "engine": trainer.engine, "times": times}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=5, metavar=("PIPELINE", "IMAGES", "ARCH", "ENGINE", "ROUNDS"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=48, help="training images (half per class)")
    parser.add_argument("--arch", default="ResNet18")
    parser.add_argument("--engine", default="static", choices=("static", "dygraph"))
    args = parser.parse_args()
    if args.worker:
        pipeline, n, arch, engine, rounds = args.worker
        print(json.dumps(worker(pipeline, int(n), arch, engine, int(rounds))))
        return
    started, rows, engines = machine(), [], set()
    for pipeline in PIPELINES:
        result = run_worker(__file__, [pipeline, args.images, args.arch, args.engine, args.rounds], timeout=3600)
        print(f"  {pipeline}: {result}", flush=True)
        engines.add(result["engine"])
        base = statistics.median(result["times"]["0/False"]["train"])
        for workers, shared in SETTINGS:
            t = result["times"][f"{workers}/{shared}"]
            rows.append(
                [
                    pipeline,
                    workers,
                    "on" if shared and workers else "off",
                    fmt(t["train"]),
                    f"{base / statistics.median(t['train']):.2f}",
                    fmt(t["loader"]),
                ]
            )
    command = (
        f"python benchmarks/loader_workers.py --rounds {args.rounds} --images {args.images} "
        f"--arch {args.arch} --engine {args.engine}"
    )
    write_results(
        "loader_workers",
        f"DataLoader workers: seconds per training epoch ({args.arch}, {SIZE} px, batch {BATCH})",
        command,
        ["pipeline", "num_workers", "use_shared_memory", "train epoch s", "speed vs 0 workers", "loader pass s"],
        rows,
        notes=[
            f"{args.images} HyperKvasir lower-GI frames ({', '.join(CLASSES)}), every layer trained, Adam, "
            f"Global.engine {args.engine} (ran: {', '.join(sorted(engines))}), Paddle math threads = {threads()}",
            "train epoch = Trainer.train_epoch (loading + training); loader pass = iterating the same loader "
            "without training",
            "esophagus = configs/esophagus_resnet50.yaml's Train ops; first epoch = Global.preprocess_cache off "
            "(every image cropped, resized and denoised), prefix cache warm = the denoised images read from disk",
        ],
        started=started,
        method="Values: median (min-max) over rounds; one process per pipeline (Trainer built once, one untimed "
        "warm-up epoch), every loader setting once per round in rotating order.",
    )


if __name__ == "__main__":
    main()
