"""Attack run 9 (H50), fixed by H55: the study index's VF tables and copies of one scan."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------- A9-6: a VF table saved with ';' or tabs

GERMAN = "patient_id;eye;date;vfi;md;psd\nP1;OD;2018-06-01;99,6;-0,49;1,11\nP1;OS;2018-06-08;98;-1,5;2.5\n"
TABS = "patient_id\teye\tdate\tvfi\tmd\tpsd\nP1\tOD\t2018-06-01\t99.6\t-0.49\t1.11\n"


@pytest.mark.parametrize("text", [GERMAN, TABS], ids=["semicolon", "tab"])
def test_a_study_folders_vf_table_separated_by_semicolons_or_tabs_is_read(tmp_path, text):
    from octviewer.study import index_folder

    study = tmp_path / "study"
    study.mkdir()
    (study / "visual_fields.csv").write_text(text, encoding="utf-8")
    index = index_folder(study, cache_dir=tmp_path / "cache")
    first = next(m for m in index.vf if m.eye == "OD")
    assert (first.vfi, first.md_db, first.psd_db) == (99.6, -0.49, 1.11)
    assert not index.problems and "other file" not in index.skipped_text()


def test_decimal_commas_are_read_only_where_the_comma_is_no_separator(tmp_path):
    from octviewer.study.vf import read_vf_rows

    german = tmp_path / "de.csv"
    german.write_text(GERMAN.replace("-0,49", "1.000,5"), encoding="utf-8")  # no thousands separators
    rows, problems = read_vf_rows(german)
    assert [m.md_db for m in rows] == [-1.5] and problems == ["row 2: MD is '1.000,5', not a number"]
    quoted = tmp_path / "en.csv"
    quoted.write_text('patient_id,eye,date,md\nP1,OD,2018-06-01,"-0,49"\n', encoding="utf-8")
    assert read_vf_rows(quoted) == ([], ["row 2: MD is '-0,49', not a number"])


def test_a_vf_table_whose_columns_cannot_be_told_apart_is_named_with_the_reason(tmp_path):
    from octviewer.study import index_folder

    study = tmp_path / "study"
    study.mkdir()
    (study / "visual_fields.csv").write_text(GERMAN.replace(";", "|"), encoding="utf-8")
    index = index_folder(study, cache_dir=tmp_path / "cache")
    assert not index.vf and "other file" not in index.skipped_text()
    assert "visual_fields.csv: the header names VF columns, but they are not separated by commas" \
        in index.problems_text()


def test_a_manifest_separated_by_semicolons_is_read_as_a_manifest(tmp_path):
    from octviewer.study import index_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_text("path;patient_id;eye;visit;md\nmissing.dcm;P1;OD;2018-06-01;-0,49\n", encoding="utf-8")
    index = index_manifest(manifest)  # it was "not a manifest: it has no 'path' column"
    assert index.skipped["listed files missing"] == 1


# ---------------------------------------------------------------- A9-9: copies of one scan at one visit

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", patients=1, visits=2, preset="tiny", seed=9)


def _with_copies(demo, folder):
    """The demo's scans in ``folder`` and two byte-identical copies of the first OD scan beside it."""
    import shutil

    shutil.copytree(demo / "scans", folder)
    od = sorted(folder.rglob("OD_*.dcm"))[0]
    for k in range(2):
        shutil.copy(od, od.with_name(f"copy{k}_{od.name}"))
    return od


def test_copies_of_one_scan_at_one_visit_of_a_manifest_are_used_once_and_warned(demo, tmp_path):
    import csv

    from octviewer.study import index_manifest

    od = _with_copies(demo, tmp_path / "scans")
    with open(tmp_path / "m.csv", "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["path", "patient_id", "eye", "visit"])
        for scan in sorted(tmp_path.rglob("*.dcm")):
            rows.writerow([scan.relative_to(tmp_path), scan.parent.name, scan.name.split("_")[-2], ""])
    index = index_manifest(tmp_path / "m.csv")
    visit = index.visits(od.parent.name)[0].label
    assert [s.path for s in index.scans_for(od.parent.name, visit, "OD")] == [str(od)]
    assert [w.text for w in index.warnings_for([str(od)])] == [
        f"the same scan as scans/{od.parent.name}/copy0_{od.name}, scans/{od.parent.name}/copy1_{od.name} (the same "
        f"DICOM UID; listed 3 times at the visit {visit}): it is used once: this file, not the copies"]


def test_copies_of_one_scan_in_a_study_folder_are_used_once_and_warned(demo, tmp_path):
    from octviewer.study import index_folder

    od = _with_copies(demo, tmp_path / "study" / "scans")
    index = index_folder(tmp_path / "study", cache_dir=tmp_path / "cache")
    assert len(index.scans) == len(list(demo.rglob("scans/*/*.dcm")))
    assert [p for p, _, w in index.warnings if "listed 3 times at the visit" in w] == [str(od)]


def test_copies_without_a_uid_are_found_by_their_bytes_and_other_scans_of_the_visit_kept(tmp_path):
    """Files with no header UID (NumPy volumes): a repeat scan of the visit (other bytes, same size) is a scan
    of its own, a byte-identical copy is not."""
    from octviewer.study.index import ScanEntry, _copies

    a, b, c = (tmp_path / n for n in ("a.npz", "b.npz", "c.npz"))
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"y" * 100)
    c.write_bytes(b"x" * 100)
    scans = [ScanEntry(str(p), "P", "OD", "2020-01-02", None) for p in (a, b, c)]
    kept, warnings = _copies(scans, {}, str(tmp_path))
    assert [s.path for s in kept] == [str(a), str(b)]
    assert warnings == [(str(a), "copy", "the same scan as c.npz (the same bytes; listed twice at the visit "
                                         "2020-01-02): it is used once: this file, not the copy")]


def test_the_trend_analyses_one_of_the_copies_and_takes_one_value_per_visit(demo, tmp_path, monkeypatch):
    """The trend's mean of a visit's scans, and so its n, counted each copy as a scan of its own."""
    from types import SimpleNamespace

    import octviewer.io
    from octviewer.gui.study.trend_view import eye_history
    from octviewer.study import index_folder

    od = _with_copies(demo, tmp_path / "study" / "scans")
    index = index_folder(tmp_path / "study", cache_dir=tmp_path / "cache")
    analysed = []
    monkeypatch.setattr(octviewer.io, "load_volume", lambda path: path)

    def analyse(path, cancel):
        analysed.append(path)
        return None, SimpleNamespace(rnfl_global_um=90.0 if path == str(od) else 80.0)

    history = eye_history(index, od.parent.name, "OD", analyse, lambda *a: None, SimpleNamespace(is_set=lambda: 0))
    assert len(analysed) == 2 and analysed.count(str(od)) == 1  # the demo's 2 visits, the copies not analysed
    assert [v for _, v in history.series["rnfl"]] == [90.0, 80.0]
