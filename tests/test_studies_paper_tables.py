"""The papers' own tables and figures beside this run's, on small synthetic results (no training):
each paper cell is the papers.yaml number, each 'this run' cell the run's metrics.json value, and a
difference is printed only where data, network, input size, initialisation and split all match."""

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import make_tiny_dataset
from test_studies_reproduce import tables

from paddle_dx.metrics import classification_metrics
from paddle_dx.studies.catalog import get_study
from paddle_dx.studies.comparable import data_reasons, reasons, run_setup
from paddle_dx.studies.markdown import pct
from paddle_dx.studies.plan import RunPlan, plan_sizes
from paddle_dx.studies.report import write_report
from paddle_dx.studies.splits import SplitInfo, train_subset

STAGES = [
    {"name": "pre-training", "epochs": 2, "freeze": "backbone", "lr": 0.001},
    {"name": "fine-tuning", "epochs": 2, "freeze": "none", "lr": 0.0001},
]


def predictions(rng, labels, k, skill):
    probs = rng.dirichlet([1.0] * k, len(labels))
    probs[np.arange(len(labels)), labels] += skill
    return probs / probs.sum(axis=1, keepdims=True)


def fake_result(
    tmp_path, name, arch, images, class_names, rng, stages=None, epochs=4, size=32, init="random (from scratch)"
):
    """A RunResult as runner.run_target returns it, with made-up but self-consistent metrics."""
    k = len(class_names)
    paths = sorted(str(p) for p in Path(images).rglob("*.png"))
    labels = np.asarray([class_names.index(Path(p).parent.name) for p in paths])
    probs = predictions(rng, labels, k, 0.8)
    vals = [
        classification_metrics(labels, predictions(rng, labels, k, 0.3 * e), class_names, loss=1.0 / e)
        for e in range(1, epochs + 1)
    ]
    history = [
        {
            "epoch": e,
            "lr": 0.001,
            "train_loss": 1.0 / e,
            "train_accuracy": 0.5 + 0.04 * e,
            "val_loss": vals[e - 1]["loss"],
            "val_accuracy": vals[e - 1]["accuracy"],
            "val_per_class": {
                c: {m: vals[e - 1]["per_class"][c][m] for m in ("precision", "sensitivity", "f1")} for c in class_names
            },
        }
        for e in range(1, epochs + 1)
    ]
    metrics = {
        "history": history,
        "best_epoch": epochs - 1,
        "best_metric": "accuracy",
        "val": vals[epochs - 2],
        "test": classification_metrics(labels, probs, class_names),
    }
    if stages:
        metrics["stages"] = [
            dict(s, end_epoch=2 * (i + 1), val=vals[2 * i + 1], test=metrics["test"]) for i, s in enumerate(stages)
        ]
    config = {
        "Global": {"image_shape": [3, size, size], "seed": 0, "output_dir": str(tmp_path / "runs" / name)},
        "Arch": {"name": arch, "class_num": k},
        "Stages": stages,
    }
    plan = RunPlan(name, f"configs/{name}.yaml", [], init, arch)
    return SimpleNamespace(
        plan=plan,
        config=config,
        metrics=metrics,
        probs=probs,
        labels=labels,
        paths=paths,
        output_dir=tmp_path / "runs" / name,
    )


def context(study, results, images, folders, papers_data, source_md=None, sizes=None):
    """papers_data: this run is on the paper's own data (else a stand-in, as SOURCE.md would say)."""
    counts = {s: {f: 3 + i for i, f in enumerate(folders)} for s in ("train", "val", "test")}
    data_why = [] if papers_data else [study.stand_in_reason]
    split = SplitInfo(str(images), str(images), list(folders), counts)
    return {
        "split": split,
        "source_split": None,
        "results": results,
        "sources": [],
        "quick": True,
        "seed": 1,
        "n_resamples": 50,
        "per_class": None,
        "overrides": [],
        "class_names": list(folders),
        "command": "python tools/reproduce.py",
        "data_reasons": data_why,
        "source_md": source_md,
        "setups": {r.plan.name: run_setup(r.plan, r.config, data_why) for r in results},
        "sizes": sizes,
    }


def rows_by(found, heading, key_cols=1):
    rows = found[heading]
    return rows[0], {tuple(r[:key_cols]): r for r in rows[1:]}


