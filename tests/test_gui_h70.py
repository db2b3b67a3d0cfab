"""H70: the H65 walk-through's items left in the study views, each through the window's own actions: visual
fields matched to no visit listed with their reason and not counted (W5), the field the Results panel compares
shown in the tree and its test date in the OU view and OU PDF (W4), room for the study's problems (W8), and H68's
leftovers. Each test saves what it checked as a screenshot under $H70_GRABS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H70_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _child(item, prefix: str):
    return next(item.child(k) for k in range(item.childCount()) if item.child(k).text(0).startswith(prefix))


def _study(demo: Path, tmp_path: Path, rows: list[str]) -> Path:
    """The demo study (DEMO05-000, visits 2018-08-06, 2019-08-10, 2020-08-02) with these VF table rows."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    (root / "visual_fields.csv").write_text("patient_id,eye,date,vfi,md,psd\n" + "\n".join(rows) + "\n")
    return root


# ---------------------------------------------------------------- W5: fields matched to no visit

@pytest.mark.gui
def test_fields_matched_to_no_visit_are_listed_with_their_reason_and_not_counted(qtbot, window, monkeypatch, demo,
                                                                                  tmp_path):
    """Five VF rows, one matched: a blank date, a field years from any scan and a patient not in the study were
    counted ("4 measured visual fields") and shown nowhere; and "skipped 1 table rows refused"."""
    root = _study(demo, tmp_path, ["DEMO05-000,OD,2018-08-10,97.0,-1.0,2.0",
                                   "DEMO05-000,OD,,96.0,-1.5,2.1",
                                   "DEMO05-000,OS,2010-01-10,95.0,-2.0,2.2",
                                   "DEMO05-009,OD,2019-08-12,94.0,-2.5,2.3",
                                   "DEMO05-000,OS,2015-02-30,93.0,-3.0,2.4"])
    panel = _open_folder(qtbot, window, monkeypatch, root)
    status, listed = panel.status.text().replace("\u200b", ""), panel.problems.text().replace("\u200b", "")
    _grab(panel, "w5_unmatched_fields")
    assert "1 measured visual field;" in status, status
    assert "1 table row refused" in status and "3 visual fields matched to no visit" in status, status
    assert "DEMO05-000 OD with no date is matched to no visit: it has no test date" in listed, listed
    assert "OS 2010-01-10 is matched to no visit: no dated scan of this eye within 180 days" in listed, listed
    assert "DEMO05-009 OD 2019-08-12 is matched to no visit: its patient is not in the study" in listed, listed
    assert "2015-02-30" in listed


# ---------------------------------------------------------------- W4: the field the Results panel compares

def _export_ou(qtbot, w, monkeypatch, tmp_path, identify: bool) -> str:
    """File > Export OU report…, the identifier question answered; the page's text."""
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.gui.export import ou_pdf

    captured = {}
    real = ou_pdf.write_pdf

    def spy(doc: QTextDocument, path, *args, **kwargs):
        captured["text"] = doc.toPlainText()
        return real(doc, path, *args, **kwargs)
    monkeypatch.setattr(ou_pdf, "write_pdf", spy)
    out = tmp_path / f"ou_{identify}.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identify else QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    return captured["text"]


