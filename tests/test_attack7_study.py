"""Attack run 7 (H30), fixed by H38: the study index and manifests, the library entry points, the results
store, the trend and the demo study."""

from __future__ import annotations

import pytest

from octviewer.pipeline.store import ResultsStore, StoreError

# ---------------------------------------------------------------- A7-23: a file that is no SQLite is left alone

def test_a_file_that_is_no_sqlite_is_refused_as_the_store_and_left_alone(tmp_path):
    scan = tmp_path / "OD_20180918.dcm"
    body = b"\0" * 128 + b"DICM" + b"\x02\x00" * 500
    scan.write_bytes(body)
    with pytest.raises(StoreError, match="not an SQLite database"):
        ResultsStore(scan)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OD_20180918.dcm"]
    assert scan.read_bytes() == body


def test_a_study_whose_cache_is_no_database_opens_and_says_so(tmp_path):
    from octviewer.study import index_folder
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "results.sqlite").write_bytes(b"not a database " * 100)
    index = index_folder(study, cache_dir=cache)
    assert index.scans and "not an SQLite database" in index.problems_text()
    assert sorted(p.name for p in cache.iterdir()) == ["results.sqlite"]


# ---------------------------------------------------------------- A7-9: a flat series has no p-value

def test_a_trend_of_identical_values_has_no_p_value():
    import datetime as dt
    import math

    from octviewer.study.trend import trend

    t = trend({dt.date(2018, 9, 18): 133.6, dt.date(2019, 9, 24): 133.6, dt.date(2020, 9, 24): 133.6}, "rnfl")
    assert t.flat and math.isnan(t.p) and not t.significant and t.slope_per_year == 0.0
    text = t.describe("µm")
    assert "no change" in text and "p=" not in text
    fit, low, high = t.band(t.years([dt.date(2019, 1, 1)]))
    assert fit[0] == low[0] == high[0] == pytest.approx(133.6)
    exact = trend({dt.date(2018, 1, 1): 1.0, dt.date(2019, 1, 1): 2.0, dt.date(2020, 1, 1): 3.0})
    assert not exact.flat and "p=" not in exact.describe("dB")  # exactly on a line: no test either (A8-11)


# ---------------------------------------------------------------- A7-15: the demo study's visits lie in the past

def test_demo_study_visits_all_lie_before_today(tmp_path, monkeypatch):
    import datetime as dt

    import octviewer.study.demo as demo
    from octviewer.study.vf import parse_date

    monkeypatch.setattr(demo, "today", lambda: dt.date(2021, 3, 1))  # 2018 + 4 visits reaches 2021-2022
    out = demo.write_demo_study(tmp_path / "s", patients=1, visits=5, preset="tiny", seed=0)
    dates = [parse_date(p.stem.rsplit("_", 1)[-1]) for p in out.rglob("*.dcm")]
    assert dates and max(dates) <= dt.date(2021, 3, 1)
    assert min(dates) < dt.date(2018, 1, 1)  # started earlier, a year apart still


def test_demo_refuses_visits_that_cannot_fit_in_the_past(tmp_path, capsys):
    from octviewer.study.demo import main

    with pytest.raises(SystemExit) as stop:
        main(["--out", str(tmp_path / "s"), "--visits", "400", "--preset", "tiny"])
    assert stop.value.code == 2 and "--visits 400" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------- A7-16: bytes and empty paths at the entry points

def test_entry_points_read_bytes_paths_and_refuse_an_empty_one(tmp_path, monkeypatch):
    import os

    from octviewer.io import VolumeReadError, load_volume, open_volume_progressive
    from octviewer.study import index_folder
    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_manifest

    study = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    scan = next(study.rglob("OD_*.dcm"))
    assert load_volume(os.fsencode(scan)).n_bscans > 0
    assert open_volume_progressive(os.fsencode(scan)).volume.n_bscans > 0
    assert index_folder(os.fsencode(study), cache_dir=tmp_path / "cache").scans
    monkeypatch.chdir(study / "scans")  # a working folder holding scans: "" must not index or read it
    for call in (load_volume, open_volume_progressive, index_manifest,
                 lambda p: index_folder(p, cache_dir=tmp_path / "cache")):
        with pytest.raises(VolumeReadError, match="no file or folder name given"):
            call("")


