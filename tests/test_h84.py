"""H84: the OU view, the OU report and the Trend after attack run 13 (A13-17) and walk-through H82 (W10, W18, W19),
each through the window's own actions: File > Open study folder, the Study tree, OU view, Trend, File > Export OU
report… (dialogs patched)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_study_headers import _scans  # noqa: E402


def _visit_item(panel, label: str):
    top = panel.tree.topLevelItem(0)
    return next(top.child(k) for k in range(top.childCount()) if top.child(k).text(0).startswith(label))


def _open_ou(qtbot, w, panel, visit: str):
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    _click_item(qtbot, panel.tree, _visit_item(panel, visit))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    view = w.study.ou_view
    qtbot.waitUntil(lambda: view.summary is not None, timeout=180000)
    return view


def _export_ou(qtbot, w, monkeypatch, out: Path, identified: bool) -> Path:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identified else QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    return out


def _swamp(path: Path) -> None:
    """Noise over the scan: the quality check refuses it (signal near 0)."""
    import pydicom

    ds = pydicom.dcmread(path)
    a = ds.pixel_array.astype(np.float32)
    noisy = a * 0.3 + np.random.default_rng(0).normal(60, 40, a.shape)
    ds.PixelData = np.clip(noisy, 0, 255).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(path)


def _stamp_date(path: Path) -> str:
    stamp = path.stem[3:]
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"


# ---------------------------------------------------------------- A13-17: the quality check's note

@pytest.mark.gui
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_ou_view_report_and_trend_say_the_quality_check_refuses_the_scan(qtbot, window, monkeypatch, demo, tmp_path):
    """A13-17: with Analysis > Quality check off (the fixture's state), a scan the check refuses read "NORMAL 0.00"
    in the OU view's decision line and the OU report's table with no word of it, where the Results panel and the
    scan PDF say "quality check off: this scan fails it ...". The same note now stands beside the eye's verdict in
    the OU view, the OU report's table, and the Trend's summary (with the visit's date)."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[1]
    _swamp(od)
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, _stamp_date(od))
    od_eye = view.summary.eyes["OD"]
    assert od_eye.probability is not None and not od_eye.structure.quality.ok  # analysed, and the check refuses it
    decision = view.columns["OD"].decision.text()
    assert "quality check off: this scan fails it" in decision, decision
    assert "with the check on it gets no result" in decision
    text = subprocess.run(["pdftotext", "-raw", str(_export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", False)),
                           "-"], capture_output=True, text=True, check=True).stdout.replace("\ufb00", "ff")
    table = text[text.find("P(glaucoma)"):]
    assert "quality check off: this scan fails it" in " ".join(table.split())[:1500], table[:1500]
    visit = _visit_item(panel, _stamp_date(od))
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    _click_item(qtbot, panel.tree, eye)
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    trend = w.study.trend_view
    qtbot.waitUntil(lambda: trend.history is not None, timeout=300000)
    summary = trend.summary.text()
    assert f"{_stamp_date(od)}: quality check off: this scan fails it" in summary, summary


# ---------------------------------------------------------------- W18: an export's unexpected error

@pytest.mark.gui
def test_an_ou_report_export_that_fails_unexpectedly_says_so_and_logs_it(qtbot, window, monkeypatch, demo, tmp_path,
                                                                        caplog):
    """W18: File > Export OU report… failing with an unexpected exception (not OSError: an AttributeError from code
    changed under the running program) wrote no file and said nothing, a traceback on stderr only: a clinician
    believed the report saved. Every export goes through ``write_export``: an unexpected error now gives the one-line
    dialog naming the file ("Cannot write X: an internal error: <type>: <message>") and is logged, with its type and
    where it was raised but without its message or the path (they may name the patient)."""
    import logging

    import octviewer.gui.export.ou_pdf as ou_pdf
    from octviewer.gui.dialogs import as_literal

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, _stamp_date(_scans(root, "OD")[0]))
    patient = view.summary.patient_id

    def broken(*args, **kwargs):
        raise AttributeError(f"'EyeHistory' object has no attribute 'report_errors' ({patient})")
    monkeypatch.setattr(ou_pdf, "write_ou_report", broken)
    out = tmp_path / "exports" / "ou.pdf"
    out.parent.mkdir()
    with caplog.at_level(logging.ERROR):
        _export_ou(qtbot, w, monkeypatch, out, identified=False)
    assert not out.exists()
    assert w.warnings == [as_literal(f"Cannot write {out}: an internal error: AttributeError: 'EyeHistory' object "
                                     f"has no attribute 'report_errors' ({patient})")], w.warnings
    assert "saved to" not in w.statusBar().currentMessage()
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("OU report export failed: internal error AttributeError" in m for m in logged), logged
    assert not any(patient in m or str(out) in m for m in logged), logged


# ---------------------------------------------------------------- W19: a folder study's cut-short scan

@pytest.mark.gui
def test_a_folder_study_names_a_cut_short_scan_when_it_opens(qtbot, window, monkeypatch, demo, tmp_path):
    """W19: a folder study with a scan cut inside its pixel data opened with "nothing skipped" and no word of it;
    the cut was found only when the visit was opened, where a manifest study names such a file at once. The scan
    stays indexed from its header (tests/test_study_index.py: headers only), and the panel's list under the tree
    now names it, cut short, with io.dicom.cut_short's bytes, as soon as File > Open study folder… has read it; the
    OU view of its visit says it above the eyes, as the study's other checks."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    os_scan = _scans(root, "OS")[2]
    os_scan.write_bytes(os_scan.read_bytes()[:60000])
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert str(os_scan) in {s.path for s in panel.index.scans}  # still indexed from its header
    listed = panel.problems.text().replace("\u200b", "")  # path breaks (zero-width spaces)
    assert os_scan.name in listed and "cut short: it ends inside its pixel data, 60000 of" in listed, listed
    assert "cannot be opened" in listed
    assert panel.problems_summary.text(), "the line above the list counts it"
    view = _open_ou(qtbot, w, panel, _stamp_date(os_scan))
    assert "cut short" in view.checks.text() and view.checks.isVisible()


# ---------------------------------------------------------------- W10: another patient's scan on screen

def _open_file(qtbot, w, monkeypatch, path: Path) -> None:
    """File > Open… with the dialog patched; waits until the scan is on screen."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and w.state.volume.source
                    and Path(w.state.volume.source).resolve() == path.resolve(), timeout=60000)


