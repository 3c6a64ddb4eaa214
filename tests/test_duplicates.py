"""paddle_dx.data.duplicates and the start-up scan: copies found by decoded pixels, not file bytes."""

import logging
from itertools import combinations

import cv2
import numpy as np

from paddle_dx.data.dataset import scan_images
from paddle_dx.data.duplicates import (
    image_fingerprints,
    merge_groups,
    multi_member_groups,
    near_duplicate_pairs,
    pixel_sha256,
)
from paddle_dx.data.split import cross_split_duplicates, warn_duplicates
from paddle_dx.utils.hashing import file_sha256


def test_pixel_hash_depends_on_pixels_and_shape_only():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (6, 4, 3), np.uint8)
    assert pixel_sha256(image) == pixel_sha256(image.copy())
    assert pixel_sha256(image) == pixel_sha256(np.asfortranarray(image))  # memory layout does not count
    assert pixel_sha256(image) != pixel_sha256(image.reshape(4, 6, 3))  # same bytes, other shape
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    assert pixel_sha256(image) != pixel_sha256(changed)


def test_same_pixels_in_other_files_share_a_pixel_hash_not_a_file_hash(tmp_path, caplog):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 255, (16, 16, 3), np.uint8)
    files = [tmp_path / "a.png", tmp_path / "b.bmp", tmp_path / "c.png"]
    cv2.imwrite(str(files[0]), pixels, [cv2.IMWRITE_PNG_COMPRESSION, 0])
    cv2.imwrite(str(files[1]), pixels)
    cv2.imwrite(str(files[2]), rng.integers(0, 255, (16, 16, 3), np.uint8))
    good, bad, file_hashes, pixel_hashes = scan_images([(str(f), 0) for f in files], skip_bad=False)
    assert len(good) == 3 and not bad
    assert file_hashes[str(files[0])] == file_sha256(files[0]) != file_hashes[str(files[1])]
    assert pixel_hashes[str(files[0])] == pixel_hashes[str(files[1])] != pixel_hashes[str(files[2])]
    split = {"train": [str(files[0]), str(files[2])], "val": [str(files[1])]}
    assert cross_split_duplicates(split, file_hashes) == []  # the byte check misses the copy
    duplicates = cross_split_duplicates(split, pixel_hashes)
    assert duplicates == [(pixel_hashes[str(files[0])], [("train", str(files[0])), ("val", str(files[1]))])]
    assert cross_split_duplicates(split) == duplicates  # without the scan's hashes it decodes the files itself
    with caplog.at_level(logging.WARNING, logger="paddle_dx.data.split"):
        warn_duplicates(duplicates)
    assert f"train:{files[0]}, val:{files[1]}" in caplog.text


def test_unreadable_file_is_compared_by_bytes_and_named(tmp_path, caplog):
    good, broken = tmp_path / "good.png", tmp_path / "broken.png"
    cv2.imwrite(str(good), np.zeros((4, 4, 3), np.uint8))
    broken.write_bytes(b"not an image")
    with caplog.at_level(logging.WARNING, logger="paddle_dx.data.duplicates"):
        hashes, bits, readable = image_fingerprints([good, broken], near=True)
    assert hashes[1] == "file:" + file_sha256(broken) and hashes[0] != hashes[1]
    assert readable.tolist() == [True, False] and bits.shape == (2, 64)
    assert "broken.png" in caplog.text
    # its placeholder pHash never pairs it with anything
    assert near_duplicate_pairs(bits, 64, readable).tolist() == []


def test_near_duplicate_pairs_match_a_brute_force_search_in_small_blocks():
    rng = np.random.default_rng(2)
    bits = rng.random((400, 64)) < 0.5
    for i, j in ((0, 399), (5, 6), (100, 300)):  # plant copies with 0..4 flipped bits
        bits[j] = bits[i]
        bits[j, rng.choice(64, size=int(rng.integers(0, 5)), replace=False)] ^= True
    distance = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    for limit in (0, 4, 20):
        expected = {(i, j) for i, j in combinations(range(400), 2) if distance[i, j] <= limit}
        found = near_duplicate_pairs(bits, limit, block=7)  # many row blocks, the last one short
        assert {tuple(p) for p in found.tolist()} == expected
        assert all(i < j for i, j in found.tolist())
    assert {(0, 399), (5, 6), (100, 300)} <= {tuple(p) for p in near_duplicate_pairs(bits, 4).tolist()}


def test_groups_merge_keys_and_pairs_transitively():
    content = ["h1", "h2", "h1", "h3", "h4", "h5"]
    patient = ["p1", "p2", "p3", "p3", "p4", "p5"]
    groups = merge_groups(6, [content, patient], pairs=[(4, 5)])
    # 0~2 by content, 2~3 by patient, 4~5 by a near pair; 1 alone
    assert multi_member_groups(groups) == [[0, 2, 3], [4, 5]]
    assert len(set(groups.tolist())) == 3
    assert multi_member_groups(merge_groups(3)) == []
