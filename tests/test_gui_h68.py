"""H68: the H65 walk-through's items in the study views, each through the window's own actions: the Trend while a
new eye loads (W1), a disputed visit date left out of the slope (W3), one patient identity (W2), File > Export OU
report only while an OU view is open (W6), the tree's selection after a failed open (W9), the OU view while it
loads and for an unreadable scan (W7). Each test saves what it checked as a screenshot under $H68_GRABS."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_study_headers import _header_date, _scans, _write  # noqa: E402


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H68_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_manifest(qtbot, w, monkeypatch, manifest: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    return w.study.panel


def _child(item, prefix: str):
    return next(item.child(k) for k in range(item.childCount()) if item.child(k).text(0).startswith(prefix))


# ---------------------------------------------------------------- W1: the Trend while a new eye loads

@pytest.mark.gui
def test_the_trend_clears_the_last_eye_at_once_when_another_eye_is_asked_for(qtbot, window, monkeypatch, demo):
    """OD's trend drawn, then Trend on OS: for the seconds OS took to load, OD's plots, slopes and "significant
    change" flags stayed under the header "... · OS" (W1), and the first Trend showed empty 0.2-0.8 axes (W28)."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    w = window
    panel = _open_folder(qtbot, w, monkeypatch, demo)
    visit = panel.tree.topLevelItem(0).child(0)
    _click_item(qtbot, panel.tree, _child(visit, "OD"))
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    view = w.study.trend_view
    assert view.history is None and not view.graphics.isVisible()  # no placeholder axes while it loads (W28)
    qtbot.waitUntil(lambda: view.history is not None, timeout=120000)
    assert view.history.eye == "OD" and view.graphics.isVisible() and "global RNFL" in view.summary.text()
    _click_item(qtbot, panel.tree, _child(visit, "OS"))
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    # at once, before the OS task has delivered anything: nothing of OD is left under the OS header
    assert view.header.text().endswith("OS: progression over all visits")
    assert view.history is None and view.notes == []
    assert not view.graphics.isVisible() and not view.key.isVisible()
    assert all(not plot.listDataItems() for plot in view.plots.values())
    assert "global RNFL" not in view.summary.text() and "significant" not in view.summary.text()
    assert "Loading the trend of OS" in view.summary.text()
    _grab(w.study.trend_dialog, "w1_trend_loading_os")
    qtbot.waitUntil(lambda: view.history is not None, timeout=120000)
    assert view.history.eye == "OS" and view.graphics.isVisible() and "global RNFL" in view.summary.text()
    _grab(w.study.trend_dialog, "w1_trend_os_loaded")


# ---------------------------------------------------------------- W3: a disputed visit date is not in the slope