@pytest.mark.gui
def test_another_patients_scan_on_screen_closes_the_ou_view_and_trend(qtbot, window, monkeypatch, demo, tmp_path):
    """W10: an OU view (and Trend) of one patient stayed open on top while another patient's scan was opened in the
    main window: two patients' results on screen, the one in front not the one the title bar names, and File >
    Export OU report… would export it. A scan of the same patient leaves them open; one of another patient closes
    both (their analyses stopped), disables Export OU report…, and the status bar says why."""
    import pydicom
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    other = tmp_path / "elsewhere" / "other.dcm"
    other.parent.mkdir()
    ds = pydicom.dcmread(_scans(root, "OD")[0])
    ds.PatientID = "OTHER-42"
    ds.save_as(other)
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    od = _scans(root, "OD")[0]
    view = _open_ou(qtbot, w, panel, _stamp_date(od))
    visit = _visit_item(panel, _stamp_date(od))
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    _click_item(qtbot, panel.tree, eye)
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    c = w.study
    assert c.ou_dialog.isVisible() and c.trend_dialog.isVisible()
    _open_file(qtbot, w, monkeypatch, od)  # the same patient's scan: both stay
    assert c.ou_dialog.isVisible() and c.trend_dialog.isVisible()
    assert w.menu_actions["export_ou"].isEnabled()
    _open_file(qtbot, w, monkeypatch, other)  # another patient's
    assert not c.ou_dialog.isVisible() and not c.trend_dialog.isVisible()
    assert not w.menu_actions["export_ou"].isEnabled()
    assert view.summary.patient_id != w.state.volume.patient_id
