"""ImageNet transfer vs random init over seeds: per-seed rows, mean ± sd, paired tests on the
vote of the seeds, the verdict, collapsed runs left out; and the whole report pipeline on tiny
synthetic images (LeNet5, 1 epoch, 2 seeds) with its published text files."""

import csv
import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_tiny_dataset

from paddle_dx.errors import PaddleDxError
from paddle_dx.metrics.intervals import exact_mcnemar
from paddle_dx.studies.collapse import DIVERGED, collapse_cause, loss_cause, prediction_cause
from paddle_dx.studies.markdown import pct
from paddle_dx.studies.pairs import compare_pair
from paddle_dx.studies.reproduce import reproduce

CLASSES = ["normal", "lesion"]
HEALTHY = [{"epoch": 1, "train_loss": 0.7, "step_losses": [0.71, 0.69]}, {"epoch": 2, "train_loss": 0.5}]


def fake_run(name, seed, labels, predicted, init="ImageNet (x), new head", history=HEALTHY, paths=None):
    """A RunResult-shaped object whose test probabilities put 0.8 on ``predicted``."""
    probs = np.full((len(labels), 2), 0.2)
    probs[np.arange(len(labels)), predicted] = 0.8
    return SimpleNamespace(
        plan=SimpleNamespace(name=name, init=init, arch="EfficientNetLite0"),
        config={"Global": {"seed": seed, "image_shape": [3, 224, 224]}},
        metrics={"history": history},
        probs=probs,
        labels=np.asarray(labels),
        paths=paths or [f"img_{i}.png" for i in range(len(labels))],
    )


def flip(labels, wrong):
    predicted = np.asarray(labels).copy()
    predicted[list(wrong)] = 1 - predicted[list(wrong)]
    return predicted


LABELS = np.array([0, 1] * 20)


def pair_of(imagenet_wrong, scratch_wrong, **kw):
    return {
        "imagenet": [fake_run(f"imagenet_s{s}", s, LABELS, flip(LABELS, w)) for s, w in enumerate(imagenet_wrong)],
        "scratch": [
            fake_run(f"scratch_s{s}", s, LABELS, flip(LABELS, w), init="random (from scratch)", **kw)
            for s, w in enumerate(scratch_wrong)
        ],
    }


def test_clearly_better_transfer_is_called_so_with_per_seed_rows_mean_sd_and_the_vote_test():
    imagenet = [range(0, 2), range(2, 5), range(5, 6)]  # 2, 3, 1 errors of 40
    scratch = [range(10, 25), range(12, 26), range(14, 30)]  # 15, 14, 16 errors
    out = compare_pair(pair_of(imagenet, scratch), CLASSES, positive=1, n_resamples=300)
    accs = [r["imagenet"]["accuracy"] for r in out["seeds"]]
    assert accs == pytest.approx([38 / 40, 37 / 40, 39 / 40])
    assert out["summary"]["imagenet"]["accuracy"] == pytest.approx(np.mean(accs))
    assert out["summary"]["imagenet"]["accuracy_sd"] == pytest.approx(np.std(accs, ddof=1))
    first = out["seeds"][0]["paired"]
    wanted = exact_mcnemar(out_correct := flip(LABELS, imagenet[0]) == LABELS, flip(LABELS, scratch[0]) == LABELS)
    assert (first["a_only"], first["b_only"], first["p_value"]) == (
        wanted["a_only"],
        wanted["b_only"],
        wanted["p_value"],
    )
    assert first["difference"] == pytest.approx(out_correct.mean() - 25 / 40)
    vote = out["vote"]  # every image is wrong in at most one ImageNet seed: the vote is always right
    wrong_in_most = sum(sum(i in w for w in scratch) >= 2 for i in range(40))  # no ties with 3 seeds
    assert vote["imagenet"] == 1.0 and vote["scratch"] == pytest.approx(1 - wrong_in_most / 40)
    assert vote["p_value"] < 0.05 and vote["ci"][0] > 0
    assert out["verdict"].startswith("**Transfer beats scratch here**")


def test_equal_arms_give_no_evidence_and_a_missing_imagenet_init_no_comparison():
    same = [range(0, 5), range(5, 10)]
    out = compare_pair(pair_of(same, same), CLASSES, positive=1, n_resamples=100)
    assert out["verdict"].startswith("**No evidence here that transfer beats scratch")
    assert out["vote"]["difference"] == 0 and out["vote"]["ci"][0] < 0 < out["vote"]["ci"][1]
    runs = pair_of(same, same)
    for r in runs["imagenet"]:
        r.plan.init = "**random** - ImageNet weights were requested ..."
    assert compare_pair(runs, CLASSES, 1, 100)["verdict"].startswith("No transfer comparison")


