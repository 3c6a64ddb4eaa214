"""The ``eval`` command's job (tools/eval.py): load weights, evaluate one list, print and save
its metrics and figures."""

import logging
from pathlib import Path

from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import build_dataset, build_loader, class_names
from paddle_dx.engine.eval_backend import EvalBackend
from paddle_dx.engine.eval_loop import evaluate
from paddle_dx.engine.loss import build_loss
from paddle_dx.errors import ConfigError
from paddle_dx.metrics import format_table
from paddle_dx.metrics.figures import confusion_matrix_figure, figure_title, roc_figure, save_figure
from paddle_dx.models import build_model, load_model_weights
from paddle_dx.models.weights import resolve_weights
from paddle_dx.utils.device import select_device
from paddle_dx.utils.files import check_writable, write_json

log = logging.getLogger(__name__)


def run_evaluation(config: dict, mode: str = "Eval") -> dict:
    """Return the metrics dict; writes <output_dir>/eval_<list stem>_metrics.json, _confusion_matrix.png
    and _roc.png, named after the list evaluated so evaluating another list keeps the first's files."""
    g = config["Global"]
    if not g["pretrained_model"]:
        raise ConfigError("tools/eval.py needs weights: -o Global.pretrained_model=output/.../best_model")
    out = Path(g["output_dir"])
    check_writable(out)
    device = select_device(g["device"], g["num_threads"])
    data = DataSection.of(config, mode)
    names = class_names(data)
    dataset, report = build_dataset(data)
    loader, _ = build_loader(data, dataset)
    model = build_model(dict(config["Arch"], pretrained=False), g["image_shape"])
    weights = resolve_weights(g["pretrained_model"])  # a PaddleClas-style prefix works too
    load_model_weights(model, weights)
    loss_fn = build_loss(config["Loss"]["Eval"], "Loss.Eval", dataset.labels, config["Arch"]["class_num"])
    forward, engine = EvalBackend(g["eval_engine"], device, 1, g["image_shape"], g["num_threads"]).forward(
        model, loader
    )
    metrics, probs, labels = evaluate(forward, loader, names, loss_fn)
    metrics["eval_engine"] = engine
    metrics["weights"] = str(weights)
    metrics["list_file"] = data.dataset["cls_label_path"]
    metrics["skipped_images"] = [{"path": p, "reason": r} for p, r in report["skipped"]]
    print(format_table(metrics))
    prefix = f"eval_{Path(metrics['list_file']).stem}"
    write_json(out / f"{prefix}_metrics.json", metrics)
    split = Path(metrics["list_file"]).name
    save_figure(
        confusion_matrix_figure(metrics, figure_title(split, None, weights, "confusion matrix")),
        out / f"{prefix}_confusion_matrix.png",
    )
    if len(set(labels.tolist())) > 1:
        save_figure(
            roc_figure(labels, probs, names, figure_title(split, None, weights, "ROC")), out / f"{prefix}_roc.png"
        )
    log.info("wrote %s", out / f"{prefix}_metrics.json")
    return metrics
