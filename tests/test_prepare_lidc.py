"""LIDC-IDRI: XML + series -> clustered crops, clear errors, no patient identifiers leaked."""

import csv
import logging
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
from dicom_testdata import (
    SECRET_BIRTH,
    SECRET_ID,
    SECRET_NAME,
    circle_points,
    disc_slice,
    lidc_xml,
    nodule_xml,
    non_nodule_xml,
    roi_xml,
    write_ct_slice,
)
from pydicom.uid import generate_uid

from paddle_dx.errors import ConfigError, DataError
from paddle_dx.prepare.lidc import parse_window, prepare_lidc

Z = [-10.0, -8.75, -7.5, -6.25, -5.0]
NODULE, RADII = (40, 50), {1: 5, 2: 8, 3: 5}  # bright disc on slices 1-3, widest on slice 2


def make_series(folder, marks=None, xml_name="071.xml"):
    """5 slices of 96 px (files named against z order) and an LIDC XML; returns the UIDs."""
    series, study = generate_uid(), generate_uid()
    sops = []
    for i, z in enumerate(Z):
        hu = disc_slice(96, NODULE if i in RADII else None, RADII.get(i, 0), fov=46)
        sops.append(write_ct_slice(folder / f"{len(Z) - i:06d}.dcm", hu, series, study, z))
    if marks is None:
        marks = default_marks(sops)
    if xml_name:
        (folder / xml_name).write_text(lidc_xml(series, marks), encoding="utf-8")
    return series, sops


def default_marks(sops):
    """Two readers outline the nodule (reader 2 by z only), a < 3 mm point, a non-nodule."""
    reader1 = [
        nodule_xml("Nodule 001", [roi_xml(circle_points(NODULE, RADII[i]), sops[i], Z[i]) for i in RADII], 4),
        nodule_xml("Nodule 002", [roi_xml([(80, 20)], sops[0], Z[0])]),
    ]
    reader2 = [
        nodule_xml("IL057_1", [roi_xml(circle_points((41, 51), RADII[i]), None, Z[i]) for i in RADII], 5),
        non_nodule_xml("IL057_2", (20, 80), sops[4], Z[4]),
    ]
    return [reader1, reader2]