def test_a_collapsed_seed_is_flagged_and_left_out_of_every_test():
    runs = pair_of([range(0, 2), range(2, 4), range(4, 6)], [range(10, 25), range(12, 26), range(14, 30)])
    runs["scratch"][1] = fake_run("scratch_s1", 1, LABELS, np.zeros(40, int), init="random")
    out = compare_pair(runs, CLASSES, positive=1, n_resamples=100)
    assert "predicts 'normal' for every test image" in out["seeds"][1]["scratch"]["collapsed"]
    assert out["seeds"][1]["paired"] is None and out["paired_seeds"] == [0, 2]
    assert out["summary"]["scratch"]["n"] == 2 and out["summary"]["imagenet"]["n"] == 3
    runs["imagenet"][0].paths = ["other.png"] * 40
    with pytest.raises(PaddleDxError, match="other images"):
        compare_pair(runs, CLASSES, positive=1)


def test_collapse_causes_nan_and_tenfold_loss_and_one_predicted_class():
    assert loss_cause(HEALTHY) is None
    assert "nan" in loss_cause([{"train_loss": float("nan"), "step_losses": [0.7, float("nan")]}])
    grown = [{"train_loss": 0.7, "step_losses": [0.7]}, {"train_loss": 0.7 * DIVERGED * 1.5}]
    assert "diverged" in loss_cause(grown)
    assert loss_cause([{"train_loss": 0.7, "step_losses": [0.7]}, {"train_loss": 0.7 * DIVERGED * 0.9}]) is None
    gastric = prediction_cause([1] * 30, ["cancer", "ulcer", "gastritis"], labels=[1] * 15 + [0] * 15)
    assert "'ulcer' for every test image" in gastric and "50%" in gastric
    assert prediction_cause([0, 1, 1], CLASSES) is None
    probs = np.tile([0.9, 0.1], (4, 1))
    assert collapse_cause(HEALTHY, probs, [0, 1, 0, 1], CLASSES).startswith("predicts 'normal'")


