"""Training speed, paddle_dx vs plain PyTorch, images/s at 224 px.

Full fine-tuning (every layer trains; Adam; ResNet-18 and ResNet-50, batch 8): one training
step = forward + loss + backward + optimizer step on a fixed batch. paddle_dx's model, loss and
optimizer are built by paddle_dx (build_model, build_loss, build_optimizer, select_device).

Head-only ("pre-training", Arch.freeze: backbone, ResNet-50): whole epochs of a paddle_dx
Trainer over generated 224 px images, feature cache on (the first epoch computes the features,
later epochs train from them), vs PyTorch running its frozen backbone (eval, no_grad) every
epoch. Both include reading and preprocessing the images (OpenCV).

Partial freeze (Arch.freeze: until stage 2, ResNet-50): the same, but stages 3-4 and the head
train; paddle_dx caches the stage-2 feature maps, PyTorch runs stem + stages 1-2 under no_grad
every step (frozen BatchNorm in eval, trained BatchNorm in train mode, in both).

Esophageal recipe (configs/esophagus_resnet50.yaml's Train ops: CropBorder, ResizeImage,
fastNlMeans Denoise, RandomFlip {horizontal: 0.5, vertical: 0.5}, NormalizeImage) with a frozen
ResNet-50: paddle_dx with its defaults (Global.preprocess_cache and feature_cache auto: the
denoised images cached once, the four flip variants' features cached once) vs PyTorch redoing
crop, resize, denoise, flip and the backbone every epoch.

Evaluation (every layer trainable, so no feature cache): Trainer.evaluate over the image set
with Global.eval_engine dygraph vs inference (the weights changed and re-exported before each
evaluation, export included in the time) vs PyTorch eval + no_grad.

    python benchmarks/train.py [--rounds 3] [--images 160] [--partial-images 48] [--eso-images 40]
                               [--eval-images 96] [--only full|head|partial|esophagus|eval]
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
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
    threads,
    time_repeated,
    write_results,
)  # noqa: E402

SIZE, BATCH, CLASSES = 224, 8, 2
FULL = (("ResNet18", 2, 8), ("ResNet50", 2, 5))  # (arch, warm-up steps, timed steps): the 2nd-3rd steps are still slow
HEAD_ARCH, HEAD_EPOCHS, HEAD_BATCH = "ResNet50", 3, 16
FREEZES = {
    "head": ("backbone", HEAD_EPOCHS),
    "partial": ("until stage 2", 2),
    "esophagus": ("backbone", HEAD_EPOCHS),
}  # kind: (Arch.freeze, epochs)
ENGINES = {"paddle_dx": "dygraph", "paddle_dx static": "static"}  # framework column -> Global.engine
EVAL_ENGINES = {"paddle_dx eval dygraph": "dygraph", "paddle_dx eval inference": "inference"}  # -> Global.eval_engine
EVALUATIONS = 2
PARTIAL_FROZEN_BLOCKS = 7  # ResNet-50 stages 1-2: 3 + 4 bottlenecks


def _batch():
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32),
        rng.integers(0, CLASSES, BATCH).astype(np.int64),
    )


def paddle_full(arch, warmup, reps, engine="dygraph"):
    import paddle

    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.engine.loss import build_loss
    from paddle_dx.engine.optimizer import build_optimizer
    from paddle_dx.models import build_model
    from paddle_dx.utils.device import select_device

    select_device("cpu", threads())
    config = load_config(
        raw={
            "Global": {"image_shape": [3, SIZE, SIZE], "device": "cpu"},
            "Arch": {"name": arch, "class_num": CLASSES},
            "Optimizer": {"name": "Adam"},
        }
    )
    model = build_model(config["Arch"])
    model.train()
    loss_fn = build_loss(config["Loss"]["Train"], "Loss.Train", [0, 1], CLASSES)
    optimizer, _ = build_optimizer(config["Optimizer"], model, 1)
    x, y = (paddle.to_tensor(a) for a in _batch())
    if engine == "static":  # what Trainer runs per step with Global.engine: static
        from paddle_dx.engine.steps import StageSpec, compile_checked

        spec = StageSpec(
            config["Arch"],
            config["Global"]["image_shape"],
            config["Loss"]["Train"],
            config["Optimizer"],
            "none",
            [0, 1],
        )
        static, failures = compile_checked(model, spec, optimizer.get_lr(), None, loss_fn)
        if static is None:
            raise SystemExit(f"the static step did not pass its parity check: {failures}")
        static.push()
        return BATCH / time_repeated(lambda: float(static(x, y)[0]), warmup, reps)

    return BATCH / time_repeated(dygraph_step(model, loss_fn, optimizer, x, y), warmup, reps)


def torch_full(arch, warmup, reps):
    import torch

    from benchmarks.torch_resnet import adam_step, build

    torch.set_num_threads(threads())
    x, y = (torch.from_numpy(a) for a in _batch())
    return BATCH / time_repeated(adam_step(build(arch, CLASSES).train(), x, y), warmup, reps)


def _head_data(n_images):
    """A generated 2-class image set at 256 px with train/val lists (cached between workers)."""
    from paddle_dx.data.split import write_split
    from paddle_dx.data.synthetic import write_demo_dataset

    root = Path(tempfile.gettempdir()) / f"paddle_dx_bench_head_{n_images}"
    if not (root / "lists" / "train_list.txt").is_file():
        images = write_demo_dataset(
            root / "images", per_class=n_images // 2, size=256, seed=0, classes=("normal", "lesion")
        )
        write_split(images, root / "lists", ratios=(8, 1, 1), seed=0, classes=["normal", "lesion"])
    lines = (root / "lists" / "train_list.txt").read_text().split("\n")
    return root, [(str(root / "images" / p), int(label)) for p, label in (ln.split() for ln in lines if ln)]


HEAD_OPS = [{"ResizeImage": {"size": [SIZE, SIZE]}}, {"NormalizeImage": {"preset": "minus_one_to_one"}}]
ESO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "esophagus_resnet50.yaml"


def _eso_ops():
    import yaml

    return yaml.safe_load(ESO_CONFIG.read_text())["DataLoader"]["Train"]["dataset"]["transform_ops"]


def _trainer(kind, n_images, engine="dygraph", eval_engine="dygraph"):
    """A paddle_dx Trainer on the generated images: kind's freeze and preprocessing, the caches
    on (head, partial) or left at their defaults (esophagus: auto), every layer trained (eval)."""
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.engine.trainer import Trainer

    root, _ = _head_data(n_images)
    out = Path(tempfile.mkdtemp(prefix="bench_head_"))
    ops = _eso_ops() if kind == "esophagus" else HEAD_OPS

    def section(split):
        return {
            "dataset": {
                "image_root": str(root / "images"),
                "cls_label_path": str(root / "lists" / f"{split}_list.txt"),
                "transform_ops": ops,
            },
            "sampler": {"batch_size": HEAD_BATCH},
        }

    freeze, epochs = FREEZES.get(kind, ("none", 1))
    caches = {"feature_cache": "on"} if kind in ("head", "partial") else {}
    config = load_config(
        raw={
            "Global": {
                "image_shape": [3, SIZE, SIZE],
                "device": "cpu",
                "epochs": epochs,
                "output_dir": str(out),
                "use_visualdl": False,
                "num_threads": threads(),
                "engine": engine,
                "eval_engine": eval_engine,
                **caches,
            },
            "Arch": {"name": HEAD_ARCH, "class_num": CLASSES, "freeze": freeze, "dropout": 0.2},
            "DataLoader": {
                "Train": section("train"),
                "Eval": section("train" if kind == "eval" else "val"),
                "Test": section("test"),
            },
        }
    )
    return Trainer(config), out, epochs


def paddle_evaluations(n_images, eval_engine):
    """Images/s of Trainer.evaluate, the weights changed before each evaluation (as after an epoch)."""
    import paddle

    trainer, out, _ = _trainer("eval", n_images, eval_engine=eval_engine)
    seconds = []
    for _ in range(EVALUATIONS):
        with paddle.no_grad():
            trainer.model.head.weight.set_value(trainer.model.head.weight + 1e-3)
        start = time.perf_counter()
        trainer.evaluate()
        seconds.append(time.perf_counter() - start)
    shutil.rmtree(out, ignore_errors=True)
    n = len(trainer.eval_set)
    return {"first_eval": n / seconds[0], "later_evals": n / float(np.median(seconds[1:]))}


def torch_evaluations(n_images):
    import torch

    from benchmarks.torch_resnet import build

    torch.set_num_threads(threads())
    _, samples = _head_data(n_images)
    model = build(HEAD_ARCH, CLASSES).eval()
    seconds = []
    for _ in range(EVALUATIONS):
        start = time.perf_counter()
        with torch.no_grad():
            for s in range(0, len(samples), HEAD_BATCH):
                x = torch.from_numpy(np.stack([_torch_load(p, "eval") for p, _ in samples[s : s + HEAD_BATCH]]))
                torch.softmax(model(x), dim=1)
        seconds.append(time.perf_counter() - start)
    return {"first_eval": len(samples) / seconds[0], "later_evals": len(samples) / float(np.median(seconds[1:]))}


def _torch_load(path, kind, rng=None):
    """PyTorch side's preprocessing: resize + scale to [-1, 1]; the esophageal recipe adds the
    border crop, fastNlMeans after resizing and the random flips (what paddle_dx's ops do)."""
    import cv2

    img = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    if kind == "esophagus":
        x, y, w, h = cv2.boundingRect((img.max(axis=2) > 10).astype(np.uint8))
        img = img[y : y + h, x : x + w] if w >= 2 and h >= 2 else img
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    if kind == "esophagus":
        img = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(img), None, 3, 3, 7, 21)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        if rng.random() < 0.5:
            img = img[::-1]
    img = img.astype(np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def paddle_epochs(kind, n_images, engine="dygraph"):
    trainer, out, epochs = _trainer(kind, n_images, engine)
    trainer.model.train()
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        trainer.train_epoch(epoch)
        seconds.append(time.perf_counter() - start)
    shutil.rmtree(out, ignore_errors=True)
    n = len(trainer.train_set)
    return {"first_epoch": n / seconds[0], "later_epochs": n / float(np.median(seconds[1:]))}


def torch_epochs(kind, n_images):
    import torch

    from benchmarks.torch_resnet import build

    torch.set_num_threads(threads())
    _, samples = _head_data(n_images)
    model = build(HEAD_ARCH, CLASSES)
    for p in model.parameters():
        p.requires_grad_(False)
    model.fc = torch.nn.Linear(model.fc.in_features, CLASSES)
    dropout = torch.nn.Dropout(0.2)
    model.eval()
    cut = len(model.blocks) if kind == "head" else PARTIAL_FROZEN_BLOCKS
    frozen = torch.nn.Sequential(model.stem, *model.blocks[:cut])
    trained = torch.nn.Sequential(*model.blocks[cut:], model.pool, torch.nn.Flatten(1), dropout, model.fc).train()
    for p in trained.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(trained.parameters(), lr=1e-3)

    def epoch(index):
        rng = np.random.default_rng(index)
        order = rng.permutation(len(samples))
        for start in range(0, len(order), HEAD_BATCH):
            chunk = [samples[i] for i in order[start : start + HEAD_BATCH]]
            x = torch.from_numpy(np.stack([_torch_load(p, kind, rng) for p, _ in chunk]))
            y = torch.tensor([label for _, label in chunk])
            with torch.no_grad():
                feats = frozen(x)
            loss = torch.nn.functional.cross_entropy(trained(feats), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    seconds = []
    for index in range(FREEZES[kind][1]):
        start = time.perf_counter()
        epoch(index)
        seconds.append(time.perf_counter() - start)
    return {"first_epoch": len(samples) / seconds[0], "later_epochs": len(samples) / float(np.median(seconds[1:]))}


def _part(value, part, epochs):
    """One round's images/s for ``part``; ``whole_run``: all epochs' images over their time (the
    first epoch, then ``epochs - 1`` later ones), from the same round's two rates."""
    if part != "whole_run":
        return value[part]
    return epochs / (1 / value["first_epoch"] + (epochs - 1) / value["later_epochs"])


def _peak(kind, part, framework, images_per_s):
    """Fraction of peak FLOP/s: one backbone forward per image (+ 2 x forward for the trained
    stages); epochs served from the cache do not run the frozen part."""
    forward = GFLOP_PER_IMAGE_224[HEAD_ARCH]
    if kind == "eval":
        return f"{images_per_s * forward / PEAK_GFLOPS:.0%}"
    if part == "whole_run":
        return "n/a"
    trained = (
        0 if kind in ("head", "esophagus") else 0.555 * forward
    )  # stages 3-4: 55.5 % of the forward (paddle.flops)
    if framework.startswith("paddle_dx") and part == "later_epochs":
        if kind in ("head", "esophagus"):
            return "n/a (no backbone pass)"
        forward = trained
    return f"{images_per_s * (forward + 2 * trained) / PEAK_GFLOPS:.0%}"


def worker(kind, framework, arch, n_images):
    if kind == "full":
        warmup, reps = next((w, r) for a, w, r in FULL if a == arch)
        if framework == "torch":
            return {"images_per_s": torch_full(arch, warmup, reps)}
        return {"images_per_s": paddle_full(arch, warmup, reps, ENGINES[framework])}
    if kind == "eval":
        return (
            torch_evaluations(n_images)
            if framework == "torch"
            else paddle_evaluations(n_images, EVAL_ENGINES[framework])
        )
    if framework == "torch":
        return torch_epochs(kind, n_images)
    return paddle_epochs(kind, n_images, ENGINES[framework])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "FRAMEWORK", "ARCH", "IMAGES"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=160, help="head-only: generated images (80%% train)")
    parser.add_argument("--partial-images", type=int, default=48, help="partial freeze: generated images")
    parser.add_argument("--eso-images", type=int, default=40, help="esophageal recipe: generated images")
    parser.add_argument("--eval-images", type=int, default=96, help="evaluation: generated images (80%% evaluated)")
    parser.add_argument("--only", choices=("full", "head", "partial", "esophagus", "eval"))
    parser.add_argument("--name", default=None, help="result file name (default: train or train_<only>)")
    args = parser.parse_args()
    if args.worker:
        kind, framework, arch, n = args.worker
        print(json.dumps(worker(kind, framework, arch, int(n))))
        return
    started, rows = machine(), []
    frameworks = (*ENGINES, "torch")
    if args.only in (None, "full"):
        for arch, _, _ in FULL:
            values = alternate({f: (__file__, ["full", f, arch, 0]) for f in frameworks}, args.rounds)
            med = {f: summary(v)[0] for f, v in values.items()}
            for f in frameworks:
                peak = med[f] * 3 * GFLOP_PER_IMAGE_224[arch] / PEAK_GFLOPS
                rows.append(
                    [
                        f"full fine-tuning {arch}, batch {BATCH}",
                        f,
                        fmt(values[f]),
                        f"{med[f] / med['torch']:.2f}",
                        f"{peak:.0%}",
                    ]
                )
    whats = {
        "head": "head only",
        "partial": "stages 3-4 + head (until stage 2)",
        "esophagus": "esophageal recipe (crop, fastNlMeans, flips), head only",
        "eval": "evaluation",
    }
    for kind, n_images in (
        ("head", args.images),
        ("partial", args.partial_images),
        ("esophagus", args.eso_images),
        ("eval", args.eval_images),
    ):
        if args.only not in (None, kind):
            continue
        frameworks = (*(EVAL_ENGINES if kind == "eval" else ENGINES), "torch")
        values = alternate({f: (__file__, [kind, f, HEAD_ARCH, n_images]) for f in frameworks}, args.rounds, key=None)
        what = whats[kind]
        for part in ("first_eval", "later_evals") if kind == "eval" else ("first_epoch", "later_epochs", "whole_run"):
            per = {f: [_part(v, part, FREEZES.get(kind, (None, 0))[1]) for v in values[f]] for f in frameworks}
            med = {f: summary(v)[0] for f, v in per.items()}
            for f in frameworks:
                label = f"whole run ({FREEZES[kind][1]} epochs)" if part == "whole_run" else part.replace("_", " ")
                rows.append(
                    [
                        f"{what} {HEAD_ARCH}, {label}, batch {HEAD_BATCH}",
                        f,
                        fmt(per[f]),
                        f"{med[f] / med['torch']:.2f}",
                        _peak(kind, part, f, med[f]),
                    ]
                )
    write_results(
        args.name or ("train" if args.only is None else f"train_{args.only}"),
        "Training, images/s at 224 px",
        "python benchmarks/train.py " + " ".join(sys.argv[1:]),
        ["work", "framework", "images/s", "vs torch", "of peak FLOP/s"],
        rows,
        [
            f"peak = {PEAK_GFLOPS} GFLOP/s; training FLOPs = 3 x forward "
            f"({', '.join(f'{a} {g} GFLOP' for a, g in GFLOP_PER_IMAGE_224.items())} per 224 px image); "
            "head-only counts one backbone forward per image",
            "full fine-tuning: random weights, a fixed batch, Adam (paddle_dx: multi-tensor, as built by "
            "build_optimizer)",
            f"head only: {args.images} generated 256 px images (80% train), decode + resize + normalise "
            "included in both; paddle_dx = Trainer.train_epoch with Global.feature_cache=on "
            "(Paddle Inference + oneDNN); the cache starts cold in every worker",
            f"stages 3-4 + head: {args.partial_images} generated images, {FREEZES['partial'][1]} epochs; "
            "paddle_dx caches the stage-2 maps (Global.feature_cache=on), PyTorch recomputes them",
            f"esophageal recipe: {args.eso_images} generated images, configs/esophagus_resnet50.yaml's Train "
            "ops, paddle_dx defaults (preprocess and feature caches auto: denoised images and the 4 flip "
            "variants' features cached), PyTorch redoes crop, resize, fastNlMeans, flips and backbone each epoch",
            f"evaluation: {args.eval_images} generated images (the train list), ResNet-50 every layer "
            f"trainable, {EVALUATIONS} evaluations with the weights changed before each; inference = "
            "Global.eval_engine inference (export + predictor creation included)",
        ],
        started,
    )


if __name__ == "__main__":
    main()
