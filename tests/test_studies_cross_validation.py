"""``paddle_dx cross-validate`` on the lung-nodule study's config with tiny fake LIDC crops (LeNet5,
32 px, 2 folds, 1 epoch): one run folder per fold, the summary read from the folds' metrics.json,
patients in one fold, and a rerun that trains only the folds without metrics.json."""

import json

import numpy as np
import pytest
from conftest import ROOT

from paddle_dx.cli import run
from paddle_dx.commands import cross_validate as command
from paddle_dx.config import load_config
from paddle_dx.data.split import write_split
from paddle_dx.data.synthetic import write_demo_dataset
from paddle_dx.errors import ConfigError
from paddle_dx.studies import cross_validation
from paddle_dx.studies.cross_validation import fold_overrides

LUNG = ROOT / "configs" / "lung_nodule_resnet50.yaml"
CLASSES = ("nodule_ge3mm", "nodule_lt3mm", "non_nodule")
GROUPS = r"^(LIDC-IDRI-\d+)"


def fake_lidc(root, patients=6, per_class=12):
    """Class folders of 32 px images named ``LIDC-IDRI-000<patient>_<n>.png`` and a 6:2:2 split by patient."""
    images = write_demo_dataset(root / "crops", per_class=per_class, size=32, classes=CLASSES)
    for cls in CLASSES:
        for i, path in enumerate(sorted((images / cls).glob("*.png"))):
            path.rename(path.with_name(f"LIDC-IDRI-{i % patients:04d}_{path.name}"))
    write_split(images, root / "lists", (6, 2, 2), seed=0, group_regex=GROUPS, classes=list(CLASSES))
    return images, root / "lists"


def cli_args(images, lists, out, *extra):
    items = [
        "Arch.name=LeNet5",
        "Arch.pretrained=false",
        "Global.image_shape=[3,32,32]",
        "Global.epochs=1",
        "Global.engine=dygraph",
        "Global.use_visualdl=false",
        "Global.device=cpu",
        f"Global.output_dir={out}",
    ]
    for mode, name in (("Train", "train"), ("Eval", "val"), ("Test", "test")):
        items += [
            f"DataLoader.{mode}.dataset.image_root={images}",
            f"DataLoader.{mode}.dataset.cls_label_path={lists}/{name}_list.txt",
        ]
    return ["-c", str(LUNG), "--folds", "2", "--seed", "1", "--group-regex", GROUPS, *extra, "-o", *items]


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    images, lists = fake_lidc(root / "data")
    args = cli_args(images, lists, root / "out")
    command.main(args)
    return root / "out", args


def test_every_fold_is_a_run_folder_and_the_summary_is_their_metrics(cv_run):
    out, _ = cv_run
    results = json.loads((out / "cv_results.json").read_text())
    assert (out / "cv_report.md").is_file() and (out / "cv_folds.png").stat().st_size > 0
    assert results["settings"]["folds"] == 2 and results["settings"]["group_regex"] == GROUPS
    folds = [json.loads((out / f"fold_{k}" / "metrics.json").read_text()) for k in (1, 2)]
    for entry, metrics in zip(results["per_fold"], folds):
        assert entry["val"]["accuracy"] == metrics["val"]["accuracy"]
        assert entry["test"]["sensitivity/non_nodule"] == metrics["test"]["per_class"]["non_nodule"]["sensitivity"]
        assert metrics["duplicates_across_splits"] == []  # no image content in both a fold's train and val list
    accuracies = [m["val"]["accuracy"] for m in folds]
    assert results["summary"]["val"]["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert results["summary"]["val"]["accuracy"]["sd"] == pytest.approx(np.std(accuracies, ddof=1))
    pooled = np.asarray(results["val_confusion_matrix_pooled"])
    assert pooled.sum() == results["n_images"] == sum(m["val"]["n"] for m in folds)
    patients = {}
    for k in (1, 2):
        for line in (out / "lists" / f"fold_{k}" / "val_list.txt").read_text().splitlines():
            patients.setdefault(line.split("/")[1].split("_")[0], set()).add(k)
    assert patients and all(len(f) == 1 for f in patients.values())  # each patient held out in one fold
    report = (out / "cv_report.md").read_text()
    assert "| mean ± sd |" in report and "sensitivity: nodule_lt3mm" in report


def test_a_rerun_trains_only_unfinished_folds_and_refuses_another_config(cv_run, monkeypatch):
    out, args = cv_run
    with pytest.raises(ConfigError, match=r"fold_1 was trained with another config \(Optimizer.lr: 0.001 -> 0.01"):
        command.main(args + ["Optimizer.lr=0.01"])
    trained = []
    real_train = cross_validation.train
    monkeypatch.setattr(cross_validation, "train", lambda plan: trained.append(plan) or real_train(plan))
    command.main(args)
    assert trained == []  # both folds finished: read, not retrained
    (out / "fold_2" / "metrics.json").unlink()  # as if fold 2 was cut short after its checkpoint
    command.main(args)
    assert [p.name for p in trained] == ["fold_2"]
    assert f"Global.checkpoints={out / 'fold_2' / 'latest'}" in trained[0].overrides
    assert (out / "fold_2" / "metrics.json").is_file()
    results = json.loads((out / "cv_results.json").read_text())
    assert [f["fold"] for f in results["per_fold"]] == [1, 2]


def test_the_lung_nodule_config_takes_the_fold_overrides(tmp_path):
    """The real study config (ResNet50, 64 px, Test list) validates as fold training, with the Test
    list held out or pooled (its 11 test crops are few to score on alone)."""
    config = load_config(str(LUNG))
    for include_test in (False, True):
        overrides = fold_overrides(
            config, tmp_path / "lists" / "fold_1", tmp_path / "fold_1", list(CLASSES), include_test
        )
        fold = load_config(str(LUNG), overrides)
        assert fold["DataLoader"]["Eval"]["dataset"]["cls_label_path"] == str(tmp_path / "lists/fold_1/val_list.txt")
        assert fold["Global"]["class_names"] == list(CLASSES) and fold["Arch"]["name"] == "ResNet50"
        assert bool(fold["DataLoader"]["Test"]["dataset"]["cls_label_path"]) is not include_test
    args = command.build_parser().parse_args(["-c", "lung_nodule_resnet50", "--folds", "5", "--group-regex", GROUPS])
    assert (args.folds, args.group_regex, args.include_test) == (5, GROUPS, False)


def test_a_missing_list_is_one_clear_error_and_leaves_nothing(tmp_path, capsys):
    (tmp_path / "lists").mkdir()
    with pytest.raises(SystemExit) as stop:
        run(lambda: command.main(cli_args(tmp_path / "crops", tmp_path / "lists", tmp_path / "out")))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("error: list file not found") and "train_list.txt" in err
    assert not (tmp_path / "out").exists()
