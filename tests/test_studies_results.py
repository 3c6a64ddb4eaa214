"""What the committed study results need: --publish copies the report and its figures (never
weights), each report says when, where and on which code it ran, --source-epochs and
--ignore-groups do what they say, and a source task never sees the target's held-out images'
group siblings."""

import json
import re

import cv2
import numpy as np
import pytest
from conftest import make_tiny_dataset

from paddle_dx.errors import DataError
from paddle_dx.studies.catalog import get_study
from paddle_dx.studies.plan import plan_source
from paddle_dx.studies.reproduce import reproduce
from paddle_dx.studies.splits import SplitInfo, held_out_images, split_source_data, split_study_data

LUNG = ("nodule_ge3mm", "nodule_lt3mm", "non_nodule")
LENET = ["Arch.name=LeNet5", "Global.image_shape=[3, 32, 32]", "Global.epochs=1"]


def one_patient_crops(tmp_path):
    images, _ = make_tiny_dataset(tmp_path / "crops", per_class=10, size=32, classes=LUNG)
    for png in sorted(images.rglob("*.png")):
        png.rename(png.with_name(f"LIDC-IDRI-0002_{png.name}"))
    return images


def test_one_patient_cannot_be_split_by_patient_and_the_error_says_what_to_do(tmp_path):
    images = one_patient_crops(tmp_path)
    with pytest.raises(DataError, match=r"1 group\(s\) of images .* at least 5.*--ignore-groups"):
        reproduce("lung_nodule", images, tmp_path / "out", quick=True, overrides=LENET, n_resamples=20)


def test_ignore_groups_runs_says_so_and_publish_copies_report_figures_and_text_files_only(tmp_path):
    images = one_patient_crops(tmp_path)
    path = reproduce(
        "lung_nodule",
        images,
        tmp_path / "out",
        quick=True,
        overrides=LENET,
        n_resamples=20,
        ignore_groups=True,
        publish_dir=tmp_path / "results",
        seeds=0,
    )
    report = path.read_text()
    assert "Patients NOT kept whole" in report and "not a classifier result" in report
    assert "--ignore-groups" in report and f"--publish {tmp_path / 'results'}" in report
    published = tmp_path / "results" / "lung_nodule"
    files = sorted(p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file())
    assert files[:2] == ["figures/LeNet5_confusion.png", "figures/LeNet5_curves.png"]
    assert {"report.md", "report.json"} <= set(files)
    text_files = ("report.md", "report.json", "predictions.csv", "image_sha256.txt")
    assert all(
        f in text_files
        or (f.startswith("figures/") and f.endswith(".png"))
        or (f.startswith("splits/") and f.endswith(".txt"))
        for f in files
    )
    assert {"predictions.csv", "image_sha256.txt", "splits/test_list.txt"} <= set(files)
    for png in published.glob("figures/*.png"):
        assert cv2.imread(str(png)) is not None, png
    # the test-image grids show the data's images: made locally, never published
    assert (path.parent / "figures" / "LeNet5_test_grid.png").is_file()
    assert not any("test_grid" in f for f in files)
    text = (published / "report.md").read_text()
    assert "test_grid.png)" not in text and "not committed, it shows the data's own images" in text
    assert text.replace("](figures/", "") != report.replace("](figures/", "")
    # every other figure the report links is published beside it
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 3
    for link in links:
        assert (published / link).is_file(), link

    meta = json.loads((published / "report.json").read_text())
    assert meta["machine"]["usable_cores"] >= 1 and meta["machine"]["cpu"]
    assert meta["machine"]["paddle_dx_commit"]
    assert meta["wall_seconds"]["study"] > 0 and set(meta["wall_seconds"]) == {"study", "ResNet50", "VGG16", "LeNet5"}
    assert "## This run: time and machine" in report and "| usable_cores |" in report


def test_source_epochs_win_for_the_source_run_and_target_stages_stay_with_the_target(tmp_path):
    study = get_study("gastric")
    split = SplitInfo(str(tmp_path), str(tmp_path / "lists"), ["a", "b"], {})
    target = type("Run", (), {"config": str(study.config_path("ResNet50")), "arch": "ResNet50"})()
    stages = "Stages=[{name: s1, epochs: 1, freeze: backbone}, {name: s2, epochs: 1, freeze: none}]"
    default = plan_source(target, split, tmp_path, 1, False, extra=[stages])
    assert "Global.epochs=20" in default.overrides and stages not in default.overrides  # 10 + 10 of the config
    assert default.overrides.index("Stages=null") >= 0
    chosen = plan_source(target, split, tmp_path, 1, False, extra=[stages, "Global.epochs=7"], epochs=3)
    assert "Global.epochs=3" in chosen.overrides and "Global.epochs=7" not in chosen.overrides
    plain = plan_source(target, split, tmp_path, 1, False, extra=["Global.epochs=7"])
    assert plain.overrides[-1] == "Global.epochs=7"  # a user's override still wins without --source-epochs


