"""Attack run 4, the study index's header cache: a stale key (F4) and damaged rows or files (F5)."""

import dataclasses
import json
import os
import sqlite3
import time

import pytest
from corpus import small_volume

from octviewer import save_volume
from octviewer.study import index_folder


def _two_scans(folder):
    """Two OCT DICOMs of one size and one mtime (as unzip or ``cp -p`` leave an export), patients
    PATAAA01 and PATBBB02."""
    folder.mkdir()
    a, b = folder / "scan1.dcm", folder / "scan2.dcm"
    save_volume(dataclasses.replace(small_volume(), patient_id="PATAAA01"), a)
    raw = a.read_bytes()
    assert raw.count(b"PATAAA01") == 1
    other = raw.replace(b"PATAAA01", b"PATBBB02")
    # another scan, not a copy re-filed under the other ID (one scan under two patients is not used: A14-18)
    b.write_bytes(other[:-8] + bytes(x ^ 1 for x in other[-8:]))
    for p in (a, b):
        os.utime(p, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return a, b


def _patients(index) -> dict:
    return {os.path.basename(s.path): s.patient_id for s in index.scans}


def test_scans_that_swap_names_are_read_again_not_filed_under_each_others_patient(tmp_path):
    # Old: the cache key was (size, mtime): after `mv` swapped the names, scan1 stayed PATAAA01
    # although its header now says PATBBB02 ("from cache: 2"), each scan in the other's study.
    a, b = _two_scans(tmp_path / "study")
    cache = tmp_path / "cache"
    assert _patients(index_folder(a.parent, cache_dir=cache)) == {"scan1.dcm": "PATAAA01", "scan2.dcm": "PATBBB02"}
    os.rename(a, tmp_path / "tmp.dcm")
    os.rename(b, a)
    os.rename(tmp_path / "tmp.dcm", b)
    again = index_folder(a.parent, cache_dir=cache)
    assert _patients(again) == {"scan1.dcm": "PATBBB02", "scan2.dcm": "PATAAA01"}
    assert again.from_cache == 0


def test_a_scan_rewritten_in_place_with_its_mtime_put_back_is_read_again(tmp_path):
    # same inode, size and mtime (cp -p over it): only the ctime tells, and no program can set it back
    a, b = _two_scans(tmp_path / "study")
    cache = tmp_path / "cache"
    index_folder(a.parent, cache_dir=cache)
    time.sleep(0.05)  # past a coarse file-system clock tick
    st = a.stat()
    a.write_bytes(b.read_bytes())
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert a.stat().st_ino == st.st_ino and a.stat().st_mtime_ns == st.st_mtime_ns
    assert _patients(index_folder(a.parent, cache_dir=cache))["scan1.dcm"] == "PATBBB02"


def test_an_unchanged_folder_is_still_read_from_the_cache(tmp_path):
    a, _b = _two_scans(tmp_path / "study")
    index_folder(a.parent, cache_dir=tmp_path / "cache")
    assert index_folder(a.parent, cache_dir=tmp_path / "cache").from_cache == 2


_SCAN = {"kind": "scan", "patient_id": "PATAAA01", "eye": "OD", "date": "2020-01-01", "scan_pattern": "volume",
         "n_bscans": 6, "synthetic": False}


@pytest.mark.parametrize("record", [
    5, [1], "scan", None, {"checks": 3}, {"checks": 3, "kind": "scan"},
    {**_SCAN, "patient_id": ["A", "B"]}, {**_SCAN, "patient_id": "PAT\x1b]0;x\x07"}, {**_SCAN, "date": 5},
    {**_SCAN, "date": "yesterday"}, {**_SCAN, "eye": {}}, {**_SCAN, "n_bscans": "6"}, {**_SCAN, "synthetic": None},
    {"kind": "skip", "reason": 3}, {"kind": "vf", "exams": 4}, {"kind": "vf", "exams": [7]},
    {"kind": "vf", "patient_id": "PATAAA01", "eye": "OD", "date": "2020-01-01", "vfi": 500.0},
], ids=lambda r: json.dumps(r)[:40])
def test_a_damaged_cache_row_is_ignored_and_the_file_read_again(tmp_path, record):
    # Old: TypeError / IndexError / KeyError from index_folder: the whole study refused for one row
    a, _b = _two_scans(tmp_path / "study")
    cache = tmp_path / "cache"
    index_folder(a.parent, cache_dir=cache)
    db = sqlite3.connect(cache / "results.sqlite")
    (row,) = db.execute("SELECT record FROM study_headers WHERE rel = 'scan1.dcm'").fetchone()
    entry = json.loads(row)
    if isinstance(record, dict) and record.get("kind"):
        record = {**record, "checks": entry[-1]["checks"]}
    entry[-1] = record  # the file's own key kept: without the checks the row is a cache hit
    db.execute("UPDATE study_headers SET record = ? WHERE rel = 'scan1.dcm'", (json.dumps(entry),))
    db.commit()
    db.close()
    index = index_folder(a.parent, cache_dir=cache)
    assert _patients(index) == {"scan1.dcm": "PATAAA01", "scan2.dcm": "PATBBB02"}
    assert index.from_cache == 1 and not index.problems
    (scan,) = [s for s in index.scans if s.path == str(a)]
    assert (scan.eye, scan.n_bscans, scan.scan_pattern) == ("OD", 6, "volume")


def test_a_cache_file_that_is_no_database_is_set_aside_with_a_note(tmp_path):
    a, _b = _two_scans(tmp_path / "study")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "results.sqlite").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))  # else left alone (A7-23)
    index = index_folder(a.parent, cache_dir=cache)
    assert _patients(index) == {"scan1.dcm": "PATAAA01", "scan2.dcm": "PATBBB02"}
    aside = [p.name for p in cache.iterdir() if p.name.startswith("results.sqlite.damaged-")]
    assert len(aside) == 1
    assert index.notes and aside[0] in index.notes[0] and aside[0] in index.problems_text()
    assert index_folder(a.parent, cache_dir=cache).from_cache == 2  # rebuilt
