"""tools/split_dataset.py: stratified, grouped, deterministic splits and the leakage warning."""
import logging
import runpy
import shutil
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from paddle_dx.data.list_file import read_label_list, read_list_file
from paddle_dx.data.split import group_ids, split_indices, write_split
from paddle_dx.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def write_tree(root, counts, size=8, seed=0, name="img_{i:03d}.png"):
    """``root/<class>/...png`` with ``counts[class]`` images of random (distinct) content."""
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / cls / name.format(i=i, cls=cls)), rng.integers(0, 255, (size, size, 3), np.uint8))
    return root


def read_split(lists):
    return {s: [line.split() for line in (lists / f"{s}_list.txt").read_text().splitlines()]
            for s in ("train", "val", "test")}


def split_tool(monkeypatch, *args):
    """Run tools/split_dataset.py in this process (a subprocess would pay Paddle's import again)."""
    monkeypatch.setattr(sys, "argv", ["split_dataset.py", *map(str, args)])
    runpy.run_path(str(REPO / "tools" / "split_dataset.py"), run_name="__main__")


def test_cli_writes_stratified_lists_and_label_list(tmp_path, monkeypatch, capsys):
    images = write_tree(tmp_path / "images", {"polyp": 30, "normal": 60, "ulcer": 15})
    split_tool(monkeypatch, "--image-root", images, "--out", tmp_path / "lists", "--ratios", 6, 2, 2)
    out = capsys.readouterr().out
    assert "train" in out and "wrote" in out
    # label ids follow sorted folder names
    assert read_label_list(tmp_path / "lists" / "label_list.txt") == ["normal", "polyp", "ulcer"]
    splits = read_split(tmp_path / "lists")
    assert sum(len(v) for v in splits.values()) == 105
    all_paths = [p for rows in splits.values() for p, _ in rows]
    assert len(set(all_paths)) == 105  # every image exactly once
    expected = {"train": 0.6, "val": 0.2, "test": 0.2}
    for split, rows in splits.items():
        counts = Counter(int(label) for _, label in rows)
        for label, total in enumerate((60, 30, 15)):
            assert counts[label] == pytest.approx(total * expected[split], abs=1)  # stratified
        for path, label in rows:
            assert path.split("/")[0] == ["normal", "polyp", "ulcer"][int(label)]
    # the lists load as PaddleClas list files relative to the image root
    samples = read_list_file(tmp_path / "lists" / "train_list.txt", images, 3)
    assert all(Path(p).is_file() for p, _ in samples)


def test_classes_option_fixes_the_label_order(tmp_path, monkeypatch):
    images = write_tree(tmp_path / "images", {"lesion": 6, "normal": 6})
    split_tool(monkeypatch, "--image-root", images, "--out", tmp_path / "lists", "--classes", "normal,lesion")
    assert read_label_list(tmp_path / "lists" / "label_list.txt") == ["normal", "lesion"]
    for rows in read_split(tmp_path / "lists").values():
        assert all((path.startswith("normal/")) == (label == "0") for path, label in rows)
    with pytest.raises(SystemExit) as exit_info:  # a missing class folder: one line, exit code 2
        split_tool(monkeypatch, "--image-root", images, "--out", tmp_path / "l2", "--classes", "normal,tumour")
    assert exit_info.value.code == 2


def test_same_seed_same_lists_other_seed_other_lists(tmp_path):
    images = write_tree(tmp_path / "images", {"a": 25, "b": 25})
    for name, seed in (("one", 1), ("two", 1), ("three", 2)):
        write_split(images, tmp_path / name, seed=seed)
    for split in ("train", "val", "test"):
        one, two = ((tmp_path / d / f"{split}_list.txt").read_bytes() for d in ("one", "two"))
        assert one == two
    assert read_split(tmp_path / "one") != read_split(tmp_path / "three")
    # file-system listing order does not matter: a copy made in reverse order splits the same
    copy = tmp_path / "copy"
    for cls in ("b", "a"):
        (copy / cls).mkdir(parents=True)
        for f in sorted((images / cls).iterdir(), reverse=True):
            shutil.copy(f, copy / cls / f.name)
    write_split(copy, tmp_path / "four", seed=1)
    assert read_split(tmp_path / "four") == read_split(tmp_path / "one")


