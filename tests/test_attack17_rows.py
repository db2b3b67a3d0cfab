"""Attack run 17, A17-8, A17-3, A17-6 and A17-9: which patient, eye and visit a scan counts for. Each test goes
through the window (File > Open study folder / Open study manifest, the Trend) or ``octviewer-train validate``'s
main, reading what the user sees; each fails on the code before the fix."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from conftest import without_fields  # noqa: E402
from test_attack16_copies import _redated_copy, progressing  # noqa: E402,F401
from test_attack16_trend import _trend  # noqa: E402
from test_study_headers import _header_date, _scans  # noqa: E402


def _text(html: str) -> str:
    return " ".join(re.sub("<[^>]+>", " ", html).split())


# ---------------------------------------------------------------- A17-8: a scan re-dated backward


@pytest.mark.gui
def test_a17_8_a_scan_redated_backward_counts_at_the_visit_where_it_is_alone(
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """The LAST visit's OD scan re-dated a day after the second visit's OD scan (same UID and pixels): it was
    counted at the second visit (its first), beside that visit's own scan (a 'repeat', the point the mean of two
    years' scans), and the genuine last visit, where it is alone, was ringed and left out: the significant RNFL
    loss read not significant. Now it counts where it is the eye's only scan: the Trend is the study's without
    the copy, flagged, and the check says where it counts."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item


    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    before = _trend(qtbot, w, panel).history
    assert before.flagged("rnfl"), before.trends["rnfl"]
    w.study.trend_dialog.close()
    od = _scans(root, "OD")
    copy = _redated_copy(od[-1], _header_date(od[1]) + dt.timedelta(days=1))
    panel = _open_folder(qtbot, w, monkeypatch, root)
    index = w.study.index
    assert {c.kind for c in index.warnings} == {"two visits"}, index.warnings  # no 'repeat' at the second visit
    assert index.later_copies() == {str(copy)}
    shown = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert f"it is counted at {_header_date(od[-1])} only (the visit where it is the eye's only scan" in shown, shown
    view = _trend(qtbot, w, panel)
    history = view.history
    rnfl = [v for _, v in history.series["rnfl"]]
    assert np.allclose(rnfl, [v for _, v in before.series["rnfl"]]), (rnfl, before.series["rnfl"])
    assert history.trends["rnfl"].n == 4 and history.flagged("rnfl") and not history.twice and not history.disputed
    summary = _text(view.summary.text())
    assert "significant change" in summary and "not in the slope" not in summary, summary
    assert history.check_note("two visits") in view.notes  # named by its visits' places (H112, X4)
    w.study.trend_dialog.close()

    # the OU view of the second visit: its own OD scan alone (it averaged the copy of the last visit's in)
    second = panel.tree.topLevelItem(0).child(1)
    _click_item(qtbot, panel.tree, second)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=300000)
    eye = w.study.ou_view.summary.eyes["OD"]
    assert eye.paths == [str(od[1])] and eye.n_predictions == 1, eye.paths


# ---------------------------------------------------------------- A17-3: an "old ID" that is a listed patient's


def _namesakes(tiny_cohort, folder) -> tuple[Path, list[dict], int]:
    """The tiny cohort with SYN003-0003 and SYN003-0009 both named MOHAMMED^ALI, born 1980-01-01 (namesakes with a
    1 January birth date), and SYN003-0009's last OS scan listed under SYN003-0003 instead of its own row (its
    other OS scans are of earlier visits, so the 'eye' rule does not see it): (manifest, rows, that row's number)."""
    from test_attack12_trainer import _write
    from test_attack16_rows import _copy, _resave

    manifest, rows = _copy(tiny_cohort, folder)
    a, b = "SYN003-0003", "SYN003-0009"
    for r in rows:
        if r["patient_id"] in (a, b):
            _resave(r["path"], PatientName="MOHAMMED^ALI", PatientBirthDate="19800101")
    theirs = sorted((r for r in rows if r["patient_id"] == b and r["eye"] == "OS"), key=lambda r: r["visit"])
    assert len(theirs) >= 3 and any(r["patient_id"] == a for r in rows)
    moved = theirs[-1]
    moved.update(patient_id=a, label=next(r["label"] for r in rows if r["patient_id"] == a and r["eye"] == "OS"))
    return _write(rows, manifest.with_name("namesakes.csv")), rows, rows.index(moved) + 2


def test_a17_3_validate_refuses_a_row_pointing_at_a_listed_namesakes_scan(tiny_cohort, tmp_path, capsys):
    """Two patients of the cohort share a name and birth date; a row of one points at the other's scan: it was
    kept as "an ID changed or records merged?" and trained on with the row's label (rc 0). The header's ID is a
    listed patient's whose own scans carry it: the scan is that patient's, and the row is refused as before."""
    from trainer.cli import main

    manifest, rows, row = _namesakes(tiny_cohort, tmp_path / "c")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert f"row {row}: its scan's own header names another patient than the other scans of its patient ID do" \
           in err, err
    assert "records merged" not in err, err