@pytest.fixture(scope="module")
def gastric_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gastric")
    folders = ["polyp", "bbps-0-1", "normal-cecum"]
    images, _ = make_tiny_dataset(tmp / "data", per_class=4, size=32, classes=tuple(folders))
    (images / "SOURCE.md").write_text("# tiny: a made-up stand-in\n\n- Original dataset: nowhere, 2026.\n")
    rng = np.random.default_rng(0)
    results = [
        fake_result(tmp, arch, arch, images, folders, rng, STAGES, init="ImageNet (x), new head")
        for arch in ("VGG19", "ResNet50", "InceptionV3")
    ]
    study = get_study("gastric")
    ctx = context(study, results, images, folders, papers_data=False, source_md=images / "SOURCE.md")
    path = write_report(study, ctx, tmp)
    return study, results, path.read_text(encoding="utf-8"), tmp


def test_gastric_tables_1_3_put_the_paper_beside_each_stage_of_this_run(gastric_report):
    study, results, report, _ = gastric_report
    found = tables(report)
    for r in results:
        tab = {"VGG19": "Table 1", "ResNet50": "Table 2", "InceptionV3": "Table 3"}[r.plan.name]
        header, rows = rows_by(found, f"{tab}: {r.plan.name}, validation results per stage (%)", 2)
        assert header[:4] == ["stage", "index", "GC paper", "GC this run"]
        for position, stage in enumerate(("pre-training", "fine-tuning")):
            ours = r.metrics["stages"][position]["val"]
            for key, label in (("precision", "Precision"), ("sensitivity", "Sensitivity"), ("f1", "F1-score")):
                row = rows[(stage, label)]
                for i, (cls, folder) in enumerate(zip(("GC", "GU", "CG"), ours["class_names"])):
                    assert row[2 + 2 * i] == f"{study.table_value(f'{tab}/{r.plan.name}/{key}/{stage}/{cls}'):g}"
                    assert row[3 + 2 * i] == pct(ours["per_class"][folder][key])
                assert row[9] == pct(ours["macro"][key])
    assert report.count("**Not comparable**: stand-in data (lower-GI colonoscopy classes") == 3


def test_gastric_table_4_sets_the_six_confusion_matrices_beside_this_runs(gastric_report):
    study, results, report, _ = gastric_report
    found = tables(report)
    for position, stage in enumerate(("pre-training", "fine-tuning")):
        _, rows = rows_by(found, stage, 2)
        for r in results:
            matrix = r.metrics["stages"][position]["val"]["confusion_matrix"]
            for i, true in enumerate(("GC", "GU", "CG")):
                row = rows[(r.plan.name, true)]
                paper = [
                    int(study.table_value(f"Table 4/true {true}/{stage}/{r.plan.name}/{p}")) for p in ("GC", "GU", "CG")
                ]
                assert list(map(int, row[2:5])) == paper
                assert list(map(int, row[5:8])) == list(matrix[i])
    assert rows_by(found, "pre-training", 2)[1][("ResNet50", "GC")][2:5] == ["137", "13", "0"]


def test_gastric_figures_2_4_are_drawn_and_linked(gastric_report):
    _, results, report, root = gastric_report
    names = ["paper_fig2_pre-training.png", "paper_fig3_fine-tuning.png"] + [
        f"paper_fig4_{r.plan.name}.png" for r in results
    ]
    for name in names:
        image = cv2.imread(str(root / "figures" / name))
        assert image is not None and image.std() > 5, name
        assert f"](figures/{name})" in report


def test_every_report_states_the_stand_in_and_its_provenance_first(gastric_report):
    _, _, report, _ = gastric_report
    head = report.split("## Setting")[0]
    assert "## Data" in head and "STAND-IN" in head and "tiny: a made-up stand-in" in head
    assert "Original dataset: nowhere, 2026." in head
    assert "white-light gastroscopy" in head  # the paper's data
    assert "No single headline number is tied to a run" in report  # gastric: per-class tables only
    for row in tables(report)["Test set: paper vs this run"][1:]:
        assert row[2] == "n/r" and row[4] == "n/r"


@pytest.fixture(scope="module")
def brain_report(tmp_path_factory):
    """The paper's own setup (data as named, ResNet18, 224 px, ImageNet): differences printed."""
    tmp = tmp_path_factory.mktemp("brain")
    folders = ["aneurysm", "cancer", "malignant"]
    images, _ = make_tiny_dataset(tmp / "data", per_class=7, size=32, classes=tuple(folders))
    result = fake_result(
        tmp,
        "ResNet18",
        "ResNet18",
        images,
        folders,
        np.random.default_rng(1),
        epochs=12,
        size=224,
        init="ImageNet (ResNet18, PaddleClas weights), new head",
    )
    study = get_study("brain")
    path = write_report(study, context(study, [result], images, folders, papers_data=True), tmp)
    return study, result, path.read_text(encoding="utf-8"), tmp


