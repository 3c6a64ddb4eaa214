"""tools/reproduce.py --quick on the shared data: the report's tables are the runs' own numbers,
figures decode, the same seed gives the same report; --source transfers a pretrained backbone."""

import json
import re

import cv2
import pytest
import yaml
from conftest import make_tiny_dataset

from paddle_dx.studies.bootstrap import HEADLINE, headline
from paddle_dx.studies.catalog import get_study
from paddle_dx.studies.markdown import pct
from paddle_dx.studies.reproduce import reproduce

LABELS = {"accuracy": "accuracy", "sensitivity": "sensitivity", "specificity": "specificity", "auc": "AUC"}


def tables(markdown):
    """{heading: [table rows as lists of cells], ...}; the header row first."""
    out, heading = {}, None
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            out.setdefault(heading, []).append(cells)
    return out


def check_report(root, study_name):
    """Every table cell is filled; 'this run' numbers are those of each run's metrics.json."""
    study = get_study(study_name)
    report = (root / "report.md").read_text(encoding="utf-8")
    found = tables(report)
    for heading, rows in found.items():
        for row in rows:
            assert all(cell and cell.lower() not in ("nan", "none") for cell in row), (heading, row)
    metrics = {run: json.loads((root / "runs" / run / "metrics.json").read_text()) for run in study.runs}

    main = found["Test set: paper vs this run"]
    assert main[0] == ["run", "metric", "paper", "this run", "difference", "95 % CI", "status"]
    assert len(main) - 1 == len(study.runs) * len(HEADLINE)
    by_row = {(r[0], r[1]): r for r in main[1:]}
    for run, m in metrics.items():
        ours = headline(m["test"], study.positive)
        for metric in HEADLINE:
            _, _, paper, value, diff, ci, _ = by_row[(run, LABELS[metric])]
            assert value == pct(ours[metric])
            published = study.paper_value(run, metric, "test")
            assert paper == ("n/r" if published is None else f"{published:.2f}")
            if published is not None:  # the shared data are stand-ins (SOURCE.md): never a difference
                assert diff.startswith(f"not comparable: {study.stand_in_reason}"), diff
            if ours[metric] is not None:
                low, high = map(float, re.fullmatch(r"\[(.+), (.+)\]", ci).groups())
                assert low <= float(value) <= high

        per_class = found[run][1 : 4 if len(m["test"]["class_names"]) == 2 else 5]
        for row in per_class:
            if row[0] in m["test"]["per_class"]:
                c = m["test"]["per_class"][row[0]]
                assert row[1:] == [
                    pct(c["precision"]),
                    pct(c["sensitivity"]),
                    pct(c["specificity"]),
                    pct(c["f1"]),
                    str(c["support"]),
                ]
        history = [rows for heading, rows in found.items() if heading == run]
        epochs = [r for r in history[0] if r and r[0].isdigit() and len(r) == 6]
        assert [int(r[0]) for r in epochs] == [h["epoch"] for h in m["history"]]
        assert [r[2] for r in epochs] == [f"{h['train_loss']:.4f}" for h in m["history"]]

    figures = sorted((root / "figures").glob("*.png"))
    assert len([p for p in figures if not p.name.startswith("paper_")]) == 4 * len(study.runs)
    for path in figures:
        image = cv2.imread(str(path))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 100, path
        assert image.std() > 5, f"{path} is blank"
        assert f"]({path.relative_to(root)})" in report
    return report, metrics


def main_table(report):
    return tables(report)["Test set: paper vs this run"]


# Smaller than --quick's defaults (40 images per class, 64 px) to keep the suite fast on 2 cores;
# the ImageNet-vs-scratch pair is tested on synthetic images (tests/test_studies_pairs.py).
SMALL = {
    "quick": True,
    "per_class": 20,
    "overrides": ["Global.image_shape=[3, 32, 32]"],
    "n_resamples": 300,
    "seeds": 0,
}


def test_esophagus_quick_report_is_filled_from_its_runs(shared_datasets, tmp_path):
    data = shared_datasets / "hyperkvasir_lower_gi"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    path = reproduce("esophagus", data, tmp_path, seed=5, **SMALL)
    report, metrics = check_report(path.parent, "esophagus")
    assert set(metrics) == {"transfer", "scratch"}
    init = {r[0]: r[2] for r in tables(report)["Initialisation of each run"][1:]}
    assert init["scratch"].startswith("random")
    assert init["transfer"].startswith("ImageNet") or "NOT a transfer-learning result" in init["transfer"]
    assert "normal-cecum stands in for normal" in report and "Quick mode" in report
    assert "| transfer | accuracy | 92.32 |" in report  # the conclusion's test-set number
    assert "| scratch | accuracy | validation | 80.12 |" in report
    assert "STAND-IN" in report.split("## Setting")[0] and "HyperKvasir" in report.split("## Setting")[0]