# ---------------------------------------------------------------- A7-12: a manifest that cannot be read says why

@pytest.mark.parametrize("case, words", [("cp1252", "not UTF-8 text"), ("folder", "a folder"),
                                         ("missing", "no such file"), ("fifo", "named pipe")])
def test_open_manifest_says_why_it_cannot_be_read(tmp_path, case, words):
    import os

    from octviewer.study.index import index_manifest
    from octviewer.study.vf import VfReadError

    path = tmp_path / "manifest.csv"
    if case == "cp1252":
        path.write_bytes("path,patient_id,eye,visit,comment\na.dcm,P1,OD,2018-09-18,Müller\n".encode("cp1252"))
    elif case == "folder":
        path.mkdir()
    elif case == "fifo":
        os.mkfifo(path)
    with pytest.raises(VfReadError, match=words) as refused:
        index_manifest(path)
    assert "'path' column" not in str(refused.value)


# ---------------------------------------------------------------- manifests: eyes, one file at several rows, headers

def _manifest(tmp_path, rows):
    import csv

    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["patient_id", "eye", "visit", "path"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def two_visits(tmp_path_factory):
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("s") / "study", patients=1, visits=2, preset="tiny", seed=3)
    return sorted(study.rglob("O[DS]_*.dcm"))  # OD_<first>, OD_<second>, OS_<first>, OS_<second>


def test_a7_19_manifest_eyes_that_are_not_od_or_os_are_listed(tmp_path, two_visits):
    from octviewer.study.index import index_manifest

    od1, od2, os1, _os2 = two_visits
    rows = [["P1", "left", "2018-09-18", od1], ["P2", "R", "2018-09-18", od2], ["P3", "OU", "2018-09-18", os1]]
    index = index_manifest(_manifest(tmp_path, rows))
    assert index.scans == []
    text = index.problems_text()
    assert all(f"eye is {word!r}, expected OD or OS" in text for word in ("LEFT", "R", "OU"))


def test_a7_8_one_scan_listed_at_three_visits_is_used_once_with_a_warning(tmp_path, two_visits):
    """Listed at three visits, the scan is used once, at the visit its header's date agrees with, and warned
    (H51 walk-through, item 4: left out, its eye vanished from the visit); for two patients it is left out."""
    from octviewer.study.index import index_manifest

    od1, _od2, os1, _os2 = two_visits
    rows = [["P1", "OD", "2019-09-24", od1], ["P1", "OD", "2018-09-18", od1], ["P1", "OD", "2020-09-24", od1],
            ["P1", "OS", "2018-09-18", os1], ["P1", "OS", "2018-09-18", os1]]  # the same row twice: one scan
    index = index_manifest(_manifest(tmp_path, rows))
    assert [(s.path, s.visit) for s in index.scans] == [(str(od1), "2018-09-18"), (str(os1), "2018-09-18")]
    assert "rows 2, 3, 4 list it at the visits 2019-09-24, 2018-09-18, 2020-09-24: it is used once, at 2018-09-18 " \
           "(the date in its header)" in index.warnings_text()
    rows = [["P1", "OD", "2018-09-18", od1], ["P2", "OD", "2018-09-18", od1]]
    index = index_manifest(_manifest(tmp_path, rows))
    assert index.scans == [] and "(row 2; row 3); neither is used" in index.problems_text()


def test_a7_4_a_manifest_eye_the_scan_header_contradicts_is_listed_and_not_used(tmp_path, two_visits):
    from octviewer.study.index import index_manifest

    od1, od2, os1, _os2 = two_visits
    rows = [["P1", "OD", "2018-09-18", os1], ["P1", "OS", "2018-09-18", od1], ["P1", "", "2019-09-24", od2]]
    index = index_manifest(_manifest(tmp_path, rows))
    assert [(s.path, s.eye) for s in index.scans] == [(str(od2), "OD")]  # an empty cell takes the header's eye
    text = index.problems_text()
    assert "row 2 gives the eye OD, the scan's own header says OS; it is not used" in text
    assert "row 3 gives the eye OS, the scan's own header says OD" in text
