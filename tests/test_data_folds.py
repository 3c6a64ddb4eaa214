"""Cross-validation folds (paddle_dx/data/folds.py): the config's Train + Eval images pooled,
each in exactly one fold, stratified, identical pixels and a patient's images in one fold."""

import cv2
import numpy as np
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.data.folds import make_folds, write_fold_lists
from paddle_dx.data.list_file import read_list_file
from paddle_dx.errors import DataError


def listed(lists, *names):
    return {line.rsplit(" ", 1)[0] for n in names for line in (lists / n).read_text().splitlines()}


@pytest.fixture
def data(tmp_path):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=8)
    return images, lists, tiny_config(images, lists, tmp_path / "out")


def test_pooled_train_and_val_images_are_each_in_one_stratified_fold(data):
    images, lists, config = data
    plan = make_folds(config, folds=3, seed=1)
    assert set(plan.paths) == listed(lists, "train_list.txt", "val_list.txt")  # Test held out
    assert not set(plan.paths) & listed(lists, "test_list.txt")
    assert sorted(np.bincount(plan.fold).tolist()) == [4, 4, 4]
    for k in range(3):
        held = plan.labels[plan.fold == k]
        assert set(held.tolist()) == {0, 1}  # both classes in every held-out fold
    assert set(make_folds(config, folds=3, seed=1, include_test=True).paths) == listed(
        lists, "train_list.txt", "val_list.txt", "test_list.txt"
    )


def test_identical_pixels_in_two_lists_land_in_one_fold(data):
    images, lists, config = data
    first = (lists / "train_list.txt").read_text().splitlines()[0].rsplit(" ", 1)
    pixels = cv2.imread(str(images / first[0]))
    copy = images / first[0].split("/")[0] / "copy_other_bytes.png"
    cv2.imwrite(str(copy), pixels, [cv2.IMWRITE_PNG_COMPRESSION, 0])  # other file bytes, same pixels
    assert copy.read_bytes() != (images / first[0]).read_bytes()
    with open(lists / "val_list.txt", "a") as fh:
        fh.write(f"{copy.relative_to(images).as_posix()} {first[1]}\n")
    for seed in range(4):
        plan = make_folds(config, folds=3, seed=seed)
        fold_of = dict(zip(plan.paths, plan.fold))
        assert fold_of[first[0]] == fold_of[copy.relative_to(images).as_posix()]
        assert [sorted(c) for c in plan.copies] == [sorted([first[0], copy.relative_to(images).as_posix()])]


def test_group_regex_keeps_each_patient_in_one_fold(data):
    images, lists, config = data
    patient = {p: f"p{i % 4}" for i, p in enumerate(sorted(listed(lists, "train_list.txt", "val_list.txt")))}
    for name in ("train_list.txt", "val_list.txt"):
        lines = []
        for line in (lists / name).read_text().splitlines():
            path, label = line.rsplit(" ", 1)
            renamed = path.replace("/", f"/{patient[path]}_", 1)
            (images / path).rename(images / renamed)
            lines.append(f"{renamed} {label}\n")
        (lists / name).write_text("".join(lines))
    plan = make_folds(config, folds=2, seed=0, group_regex=r"^(p\d+)_")
    folds_of_patient = {}
    for path, fold in zip(plan.paths, plan.fold):
        folds_of_patient.setdefault(path.split("/")[1].split("_")[0], set()).add(int(fold))
    assert len(folds_of_patient) == 4 and all(len(f) == 1 for f in folds_of_patient.values())
    with pytest.raises(DataError, match="4 group.*cannot be dealt into 5 folds"):
        make_folds(config, folds=5, seed=0, group_regex=r"^(p\d+)_")


def test_fold_lists_are_written_and_a_different_plan_is_refused(data, tmp_path):
    images, lists, config = data
    plan = make_folds(config, folds=2, seed=3)
    folders = write_fold_lists(plan, tmp_path / "cv" / "lists", ["normal", "lesion"])
    assert [f.name for f in folders] == ["fold_1", "fold_2"]
    for k, folder in enumerate(folders):
        train = read_list_file(folder / "train_list.txt", images, 2)
        val = read_list_file(folder / "val_list.txt", images, 2)
        assert len(val) == (plan.fold == k).sum() and len(train) + len(val) == len(plan.paths)
        assert not {p for p, _ in train} & {p for p, _ in val}
        assert (folder / "label_list.txt").read_text() == "0 normal\n1 lesion\n"
    write_fold_lists(plan, tmp_path / "cv" / "lists", ["normal", "lesion"])  # same plan again: accepted
    with pytest.raises(DataError, match=r"fold_1/train_list.txt differs from the fold now made"):
        write_fold_lists(make_folds(config, folds=2, seed=4), tmp_path / "cv" / "lists", ["normal", "lesion"])


def test_an_image_with_two_labels_in_two_lists_is_refused(data):
    images, lists, config = data
    path, label = (lists / "train_list.txt").read_text().splitlines()[0].rsplit(" ", 1)
    with open(lists / "val_list.txt", "a") as fh:
        fh.write(f"{path} {1 - int(label)}\n")
    with pytest.raises(DataError, match="has label .* an image belongs to one class"):
        make_folds(config, folds=2)


def test_a_test_image_also_in_the_pool_is_warned_about(data, caplog):
    images, lists, config = data
    held = (lists / "test_list.txt").read_text().splitlines()[0].rsplit(" ", 1)
    copy = images / held[0].split("/")[0] / "test_copy.png"
    cv2.imwrite(str(copy), cv2.imread(str(images / held[0])), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    with open(lists / "train_list.txt", "a") as fh:
        fh.write(f"{copy.relative_to(images).as_posix()} {held[1]}\n")
    with caplog.at_level("WARNING", logger="paddle_dx.data.split"):
        make_folds(config, folds=2)
    warned = [r.getMessage() for r in caplog.records if "same image content" in r.getMessage()]
    assert len(warned) == 1 and "cv:" in warned[0] and f"test:{images / held[0]}" in warned[0]
