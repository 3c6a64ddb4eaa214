"""What one training run leaves in output_dir: VisualDL logs, config, metrics, checkpoints."""

import json

import cv2
import numpy as np
import yaml
from conftest import tiny_config

from paddle_dx.config import load_config

SCALARS = {
    "train/loss",
    "train/accuracy",
    "train/lr",
    "val/loss",
    "val/accuracy",
    "val/auc",
    "val/macro_f1",
    "val/f1/normal",
    "val/f1/lesion",
}


def test_run_writes_visualdl_config_metrics_and_checkpoints(tiny_dataset, tmp_path):
    from visualdl import LogReader

    from paddle_dx.engine.eval_job import run_evaluation
    from paddle_dx.engine.trainer import Trainer

    images, lists = tiny_dataset
    out = tmp_path / "out"
    config = tiny_config(images, lists, out, **{"Global.use_visualdl": True, "Global.epochs": 2})
    result = Trainer(config).fit()

    logs = sorted((out / "vdl").glob("vdlrecords.*.log"))
    assert len(logs) == 1
    reader = LogReader(file_path=str(logs[0]))
    tags = reader.get_tags()
    assert SCALARS <= set(tags["scalar"])
    assert {"val/confusion_matrix", "val/roc"} <= set(tags["image"])
    for tag in ("train/loss", "val/accuracy", "val/f1/lesion", "train/lr"):
        records = reader.get_data("scalar", tag)
        assert [r.id for r in records] == [1, 2], tag  # one point per epoch
    val_acc = [r.value for r in reader.get_data("scalar", "val/accuracy")]
    np.testing.assert_allclose(val_acc, [h["val_accuracy"] for h in result["history"]], rtol=1e-6)
    assert len(reader.get_data("image", "val/confusion_matrix")) == 2
    hparams = reader.get_data("hyper_parameters", "hparam")[0].hparam
    assert {i.name: i.int_value for i in hparams.hparamInfos if i.name == "epochs"} == {"epochs": 2}
    figures = {p.name: cv2.imread(str(p)) for p in (out / "figures").glob("*.png")}
    assert set(figures) == {
        f"{n}.png"
        for n in (
            "curves_loss",
            "curves_accuracy",
            "val_confusion_matrix",
            "val_roc",
            "test_confusion_matrix",
            "test_roc",
        )
    }
    assert all(image is not None and image.std() > 0 for image in figures.values())

    # the resolved config is written and loads back to the same config
    assert load_config(out / "config.yaml") == config
    assert yaml.safe_load((out / "config.yaml").read_text())["Global"]["image_shape"] == [3, 32, 32]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["best_epoch"] in (1, 2)
    assert set(metrics["test"]) >= {"accuracy", "per_class", "macro", "auc", "confusion_matrix"}
    assert (out / "best_model.pdparams").is_file()
    state = json.loads((out / "latest" / "state.json").read_text())
    assert state["epoch"] == 2 and state["step"] == 0
    assert (out / "latest" / "model.pdopt").is_file()

    # tools/eval.py's job on the best weights writes eval_<list stem>_* files: metrics, matrix, ROC
    def evaluate_list(name):
        return run_evaluation(
            tiny_config(
                images,
                lists,
                tmp_path / "eval",
                **{
                    "Global.pretrained_model": str(out / "best_model.pdparams"),
                    "DataLoader.Eval.dataset.cls_label_path": str(lists / name),
                },
            )
        )

    metrics = evaluate_list("test_list.txt")
    saved = json.loads((tmp_path / "eval" / "eval_test_list_metrics.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] == result["test"]["accuracy"]
    assert set(saved["per_class"]) == {"normal", "lesion"}
    for kind in ("confusion_matrix", "roc"):
        assert (tmp_path / "eval" / f"eval_test_list_{kind}.png").stat().st_size > 1000
    # a second evaluation, of another list, leaves the first one's files as they were
    val_metrics = evaluate_list("val_list.txt")
    assert json.loads((tmp_path / "eval" / "eval_test_list_metrics.json").read_text()) == saved
    assert json.loads((tmp_path / "eval" / "eval_val_list_metrics.json").read_text())["n"] == val_metrics["n"]
    assert val_metrics["list_file"].endswith("val_list.txt")


def test_visualdl_off_writes_no_logs(tiny_run_config, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    config = load_config(raw=tiny_run_config, overrides=["Global.epochs=1"])
    Trainer(config).fit()
    assert not (tmp_path / "out" / "vdl").exists()
    assert (tmp_path / "out" / "metrics.json").is_file()
