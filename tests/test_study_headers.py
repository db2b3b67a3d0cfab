"""Study manifests checked against the scans' own headers, and a stale measured VF said as such
(eighth walk-through items 3 and 4, attack run 8 A8-5 and A8-8)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from octviewer.study import index_folder, index_manifest
from octviewer.study.vf import VfMeasurement


def _scans(root: Path, eye: str) -> list[Path]:
    return sorted((root / "scans").rglob(f"{eye}_*.dcm"))


def _header_date(path: Path) -> dt.date:
    return dt.date.fromisoformat(f"{path.stem[3:7]}-{path.stem[7:9]}-{path.stem[9:11]}")


def _write(path: Path, rows: list[list], header=("path", "patient_id", "eye", "visit")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _copy(demo: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo, tmp_path / "study"))


# ---------------------------------------------------------------- H43-4: a stale measured VF

def test_a_measured_vf_far_from_the_scan_is_not_compared():
    """A field 277 days before the scan was set against the estimate ("difference +2.1 %") with no word."""
    from octviewer.gui.study.controller import vf_comparison_rows, vf_test_date

    class P:
        vf = {"vfi": 92.1, "md": -3.0, "psd": 3.0}

    scan = dt.datetime(2024, 3, 4, 10, 0)
    stale = VfMeasurement("P1", "OD", dt.date(2023, 6, 1), 90.0, -4.0, 4.0)
    assert vf_test_date(stale, scan) == ("VF tested 2023-06-01 (277 days before the scan: not compared, "
                                         "more than 180 days apart)")
    assert "not compared" in vf_test_date(stale, scan, dated=False)
    rows = vf_comparison_rows(P(), stale, compared=False)
    assert [r[3] for r in rows] == ["not compared"] * 3 and rows[0][2].startswith("90.0 %")
    near = VfMeasurement("P1", "OD", dt.date(2024, 1, 10), 90.0, -4.0, 4.0)
    assert vf_test_date(near, scan) == "VF tested 2024-01-10 (54 days before the scan)"
    assert vf_comparison_rows(P(), near)[0][3] == "+2.1 pp"  # percentage points (H81)


def _grab(widget, name: str) -> None:
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


@pytest.mark.gui
def test_results_panel_and_pdf_say_a_stale_field_is_not_compared(qtbot, monkeypatch, tmp_path, demo, window):
    """Through the window: Open study manifest whose row dates the OD scan (and its field) 277 days before
    the scan's header, open that scan; the Results panel and the PDF say "not compared"."""
    from PySide6.QtWidgets import QFileDialog
    from test_gui_walkthrough_h2 import _click_item, _export_pdf

    w = window
    scan = _scans(demo, "OD")[-1]
    patient = scan.parent.name
    visit = (_header_date(scan) - dt.timedelta(days=277)).isoformat()
    manifest = _write(tmp_path / "m.csv", [[str(scan), patient, "OD", visit, 90, -4.0, 4.0]],
                      header=("path", "patient_id", "eye", "visit", "vfi", "md", "psd"))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    panel = w.study.panel
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    item = panel.tree.topLevelItem(0).child(0).child(0).child(0)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, item)
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=60000)
    qtbot.waitUntil(lambda: "Measured visual field" in w.results.extra.text(), timeout=30000)
    _grab(w.results, "h47_stale_vf_results")
    text = w.results.extra.text()
    assert "(277 days before the scan: not compared, more than 180 days apart)" in text
    assert "difference not compared" in text and "difference +" not in text and "difference -" not in text
    pdf = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)["doc"].toPlainText()
    assert "277 days before the scan: not compared" in pdf
    assert "not compared" in pdf.split("predicted − measured")[1]


# ---------------------------------------------------------------- H43-3: manifest rows against the headers

def test_manifest_patient_and_visit_that_the_header_contradicts_are_warned_not_refused(demo, tmp_path, caplog):
    """A manifest filed four patients' scans under one ID and dated a scan nine months before its acquisition,
    with no word (eighth walk-through, item 3). Each is warned by row with both values, the scan still used;
    nothing of it reaches the log (the values are patient IDs)."""
    od, os_ = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    wrong_date = (_header_date(od) - dt.timedelta(days=277)).isoformat()
    manifest = _write(tmp_path / "m.csv", [[str(od), "<b>X</b>", "OD", _header_date(od).isoformat()],
                                           [str(os_), os_.parent.name, "OS", wrong_date]])
    caplog.set_level("DEBUG")
    index = index_manifest(manifest)
    assert {Path(s.path).name for s in index.scans} == {od.name, os_.name}  # warned, not refused
    assert index.warnings == [
        (str(od), "patient", f'row 2 gives the patient "<b>X</b>", the scan\'s own header says "{od.parent.name}"; '
                  "the row's is used"),
        (str(os_), "date", f"row 3 gives the visit {wrong_date}, the scan's own header dates it "
                   f"{_header_date(os_).isoformat()}; the row's is used")]
    assert "<b>X</b>" in index.warnings_text() and not index.problems
    assert not [r for r in caplog.records if "<b>X</b>" in r.getMessage() or od.parent.name in r.getMessage()]
    # a visit date a few days off is the same visit (both eyes are not always scanned on one day)
    near = _write(tmp_path / "n.csv", [[str(os_), os_.parent.name, "OS",
                                        (_header_date(os_) + dt.timedelta(days=3)).isoformat()]])
    assert index_manifest(near).warnings == []


