"""tools/split_dataset.py: stratified, grouped, deterministic splits; copies kept on one side."""

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
from paddle_dx.utils.hashing import file_sha256

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
    return {
        s: [line.split() for line in (lists / f"{s}_list.txt").read_text().splitlines()]
        for s in ("train", "val", "test")
    }


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


def save_same_pixels(pixels, *paths):
    """The same pixels as different files: PNGs at other compression levels, or BMP."""
    for level, path in enumerate(paths):
        params = [cv2.IMWRITE_PNG_COMPRESSION, level * 3 % 10] if str(path).endswith(".png") else []
        cv2.imwrite(str(path), pixels, params)


def sides(lists):
    """{path: split} from a written split."""
    return {path: split for split, rows in read_split(lists).items() for path, _ in rows}


def test_pixel_identical_files_stay_on_one_side(tmp_path, monkeypatch, capsys):
    images = write_tree(tmp_path / "images", {"a": 20, "b": 20})
    pixels = cv2.imread(str(images / "a" / "img_000.png"))
    copies = [images / "a" / f"copy_{i}.png" for i in range(1, 6)] + [images / "a" / "copy_bmp.bmp"]
    save_same_pixels(pixels, *copies)
    assert len({file_sha256(p) for p in [images / "a" / "img_000.png", *copies]}) > 2  # bytes differ
    split_tool(monkeypatch, "--image-root", images, "--out", tmp_path / "lists", "--seed", 0)
    assert "kept 1 group(s) of identical images (7 files) each on one side" in capsys.readouterr().out
    where = sides(tmp_path / "lists")
    assert len(where) == 46
    assert len({where[f"a/{p.name}"] for p in copies} | {where["a/img_000.png"]}) == 1
    # and the split still has all three parts, stratified
    assert all({label for _, label in rows} == {"0", "1"} for rows in read_split(tmp_path / "lists").values())


def test_content_groups_compose_with_patient_groups(tmp_path):
    root = tmp_path / "images"
    rng = np.random.default_rng(1)
    for cls, ids in {"benign": range(0, 10), "malignant": range(10, 20)}.items():
        (root / cls).mkdir(parents=True)
        for pid in ids:
            for k in range(2):
                cv2.imwrite(str(root / cls / f"patient{pid:03d}_img{k}.png"), rng.integers(0, 255, (8, 8, 3), np.uint8))
    # patient 1's picture re-saved under patients 5 and 7: those three patients are now one group
    pixels = cv2.imread(str(root / "benign" / "patient001_img0.png"))
    save_same_pixels(pixels, root / "benign" / "patient005_img2.png", root / "benign" / "patient007_img2.png")
    for seed in range(4):
        _, copies = write_split(root, tmp_path / f"lists{seed}", seed=seed, group_regex=r"patient(\d+)_")
        assert copies == [["benign/patient001_img0.png", "benign/patient005_img2.png", "benign/patient007_img2.png"]]
        where = sides(tmp_path / f"lists{seed}")
        patients = {p for p in where if p.split("_")[0].endswith(("001", "005", "007"))}
        assert len(patients) == 8 and len({where[p] for p in patients}) == 1


def test_same_picture_with_two_labels_is_warned(tmp_path, caplog):
    images = write_tree(tmp_path / "images", {"a": 6, "b": 6})
    save_same_pixels(cv2.imread(str(images / "a" / "img_000.png")), images / "b" / "conflict.png")
    with caplog.at_level(logging.WARNING, logger="paddle_dx.data.split"):
        write_split(images, tmp_path / "lists", ratios=(2, 1, 1))
    assert "different labels: a/img_000.png, b/conflict.png" in caplog.text


def smooth_images(n, seed, size=64):
    """Random 12 x 12 patterns enlarged: pHash sees their shapes, not pixel noise."""
    rng = np.random.default_rng(seed)
    return [
        cv2.GaussianBlur(cv2.resize(rng.integers(0, 255, (12, 12, 3), np.uint8), (size, size)), (9, 9), 1)
        for _ in range(n)
    ]