def test_brain_differences_only_where_everything_matches(brain_report):
    study, result, report, _ = brain_report
    _, rows = rows_by(tables(report), "Published numbers: paper vs this run", 3)
    val = rows[("ResNet18", "validation accuracy", "validation")]
    assert val[3] == "96.00" and val[4] == pct(result.metrics["val"]["accuracy"])
    assert float(val[5]) == pytest.approx(float(val[4]) - 96.0, abs=0.011)
    train = rows[("ResNet18", "final training accuracy (text)", "training")]
    best = result.metrics["history"][result.metrics["best_epoch"] - 1]
    assert train[4] == pct(best["train_accuracy"]) and train[5].startswith(("+", "-"))
    main = {(r[0], r[1]): r for r in tables(report)["Test set: paper vs this run"][1:]}
    assert main[("ResNet18", "accuracy")][2] == "n/r"  # the paper has no test-split number
    assert "ResNet-50 in the abstract" in report and "0.956" in report and "0.986" in report


def test_brain_table_2_and_table_1_and_figure_1(brain_report):
    study, result, report, root = brain_report
    found = tables(report)
    header, rows = rows_by(found, "Table 2: training and validation per epoch (accuracies in %)")
    assert header[:3] == ["epoch", "train loss paper", "train loss this run"]
    assert rows[("1",)][1:5] == ["0.83", "1.0000", "69.6", pct(0.54)]  # this run: loss 1/epoch, acc 0.5 + 0.04 epoch
    assert rows[("10",)][3] == "98.6" and rows[("11",)][1] == "n/r"  # the paper stops at 10 epochs
    summary = found["Table 1: the model of run ResNet18 (generated from the network)"]
    assert summary[-1][:3] == ["head", "Linear", "(1, 3)"] and summary[-1][3] == str(512 * 3 + 3)
    assert summary[1][2] == "(1, 64, 112, 112)"  # the stem, as the paper's Conv1 row
    assert "Comparable: same data" in report
    image = cv2.imread(str(root / "figures" / "paper_fig1_random_test_images.png"))
    assert image is not None and image.std() > 5


def test_comparability_reasons_name_each_mismatch():
    study = get_study("brain")
    plan = RunPlan("ResNet18", "x", [], "random (from scratch)", "ResNet50")
    ours = run_setup(plan, {"Global": {"image_shape": [3, 64, 64]}}, [study.stand_in_reason])
    why = reasons(study, "ResNet18", ours, "test", "validation")
    assert why == [
        "stand-in data (MRI, not CT; tumour types, not aneurysm / cancer / malignant tumour)",
        "ResNet50, not ResNet18",
        "64 px input, not 224",
        "random init, not ImageNet",
        "test split, paper reports validation",
    ]
    plan = RunPlan("ResNet18", "x", [], "ImageNet (ResNet18, PaddleClas weights), new head", "ResNet18")
    assert (
        reasons(
            study,
            "ResNet18",
            run_setup(plan, {"Global": {"image_shape": [3, 224, 224]}}, []),
            "validation",
            "validation",
        )
        == []
    )


def test_esophagus_table_2_counts_and_lung_size_curve(tmp_path):
    folders = ["normal-cecum", "polyp"]
    images, _ = make_tiny_dataset(tmp_path / "data", per_class=4, size=32, classes=tuple(folders))
    rng = np.random.default_rng(2)
    eso = get_study("esophagus")
    results = [fake_result(tmp_path, n, "ResNet18", images, folders, rng) for n in ("transfer", "scratch")]
    report = write_report(eso, context(eso, results, images, folders, False), tmp_path / "eso").read_text()
    _, rows = rows_by(tables(report), "The paper's Table 2: images per class and split, beside this run's split")
    assert rows[("pathological (here: polyp)",)][1:] == ["120", "4", "40", "4", "40", "4"]
    assert rows[("normal (here: normal-cecum)",)][1:] == ["60", "3", "20", "3", "20", "3"]
    # 92.32 % on validation AND test: both rows, neither comparable on stand-in data
    published = [r for r in tables(report)["Published numbers: paper vs this run"][1:] if r[0] == "transfer"]
    assert [r[2] for r in published] == ["validation", "test"]
    assert all(
        r[5].startswith("not comparable: stand-in data") and "does not state its network" in r[5] for r in published
    )

    lung = get_study("lung_nodule")
    lung_folders = ["nodule_ge3mm", "nodule_lt3mm", "non_nodule"]
    crops, _ = make_tiny_dataset(tmp_path / "crops", per_class=4, size=32, classes=tuple(lung_folders))
    runs = [fake_result(tmp_path, n, n, crops, lung_folders, rng) for n in ("ResNet50", "LeNet5")]
    diverged = "training loss diverged: an epoch's mean 44.7 > 10 x its start 1.01"
    sizes = {"ResNet50": [(10, 0.5, None), (20, 0.7, None)], "LeNet5": [(10, 0.9, diverged), (20, 0.45, None)]}
    root = tmp_path / "lung"
    report = write_report(lung, context(lung, runs, crops, lung_folders, False, sizes=sizes), root).read_text()
    _, rows = rows_by(tables(report), "Accuracy vs number of training crops")
    assert rows[("ResNet50",)][1:] == ["50.00", "70.00"] and rows[("LeNet5",)][1:] == ["COLLAPSED", "45.00"]
    assert f"- LeNet5 on 10 crops: {diverged}" in report  # a collapsed run is not tabulated as a result
    assert cv2.imread(str(root / "figures" / "paper_size_curve.png")).std() > 5
    assert "`Global.stop_after_iterations: 5000` and `Global.stop_val_accuracy: 0.9`" in report
    rule = {r[0]: r[1:] for r in tables(report)["The paper's schedule and comparisons"][1:]}
    assert rule["ResNet50"] == ["off", "off", "0", "did not fire"]  # the fake runs set no rule