def read_rows(out):
    with open(out / "crops.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_synthetic_case_gives_one_crop_per_finding(tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    series, sops = make_series(tmp_path / "lidc" / "LIDC-IDRI-0999" / "study" / "series")
    summary = prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    assert summary["crops"] == {"nodule_ge3mm": 1, "nodule_lt3mm": 1, "non_nodule": 1}
    rows = {r["class"]: r for r in read_rows(tmp_path / "out")}
    nodule = rows["nodule_ge3mm"]
    assert nodule["readers"] == "2" and nodule["malignancy"] == "4.5" and nodule["patient_id"] == "LIDC-IDRI-0999"
    assert abs(int(nodule["x"]) - 40.5) <= 0.5 and abs(int(nodule["y"]) - 50.5) <= 0.5
    assert nodule["sop_uid"] == sops[2] and float(nodule["z"]) == Z[2] and nodule["series_uid"] == series
    crop = cv2.imread(str(tmp_path / "out" / nodule["file"]), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (64, 64) and crop.dtype == np.uint8
    assert crop[32, 32] == 236 and crop[32, 20] == 95  # disc 40 HU, background -790 HU in the lung window
    small = rows["nodule_lt3mm"]
    assert (small["x"], small["y"], small["sop_uid"], small["readers"]) == ("80", "20", sops[0], "1")
    corner = cv2.imread(str(tmp_path / "out" / small["file"]), cv2.IMREAD_UNCHANGED)
    assert corner.shape == (64, 64) and (corner[:12] == 0).all() and corner[32, 32] == 95  # padded above row 0
    assert (rows["non_nodule"]["x"], rows["non_nodule"]["y"], rows["non_nodule"]["sop_uid"]) == ("20", "80", sops[4])
    assert sorted(p.parent.name for p in (tmp_path / "out").rglob("*.png")) == sorted(rows)

    # no patient identifier from the headers in the CSV, the file names or the logs
    text = (tmp_path / "out" / "crops.csv").read_text() + " ".join(str(p) for p in (tmp_path / "out").rglob("*"))
    text += caplog.text + "".join(capsys.readouterr())
    for secret in (SECRET_NAME, "Doe", "Jane", SECRET_ID, SECRET_BIRTH):
        assert secret not in text


def test_per_reader_and_min_readers(tmp_path):
    make_series(tmp_path / "lidc" / "LIDC-IDRI-0999")
    per_reader = prepare_lidc(tmp_path / "lidc", tmp_path / "per", per_reader=True)
    assert per_reader["crops"] == {"nodule_ge3mm": 2, "nodule_lt3mm": 1, "non_nodule": 1}
    rows = [r for r in read_rows(tmp_path / "per") if r["class"] == "nodule_ge3mm"]
    assert sorted(r["reader"] for r in rows) == ["1", "2"] and {r["readers"] for r in rows} == {"2"}
    assert {(r["x"], r["y"]) for r in rows} == {("40", "50"), ("41", "51")}
    agreed = prepare_lidc(tmp_path / "lidc", tmp_path / "agreed", min_readers=2, fmt="npy")
    assert agreed["crops"] == {"nodule_ge3mm": 1, "nodule_lt3mm": 0, "non_nodule": 0}
    (row,) = read_rows(tmp_path / "agreed")
    assert np.load(tmp_path / "agreed" / row["file"])[32, 32] == 236


def test_close_marks_of_one_reader_stay_apart(tmp_path):
    folder = tmp_path / "lidc" / "LIDC-IDRI-0998"
    series, sops = make_series(folder, xml_name=None)

    def point(i, xy, slice_index=0):
        return nodule_xml(f"n{i}", [roi_xml([xy], sops[slice_index], Z[slice_index])])

    marks = [
        [point(1, (30, 30)), point(2, (32, 30))],
        [point(3, (31, 31), slice_index=1), point(4, (70, 70)), point(5, (31, 31), slice_index=3)],
    ]
    (folder / "1.xml").write_text(lidc_xml(series, marks))
    prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    # reader 1's two close marks are two findings; reader 2's mark on the adjacent slice joins one of
    # them; (70, 70) is far away, and (31, 31) three slices away is not adjacent to the other one
    assert sorted(r["readers"] for r in read_rows(tmp_path / "out")) == ["1", "1", "1", "2"]


def test_malformed_xml_names_the_file(tmp_path):
    folder = tmp_path / "lidc" / "LIDC-IDRI-0001"
    make_series(folder)
    (folder / "071.xml").write_text('<LidcReadMessage xmlns="http://www.nih.gov"><ResponseHeader>')
    with pytest.raises(DataError, match=r"071\.xml: malformed XML"):
        prepare_lidc(tmp_path / "lidc", tmp_path / "out")


def test_series_without_xml_is_reported(tmp_path, caplog):
    lonely, _ = make_series(tmp_path / "lidc" / "LIDC-IDRI-0001", xml_name=None)
    with pytest.raises(DataError, match="none of the 1 DICOM series has an LIDC XML"):
        prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    make_series(tmp_path / "lidc" / "LIDC-IDRI-0002")
    summary = prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    assert summary["series_without_xml"] == [lonely] and summary["series"] == 1
    assert f"series {lonely}" in caplog.text and "has no LIDC XML" in caplog.text
    with pytest.raises(DataError, match="is not empty"):
        prepare_lidc(tmp_path / "lidc", tmp_path / "out")


def test_roi_naming_no_slice_is_a_clear_error(tmp_path, caplog):
    folder = tmp_path / "lidc" / "LIDC-IDRI-0001"
    series, sops = make_series(folder, xml_name=None)
    marks = default_marks(sops)
    marks[1].append(nodule_xml("ghost", [roi_xml([(50, 50)], "1.2.826.0.1.999", 120.0)]))
    (folder / "071.xml").write_text(lidc_xml(series, marks))
    with pytest.raises(
        DataError,
        match=r"071\.xml: reader 2 nodule_lt3mm 'ghost': ROI names SOP UID "
        r"1\.2\.826\.0\.1\.999 at z=120\.0 mm, which matches no slice",
    ):
        prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    summary = prepare_lidc(tmp_path / "lidc", tmp_path / "out2", skip_bad=True)
    assert summary["crops"]["nodule_ge3mm"] == 1 and "ghost" in caplog.text


def test_lidc_idri_sample_crops_match_the_xml(shared_datasets, tmp_path, repo_root):
    """The real case: one crop per reader's mark, as many as its SOURCE.md counts in 071.xml."""
    import re

    import pydicom

    from paddle_dx.data.ct_window import apply_window
    from paddle_dx.data.io import read_image
    from paddle_dx.prepare.lidc.crops import cut_crop

    case = shared_datasets / "lidc_idri_sample" / "LIDC-IDRI-0002"
    if not (case / "071.xml").is_file():
        pytest.skip(f"{case}/071.xml not present")
    out = tmp_path / "crops"
    subprocess.run(
        [
            sys.executable,
            str(repo_root / "tools" / "prepare_lidc.py"),
            "--lidc-root",
            str(case.parent),
            "--out",
            str(out),
            "--per-reader",
            "--window=-600,1500",
        ],
        check=True,
        capture_output=True,
    )
    rows = read_rows(out)
    # SOURCE.md: 2 reads >= 3 mm, 26 reads < 3 mm, 25 non-nodules
    assert Counter(r["class"] for r in rows) == {"nodule_ge3mm": 2, "nodule_lt3mm": 26, "non_nodule": 25}
    big = [r for r in rows if r["class"] == "nodule_ge3mm"]
    assert len({r["nodule"] for r in big}) == 1 and {r["readers"] for r in big} == {"2"}
    referenced = set(re.findall(r"<imageSOP_UID>([\d.]+)</imageSOP_UID>", (case / "071.xml").read_text()))
    assert {r["sop_uid"] for r in rows} <= referenced
    assert {r["patient_id"] for r in rows} == {"LIDC-IDRI-0002"} and {r["window"] for r in rows} == {"-600/1500"}
    # the crop is the slice's HU around (x, y), windowed: recompute one from the DICOM file
    slice_file = next(
        p
        for p in sorted(case.glob("*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == big[0]["sop_uid"]
    )
    hu = read_image(slice_file).hu
    expected = apply_window(cut_crop(hu, int(big[0]["x"]), int(big[0]["y"]), 64), -600, 1500)
    assert np.array_equal(cv2.imread(str(out / big[0]["file"]), cv2.IMREAD_UNCHANGED), expected)


def test_window_text_is_a_name_or_level_and_width(tmp_path):
    assert parse_window("mediastinum") == "mediastinum" and parse_window("-600,1500") == [-600.0, 1500.0]
    with pytest.raises(ConfigError, match=r"--window '40,wide': expected a name or LEVEL,WIDTH"):
        prepare_lidc(tmp_path, tmp_path / "out", window="40,wide")
    with pytest.raises(ConfigError, match=r"--window: unknown window 'lungs'"):
        prepare_lidc(tmp_path, tmp_path / "out", window="lungs")


def test_a_symlinked_case_folder_is_followed_and_a_link_loop_does_not_hang(tmp_path):
    """A dataset assembled from links to case folders elsewhere (Path.rglob skips them)."""
    make_series(tmp_path / "elsewhere" / "LIDC-IDRI-0999" / "study" / "series")
    (tmp_path / "lidc").mkdir()
    (tmp_path / "lidc" / "LIDC-IDRI-0999").symlink_to(tmp_path / "elsewhere" / "LIDC-IDRI-0999")
    (tmp_path / "lidc" / "loop").symlink_to(tmp_path / "lidc")  # points back up the tree
    summary = prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    assert summary["crops"] == {"nodule_ge3mm": 1, "nodule_lt3mm": 1, "non_nodule": 1}


def test_crop_side_is_bounded_and_only_the_crop_is_allocated(tmp_path):
    from paddle_dx.prepare.lidc.crops import MAX_CROP, cut_crop

    for crop in (100000, MAX_CROP + 1, 1):
        with pytest.raises(DataError, match=rf"--crop {crop} is out of range: accepted 2\.\.{MAX_CROP}"):
            prepare_lidc(tmp_path, tmp_path / "out", crop=crop)
    hu = np.arange(12 * 10, dtype=np.float32).reshape(12, 10) - 500
    for x, y, size in [(0, 0, 6), (9, 11, 7), (5, 6, 30), (-40, 3, 4), (4.6, 2.4, 5)]:
        half = size // 2
        padded = np.pad(hu, half, mode="constant", constant_values=hu.min())  # the former way
        want = padded[int(round(y)) : int(round(y)) + size, int(round(x)) : int(round(x)) + size]
        got = cut_crop(hu, x, y, size)
        assert got.shape == (size, size)
        assert np.array_equal(got[: want.shape[0], : want.shape[1]], want)
        assert (got[want.shape[0] :] == hu.min()).all() and (got[:, want.shape[1] :] == hu.min()).all()


def truncate_pixels(path, keep=200):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - keep])


def test_an_error_part_way_leaves_no_partial_crops_and_skip_bad_skips_the_slice(tmp_path, caplog):
    folder = tmp_path / "lidc" / "LIDC-IDRI-0001"
    make_series(folder)
    truncate_pixels(folder / "000003.dcm")  # slice 2: the >= 3 mm nodule's; slice 0 (< 3 mm) is cut before it
    with pytest.raises(DataError, match=r"000003\.dcm: "):
        prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lidc"]  # no out, no hidden partial folder
    with caplog.at_level(logging.WARNING):
        summary = prepare_lidc(tmp_path / "lidc", tmp_path / "out", skip_bad=True)
    assert summary["crops"] == {"nodule_ge3mm": 0, "nodule_lt3mm": 1, "non_nodule": 1}
    assert "000003.dcm" in caplog.text and len(read_rows(tmp_path / "out")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lidc", "out"]


@pytest.mark.parametrize("point", [(500, 40), (40, -3), ("nan", 40)])
def test_an_roi_outside_the_slice_is_a_clear_error_or_skipped(tmp_path, caplog, point):
    folder = tmp_path / "lidc" / "LIDC-IDRI-0001"
    series, sops = make_series(folder, xml_name=None)
    marks = default_marks(sops)
    marks[1].append(nodule_xml("offside", [roi_xml([point], sops[1], Z[1])]))
    (folder / "071.xml").write_text(lidc_xml(series, marks))
    with pytest.raises(
        DataError, match=r"071\.xml: reader 2 nodule_lt3mm 'offside': ROI points .* lie outside the 96 x 96"
    ):
        prepare_lidc(tmp_path / "lidc", tmp_path / "out")
    summary = prepare_lidc(tmp_path / "lidc", tmp_path / "out", skip_bad=True)
    assert summary["crops"] == {"nodule_ge3mm": 1, "nodule_lt3mm": 1, "non_nodule": 1} and "offside" in caplog.text