def _manifest(root, group_of):
    lines = ["class,file,sha256,group_id"] + [
        f"{p.parent.name},{p.name},x,{group_of(p)}" for p in sorted(root.rglob("*.png"))
    ]
    (root / "MANIFEST.csv").write_text("\n".join(lines) + "\n")


def test_manifest_groups_stay_on_one_side_and_out_of_the_source_task(tmp_path):
    images, _ = make_tiny_dataset(tmp_path / "tiles", per_class=20, size=16, classes=("lung_n", "lung_aca"))
    _manifest(images, lambda p: f"{p.parent.name}:{int(p.stem[-3:]) // 2}")  # two augmentations per tile
    split = split_study_data(images, ["lung_n", "lung_aca"], (6, 2, 2), 3, tmp_path / "lists")
    assert "the `group_id` of the data's MANIFEST.csv" in split.grouping
    side = {}
    for name in ("train", "val", "test"):
        for line in (tmp_path / "lists" / f"{name}_list.txt").read_text().splitlines():
            rel = line.split()[0]
            group = f"{rel.split('/')[0]}:{int(rel.split('/')[1].split('.')[0][-3:]) // 2}"
            assert side.setdefault(group, name) == name, f"group {group} in {side[group]} and {name}"
    held = held_out_images(split)
    source = split_source_data(images, held, 3, tmp_path / "source")
    assert source.excluded == 2 * len(held.groups)  # each held-out image and its sibling
    trained = (tmp_path / "source" / "train_list.txt").read_text() + (tmp_path / "source" / "val_list.txt").read_text()
    for line in trained.splitlines():
        rel = line.split()[0]
        assert f"{rel.split('/')[0]}:{int(rel.split('/')[1].split('.')[0][-3:]) // 2}" not in held.groups


def test_a_listed_image_missing_from_the_manifest_is_an_error(tmp_path):
    images, _ = make_tiny_dataset(tmp_path / "tiles", per_class=6, size=16, classes=("a", "b"))
    _manifest(images, lambda p: p.stem)
    lines = (images / "MANIFEST.csv").read_text().splitlines()
    (images / "MANIFEST.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match=r"MANIFEST.csv: no group_id for 1 listed image"):
        split_study_data(images, ["a", "b"], (6, 2, 2), 3, tmp_path / "lists")


def test_near_duplicates_of_held_out_images_are_left_out_of_the_source_task(tmp_path):
    images, _ = make_tiny_dataset(tmp_path / "target", per_class=10, size=32, classes=("a", "b"))
    split = split_study_data(images, ["a", "b"], (6, 2, 2), 3, tmp_path / "lists")
    source = tmp_path / "source"
    held_files = [
        l.split()[0] for n in ("val", "test") for l in (tmp_path / "lists" / f"{n}_list.txt").read_text().splitlines()
    ]
    for i, rel in enumerate(held_files):  # a slightly brighter copy of every held-out image
        img = cv2.imread(str(images / rel)).astype(np.int16) + 3
        (source / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(source / f"c{i % 2}" / f"copy_{i}.png"), np.clip(img, 0, 255).astype(np.uint8))
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(source / f"c{i % 2}" / f"other_{i}.png"), rng.integers(0, 255, (32, 32, 3), np.uint8))
    exact = split_source_data(source, held_out_images(split), 3, tmp_path / "s1")
    assert exact.excluded == 0  # not pixel-identical
    near = split_source_data(source, held_out_images(split, near_duplicates=6), 3, tmp_path / "s2")
    assert near.excluded == len(held_files)


def test_a_training_subset_holds_every_class_even_a_rare_one(tmp_path):
    from paddle_dx.studies.splits import train_subset

    lists = tmp_path / "lists"
    lists.mkdir()
    labels = [0] + [1] * 15 + [2] * 15  # one crop of the rare class, as one LIDC patient gives
    (lists / "train_list.txt").write_text("".join(f"c{y}/{i}.png {y}\n" for i, y in enumerate(labels)))
    split = SplitInfo(str(tmp_path), str(lists), ["a", "b", "c"], {})
    for size in (3, 10, 20):
        chosen = [int(l.split()[1]) for l in train_subset(split, size, seed=4).read_text().splitlines()]
        assert len(chosen) == size and set(chosen) == {0, 1, 2}, (size, chosen)
    small = set(train_subset(split, 10, 4).read_text().splitlines())
    assert small <= set(train_subset(split, 20, 4).read_text().splitlines())  # nested: a curve adds data


@pytest.mark.parametrize("command", ["reproduce", "split"])
def test_near_duplicates_out_of_range_is_refused_by_both_commands(tmp_path, command):
    import importlib

    main = importlib.import_module(f"paddle_dx.commands.{command}").main
    args = (
        ["--study", "brain", "--data", str(tmp_path)]
        if command == "reproduce"
        else ["--image-root", str(tmp_path), "--out", str(tmp_path / "lists")]
    )
    with pytest.raises(DataError, match=r"--near-duplicates must be between 0 and 63 bits, got 64"):
        main(args + ["--near-duplicates", "64"])