def test_group_regex_keeps_each_patient_on_one_side(tmp_path, monkeypatch):
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    patients = {"benign": range(0, 12), "malignant": range(12, 24)}
    for cls, ids in patients.items():
        (root / cls).mkdir(parents=True)
        for pid in ids:
            for k in range(int(rng.integers(2, 5))):
                cv2.imwrite(str(root / cls / f"patient{pid:03d}_img{k}.png"), rng.integers(0, 255, (8, 8, 3), np.uint8))
    split_tool(monkeypatch, "--image-root", root, "--out", tmp_path / "lists", "--group-regex", r"patient(\d+)_")
    side = {}
    for split, rows in read_split(tmp_path / "lists").items():
        assert {label for _, label in rows} == {"0", "1"}  # still stratified: both classes everywhere
        for path, _ in rows:
            patient = Path(path).name.split("_")[0]
            assert side.setdefault(patient, split) == split, f"{patient} is in {side[patient]} and {split}"
    assert set(side.values()) == {"train", "val", "test"}


def test_group_regex_that_does_not_match_names_the_file(tmp_path):
    images = write_tree(tmp_path / "images", {"a": 3, "b": 3})
    with pytest.raises(DataError, match=r"does not match file name 'img_000.png'"):
        write_split(images, tmp_path / "lists", group_regex=r"patient(\d+)")
    assert group_ids(["x/p1_a.png", "y/p1_b.png", "y/p2_a.png"], r"(p\d+)_").tolist() == ["p1", "p1", "p2"]


def test_duplicate_content_across_splits_is_reported_with_file_names(tmp_path, caplog):
    images = write_tree(tmp_path / "images", {"a": 20, "b": 20})
    for i in range(1, 8):  # the same picture saved under 8 names: some must land in different splits
        shutil.copy(images / "a" / "img_000.png", images / "a" / f"copy_{i}.png")
    with caplog.at_level(logging.WARNING, logger="paddle_dx.data.split"):
        _, duplicates = write_split(images, tmp_path / "lists", seed=0)
    assert len(duplicates) == 1
    digest, places = duplicates[0]
    assert len({split for split, _ in places}) > 1
    text = caplog.text
    assert "same image content" in text and digest[:12] in text
    for _, path in places:
        assert Path(path).name in text


def test_ratios_are_validated_and_zero_test_fraction_is_allowed():
    labels = np.array([0] * 10 + [1] * 10)
    parts = split_indices(labels, ratios=(8, 2, 0), seed=0)
    assert len(parts["test"]) == 0 and len(parts["train"]) == 16 and len(parts["val"]) == 4
    with pytest.raises(DataError, match="--ratios"):
        split_indices(labels, ratios=(0, 1, 1))


def test_class_folder_without_images_is_an_error(tmp_path):
    images = write_tree(tmp_path / "images", {"a": 4})
    (images / "empty").mkdir()
    with pytest.raises(DataError, match="class 'empty' has no images"):
        write_split(images, tmp_path / "lists")


def test_empty_image_files_are_left_out_with_a_warning_naming_them(tmp_path, caplog):
    images = write_tree(tmp_path / "images", {"a": 10, "b": 10})
    (images / "a" / "broken_copy.png").write_bytes(b"")
    (images / "b" / "deep").mkdir()
    (images / "b" / "deep" / "zero.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        counts, _ = write_split(images, tmp_path / "lists")
    listed = [p for rows in read_split(tmp_path / "lists").values() for p, _ in rows]
    assert len(listed) == 20 and "a/broken_copy.png" not in listed and "b/deep/zero.jpg" not in listed
    assert sum(sum(c.values()) for c in counts.values()) == 20
    warning = [r.getMessage() for r in caplog.records if "empty (0-byte)" in r.getMessage()]
    assert len(warning) == 1 and "2 empty" in warning[0]
    assert "a/broken_copy.png" in warning[0] and "b/deep/zero.jpg" in warning[0]


def test_a_class_of_only_empty_files_has_no_images(tmp_path):
    images = write_tree(tmp_path / "images", {"a": 6})
    (images / "b").mkdir()
    (images / "b" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="class 'b' has no images"):
        write_split(images, tmp_path / "lists")