def test_near_duplicates_flag_keeps_altered_copies_together(tmp_path, monkeypatch, capsys):
    root = tmp_path / "images"
    rng = np.random.default_rng(3)
    for cls, seed in (("a", 10), ("b", 20)):
        (root / cls).mkdir(parents=True)
        for i, img in enumerate(smooth_images(16, seed)):
            cv2.imwrite(str(root / cls / f"img_{i:02d}.png"), img)
            noisy = np.clip(img.astype(int) + rng.integers(-2, 3, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / cls / f"img_{i:02d}_noisy.png"), noisy)  # other pixels, same picture
    pairs = [(f"{c}/img_{i:02d}.png", f"{c}/img_{i:02d}_noisy.png") for c in "ab" for i in range(16)]
    split_tool(monkeypatch, "--image-root", root, "--out", tmp_path / "exact", "--seed", 0)
    assert "kept" not in capsys.readouterr().out  # by default only identical pixels are grouped
    where = sides(tmp_path / "exact")
    assert any(where[x] != where[y] for x, y in pairs)
    split_tool(monkeypatch, "--image-root", root, "--out", tmp_path / "near", "--seed", 0, "--near-duplicates", 4)
    assert "kept 32 group(s) of identical or near-identical images (64 files)" in capsys.readouterr().out
    where = sides(tmp_path / "near")
    assert all(where[x] == where[y] for x, y in pairs) and set(where.values()) == {"train", "val", "test"}
    with pytest.raises(SystemExit) as exit_info:
        split_tool(monkeypatch, "--image-root", root, "--out", tmp_path / "bad", "--near-duplicates", 64)
    assert exit_info.value.code == 2


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


def test_symlinked_sub_folders_of_a_class_are_collected(tmp_path):
    from paddle_dx.data.split import collect_images
    from paddle_dx.data.synthetic import write_demo_dataset

    images = write_demo_dataset(tmp_path / "images", per_class=3, size=16, seed=0, classes=("normal", "lesion"))
    (tmp_path / "more").mkdir()
    for p in sorted((images / "lesion").iterdir())[:2]:
        (tmp_path / "more" / f"extra_{p.name}").write_bytes(p.read_bytes())
    (images / "lesion" / "linked").symlink_to(tmp_path / "more")
    (images / "lesion" / "loop").symlink_to(images / "lesion")
    paths, labels = collect_images(images)[:2]
    assert sorted(p for p in paths if "extra_" in p) == sorted(
        f"lesion/linked/extra_{p.name}" for p in sorted((images / "lesion").glob("*.png"))[:2]
    )
    assert len(paths) == 8 and int((labels == 0).sum()) == 5  # classes sorted: lesion = 0


# ---- --write-config and a null Arch.class_num -------------------------------------------


def test_write_config_gives_a_config_that_trains_without_path_overrides(tmp_path, monkeypatch, capsys):
    from paddle_dx.config import load_config

    write_tree(tmp_path / "images", {"polyp": 6, "normal": 6, "ulcer": 6}, size=20)
    monkeypatch.chdir(tmp_path)
    split_tool(
        monkeypatch,
        "--image-root",
        "images",
        "--out",
        "lists",
        "--write-config",
        "runs/my.yaml",
        "--classes",
        "ulcer,normal,polyp",
    )
    assert "train with: python tools/train.py -c runs/my.yaml" in capsys.readouterr().out
    config = load_config("runs/my.yaml")
    assert config["Arch"]["class_num"] == 3 and config["Global"]["class_names"] == ["ulcer", "normal", "polyp"]
    for mode, split in (("Train", "train"), ("Eval", "val"), ("Test", "test")):
        ds = config["DataLoader"][mode]["dataset"]
        assert ds["image_root"] == "images" and ds["cls_label_path"] == f"lists/{split}_list.txt"
    demo = load_config(REPO / "configs" / "demo.yaml")  # everything else comes from the demo config
    assert (
        config["Arch"]["name"] == demo["Arch"]["name"]
        and config["Global"]["image_shape"] == demo["Global"]["image_shape"]
    )
    assert (
        config["DataLoader"]["Train"]["dataset"]["transform_ops"]
        == demo["DataLoader"]["Train"]["dataset"]["transform_ops"]
    )


def test_write_config_from_a_shipped_study_config_and_without_a_test_split(tmp_path, monkeypatch):
    from paddle_dx.config import load_config

    images = write_tree(tmp_path / "images", {"normal": 8, "pathological": 8}, size=20)
    split_tool(
        monkeypatch,
        "--image-root",
        images,
        "--out",
        tmp_path / "lists",
        "--ratios",
        8,
        2,
        0,
        "--write-config",
        tmp_path / "eso.yaml",
        "--from",
        "esophagus_resnet50",
    )
    config = load_config(tmp_path / "eso.yaml")
    assert config["Arch"]["name"] == "ResNet50" and config["Metric"]["best_metric"] == "auc"
    assert config["Global"]["class_names"] == ["normal", "pathological"]
    assert config["DataLoader"]["Test"]["dataset"]["cls_label_path"] == ""  # no empty Test list to trip on