def test_data_counts_as_the_papers_only_without_source_md_with_its_class_names_and_size(tmp_path):
    study = get_study("brain")
    own = tmp_path / "own"
    for name in ("aneurysm", "cancer", "malignant_tumor"):
        (own / name).mkdir(parents=True)
    assert data_reasons(study, own, ["aneurysm", "cancer", "malignant_tumor"], 259) == []
    assert data_reasons(study, own, ["aneurysm", "cancer", "malignant_tumor"], 60) == ["60 images, the paper used 259"]
    # the stand-in's folder names are listed in `classes` too: still a stand-in
    assert data_reasons(study, own, ["glioma_tumor", "meningioma_tumor", "pituitary_tumor"], 900) == [
        study.stand_in_reason
    ]
    (own / "SOURCE.md").write_text("# own: copied from somewhere\n")
    assert data_reasons(study, own / "cancer", ["aneurysm", "cancer", "malignant_tumor"], 259) == [
        study.stand_in_reason
    ]


def test_training_subsets_are_stratified_nested_and_planned_as_their_own_runs(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    lines = [f"c{c}/img_{i}.png {c}" for c in range(3) for i in range(10 * (c + 1))]  # 10 / 20 / 30
    (lists / "train_list.txt").write_text("\n".join(lines) + "\n")
    split = SplitInfo(str(tmp_path), str(lists), ["a", "b", "c"], {})
    small, large = (train_subset(split, n, seed=4).read_text().splitlines() for n in (12, 30))
    assert len(small) == 12 and len(large) == 30 and set(small) <= set(large)
    assert [sum(l.endswith(f" {c}") for l in large) for c in range(3)] == [5, 10, 15]
    plan = RunPlan(
        "ResNet50",
        "configs/x.yaml",
        ["Global.seed=1", f"Global.output_dir={tmp_path}/runs/ResNet50"],
        "random",
        "ResNet50",
    )
    runs = plan_sizes(plan, [12, 30], {12: lists / "train_list_12.txt", 30: lists / "train_list_30.txt"})
    assert [r.name for r in runs] == ["ResNet50@12", "ResNet50@30"]
    assert runs[0].overrides == [
        "Global.seed=1",
        f"Global.output_dir={tmp_path}/runs/ResNet50@12",
        f"DataLoader.Train.dataset.cls_label_path={lists / 'train_list_12.txt'}",
    ]


def test_size_points_flag_a_collapsed_run_with_its_cause():
    from types import SimpleNamespace

    from paddle_dx.studies.paper_tables import size_points

    healthy = [{"train_loss": 1.0, "step_losses": [1.0]}, {"train_loss": 0.8}]
    labels = np.array([0, 1, 2, 1])
    one_class = np.tile([0.1, 0.8, 0.1], (4, 1))
    spread = np.eye(3)[[0, 1, 2, 2]] * 0.9 + 0.03
    names = {"test": {"class_names": ["ge3", "lt3", "non"]}}
    runs = {
        ("VGG16", 20): SimpleNamespace(metrics={"history": healthy, **names}, probs=one_class, labels=labels),
        ("VGG16", 10): SimpleNamespace(metrics={"history": healthy, **names}, probs=spread, labels=labels),
    }
    points = size_points(runs)["VGG16"]
    assert [(n, acc) for n, acc, _ in points] == [(10, 0.75), (20, 0.5)] and points[0][2] is None
    assert "predicts 'lt3' for every test image" in points[1][2]
