"""H63: the H56 walk-through's leftovers in the study views: a measured field of unknown date, tied to its scan by
its manifest row, is "not compared" (Results, scan PDF, OU view, OU PDF), as a field far from its scan is."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pytest
from conftest import open_study_folder  # noqa: E402
from test_study_headers import _grab, _header_date, _scans, _write  # noqa: E402


def _open_manifest(qtbot, w, monkeypatch, manifest: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    panel = w.study.panel
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    return panel


def _save_grab(widget, name: str) -> None:
    """The screenshot each visible change was looked at in (H63 brief), and the walk-through's folder too."""
    folder = os.environ.get("H63_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))
    _grab(widget, name)


# ---------------------------------------------------------------- 1: a measured field of unknown date

def test_a_field_of_unknown_date_is_not_compared():
    """One rule (``vf_compared``): a field that cannot be shown to lie within 180 days of its scan is not
    compared; a date unknown was compared as if current."""
    import datetime as dt

    from octviewer.study.vf import vf_compared, vf_not_compared

    day = dt.date(2024, 3, 1)
    assert vf_compared(day, day) and not vf_not_compared(day, day)
    assert not vf_compared(None, day) and vf_not_compared(None, day) == "the VF test date is unknown"
    assert not vf_compared(day, None) and vf_not_compared(day, None) == "the scan's date is unknown"
    assert vf_not_compared(day - dt.timedelta(days=181), day) == "more than 180 days apart"


@pytest.mark.gui
def test_an_undated_field_on_a_manifest_row_is_not_compared_anywhere(qtbot, window, monkeypatch, demo, tmp_path):
    """A manifest row with visit 'V1' (no date) and VF values: Results gave "difference +2.1 %" under
    "VF test date unknown", as if the field were of the scan's day; the scan PDF, OU view and OU PDF too."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_gui_walkthrough_h2 import _click_item, _export_pdf

    from octviewer.gui.export import ou_pdf

    od, os_scan = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    patient = od.parent.name
    header = ("path", "patient_id", "eye", "visit", "vfi", "md", "psd")
    manifest = _write(tmp_path / "m.csv", [[str(od), patient, "OD", "V1", 97.5, -0.5, 1.6],
                                           [str(os_scan), patient, "OS", "V1", 71.0, -9.8, 8.2]], header=header)
    w = window
    panel = _open_manifest(qtbot, w, monkeypatch, manifest)
    assert len(panel.index.vf) == 2 and all(m.date is None for m in panel.index.vf)
    visit = panel.tree.topLevelItem(0).child(0)
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, eye.child(0))
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=60000)
    qtbot.waitUntil(lambda: "Measured visual field" in w.results.extra.text(), timeout=30000)
    _save_grab(w.results, "h63_1_results_undated_vf")
    text = w.results.extra.text()
    assert "VF test date unknown: not compared" in text
    assert "difference not compared" in text and "difference +" not in text and "difference -" not in text
    for identify in (True, False):
        pdf = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=identify,
                          name=f"scan_{identify}.pdf")["doc"].toPlainText()
        assert "VF test date unknown: not compared" in pdf and "not compared" in pdf.split("predicted − measured")[1]

    # OU view and the OU report, from the Study panel and File > Export OU report
    _click_item(qtbot, panel.tree, visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=120000)
    view = w.study.ou_view
    _save_grab(view, "h63_1_ou_view_undated_vf")
    for eye_name in ("OD", "OS"):
        assert view.columns[eye_name].cell("md", 2) == "not compared"
        assert "the VF test date" not in view.columns[eye_name].table.toolTip()
        assert f"not compared, the {eye_name} field's test date is unknown" in view.columns[eye_name].table.toolTip()
    table = view.asymmetry_table
    row = next(i for i in range(table.rowCount()) if table.verticalHeaderItem(i).text() == "MD measured (dB)")
    assert table.item(row, 2).text() == "not compared"
    assert html.unescape(table.item(row, 2).toolTip()) == (
        "<p>not compared: the OD field's test date is unknown; the OS field's test date is unknown</p>")
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
    if os.environ.get("H63_GRABS"):
        import shutil

        shutil.copy(out, os.path.join(os.environ["H63_GRABS"], "h63_1_ou_report.pdf"))
    page = captured["text"]
    assert "n.c. = not compared: the OD field's test date is unknown; the OS field's test date is unknown" in page
    assert ("OD - OS of MD measured (dB), VFI measured (%): not compared: the OD field's test date is unknown; the OS "
            "field's test date is unknown") in page
    assert str(_header_date(od)) not in page  # anonymised


# ---------------------------------------------------------------- 5: a check's kind from the index, not its wording

@pytest.mark.gui
def test_a_checks_kind_comes_from_the_index_not_from_the_words_of_a_file_name(qtbot, window, monkeypatch, demo,
                                                                               tmp_path):
    """The window read a check's kind from its text, and the text quotes file names: a copy named with the words
    of a header check ("... the scan's own header says ...") was named a manifest's disagreement over the patient
    ID in Results, and so on the anonymised PDF, in a folder with no manifest at all. The index gives the kind."""
    import shutil

    from test_gui_walkthrough_h2 import _click_item, _export_pdf

    from octviewer.study.index import StudyWarning

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    shutil.copyfile(od, od.with_name("zz copy, the scan's own header says P2.dcm"))

    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    [warning] = panel.index.warnings
    assert isinstance(warning, StudyWarning) and warning.kind == "copy" and "header says P2" in warning.text
    visit = panel.tree.topLevelItem(0).child(0)
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, eye.child(0))
    qtbot.waitUntil(lambda: "Check (" in w.results.study_checks.text(), timeout=30000)
    _save_grab(w.results, "h63_5_results_copy_check")
    text = w.results.study_checks.text()
    assert f"Check (study): {warning.text}" in text and "Check (study manifest)" not in text  # the text as it was
    anonymised = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)["doc"].toPlainText()
    assert ("Check (study): a second copy of this scan at this visit, used once; details withheld: anonymised "
            "report") in anonymised
    assert "header disagree" not in anonymised and "P2" not in anonymised


# ---------------------------------------------------------------- 6: a disputed visit date in the Trend

@pytest.mark.gui
def test_the_trend_rings_a_visit_whose_row_and_header_dates_disagree(qtbot, window, monkeypatch, demo, tmp_path):
    """A manifest row dating a scan 60 days after its header was warned in the Study panel, but the Trend
    plotted the point at the row's date with no mark. It stays there (the study files it there; moving it broke
    the one-scan-one-visit rules), ringed, and the summary and the OU report's notes say why (no date in them)."""
    import datetime as dt

    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    from octviewer.gui.study.trend_view import DISPUTED_COLOUR, DISPUTED_NOTE

    od = _scans(demo, "OD")
    patient = od[0].parent.name
    moved = _header_date(od[1]) + dt.timedelta(days=60)
    manifest = _write(tmp_path / "m.csv", [[str(od[0]), patient, "OD", _header_date(od[0]).isoformat()],
                                           [str(od[1]), patient, "OD", moved.isoformat()],
                                           [str(od[2]), patient, "OD", _header_date(od[2]).isoformat()]])
    w = window
    panel = _open_manifest(qtbot, w, monkeypatch, manifest)
    assert [x.kind for x in panel.index.warnings] == ["date"]
    visit = panel.tree.topLevelItem(0).child(0)
    _click_item(qtbot, panel.tree, visit.child(0))  # the right eye
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.trend_view.history is not None, timeout=120000)
    view = w.study.trend_view
    history = view.history
    assert history.disputed == {moved}
    assert moved in [d for d, _ in history.series["rnfl"]]  # plotted at the row's date, as the study files it
    rings = [item for item in view.plots["rnfl"].listDataItems()
             if item.opts.get("symbolPen") is not None and item.opts["symbolBrush"] is None]
    assert len(rings) == 1 and len(rings[0].xData) == 1
    assert pg_colour(rings[0].opts["symbolPen"]) == DISPUTED_COLOUR
    assert DISPUTED_NOTE in view.notes and "Ringed: a visit whose date is disputed" in view.summary.text()
    assert "".join(c for c in DISPUTED_NOTE if c.isdigit()) == "7"  # no date: the anonymised OU report prints it
    _save_grab(view, "h63_6_trend_disputed")


def pg_colour(pen) -> str:
    import pyqtgraph as pg

    return pg.mkPen(pen).color().name()