def test_collapse_catches_a_run_stalled_at_the_majority_class_with_no_skill():
    """Gastric VGG19: 93 of 102 test images called 'cancer', balanced accuracy 32.7 % (chance 33.3 %)."""
    gastric = ["cancer", "ulcer", "gastritis"]
    labels = np.array([0] * 50 + [1] * 12 + [2] * 40)
    predicted = np.array([0] * 49 + [1] + [0] * 12 + [0] * 32 + [1] * 8)
    cause = prediction_cause(predicted, gastric, labels)
    assert "'cancer' for 93 of 102" in cause and "32.7%" in cause and "33.3%" in cause
    assert prediction_cause(predicted, gastric) is None  # without labels there is no skill to judge
    skilled = predicted.copy()
    skilled[[49, 50]] = [0, 1]  # still 93 'cancer', but one ulcer found: balanced accuracy 36.1 %
    assert (skilled == 0).sum() == 93 and prediction_cause(skilled, gastric, labels) is None
    spread = np.arange(102) % 3  # at chance but spread over the classes: a weak result, not a stall
    assert prediction_cause(spread, gastric, labels) is None
    unseen = np.array([0] * 19 + [2])  # a predicted class absent from the labels is just wrong
    assert "for 19 of 20" in prediction_cause(unseen, gastric, np.array([0, 1] * 10))


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The brain study on 30 synthetic images: its ResNet18 row and the pair as LeNet5, 1 epoch, 2 seeds."""
    tmp = tmp_path_factory.mktemp("pairs")
    images, _ = make_tiny_dataset(
        tmp / "data", per_class=10, size=32, classes=("aneurysm", "cancer", "malignant_tumor")
    )
    lenet = ["Arch.name=LeNet5", "Global.image_shape=[3, 32, 32]", "Global.epochs=1", "Global.use_visualdl=false"]
    path = reproduce(
        "brain", images, tmp / "out", seed=1, overrides=lenet, n_resamples=50, seeds=2, publish_dir=tmp / "results"
    )
    return path.parent, tmp / "results" / "brain", images


def test_the_report_shows_each_seed_of_both_arms_and_a_verdict(tiny_study):
    root, _, _ = tiny_study
    report = (root / "report.md").read_text()
    section = report.split("## ImageNet transfer vs random initialisation")[1].split("\n## ")[0]
    for arm in ("imagenet", "scratch"):
        for seed in (1, 2):
            m = json.loads((root / "runs" / f"{arm}_s{seed}" / "metrics.json").read_text())
            assert f"| {seed} | " in section and f"| {arm}_s{seed} | {pct(m['test']['accuracy'])} |" in section
    # LeNet5 has no ImageNet weights: the report says both arms are random, not a transfer result
    assert "No transfer comparison" in section
    assert section.count("mean ± sd") == 2 and "McNemar p" in section
    pair = json.loads((root / "report.json").read_text())["imagenet_vs_scratch"]
    assert [r["seed"] for r in pair["seeds"]] == [1, 2]
    assert "Not stated in the paper: our choice" in report and "adds up to 263 images" in report


def test_the_published_folder_holds_per_image_predictions_split_lists_and_image_hashes(tiny_study):
    root, published, images = tiny_study
    test_list = [l.split() for l in (root / "splits" / "test_list.txt").read_text().splitlines()]
    with open(published / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["run"] for r in rows} == {"ResNet18", "imagenet_s1", "imagenet_s2", "scratch_s1", "scratch_s2"}
    for run in {r["run"] for r in rows}:
        mine = [r for r in rows if r["run"] == run]
        assert sorted((r["image"], r["label"]) for r in mine) == sorted((p, y) for p, y in test_list)
        probs = np.array([[float(r[f"p_{c}"]) for c in ("aneurysm", "cancer", "malignant_tumor")] for r in mine])
        assert [int(r["predicted"]) for r in mine] == list(probs.argmax(axis=1))
        m = json.loads((root / "runs" / run / "metrics.json").read_text())
        assert np.mean([r["predicted"] == r["label"] for r in mine]) == pytest.approx(m["test"]["accuracy"])
    for name in ("train_list.txt", "val_list.txt", "test_list.txt", "label_list.txt"):
        assert (published / "splits" / name).read_text() == (root / "splits" / name).read_text()
    hashes = [l.split("  ") for l in (published / "image_sha256.txt").read_text().splitlines()]
    assert len(hashes) == 30
    for digest, rel in hashes:
        assert hashlib.sha256((images / rel).read_bytes()).hexdigest() == digest
    assert not list(published.rglob("*.pdparams")) and not list(published.rglob("*_test_grid.png"))


def test_the_seeds_option_reaches_the_study():
    from paddle_dx.commands.reproduce import build_parser
    from paddle_dx.studies.catalog import STUDIES, get_study

    assert build_parser().parse_args(["--study", "brain", "--data", "x", "--seeds", "3"]).seeds == 3
    for name in STUDIES.names():
        study = get_study(name)
        assert study.pair["seeds"] >= 3 and study.pair_config_path().is_file(), name


def pooled_arm(name, fold_accuracy, fold_causes=None, wrong=()):
    run = fake_run(name, 1, LABELS, flip(LABELS, wrong))
    run.metrics = {
        "history": [],
        "fold_accuracy": fold_accuracy,
        "fold_images": [len(LABELS) // len(fold_accuracy)] * len(fold_accuracy),
        "fold_causes": fold_causes or [None] * len(fold_accuracy),
    }
    return run


def test_a_cross_validated_pair_is_tested_on_its_pooled_out_of_fold_predictions_with_per_fold_rows():
    pair = {
        "imagenet": [pooled_arm("imagenet_s1_cv4", [1.0, 0.9, 1.0, 0.9], wrong=range(0, 2))],
        "scratch": [pooled_arm("scratch_s1_cv4", [0.6, 0.5, 0.7, 0.6], wrong=range(10, 26))],
    }
    pair["scratch"][0].plan.init = "random (from scratch)"
    out = compare_pair(pair, CLASSES, n_resamples=200)
    assert out["folds"] == {
        "k": 4,
        "images": [10] * 4,
        "imagenet": [1.0, 0.9, 1.0, 0.9],
        "scratch": [0.6, 0.5, 0.7, 0.6],
    }
    assert out["n_images"] == 40 and out["vote"]["a_only"] == 16 - 0 and out["vote"]["b_only"] == 2
    assert "4-fold cross-validation on 40 images" in out["verdict"] and "Transfer beats scratch" in out["verdict"]

    from paddle_dx.studies.pair_report import fold_section

    text = "\n".join(fold_section(out["folds"]))
    assert "| 2 | 10 | 90.00 | 50.00 |" in text and "| mean | - | 95.00 | 60.00 |" in text
    assert f"| sd | - | {100 * np.std([1.0, 0.9, 1.0, 0.9], ddof=1):.2f} |" in text


def test_a_fold_whose_loss_diverged_marks_its_whole_arm_collapsed():
    bad = {"training loss became nan (step 3)"}
    pair = {
        "imagenet": [pooled_arm("imagenet_s1_cv2", [1.0, 1.0], fold_causes=[None, *bad])],
        "scratch": [pooled_arm("scratch_s1_cv2", [0.5, 0.5], wrong=range(10, 20))],
    }
    out = compare_pair(pair, CLASSES, n_resamples=50)
    assert out["seeds"][0]["imagenet"]["collapsed"] == "fold 2: training loss became nan (step 3)"
    assert out["vote"] is None and out["seeds"][0]["paired"] is None


def test_the_lung_study_compares_its_pair_by_folds_every_image_tested_once(tmp_path):
    """reproduce --folds 3 on 36 synthetic crops: fold lists that test every image once, validate on
    another fold, and the report's per-fold table over the pooled out-of-fold predictions."""
    classes = ("nodule_ge3mm", "nodule_lt3mm", "non_nodule")
    images, _ = make_tiny_dataset(tmp_path / "data", per_class=12, size=32, classes=classes)
    lenet = ["Arch.name=LeNet5", "Global.image_shape=[3, 32, 32]", "Global.epochs=1", "Global.use_visualdl=false"]
    path = reproduce(
        "lung_nodule", images, tmp_path / "out", seed=1, overrides=lenet, n_resamples=50, seeds=1, folds=3,
        ignore_groups=True, pair_epochs=1,
    )  # fmt: skip
    root = path.parent
    tested = []
    for k in (1, 2, 3):
        lists = {
            n: (root / "splits_folds" / f"fold_{k}" / f"{n}_list.txt").read_text().splitlines()
            for n in ("train", "val", "test")
        }
        assert not set(lists["train"]) & set(lists["val"]) and not set(lists["val"]) & set(lists["test"])
        assert not set(lists["train"]) & set(lists["test"]) and len(sum(lists.values(), [])) == 36
        nxt = (root / "splits_folds" / f"fold_{k % 3 + 1}" / "test_list.txt").read_text().splitlines()
        assert lists["val"] == nxt  # fold k+1 validates fold k
        tested += lists["test"]
    assert len(tested) == len(set(tested)) == 36
    pair = json.loads((root / "report.json").read_text())["imagenet_vs_scratch"]
    assert pair["n_images"] == 36 and pair["folds"]["k"] == 3 and sum(pair["folds"]["images"]) == 36
    report = path.read_text()
    assert "### Per fold (3-fold cross-validation)" in report and "Out-of-fold predictions of all 36 images" in report
    with open(root / "predictions.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["run"] == "imagenet_s1_cv3"]
    assert sorted(r["image"] for r in rows) == sorted(line.rsplit(" ", 1)[0] for line in tested)
    fold_acc = [
        json.loads((root / "runs" / f"fold_{k}" / "imagenet_s1" / "metrics.json").read_text())["test"]["accuracy"]
        for k in (1, 2, 3)
    ]
    assert pair["folds"]["imagenet"] == pytest.approx(fold_acc)


def test_the_pair_keeps_its_own_schedule_and_takes_the_pair_epochs_last():
    from paddle_dx.studies.reproduce import pair_overrides

    given = ["Global.image_shape=[3, 128, 128]", "Stages=[{name: a, epochs: 5}]", "Global.epochs=10"]
    assert pair_overrides(given, 6) == ["Global.image_shape=[3, 128, 128]", "Global.epochs=10", "Global.epochs=6"]
    assert pair_overrides(given[:1]) == given[:1]


def test_a_rare_class_keeps_a_training_image_in_every_fold(tmp_path):
    """LIDC's 53 crops hold 2 of class 0: when fold k tests one and fold k+1 holds the other, that
    one trains instead of validating (else the fold's training would stop: a class without images)."""
    from paddle_dx.studies.pair_folds import fold_splits
    from paddle_dx.studies.splits import SplitInfo

    classes = ["rare", "a", "b"]
    images, _ = make_tiny_dataset(tmp_path / "data", per_class=10, size=32, classes=tuple(classes))
    for extra in sorted((images / "rare").iterdir())[2:]:
        extra.unlink()
    lists = tmp_path / "splits"
    lists.mkdir()
    rows = [f"{c}/{f.name} {i}\n" for i, c in enumerate(classes) for f in sorted((images / c).iterdir())]
    for name, part in (("train", rows[::2]), ("val", rows[1::2]), ("test", [])):
        (lists / f"{name}_list.txt").write_text("".join(part))
    split = SplitInfo(str(images), str(lists), classes, {})
    seen_rare_tested = 0
    for fold in fold_splits(split, 5, 1, tmp_path / "folds"):
        assert fold.counts["train"]["rare"] >= 1, fold.counts
        seen_rare_tested += fold.counts["test"]["rare"]
        assert sum(sum(c.values()) for c in fold.counts.values()) == 22
    assert seen_rare_tested == 2