def test_write_config_refuses_an_unknown_base_before_splitting(tmp_path, monkeypatch, capsys):
    images = write_tree(tmp_path / "images", {"a": 4, "b": 4})
    with pytest.raises(SystemExit) as exit_info:
        split_tool(
            monkeypatch,
            "--image-root",
            images,
            "--out",
            tmp_path / "lists",
            "--write-config",
            tmp_path / "x.yaml",
            "--from",
            "esophagus_resnet5",
        )
    assert exit_info.value.code == 2
    assert "--from esophagus_resnet5: no such config file, nor a shipped config" in capsys.readouterr().err
    assert not (tmp_path / "lists").exists()


def test_class_num_left_out_is_the_label_list_size_and_the_run_records_it(tmp_path):
    from conftest import make_tiny_dataset, tiny_config

    from paddle_dx.config import load_config
    from paddle_dx.engine.trainer import Trainer

    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4, classes=("a", "b", "c"))
    config = tiny_config(images, lists, tmp_path / "out", **{"Global.epochs": 1, "Arch.class_num": "null"})
    assert config["Arch"]["class_num"] == 3  # from lists/label_list.txt
    Trainer(config).fit()
    assert load_config(tmp_path / "out" / "config.yaml")["Arch"]["class_num"] == 3
    named = tiny_config(images, lists, tmp_path / "o2", **{"Arch.class_num": "null", "Global.class_names": "[x, y, z]"})
    assert named["Arch"]["class_num"] == 3


def test_class_num_without_any_class_names_is_a_clear_error(tmp_path):
    from conftest import tiny_config

    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import class_names
    from paddle_dx.errors import ConfigError

    config = tiny_config(tmp_path / "images", tmp_path / "nolists", tmp_path / "out", **{"Arch.class_num": "null"})
    assert config["Arch"]["class_num"] is None  # nothing to count yet: loading still works
    with pytest.raises(
        ConfigError,
        match=r"Arch.class_num is not set and no class names were found.*"
        r"label_list.txt at .*nolists/label_list.txt",
    ):
        class_names(DataSection.of(config, "Train"))


def test_manifest_group_id_keeps_each_group_on_one_side(tmp_path, monkeypatch, capfd):
    root = write_tree(tmp_path / "images", {"a": 20, "b": 20})
    rows = ["class,file,group_id"] + [
        f"{p.parent.name},{p.name},{p.parent.name}{int(p.stem[-3:]) // 4}" for p in sorted(root.rglob("*.png"))
    ]
    (root / "MANIFEST.csv").write_text("\n".join(rows) + "\n")
    split_tool(monkeypatch, "--image-root", root, "--out", tmp_path / "lists", "--seed", 4)
    out, err = capfd.readouterr()
    assert "keeping each group_id of MANIFEST.csv on one side (10 groups)" in out + err
    side = {}
    for split, entries in read_split(tmp_path / "lists").items():
        for rel, _ in entries:
            group = rel.split("/")[0] + str(int(Path(rel).stem[-3:]) // 4)
            assert side.setdefault(group, split) == split, rel
    assert set(side.values()) == {"train", "val", "test"}


def test_a_link_loop_in_an_image_tree_does_not_list_one_class_under_another(tmp_path, caplog):
    from paddle_dx.data.split import collect_images

    images = write_tree(tmp_path / "images", {"a": 2, "b": 2})
    (images / "a" / "loop").symlink_to(images)  # a/loop/b/... would be class b's images labelled a
    (images / "a" / "deeper").mkdir()
    (images / "a" / "deeper" / "up").symlink_to(images / "a")
    with caplog.at_level(logging.WARNING):
        paths, labels, names = collect_images(images)
    assert [(p, names[label]) for p, label in zip(paths, labels)] == [
        ("a/img_000.png", "a"),
        ("a/img_001.png", "a"),
        ("b/img_000.png", "b"),
        ("b/img_001.png", "b"),
    ]
    assert "a/loop: a link back up to" in caplog.text and "not followed" in caplog.text
    (images / "a" / "loop").unlink()
    (images / "a" / "other").symlink_to(images / "b")  # not a loop, but the same files in two classes
    with pytest.raises(
        DataError, match=r"a/other/img_000.png \(class 'a'\) and b/img_000.png \(class 'b'\) are the same"
    ):
        collect_images(images)