def test_one_scan_at_two_visits_is_warned(demo, tmp_path):
    """Two byte-identical files listed a year apart were plotted as two visits and a slope fitted through them."""
    od = _scans(demo, "OD")[0]
    copy = tmp_path / "copy.dcm"
    shutil.copyfile(od, copy)
    later = (_header_date(od) + dt.timedelta(days=365)).isoformat()
    manifest = _write(tmp_path / "m.csv", [[str(od), od.parent.name, "OD", _header_date(od).isoformat()],
                                           [str(copy), od.parent.name, "OD", later],
                                           [str(_scans(demo, "OD")[1]), od.parent.name, "OD", ""]])
    index = index_manifest(manifest)
    same = [(Path(p).name, w) for p, _, w in index.warnings if "the same scan" in w]
    assert [name for name, _ in same] == [od.name, "copy.dcm"]
    assert "the same DICOM UID" in same[0][1] and later in same[0][1] and "copy.dcm" in same[0][1]


def test_same_bytes_without_a_uid_is_the_same_scan(tmp_path):
    """Files with no header UID (NumPy volumes) are compared by size and hash, only where sizes agree."""
    from octviewer.study.index import ScanEntry, _same_scans

    a, b, c = (tmp_path / n for n in ("a.npz", "b.npz", "c.npz"))
    a.write_bytes(b"x" * 100)
    b.write_bytes(b"x" * 100)
    c.write_bytes(b"y" * 100)
    scans = [ScanEntry(str(p), "P", "OD", v, None) for p, v in ((a, "V1"), (b, "V2"), (c, "V3"))]
    same = [Path(p).name for p, _, w in _same_scans(scans, {}, str(tmp_path)) if "the same bytes" in w]
    assert same == ["a.npz", "b.npz"]


@pytest.mark.gui
def test_study_panel_and_ou_view_show_the_warnings(qtbot, demo, tmp_path):
    """The panel's list under the tree and the OU view of the visit show what the header contradicts."""
    from octviewer.gui.study.browser import StudyPanel
    from octviewer.gui.study.ou_view import OUView

    od, os_ = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    visit = _header_date(od).isoformat()
    index = index_manifest(_write(tmp_path / "m.csv", [[str(od), "<b>X</b>", "OD", visit],
                                                       [str(os_), "<b>X</b>", "OS", visit]]))
    panel = StudyPanel()
    qtbot.addWidget(panel)
    panel.resize(420, 600)
    panel.set_index(index)
    panel.show()
    assert panel.problems.isVisible() and panel.problems.text().startswith("Check (used as listed):")
    assert 'row 2 gives the patient "<b>X</b>"' in panel.problems.text().replace("\u200b", "")
    _grab(panel, "h47_study_panel_checks")
    view = OUView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    [visit_label] = [v.label for v in index.visits("<b>X</b>")]
    view.show_visit(index, "<b>X</b>", visit_label)
    qtbot.waitUntil(lambda: view.summary is not None, timeout=60000)
    text = view.checks.text()
    assert view.checks.isVisible() and 'row 2 gives the patient "<b>X</b>"' in text and "row 3" in text
    _grab(view, "h47_ou_view_checks")
    view.tasks.shutdown()


# ---------------------------------------------------------------- A8-5: a study folder's manifest, the same rule

def test_a_folder_manifest_row_that_the_header_contradicts_follows_the_manifest_rule(demo, tmp_path):
    """A study folder's manifest.csv giving an OS scan the eye OD (then another patient and date) was ignored
    without a word, while Open study manifest refused that row (attack run 8, A8-5)."""
    root = _copy(demo, tmp_path)
    victim = _scans(root, "OS")[0]
    rel = str(victim.relative_to(root))
    _write(root / "manifest.csv", [[rel, victim.parent.name, "OD", _header_date(victim).isoformat()]])
    index = index_folder(root, cache_dir=tmp_path / "cache")
    assert index.scan_at(victim) is None
    assert index.problems == [(str(victim), "manifest.csv row 2 gives the eye OD, the scan's own header says OS; "
                                            "it is not used (correct the row or the file)")]
    assert index_manifest(root / "manifest.csv").scan_at(victim) is None  # the same verdict both ways
    _write(root / "manifest.csv", [[rel, "DEMO00-001", "OS", "2016-01-01"]])
    index = index_folder(root, cache_dir=tmp_path / "cache")
    # the row's patient, as Open study manifest files it (H56 walk-through: the two routes filed it apart); the
    # header's patient has no other OS scan at this visit, so this is a re-key, not another patient's scan (A15-7)
    assert index.scan_at(victim).patient_id == "DEMO00-001"
    assert [w for _, _, w in index.warnings] == [
        f'manifest.csv row 2 gives the patient "DEMO00-001", the scan\'s own header says "{victim.parent.name}"; '
        "the row's is used",
        f"manifest.csv row 2 gives the visit 2016-01-01, the scan's own header dates it "
        f"{_header_date(victim).isoformat()}; the header's is used"]