@pytest.mark.gui
def test_a_visit_whose_date_is_disputed_is_drawn_but_left_out_of_the_slope(qtbot, window, monkeypatch, demo,
                                                                            tmp_path):
    """A manifest row dating an OD scan 60 days after its header: the point was ringed but fitted as if the row's
    date were true (W3). It stays drawn and ringed, the slopes are fitted to the other visits, and the Trend's
    headline and the anonymised OU report's trend notes say so, with no date."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_gui_walkthrough_h2 import _click_item

    from octviewer.gui.export import ou_pdf

    od = _scans(demo, "OD")
    patient = od[0].parent.name
    moved = _header_date(od[1]) + dt.timedelta(days=60)
    manifest = _write(tmp_path / "m.csv", [[str(od[0]), patient, "OD", _header_date(od[0]).isoformat()],
                                           [str(od[1]), patient, "OD", moved.isoformat()],
                                           [str(od[2]), patient, "OD", _header_date(od[2]).isoformat()]])
    w = window
    panel = _open_manifest(qtbot, w, monkeypatch, manifest)
    first = panel.tree.topLevelItem(0).child(0)
    _click_item(qtbot, panel.tree, first.child(0))  # OD of the first visit
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    view = w.study.trend_view
    qtbot.waitUntil(lambda: view.history is not None, timeout=120000)
    history = view.history
    assert history.disputed == {moved}
    assert len(history.series["rnfl"]) == 3 and moved in [d for d, _ in history.series["rnfl"]]  # still drawn
    assert history.trends["rnfl"].n == 2 and moved not in [d for d, _ in history.fitted("rnfl")]
    assert all(t.n == 2 for name, t in history.trends.items() if not name.endswith("measured"))
    headline = "1 visit with a disputed date is not in the slope"
    assert headline in view.summary.text().split("<br>")[1]  # under the SYNTHETIC banner, above the slopes
    assert view.notes[0].startswith(headline) and "left out of the fitted line" in " ".join(view.notes)
    _grab(w.study.trend_dialog, "w3_trend_disputed_left_out")

    # the OU report of the same patient, anonymised, prints the trend's notes without a date
    _click_item(qtbot, panel.tree, first)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=120000)
    captured = {}
    real = ou_pdf.write_pdf

    def spy(doc: QTextDocument, path, *args, **kwargs):
        captured["text"] = doc.toPlainText()
        return real(doc, path, *args, **kwargs)
    monkeypatch.setattr(ou_pdf, "write_pdf", spy)
    out = tmp_path / "ou.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    page = captured["text"]
    assert headline in page and "left out of the fitted line" in page
    for day in (moved, *map(_header_date, od)):
        assert day.isoformat() not in page and str(day.year) not in page.split("Trend")[-1]


# ---------------------------------------------------------------- W2: one patient identity everywhere

@pytest.mark.gui
def test_a_scan_a_manifest_row_files_under_another_patient_is_named_by_the_row_everywhere(qtbot, window,
                                                                                           monkeypatch, demo, tmp_path):
    """A manifest row gives the OS scan the patient OTHER-7; its header says the demo patient. The tree filed it
    under OTHER-7, the window title and the identified PDF printed the header's ID (W2). Now the row's ID, with
    the header's beside it; the anonymised PDF names neither."""
    from test_gui_walkthrough_h2 import _click_item, _export_pdf

    od, os_scan = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    patient = od.parent.name
    manifest = _write(tmp_path / "m.csv", [[str(od), patient, "OD", _header_date(od).isoformat()],
                                           [str(os_scan), "OTHER-7", "OS", _header_date(os_scan).isoformat()]])
    w = window
    panel = _open_manifest(qtbot, w, monkeypatch, manifest)
    other = next(panel.tree.topLevelItem(k) for k in range(panel.tree.topLevelItemCount())
                 if panel.tree.topLevelItem(k).text(0) == "OTHER-7")
    scan_item = other.child(0).child(0).child(0)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, scan_item)
    assert w.volume.patient_id == patient  # the header's
    both = f"OTHER-7 (the scan's header: {patient})"
    assert f"patient {both}" in w.windowTitle()
    _grab(w, "w2_title_row_id")
    identified = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=True, name="id.pdf")["doc"].toPlainText()
    assert f"Patient{both}" in identified.replace("\n", "").replace("\t", "")
    if os.environ.get("H68_GRABS"):  # the title bar is not in a grab: the title and the PDF looked at as files
        shutil.copy(tmp_path / "id.pdf", os.path.join(os.environ["H68_GRABS"], "w2_identified.pdf"))
        Path(os.environ["H68_GRABS"], "w2_title.txt").write_text(w.windowTitle())
    anonymised = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False, name="anon.pdf")["doc"].toPlainText()
    assert "OTHER-7" not in anonymised and patient not in anonymised
    # the patient's own OD scan: one ID, nothing beside it
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, panel.tree.topLevelItem(0).child(0).child(0).child(0))
    assert w.volume.source == str(od) and f"patient {patient} —" in w.windowTitle().replace("  ", " ")


# ---------------------------------------------------------------- W6: File > Export OU report only with an OU view