@pytest.fixture(scope="module")
def brain_reports(shared_datasets, tmp_path_factory):
    data = shared_datasets / "brain_tumor_mri"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    out = tmp_path_factory.mktemp("reports")
    return [reproduce("brain", data, out / name, seed=3, **SMALL).parent for name in ("a", "b")]


def test_brain_quick_report_is_filled_from_its_run(brain_reports):
    report, metrics = check_report(brain_reports[0], "brain")
    assert metrics["ResNet18"]["test"]["class_names"] == ["glioma_tumor", "meningioma_tumor", "pituitary_tumor"]
    assert "Per-epoch history" in report and "| epoch | lr | train loss" in report


def test_same_seed_gives_the_same_report_numbers(brain_reports):
    a, b = ((root / "report.md").read_text() for root in brain_reports)
    assert main_table(a) == main_table(b)
    assert tables(a)["ResNet18"] == tables(b)["ResNet18"]
    ma, mb = (json.loads((root / "runs" / "ResNet18" / "metrics.json").read_text()) for root in brain_reports)
    assert [h["train_loss"] for h in ma["history"]] == [h["train_loss"] for h in mb["history"]]
    assert ma["test"] == mb["test"]


def _reproduce_lenet_with_source(images, source, out):
    """A quick esophagus study of LeNet5 rows on ``images`` with --source ``source``; its report's path."""
    lenet = ["Arch.name=LeNet5", "Global.image_shape=[3, 32, 32]", "Loss.Train=[{CELoss: {weight: 1.0}}]"]
    return reproduce(
        "esophagus", images, out, quick=True, source=source, seed=1, overrides=lenet, n_resamples=50, seeds=0
    )


def test_source_pretraining_is_its_own_row_and_never_sees_any_target_image(tmp_path):
    import shutil

    images, _ = make_tiny_dataset(tmp_path / "target", per_class=10, size=32, classes=("normal", "pathological"))
    source, _ = make_tiny_dataset(tmp_path / "source", per_class=8, size=32, seed=9, classes=("a", "b"))
    copied = sorted(images.rglob("*.png"))[::4]  # copies of target images (train, val or test) in the source
    for i, png in enumerate(copied):
        shutil.copy(png, source / ("a", "b")[i % 2] / f"copy_{i}.png")
    path = _reproduce_lenet_with_source(images, source, tmp_path / "out")
    root = path.parent
    target = {line.split()[0] for n in ("train", "val", "test") for line in (root / "splits" / f"{n}_list.txt").open()}
    source_lists = [
        line.split()[0] for n in ("train", "val") for line in (root / "splits_source" / f"{n}_list.txt").open()
    ]
    assert not any(rel.startswith("copy_") or "/copy_" in rel for rel in source_lists)
    assert len(target) == 20 and len(source_lists) == 16
    report = path.read_text()
    assert f"{len(copied)} image(s) left out because they are target images" in report
    assert "## Source pretraining (its own rows, not ImageNet transfer)" in report
    row = root / "runs" / "source-init_transfer" / "config.yaml"
    config = yaml.safe_load(row.read_text())
    assert config["Arch"]["pretrained"] == str(root / "runs" / "source_LeNet5" / "backbone.pdparams")
    transfer = yaml.safe_load((root / "runs" / "transfer" / "config.yaml").read_text())["Arch"]["pretrained"]
    assert "backbone.pdparams" not in str(transfer)  # the paper row keeps its own initialisation
    assert yaml.safe_load((root / "runs" / "scratch" / "config.yaml").read_text())["Arch"]["pretrained"] is False
    import paddle

    backbone = paddle.load(config["Arch"]["pretrained"])
    assert backbone and not any(k.startswith(("backbone.", "head.")) for k in backbone)
    runs = json.loads((root / "report.json").read_text())
    assert runs["source_rows"]["source-init_transfer"]["init"].startswith("source-pretrained")
    assert not runs["runs"]["transfer"]["init"].startswith("source-pretrained")
    assert (root / "source_image_sha256.txt").read_text().count("\n") == 16