@pytest.mark.gui
def test_a_field_74_days_from_the_scan_is_in_the_tree_and_dated_in_the_ou_view_and_pdf(qtbot, window, monkeypatch,
                                                                                     demo, tmp_path):
    """OD's field 74 days after the 2019-08-10 scan: the Results panel compared it (VF_COMPARE_MAX_DAYS), the tree
    showed no field for the eye (VF_MATCH_DAYS), and the OU view and OU PDF gave it with no date."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = _study(demo, tmp_path, ["DEMO05-000,OD,2019-10-23,96.9,-0.53,2.16"])
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    visit = _child(panel.tree.topLevelItem(0), "2019-08-10")
    od = _child(visit, "OD")
    assert "VF" in visit.text(1)
    assert od.text(1) == "measured VF: MD -0.5 dB, VFI 96.9%, PSD 2.2 dB (tested 2019-10-23, 74 days after the scan)"
    assert panel.status.text().replace("\u200b", "").count("1 measured visual field;") == 1
    _click_item(qtbot, panel.tree, visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    view = w.study.ou_view
    qtbot.waitUntil(lambda: view.summary is not None, timeout=120000)
    assert view.columns["OD"].vf_when.text() == "measured VF tested 2019-10-23 (74 days after the scan)"
    assert view.columns["OS"].vf_when.text() == ""
    _grab(w.study.ou_dialog, "w4_ou_vf_dated")
    identified = _export_ou(qtbot, w, monkeypatch, tmp_path, identify=True)
    assert "Measured: OD VF tested 2019-10-23 (74 days after the scan)" in identified
    anonymised = _export_ou(qtbot, w, monkeypatch, tmp_path, identify=False)
    assert "Measured: OD VF tested 74 days after the scan (date withheld: anonymised report)" in anonymised
    assert "2019-10-23" not in anonymised


# ---------------------------------------------------------------- W8: room for the study's problems

@pytest.mark.gui
def test_the_study_problems_get_room_and_every_tree_cell_its_whole_text_as_tooltip(qtbot, window, monkeypatch,
                                                                                 demo, tmp_path):
    """Five problems in a box ~3 lines high, entries of 3-4 lines each, and the Details column cut off
    ("measure…-09-24)") with no tooltip on some cells: the list is on a splitter with the tree, "Show all
    problems…" opens them all in a window of their own, and every cell has its whole text as a tooltip."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QPlainTextEdit, QTreeWidgetItemIterator

    root = _study(demo, tmp_path, ["DEMO05-000,OD,2018-08-10,97.0,-1.0,2.0",
                                   "DEMO05-000,OD,,96.0,-1.5,2.1",
                                   "DEMO05-000,OS,2010-01-10,95.0,-2.0,2.2",
                                   "DEMO05-009,OD,2019-08-12,94.0,-2.5,2.3",
                                   "DEMO05-000,OS,2015-02-30,93.0,-3.0,2.4"])
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    w.resize(1280, 800)
    w.study.dock.raise_()
    qtbot.wait(100)
    assert panel.splitter.widget(0) is panel.problems_box and panel.splitter.widget(1) is panel.tree
    start = panel.problems_box.height()
    total = sum(panel.splitter.sizes())
    panel.splitter.setSizes([total // 2, total - total // 2])  # the reader drags the divider down
    qtbot.wait(100)
    assert panel.problems_box.height() >= 2 * start and panel.problems_box.height() >= total // 2 - 10
    _grab(panel, "w8_problems_dragged")
    assert panel.all_problems_button.isVisible()
    qtbot.mouseClick(panel.all_problems_button, Qt.LeftButton)
    dialog = panel.problems_dialog
    assert dialog is not None and dialog.isVisible()
    text = dialog.findChild(QPlainTextEdit).toPlainText()
    assert text.count("\n• ") == 4 and "\u200b" not in text
    assert "DEMO05-009 OD 2019-08-12 is matched to no visit: its patient is not in the study" in text
    _grab(dialog, "w8_all_problems")
    dialog.close()
    it = QTreeWidgetItemIterator(panel.tree)
    cells = 0
    while it.value():
        item = it.value()
        for column in (0, 1):
            if item.text(column):
                assert item.toolTip(column), (item.text(0), column)
                cells += 1
        it += 1
    assert cells > 10


# ---------------------------------------------------------------- H68 left: the wheels while the OU view loads

@pytest.mark.gui
def test_the_sector_wheels_say_loading_while_the_ou_view_loads(qtbot, window, monkeypatch, demo, tmp_path):
    """The grey wheels read "RNFL n/a" for the seconds the visit loaded."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    w = window
    panel = _open_folder(qtbot, w, monkeypatch, _study(demo, tmp_path, []))
    _click_item(qtbot, panel.tree, panel.tree.topLevelItem(0).child(0))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    view = w.study.ou_view
    assert view.columns["OD"].wheel.centre_text(None) == "RNFL\nloading…"
    _grab(w.study.ou_dialog, "w7_wheels_loading")
    qtbot.waitUntil(lambda: view.summary is not None, timeout=120000)
    assert view.columns["OD"].wheel.centre_text(None) == "RNFL\nn/a"
