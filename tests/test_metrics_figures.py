"""Figures of a run (paddle_dx.metrics.figures) and its VisualDL hyper-parameters: PNGs that
decode at the figure's size, AUCs in the ROC legends equal to scikit-learn's, titles naming
split / epoch / weights, and the user's matplotlib backend left as it was."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from paddle_dx.metrics.classification import classification_metrics
from paddle_dx.metrics.figures import (
    confusion_matrix_figure,
    curves_figure,
    figure_to_rgb,
    roc_figure,
    run_figures,
    save_figure,
    write_run_figures,
)

REPO = Path(__file__).resolve().parents[1]
NAMES3 = ["normal", "polyp", "ulcer"]


def predictions(class_num, n=60, seed=0):
    """Labels and softmax-like probabilities that lean towards the true class (imperfectly)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % class_num
    probs = rng.dirichlet(np.ones(class_num), n)
    probs[np.arange(n), labels] += rng.uniform(0, 0.8, n)
    return labels, probs / probs.sum(axis=1, keepdims=True)


def history(epochs=4):
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_accuracy": 0.5 + e / 20,
            "val_loss": 1.2 / e,
            "val_accuracy": 0.45 + e / 25,
            "val_auc": 0.6 + e / 30,
        }
        for e in range(1, epochs + 1)
    ]


def legend_texts(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def decoded_size(path):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} does not decode as an image"
    assert image.std() > 0  # something was drawn
    return image.shape[1], image.shape[0]


@pytest.mark.parametrize(
    "make, size",
    [
        (lambda: confusion_matrix_figure(classification_metrics(*predictions(3), NAMES3)), (630, 580)),
        (lambda: roc_figure(*predictions(3), NAMES3), (520, 500)),
        (lambda: curves_figure(history(), ("loss",)), (500, 380)),
        (lambda: curves_figure(history(), ("loss", "accuracy")), (1000, 380)),
    ],
)
def test_each_figure_saves_a_png_of_its_size(make, size, tmp_path):
    fig = make()
    path = save_figure(fig, tmp_path / "sub" / "fig.png")
    assert path == tmp_path / "sub" / "fig.png"
    assert decoded_size(path) == size
    assert not [p for p in path.parent.iterdir() if p != path]  # the atomic write left no temp file
    assert figure_to_rgb(fig).shape == (size[1], size[0], 3)


def test_binary_roc_is_the_positive_class_with_sklearns_auc():
    labels, probs = predictions(2)
    fig = roc_figure(labels, probs, ["benign", "malignant"], "test: ROC")
    expected = roc_auc_score(labels, probs[:, 1])
    assert legend_texts(fig) == [f"malignant (AUC = {expected:.3f})"]
    assert fig.axes[0].get_title() == "test: ROC"


def test_multiclass_roc_has_one_vs_rest_auc_per_class_and_macro_in_title():
    labels, probs = predictions(3)
    fig = roc_figure(labels, probs, NAMES3, "validation: ROC")
    assert legend_texts(fig) == [
        f"{name} (AUC = {roc_auc_score(labels == c, probs[:, c]):.3f})" for c, name in enumerate(NAMES3)
    ]
    macro = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert f"macro one-vs-rest AUC = {macro:.3f}" in fig.axes[0].get_title()


def test_confusion_matrix_cells_show_the_counts():
    metrics = classification_metrics(*predictions(3), NAMES3)
    fig = confusion_matrix_figure(metrics, "test")
    cells = [int(t.get_text()) for t in fig.axes[0].texts]
    assert cells == np.asarray(metrics["confusion_matrix"]).ravel().tolist()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == NAMES3


def test_curves_plot_history_and_mark_stage_ends():
    fig = curves_figure(history(), ("accuracy",), boundaries=[2])
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    np.testing.assert_allclose(lines["validation"].get_ydata(), [h["val_accuracy"] for h in history()])
    np.testing.assert_allclose(lines["validation AUC"].get_ydata(), [h["val_auc"] for h in history()])
    assert [
        line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":" and line.get_label().startswith("_")
    ] == [2.5]


def run_result(class_num=3, with_test=True):
    val = classification_metrics(*predictions(class_num, seed=1), NAMES3[:class_num])
    result = {"history": history(), "best_epoch": 3, "val": val}
    if with_test:
        result["test"] = classification_metrics(*predictions(class_num, seed=2), NAMES3[:class_num])
    return result