# ---------------------------------------------------------------- A8-8: visit labels that are not dates

def test_visit_labels_are_dated_by_the_headers_and_sorted_naturally(demo, tmp_path):
    """Visits V10, V2, V1 (headers 2018, 2019, 2020) were ordered as text, V1 V10 V2, with every date None."""
    ods = _scans(demo, "OD")
    patient = ods[0].parent.name
    index = index_manifest(_write(tmp_path / "m.csv", [[str(p), patient, "OD", label]
                                                       for p, label in zip(ods, ["V10", "V2", "V1"])]))
    visits = index.visits(patient)
    expected = [(label, _header_date(p)) for p, label in zip(ods, ["V10", "V2", "V1"])]
    assert [(v.label, v.date) for v in visits] == expected
    assert [s.date for s in index.scans_for(patient)] == [_header_date(p) for p in ods]
    assert not index.notes
    # files with no header date: natural order (V2 before V10), and a note that they cannot be ordered by date
    import numpy as np

    for name in ("a.npz", "b.npz", "c.npz"):  # NumPy archives (a manifest row listing no scan is not used: A14-5)
        np.savez(tmp_path / name, volume=np.zeros((2, 8, 8), np.uint8))
    index = index_manifest(_write(tmp_path / "n.csv", [["a.npz", "P", "OD", "V10"], ["b.npz", "P", "OD", "V2"],
                                                       ["c.npz", "P", "OD", "V1"]]))
    assert [v.label for v in index.visits("P")] == ["V1", "V2", "V10"]
    assert index.notes == ["3 visits have no date (neither the manifest nor the scans' headers give one): listed "
                           "after the dated visits, by label, and not ordered by date"]


def test_scans_of_other_patients_or_eyes_are_never_hashed(tmp_path, monkeypatch):
    """A clinic's cubes of one protocol share a size: hashing every same-size file read the whole archive at
    each indexing. Only one patient's eye is compared, where a repeated scan bends a trend."""
    from octviewer.study import index as study_index
    from octviewer.study.index import ScanEntry, _same_scans

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.npz")
        paths[-1].write_bytes(b"x" * 100)
    monkeypatch.setattr(study_index, "file_sha256", lambda path: pytest.fail("hashed across patients or eyes"))
    scans = [ScanEntry(str(paths[0]), "P1", "OD", "V1", None), ScanEntry(str(paths[1]), "P2", "OD", "V2", None),
             ScanEntry(str(paths[2]), "P1", "OS", "V3", None), ScanEntry(str(paths[3]), "P3", "OD", "V1", None)]
    assert _same_scans(scans, {}, str(tmp_path)) == []


def test_scans_of_two_patients_under_one_manifest_id_are_not_paired(demo, tmp_path):
    """A manifest filed two patients' scans under one ID and the OU view paired them as one patient's eyes; a
    consistent re-key (every scan of the ID from one header patient) stays used, with the warning (H56)."""
    import pydicom

    first, first_os = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    patients = [first.parent.name, "OTHER-9"]
    ds = pydicom.dcmread(_scans(demo, "OS")[1])
    ds.PatientID = patients[1]
    other = tmp_path / _scans(demo, "OS")[1].name
    ds.save_as(other)
    rows = [[str(first), "P1", "OD", _header_date(first).isoformat()],
            [str(first_os), "P1", "OS", _header_date(first_os).isoformat()],
            [str(other), "P1", "OS", _header_date(other).isoformat()]]
    index = index_manifest(_write(tmp_path / "m.csv", rows))
    assert {Path(s.path) for s in index.scans} == {first, first_os}
    [(path, problem)] = index.problems
    assert path == str(other) and f'whose other scans\' headers say "{patients[0]}"' in problem
    assert f'its own says "{patients[1]}"' in problem
    rekeyed = index_manifest(_write(tmp_path / "r.csv", rows[:2]))  # one header patient: a re-key, used
    assert {Path(s.path) for s in rekeyed.scans} == {first, first_os} and not rekeyed.problems
    assert {s.patient_id for s in rekeyed.scans} == {"P1"}


def test_a_manifest_scan_whose_laterality_fields_disagree_is_listed_not_filed(demo, tmp_path):
    """ImageLaterality L over FrameLaterality R: a study folder lists the file, and opening it is refused, but
    Open study manifest filed it silently under the row's eye (H56 walk-through)."""
    import pydicom

    ds = pydicom.dcmread(_scans(demo, "OS")[0])
    ds.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].FrameLaterality = "R"
    bad = tmp_path / "e.dcm"
    ds.save_as(bad)
    index = index_manifest(_write(tmp_path / "m.csv", [[str(bad), "P1", "OD", _header_date(bad.parent / _scans(
        demo, "OS")[0].name).isoformat()]]))
    assert not index.scans
    [(path, problem)] = index.problems
    assert path == str(bad) and "the laterality fields disagree" in problem and "row 2" in problem