@pytest.mark.gui
def test_export_ou_report_is_enabled_only_while_an_ou_view_is_open_and_names_whose(qtbot, window, monkeypatch,
                                                                                    demo, tmp_path):
    """Closed, the OU view was still exported by File > Export OU report (another patient's scan on screen), and
    the menu entry was enabled with no study at all; its question named no patient or visit (W6)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_gui_walkthrough_h2 import _click_item

    w = window
    action = w.menu_actions["export_ou"]
    assert not action.isEnabled()  # no study, no OU view
    panel = _open_folder(qtbot, w, monkeypatch, demo)
    assert not action.isEnabled()
    visit = panel.tree.topLevelItem(0).child(0)
    _click_item(qtbot, panel.tree, visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    assert action.isEnabled()
    view = w.study.ou_view
    qtbot.waitUntil(lambda: view.summary is not None, timeout=120000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.Cancel)
    saved = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: saved.append(a) or ("", ""))
    action.trigger()
    patient = panel.tree.topLevelItem(0).text(0)
    assert len(asked) == 1 and f"OU report of patient {patient}, visit {view.summary.visit}" in asked[0]
    assert saved == []  # Cancel
    if os.environ.get("H68_GRABS"):
        box = QMessageBox(QMessageBox.Question, "Patient identifier", asked[0],
                          QMessageBox.Yes | QMessageBox.No | QMessageBox.Cancel, w)
        box.show()
        _grab(box, "w6_ou_export_question")
        box.close()
    w.study.ou_dialog.close()  # the window's X
    assert not w.study.ou_dialog.isVisible() and not action.isEnabled()
    action.trigger()
    assert len(asked) == 1 and saved == []  # nothing asked, nothing written


# ---------------------------------------------------------------- W9: the tree after a scan failed to open

@pytest.mark.gui
def test_after_a_study_scan_fails_to_open_the_tree_selects_the_scan_on_screen(qtbot, window, monkeypatch, demo,
                                                                               tmp_path):
    """A cut-short scan clicked in the tree fails to open and the last scan stays on screen, but the tree kept the
    failed scan selected, OU view and Trend enabled for it (W9). The selection goes back to the scan on screen."""
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    first, last = panel.tree.topLevelItem(0).child(0), panel.tree.topLevelItem(0).child(2)
    od_item = _child(first, "OD").child(0)
    cut_item = _child(last, "OS").child(0)
    cut = Path(cut_item.data(0, 0x0100)[4])
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, od_item)
    shown = w.volume.source
    cut.write_bytes(cut.read_bytes()[:6000])  # cut short after the study was read
    failures = len(w.warnings)
    _click_item(qtbot, panel.tree, cut_item)
    qtbot.waitUntil(lambda: len(w.warnings) > failures, timeout=60000)
    assert w.volume.source == shown  # the last scan stays on screen
    assert panel.tree.currentItem() is od_item and panel.selected()[4] == od_item.data(0, 0x0100)[4]
    assert od_item.isSelected() and not cut_item.isSelected()
    assert panel.trend_button.isEnabled()  # for the scan on screen's eye
    _grab(panel, "w9_tree_back_on_the_scan_on_screen")


# ---------------------------------------------------------------- W7: the OU view while it loads, an unreadable scan

@pytest.mark.gui
def test_the_ou_view_says_loading_per_eye_and_scan_unreadable_not_no_scan(qtbot, window, monkeypatch, demo,
                                                                         tmp_path):
    """While the visit loaded, both eyes said "no scan of this eye at this visit", and so did an eye whose scan
    could not be read (W7): "loading…" per eye, then "scan unreadable: <reason>" where it is."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    visit = panel.tree.topLevelItem(0).child(0)
    cut = Path(_child(visit, "OS").child(0).data(0, 0x0100)[4])
    cut.write_bytes(cut.read_bytes()[:6000])  # cut short after the study was read
    _click_item(qtbot, panel.tree, visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    view = w.study.ou_view
    od, os_ = view.columns["OD"], view.columns["OS"]
    assert od.image.text() == "loading…" and os_.image.text() == "loading…"  # at once, before any result
    _grab(w.study.ou_dialog, "w7_ou_loading")
    qtbot.waitUntil(lambda: view.summary is not None, timeout=120000)
    assert not od.image.pixmap().isNull() and od.decision.text() != "not analysed"
    text = os_.image.text()
    assert text.startswith("scan unreadable: ") and cut.name in text and "no scan" not in text
    assert os_.error.text() == ""  # said once, in the image's place
    _grab(w.study.ou_dialog, "w7_ou_os_unreadable")