def test_run_figures_titles_name_split_epoch_and_weights():
    figs = run_figures(run_result(), NAMES3, "best_model.pdparams", predictions(3, seed=1), predictions(3, seed=2))
    assert set(figs) == {
        "curves_loss",
        "curves_accuracy",
        "val_confusion_matrix",
        "val_roc",
        "test_confusion_matrix",
        "test_roc",
    }
    for name in ("val_confusion_matrix", "val_roc", "test_confusion_matrix", "test_roc"):
        title = figs[name].axes[0].get_title()
        assert title.startswith("validation: " if name.startswith("val") else "test: "), title
        assert "epoch 3" in title and "best_model.pdparams" in title, title


def test_write_run_figures_writes_pngs_and_skips_what_it_lacks(tmp_path):
    written = write_run_figures(
        tmp_path, run_result(with_test=False), NAMES3, "best_model.pdparams", val_predictions=predictions(3, seed=1)
    )
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == sorted(
        ["curves_loss.png", "curves_accuracy.png", "val_confusion_matrix.png", "val_roc.png"]
    )
    for path in written.values():
        decoded_size(path)
    # no predictions: the confusion matrix is drawn from the metrics, the ROC is skipped
    written = write_run_figures(tmp_path / "b", run_result(), NAMES3)
    assert set(written) == {"curves_loss", "curves_accuracy", "val_confusion_matrix", "test_confusion_matrix"}
    # a validation set holding one class has no ROC curve
    single = (np.zeros(10, dtype=int), np.full((10, 3), 1 / 3))
    assert "val_roc" not in write_run_figures(tmp_path / "c", run_result(), NAMES3, val_predictions=single)


def test_figures_leave_the_matplotlib_backend_alone(tmp_path):
    script = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np
from paddle_dx.metrics.classification import classification_metrics
from paddle_dx.metrics.figures import figure_to_rgb, roc_figure, write_run_figures
from paddle_dx.studies import figures
labels = np.arange(20) % 2
probs = np.stack([1 - labels * 0.6 - 0.2, labels * 0.6 + 0.2], axis=1)
metrics = classification_metrics(labels, probs, ["a", "b"])
result = {{"history": [{{"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 0.9,
                         "val_accuracy": 0.6, "val_auc": 0.7}}], "best_epoch": 1, "val": metrics, "test": metrics}}
written = write_run_figures({str(tmp_path)!r}, result, ["a", "b"], "w.pdparams", (labels, probs), (labels, probs))
figure_to_rgb(roc_figure(labels, probs, ["a", "b"]))
figures.training_curves(result["history"], None, "t", {str(tmp_path / "study.png")!r})
print(len(written), matplotlib.get_backend())
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["6", "svg"]


def test_hparams_are_logged_to_visualdl(tmp_path):
    from visualdl import LogReader, LogWriter

    from paddle_dx.config import load_config
    from paddle_dx.engine.hparams import METRICS, log_hparams, run_hparams

    config = load_config(
        REPO / "configs" / "brain_ct_resnet18.yaml",
        ["Optimizer.lr=0.0003", "DataLoader.Train.sampler.batch_size=8", "Global.seed=7"],
    )
    with LogWriter(logdir=str(tmp_path / "vdl")) as writer:
        log_hparams(writer, config)
    logs = list((tmp_path / "vdl").glob("vdlrecords.*.log"))
    assert len(logs) == 1
    records = LogReader(file_path=str(logs[0])).get_data("hyper_parameters", "hparam")
    assert len(records) == 1
    hparam = records[0].hparam
    stored = {}
    for info in hparam.hparamInfos:
        stored[info.name] = getattr(info, info.WhichOneof("type"))
    assert stored == run_hparams(config)
    assert stored["lr"] == pytest.approx(0.0003) and stored["batch_size"] == 8 and stored["seed"] == 7
    assert stored["arch"] == "ResNet18" and stored["optimizer"] == "Adam" and stored["loss"] == "CELoss"
    assert stored["pretrained"] == "True" and stored["image_size"] == "224x224" and stored["freeze"] == "none"
    assert [m.name for m in hparam.metricInfos] == METRICS


def test_hparams_of_a_staged_run_name_each_stage():
    from paddle_dx.config import load_config
    from paddle_dx.engine.hparams import run_hparams

    config = load_config(REPO / "configs" / "gastric_resnet50.yaml")
    assert len(config["Stages"]) == 2
    stages = run_hparams(config)["stages"]
    for stage in config["Stages"]:
        assert f"{stage['name']} ({stage['epochs']} ep, freeze {stage['freeze']}" in stages
    json.dumps(run_hparams(config))  # only plain values
