"""Every study split is free of exact duplicates, on the real brain MRI data (pixel-identical
copies saved as different JPEG files, which a byte hash cannot see)."""

from collections import defaultdict
from pathlib import Path

import pytest

from paddle_dx.data.duplicates import image_fingerprints
from paddle_dx.data.split import SPLIT_NAMES, collect_images, cross_split_duplicates, split_indices
from paddle_dx.studies.catalog import get_study
from paddle_dx.studies.splits import split_study_data
from paddle_dx.utils.hashing import file_sha256

SEED = 42  # reproduce()'s default


@pytest.fixture(scope="module")
def brain(shared_datasets):
    """(image root, class folders, {path: pixel hash}) of the brain study's data."""
    data = shared_datasets / "brain_tumor_mri"
    folders = get_study("brain").class_folders(data)
    paths = [data / p for p in collect_images(data, folders)[0]]
    return data, folders, dict(zip(paths, image_fingerprints(paths)[0]))


def test_the_data_has_pixel_identical_copies_in_different_files(brain):
    _, _, pixels = brain
    by_pixels = defaultdict(list)
    for path, digest in pixels.items():
        by_pixels[digest].append(path)
    copies = [files for files in by_pixels.values() if len(files) > 1]
    assert len(copies) >= 20  # 34 groups of 2 among the 660 tumour images when this test was written
    assert all(len({file_sha256(f) for f in files}) == len(files) for files in copies)  # no two share bytes


def test_study_split_has_no_pixel_duplicate_across_splits_that_bytes_would_miss(brain, tmp_path):
    data, folders, pixels = brain
    study = get_study("brain")
    split = split_study_data(data, folders, study.ratios, SEED, tmp_path / "splits", group_regex=study.group_regex)
    files = {
        s: [
            data / line.rsplit(maxsplit=1)[0]
            for line in (Path(split.lists_dir) / f"{s}_list.txt").read_text().splitlines()
        ]
        for s in SPLIT_NAMES
    }
    assert sum(map(len, files.values())) == len(pixels)
    assert cross_split_duplicates(files, pixels) == []
    # the same ratios and seed without content groups (the old split) leak copies across splits,
    # and the old byte-hash check reports none of them
    paths, labels, _ = collect_images(data, folders)
    old = {s: [data / paths[i] for i in idx] for s, idx in split_indices(labels, study.ratios, SEED).items()}
    assert len(cross_split_duplicates(old, pixels)) >= 5  # 17 of the 34 groups when this test was written
    assert cross_split_duplicates(old, {p: file_sha256(p) for p in pixels}) == []
