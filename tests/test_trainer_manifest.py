"""Manifest intake against hostile and sloppy files (issue 11 #3, #11): every problem is a listed
row problem, never a traceback, a hang or a million printed lines."""

import csv
import os
import time
from pathlib import Path

import pytest

from trainer.cache import cache_key
from trainer.manifest import SHOWN_PROBLEMS, ManifestError, read_manifest

HEADER = ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split"]


@pytest.fixture
def volume(tmp_path):
    (tmp_path / "vols").mkdir()
    f = tmp_path / "vols" / "a.npy"
    f.write_bytes(b"\x93NUMPY fake")
    return f


def _write(path, rows, header=HEADER, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _problems(path):
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    return info.value.problems, str(info.value)


def test_short_and_long_rows_are_listed(tmp_path, volume):
    path = tmp_path / "m.csv"
    path.write_text(",".join(HEADER) + "\n" + "vols/a.npy,P1,OD\n" + "vols/a.npy,P2,OD,,normal,,,,,extra\n")
    problems, _ = _problems(path)
    assert any(p.startswith("row 2: has 3 field(s), the header has 9") for p in problems)
    assert any(p.startswith("row 3: has 10 field(s)") for p in problems)


def test_cp1252_gets_a_clear_message(tmp_path, volume):
    path = _write(tmp_path / "m.csv", [["vols/a.npy", "Müller", "OD", "", "normal", "", "", "", ""]],
                  encoding="cp1252")
    problems, _ = _problems(path)
    assert problems == ["line 2: the file is not UTF-8 (byte 0xfc); save it as UTF-8 (in Excel: 'CSV UTF-8')"]


def test_overlong_field_is_listed(tmp_path, volume):
    path = _write(tmp_path / "m.csv", [["vols/a.npy", "P" * 200_000, "OD", "", "normal", "", "", "", ""]])
    problems, text = _problems(path)
    assert problems == ["row 2: field(s) longer than 4096 characters: patient_id"]
    assert len(text) < 1000


def test_duplicates_through_dotdot_absolute_and_symlink(tmp_path, volume):
    link = tmp_path / "link.npy"
    os.symlink(volume, link)
    rows = [["vols/a.npy", "P1", "OD", "", "normal", "", "", "", ""],
            ["vols/../vols/a.npy", "P2", "OD", "", "normal", "", "", "", ""],
            [str(volume), "P3", "OD", "", "normal", "", "", "", ""],
            ["link.npy", "P4", "OD", "", "normal", "", "", "", ""]]
    problems, _ = _problems(_write(tmp_path / "m.csv", rows))
    assert problems == [f"row {i}: duplicate path (also row 2)" for i in (3, 4, 5)]


def test_visits_must_be_dates_or_numbers(tmp_path, volume):
    good = ["2020-01-31", "3", "v2", ""]
    for k, visit in enumerate(good):
        _write(tmp_path / f"ok{k}.csv", [["vols/a.npy", "P1", "OD", visit, "normal", "", "", "", ""]])
        read_manifest(tmp_path / f"ok{k}.csv")
    rows = [["vols/a.npy", "P1", "OD", "not-a-date", "normal", "", "", "", ""]]
    assert "visit must be a date" in _problems(_write(tmp_path / "m.csv", rows))[0][0]
    rows = [["vols/a.npy", "P1", "OD", "2020-02-31", "normal", "", "", "", ""]]
    assert "is not a valid date" in _problems(_write(tmp_path / "m2.csv", rows))[0][0]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_devices_fifos_and_system_paths_refused(tmp_path, volume):
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    os.symlink("/dev/zero", tmp_path / "zero.dcm")
    rows = [["/dev/zero", "P1", "OD", "", "normal", "", "", "", ""],
            ["pipe.dcm", "P2", "OD", "", "normal", "", "", "", ""],
            ["zero.dcm", "P3", "OD", "", "normal", "", "", "", ""],
            ["/etc/passwd", "P4", "OD", "", "normal", "", "", "", ""]]
    start = time.monotonic()
    problems, _ = _problems(_write(tmp_path / "m.csv", rows))
    assert time.monotonic() - start < 5  # nothing was opened
    for expected in ("row 2: path points into a system folder: /dev/zero",
                     "row 3: not a regular file (device, FIFO or socket): pipe.dcm",
                     "row 4: path resolves into a system folder: zero.dcm",
                     "row 5: path points into a system folder: /etc/passwd"):
        assert expected in problems


def test_cache_key_refuses_devices_and_caps_size(tmp_path, monkeypatch):
    import trainer.cache as cache
    from octviewer import VolumeReadError
    from octviewer.model import Preprocess

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(VolumeReadError, match="not a regular file"):
        cache_key(fifo, Preprocess(size=32))
    big = tmp_path / "big.npy"
    big.write_bytes(b"x" * 5000)
    monkeypatch.setattr(cache, "MAX_VOLUME_BYTES", 4096)
    with pytest.raises(VolumeReadError, match="larger than"):
        cache_key(big, Preprocess(size=32))


def test_large_manifest_is_fast_with_bounded_output(tmp_path):
    n = 100_000
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write(",".join(HEADER) + "\n")
        for i in range(n):
            f.write(f"vols/missing{i}.npy,P{i},OD,2020-01-01,normal,,,,\n")
    start = time.monotonic()
    problems, text = _problems(path)
    elapsed = time.monotonic() - start
    assert len(problems) == n and all("file not found" in p for p in problems[:5])
    assert text.count("\n") == SHOWN_PROBLEMS + 1 and f"... and {n - SHOWN_PROBLEMS} more" in text
    assert elapsed < 10, elapsed  # about 1 s here; 1e6 rows scale linearly


def _with_a_broken_volume(tiny_cohort, tmp_path):
    """A copy of the tiny cohort's manifest whose second row points to a text file named .dcm."""
    bad = tmp_path / "notes.dcm"
    bad.write_text("not an image")
    with open(tiny_cohort, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["path"] = str((tiny_cohort.parent / r["path"]).resolve())
    rows[1]["path"] = str(bad)
    out = tmp_path / "manifest.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def test_validate_and_evaluate_name_an_unreadable_volume(tiny_cohort, tmp_path, capsys):
    """`validate` opens every volume (a clean summary over a file that cannot be read sent users into a
    fit that failed at its cache step), and `evaluate` reports it instead of a traceback."""
    from octviewer.resources import DEMO_MODEL
    from trainer.cli import main

    manifest = _with_a_broken_volume(tiny_cohort, tmp_path)
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "row 3: unreadable volume" in err and "notes.dcm" in err and "not a DICOM file" in err
    assert main(["evaluate", "--model", str(DEMO_MODEL), "--data", str(manifest), "--split", "all",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "notes.dcm" in err and "row 3: unreadable volume" in err and "not a DICOM file" in err


def test_retrain_dialog_validation_opens_every_volume(tiny_cohort, tmp_path):
    from octviewer.gui.model.retrain_checks import validate_manifest

    ok, text = validate_manifest(str(_with_a_broken_volume(tiny_cohort, tmp_path)))
    assert not ok and "row 3: unreadable volume" in text and "notes.dcm" in text
    ok, text = validate_manifest(str(tiny_cohort))
    assert ok and "Manifest OK" in text
    assert "test patients" in text and "too uncertain" in text  # a tiny cohort: usable, but its figures are not


def test_small_splits_are_warned_about():
    from trainer.manifest import small_split_warnings

    counts = {"train": {"patients": 300}, "val": {"patients": 40, "volumes": 200, "glaucoma": 80},
              "test": {"patients": 2, "volumes": 6, "glaucoma": 2}}
    warnings = small_split_warnings(counts)
    assert len(warnings) == 1 and warnings[0].startswith("only 2 test patients (6 volumes, 2 glaucoma)")


def test_a_path_with_a_nul_byte_is_a_row_problem_not_a_traceback(tmp_path, volume, capsys):
    """os.stat raised a raw ValueError ("embedded null byte"): `octviewer-train validate` ended in a
    traceback (attack run M10)."""
    from trainer.cli import main

    path = _write(tmp_path / "m.csv", [["vols/a\0.npy", "P1", "OD", "", "normal", "", "", "", ""],
                                       ["vols/a.npy", "P2", "OD", "", "normal", "", "", "", ""]])
    problems, _ = _problems(path)
    assert problems == ["row 2: the path holds a NUL byte"]
    assert main(["validate", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "row 2: the path holds a NUL byte" in err and "Traceback" not in err


def test_reading_a_manifest_leaves_the_process_wide_csv_limit_alone(tmp_path, volume):
    """read_manifest raised csv.field_size_limit for the whole process and left it raised: every other
    CSV reader then took cells of any length (a VF table's 200 kB cell was read as a value)."""
    previous = csv.field_size_limit(131_072)  # csv's default, whatever an earlier test left
    try:
        path = _write(tmp_path / "m.csv", [["vols/a.npy", "P" * 200_000, "OD", "", "normal", "", "", "", ""]])
        problems, _ = _problems(path)
        assert problems == ["row 2: field(s) longer than 4096 characters: patient_id"]  # still read and listed
        read_manifest(_write(tmp_path / "ok.csv", [["vols/a.npy", "P1", "OD", "", "normal", "", "", "", ""]]))
        assert csv.field_size_limit() == 131_072
    finally:
        csv.field_size_limit(previous)


@pytest.mark.parametrize("content, why", [(None, "named pipe (FIFO), not a file"), ("- a\n- b\n", "a YAML mapping"),
                                          ("epochs: 1\ncolour: red\n", "unknown option(s) colour"),
                                          ("a: [\n", "not a readable YAML file")])
def test_a_config_file_that_is_a_fifo_or_no_mapping_of_options_is_one_error(content, why, tmp_path):
    """`octviewer-train fit --config FIFO` blocked for good in read_text(), a link to /dev/zero read until
    memory ran out, and YAML that was a list or named an unknown option ended in a raw TypeError (found
    with attack run M8)."""
    from trainer.config import ConfigFileError, read_config_file

    path = tmp_path / "run.yaml"
    if content is None:
        os.mkfifo(path)
    else:
        path.write_text(content)
    with pytest.raises(ConfigFileError, match="run.yaml") as info:
        read_config_file(path)
    assert why in str(info.value)
    path.unlink()
    path.write_text("variant: semt\nepochs: 2\n")
    assert read_config_file(path) == {"variant": "semt", "epochs": 2}


def test_cache_key_of_a_folder_nested_a_thousand_deep_is_an_error_not_a_recursion(tmp_path):
    """cache_key hashed a folder volume's files with Path.rglob, which recursed per level: a folder
    nested 1,000 deep ended training in a RecursionError (found with attack run M9)."""
    import tempfile

    from octviewer import VolumeReadError
    from octviewer.model import Preprocess

    base = tempfile.mkdtemp(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else tmp_path)  # fast to remove
    path = base
    for _ in range(1000):
        path = os.path.join(path, "d")
        os.mkdir(path)
    try:
        with pytest.raises(VolumeReadError, match="nested more than"):
            cache_key(Path(base), Preprocess(size=32))
    finally:
        while path != os.path.dirname(base):
            os.rmdir(path)
            path = os.path.dirname(path)


def test_cache_key_of_a_folder_volume_does_not_follow_a_link_to_a_folder(tmp_path):
    """A folder volume holding a link to "/" made cache_key (what `fit` runs) walk the whole file system
    for 22 s and fail on a /proc folder; a link to any other folder hashed its files too (attack run 3, F2)."""
    from octviewer.model import Preprocess

    vol, other = tmp_path / "vol", tmp_path / "other"
    vol.mkdir()
    other.mkdir()
    (vol / "b0.png").write_bytes(b"scan")
    (other / "notes.txt").write_bytes(b"someone else's file")
    before = cache_key(vol, Preprocess(size=32))
    (vol / "usb_link").symlink_to(other, target_is_directory=True)
    assert cache_key(vol, Preprocess(size=32)) == before


def test_a_column_given_twice_in_the_header_is_refused(tmp_path, volume):
    """`...,label,label` with `normal,glaucoma`: each row's dict kept the last cell, so the label read was
    not the one a reader of the first column saw (found in the third attack round)."""
    path = _write(tmp_path / "m.csv", [["vols/a.npy", "P1", "OD", "", "normal", "", "", "", "", "glaucoma"]],
                  header=[*HEADER, "label"])
    problems, _ = _problems(path)
    assert problems == ["column(s) given twice in the header: label"]


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "folder"])
def test_a_manifest_that_is_no_file_is_named_for_what_it_is(kind, tmp_path):
    """A FIFO, a link to /dev/zero or a folder given as the manifest was "manifest not found" (is_file()
    is False for them), and one swapped in between that look and open() blocked (third attack round)."""
    path = tmp_path / "m.csv"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    what = {"fifo": "a named pipe (FIFO)", "link to /dev/zero": "a character device", "folder": "a folder"}[kind]
    problems, _ = _problems(path)
    assert problems == [f"the manifest cannot be read: this is {what}, not a file"]