def test_a_source_pretraining_that_diverges_flags_its_rows_and_the_study_goes_on(tmp_path, monkeypatch):
    """Its rows train from the source run's random start, so they are no source-pretraining
    result: the report says so for each, instead of the study stopping at the divergence."""
    import dataclasses

    from paddle_dx.studies import runner

    real_train = runner.train

    def blown_source(plan):  # only the source pretraining blows up
        if plan.name.startswith("source_"):
            plan = dataclasses.replace(
                plan, overrides=[*plan.overrides, "Optimizer.name=Momentum", "Optimizer.lr=1e30"]
            )
        return real_train(plan)

    monkeypatch.setattr(runner, "train", blown_source)
    images, _ = make_tiny_dataset(tmp_path / "target", per_class=10, size=32, classes=("normal", "pathological"))
    source, _ = make_tiny_dataset(tmp_path / "source", per_class=8, size=32, seed=9, classes=("a", "b"))
    path = _reproduce_lenet_with_source(images, source, tmp_path / "out")
    runs = json.loads((path.parent / "report.json").read_text())
    row = runs["source_rows"]["source-init_transfer"]
    assert row["init"].startswith("the random start of a source pretraining that diverged")
    assert "source pretraining diverged before any usable evaluation" in row["collapsed"]
    assert runs["runs"]["transfer"]["collapsed"] is None or "source" not in runs["runs"]["transfer"]["collapsed"]
    report = path.read_text()
    assert "**source-init_transfer**: its source pretraining diverged" in report


def test_the_study_names_are_those_of_papers_yaml(tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    from paddle_dx.errors import ConfigError
    from paddle_dx.studies.catalog import PAPERS

    names = sorted(yaml.safe_load(PAPERS.read_text(encoding="utf-8")))
    with pytest.raises(ConfigError, match=r"--study: unknown study 'esophagu' \(did you mean 'esophagus'\?\)"):
        get_study("esophagu")
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "reproduce.py"), "--study", "esophagu", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "(choose from " + ", ".join(f"'{n}'" for n in names) + ")" in done.stderr


def test_lung_nodule_accuracy_vs_training_size_runs_every_model_at_every_size(tmp_path):
    classes = ("nodule_ge3mm", "nodule_lt3mm", "non_nodule")
    images, _ = make_tiny_dataset(tmp_path / "crops", per_class=10, size=32, classes=classes)
    for png in sorted(images.rglob("*.png")):  # crops are named after their patient (LIDC-IDRI-NNNN)
        png.rename(png.with_name(f"LIDC-IDRI-{int(png.stem[-3:]):04d}_{png.name}"))
    lenet = ["Arch.name=LeNet5", "Global.image_shape=[3, 32, 32]", "Global.epochs=1"]
    path = reproduce(
        "lung_nodule",
        images,
        tmp_path / "out",
        quick=True,
        seed=2,
        overrides=lenet,
        n_resamples=50,
        sizes=[6, 18],
        seeds=0,
    )
    root = path.parent
    report = path.read_text()
    rows = {r[0]: r[1:] for r in tables(report)["Accuracy vs number of training crops"][1:]}
    assert set(rows) == {"ResNet50", "VGG16", "LeNet5"}
    for model, cells in rows.items():
        for n, cell in zip((6, 18), cells):
            m = json.loads((root / "runs" / f"{model}@{n}" / "metrics.json").read_text())
            if cell == "COLLAPSED":  # 1 epoch of LeNet5 on a few crops may stall: not a result, with its cause
                assert f"- {model} on {n} crops: " in report
            else:
                assert cell == pct(m["test"]["accuracy"])
            listed = (root / "splits" / f"train_list_{n}.txt").read_text().splitlines()
            assert len(listed) == n
            assert yaml.safe_load((root / "runs" / f"{model}@{n}" / "config.yaml").read_text())["DataLoader"]["Train"][
                "dataset"
            ]["cls_label_path"].endswith(f"train_list_{n}.txt")
    assert (root / "figures" / "paper_size_curve.png").is_file()
    rule = {r[0]: r[1:] for r in tables(report)["The paper's schedule and comparisons"][1:]}
    assert rule["LeNet5"][:2] == ["5000", "0.9"] and rule["LeNet5"][3] == "did not fire"  # the configs' rule
    # the tiny crops carry the paper's class names but are far fewer than its 100,000: not comparable
    assert "30 images, the paper used 100000" in report