@pytest.mark.gui
def test_a17_3_open_study_manifest_leaves_out_a_listed_namesakes_scan(qtbot, window, monkeypatch, tiny_cohort,
                                                                      tmp_path):
    """The same manifest through File > Open study manifest: the other patient's scan was used as the row's
    patient's OS, with a 'patient' check saying "an ID changed or records merged?"; now it is listed, not used."""
    from PySide6.QtWidgets import QFileDialog

    manifest, rows, row = _namesakes(tiny_cohort, tmp_path / "c")
    moved = rows[row - 2]["path"]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=120000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert moved not in {s.path for s in panel.index.scans}
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert ('listed under the patient "SYN003-0003", whose other scans\' headers say "SYN003-0003", while its own '
            'says "SYN003-0009": another patient\'s scan is not used') in text, text
    assert "records merged" not in text, text


# ---------------------------------------------------------------- A17-6: one scan under the old and the new MRN


def _merged_folder(study, folder: Path, new_uids: bool) -> tuple[Path, list[Path], list[Path]]:
    """The progressing patient's scans named DOE^JOHN born 1950-01-01, and the first visit's pair exported again
    under the MRN before a record merge (OLD-4711; its UIDs kept or new) in the folder old/: (root, the first
    visit's scans, their old exports)."""
    import pydicom
    from pydicom.uid import generate_uid

    root = without_fields(Path(shutil.copytree(study, folder)))
    first = [_scans(root, "OD")[0], _scans(root, "OS")[0]]
    (root / "scans" / "old").mkdir()
    old = []
    for scan in sorted((root / "scans").rglob("*.dcm")):
        ds = pydicom.dcmread(scan)
        ds.PatientName, ds.PatientBirthDate = "DOE^JOHN", "19500101"
        ds.save_as(scan)
        if scan in first:
            ds.PatientID = "OLD-4711"
            if new_uids:
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                ds.SeriesInstanceUID = generate_uid()
            old.append(root / "scans" / "old" / scan.name)
            ds.save_as(old[-1])
    return root, first, old


@pytest.mark.gui
@pytest.mark.parametrize("new_uids", [False, True])
def test_a17_6_one_scan_under_the_old_and_new_mrn_is_used_once_as_the_persons(
        qtbot, window, monkeypatch, progressing, tmp_path, new_uids):  # noqa: F811
    """File > Open study folder: the first visit's scans beside their pre-merge export under OLD-4711 (same name
    and birth date) were "one scan filed under the patients ...: whose scan it is cannot be told; neither is
    used": the baseline vanished from the patient's visits and trend. Used now once, as the patient's whose other
    scans the study lists, the export left out, with a 'patient' check naming both IDs; another person's name on
    the export still leaves both out."""
    import pydicom

    root, first, old = _merged_folder(progressing, tmp_path / "study", new_uids)
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    index = panel.index
    used = {s.path for s in index.scans}
    assert {str(p) for p in first} <= used and not {str(p) for p in old} & used, index.problems
    assert {str(p) for p in old} <= set(index.copies)
    assert not index.problems, index.problems
    assert index.patients() == ["DEMO00-000"] and len(index.visits("DEMO00-000")) == 4
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert ("filed under the patients DEMO00-000 and OLD-4711, whose headers give the same name and birth date (an ID "
            "changed or records merged?): it is used once, as DEMO00-000's") in text, text
    assert "cannot be told" not in text, text

    ds = pydicom.dcmread(old[0])
    ds.PatientName = "ROE^JANE"
    ds.save_as(old[0])
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert str(first[0]) not in {s.path for s in panel.index.scans}
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "whose scan it is cannot be told; neither is used" in text, text


# ---------------------------------------------------------------- A17-9: an .npz export under another patient


@pytest.mark.gui
@pytest.mark.parametrize("compressed", [True, False])
def test_a17_9_an_npz_export_of_another_patients_scan_is_listed_by_open_study_manifest(
        qtbot, window, monkeypatch, progressing, tmp_path, compressed):  # noqa: F811
    """DEMO00-000's OD scan, saved as an .npz (compressed or not), listed under DEMO00-001: it was used as
    DEMO00-001's scan, nothing said (the .npy export was listed since A16-12; the trainer refuses both). Now both
    files of the one scan are listed and neither used; an .npz of another scan is used."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.io import load_volume

    od = _scans(progressing, "OD")
    os_ = _scans(progressing, "OS")
    save = np.savez_compressed if compressed else np.savez
    copy, other = tmp_path / "copy.npz", tmp_path / "other.npz"
    save(copy, volume=load_volume(od[1]).data)
    save(other, volume=load_volume(od[2]).data)
    manifest = tmp_path / "manifest.csv"
    first, second = _header_date(od[1]).isoformat(), _header_date(od[2]).isoformat()
    with open(manifest, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["path", "patient_id", "eye", "visit"])
        rows.writerows([[od[1], "DEMO00-000", "OD", first], [copy, "DEMO00-001", "OD", first],
                        [other, "DEMO00-001", "OD", second], [os_[1], "DEMO00-001", "OS", first]])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    used = {s.path for s in panel.index.scans}
    assert str(copy) not in used and str(od[1]) not in used and str(other) in used, used
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert ("copy.npz are one scan (the same pixel data under other header fields) filed under the patients "
            "DEMO00-000 and DEMO00-001: whose scan it is cannot be told; neither is used") in problems, problems
