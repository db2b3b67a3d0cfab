"""H63: the H56 walk-through's leftovers in the window: opening a study while work runs (item 2), the CSV's sector
classes (item 3), the OU report's n/a footnote kept with its table (item 4), and the Structure dock drawn legibly
while a scan is analysed (item 7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import open_study_folder  # noqa: E402


def _save_grab(widget, name: str) -> None:
    folder = os.environ.get("H63_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_scan(qtbot, w, monkeypatch, path: Path) -> None:
    """File > Open, as a user opens one file."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.volume is not None, timeout=30000)


# ---------------------------------------------------------------- 2: opening a study while work runs

@pytest.mark.gui
def test_opening_a_study_asks_before_it_stops_a_running_analysis(qtbot, window, monkeypatch, demo, tmp_path,
                                                                 held_analysis):
    """File > Open study folder closed the scan on screen, its analysis running, without a question (H56)."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.study.demo import write_demo_study

    w = window
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    scan = sorted(other.rglob("OD_*.dcm"))[0]
    _open_scan(qtbot, w, monkeypatch, scan)
    qtbot.waitUntil(lambda: w.controller.analysis_generation != -1, timeout=30000)
    asked, chosen = [], []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: chosen.append(1) or str(demo))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    w.menu_actions["open_study_folder"].trigger()  # No (the default): nothing opened, nothing stopped
    assert len(asked) == 1 and "Still running: the analysis of the scan on screen" in asked[0]
    assert "Open a study anyway?" in asked[0] and not chosen
    qtbot.wait(200)
    assert w.volume is not None and w.volume.source == str(scan) and w.controller.analysis_generation != -1
    assert w.study.panel.index is None
    _save_grab(w, "h63_2_asked_no_scan_kept")

    panel = w.study.panel
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.Yes)
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()  # Yes: the study opens, the scan and its analysis go
    assert len(asked) == 2 and chosen
    qtbot.waitUntil(lambda: w.volume is None, timeout=10000)
    assert w.controller.analysis_generation == -1
    message = w.statusBar().currentMessage()
    assert "not part of it and was closed; its analysis was stopped" in message
    _save_grab(w, "h63_2_asked_yes_closed")


@pytest.mark.gui
def test_opening_a_study_with_nothing_running_closes_the_scan_and_says_so(qtbot, window, monkeypatch, demo,
                                                                          tmp_path):
    """Nothing would be lost: no question; the status bar says the scan was closed and nothing was lost."""
    from PySide6.QtWidgets import QMessageBox

    from octviewer.study.demo import write_demo_study

    w = window
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _open_scan(qtbot, w, monkeypatch, sorted(other.rglob("OD_*.dcm"))[0])
    qtbot.waitUntil(lambda: w.controller.analysis_generation == -1 and w.prediction is not None, timeout=60000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    open_study_folder(qtbot, w, monkeypatch, demo)
    assert not asked and w.volume is None
    assert ("Study opened: the scan on screen is not part of it and was closed; nothing was running on it, nothing "
            "lost") in w.statusBar().currentMessage()
    _save_grab(w, "h63_2_nothing_running_closed")


@pytest.mark.gui
def test_a_study_read_while_an_analysis_started_asks_before_closing_the_scan(qtbot, window, monkeypatch, demo,
                                                                              tmp_path, held_analysis):
    """A study opened by its path (nothing running then, so no question first), the scan on screen analysed
    when it is ready: asked then; No keeps the scan and its analysis, and the status bar says so."""
    from PySide6.QtWidgets import QMessageBox

    from octviewer.study.demo import write_demo_study

    w = window
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    _open_scan(qtbot, w, monkeypatch, sorted(other.rglob("OD_*.dcm"))[0])
    qtbot.waitUntil(lambda: w.controller.analysis_generation != -1, timeout=30000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.study.open_folder(str(demo))
    assert len(asked) == 1 and "Close it and stop its analysis" in asked[0]
    assert w.volume is not None and w.controller.analysis_generation != -1
    assert "it stays open while its analysis runs" in w.statusBar().currentMessage()


# ---------------------------------------------------------------- 3: the CSV's sector classes

@pytest.mark.gui
def test_the_csv_gives_each_sectors_class_as_the_structure_panel_does(qtbot, window, monkeypatch, demo, tmp_path):
    """File > Export results as CSV gave each Garway-Heath sector's µm but not its class (normal, borderline,
    outside), which the Structure panel's wheel and the PDF show (H56). Appended: the columns before keep their
    order, and the notice stays last."""
    import csv
    import dataclasses

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.gui.export.results_csv import QUADRANT_COLUMNS
    from octviewer.gui.structure.page import wheel_class
    from octviewer.structure.columns import COLUMNS

    w = window
    with qtbot.waitSignal(w.settled, timeout=60000):
        _open_scan(qtbot, w, monkeypatch, sorted(demo.rglob("OD_*.dcm"))[0])
    qtbot.waitUntil(lambda: not w.state.measuring and w.state.structure is not None, timeout=60000)
    report = w.state.structure
    classes = {**report.classes, "sector_TI": "outside", "sector_T": "borderline"}
    w.state.set_structure(dataclasses.replace(report, classes=classes))
    qtbot.wait(20)
    _save_grab(w.structure_panel, "h63_3_structure_panel")
    out = tmp_path / "results.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_csv"].trigger()
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    sectors = ["T", "TS", "TI", "N", "NS", "NI"]
    added = [f"rnfl_{s}_class" for s in sectors]
    old = ["level", "bscan", "probability", "decision", "threshold", *w.state.prediction.vf, "file", "eye", "date",
           "model", "model_digest", "model_signature", *[c for c in COLUMNS if c != "laterality"], *QUADRANT_COLUMNS]
    from octviewer.gui.export.results_csv import MEASURED_COLUMNS  # the patient and the measured field (W12)

    assert header == [*old, *added, "rnfl_global_class", "vf_worse_than_baseline", *MEASURED_COLUMNS,
                      "quality_check", "notice"]  # the check's state the result was made with (H92, W4)
    volume = next(r for r in rows if r["level"] == "volume")
    shown = w.state.structure
    assert [volume[c] for c in added] == [wheel_class(shown, s) for s in sectors]
    assert (volume["rnfl_T_class"], volume["rnfl_TI_class"]) == ("borderline", "outside")
    assert volume["rnfl_NS_class"] == volume["rnfl_NI_class"] == ""  # never classified (µm only), as the wheel
    assert all(r[c] == "" for r in rows if r["level"] == "bscan" for c in added)
    assert "rnfl_T_class to rnfl_NI_class): Garway-Heath sectors" in volume["notice"]


# ---------------------------------------------------------------- 4: the OU report's n/a footnote with its table

def _printed_pages(doc, tmp_path) -> tuple:
    """``doc`` laid out as write_pdf prints it (``scan_pdf._printed_layout``), and the page of a text's block."""
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter

    from octviewer.gui.export.scan_pdf import _printed_layout

    writer = QPdfWriter(str(tmp_path / "layout.pdf"))
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(15, 15, 15, 15)))
    writer.setResolution(150)
    copy, height = _printed_layout(doc, writer)
    layout = copy.documentLayout()

    def page_of(text: str, last: bool = False) -> int:
        pages, block = [], copy.begin()
        while block.isValid():
            if text in block.text():
                rect = layout.blockBoundingRect(block)
                pages.append(int((rect.bottom() - 1 if last else rect.top()) // height))
            block = block.next()
        assert pages, text
        return pages[-1] if last else pages[0]
    return copy, page_of


def _save_pages(doc, tmp_path, name: str) -> None:
    """Each printed page of ``doc`` as a PNG (no PDF renderer here): laid out as write_pdf prints it."""
    folder = os.environ.get("H63_GRABS")
    if not folder:
        return
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QImage, QPainter

    copy, _ = _printed_pages(doc, tmp_path)
    size = copy.pageSize()
    for k in range(copy.pageCount()):
        image = QImage(int(size.width()), int(size.height()), QImage.Format_RGB32)
        image.fill(Qt.white)
        painter = QPainter(image)
        painter.translate(0, -k * size.height())
        copy.drawContents(painter, QRectF(0, k * size.height(), size.width(), size.height()))
        painter.end()
        image.save(os.path.join(folder, f"{name}-{k + 1}.png"))


@pytest.mark.gui
def test_the_ou_reports_na_footnote_prints_on_the_page_of_its_table(qtbot, window, monkeypatch, demo, tmp_path):
    """File > Export OU report: with the asymmetry table near a page's foot, its "n/a:" footnote (why a cell is
    empty) printed overleaf, away from the cells it explains (H56). Checked for every position of the table on
    the page, the checks above it moving it down a line at a time."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.gui.export import ou_pdf
    from octviewer.study.index import StudyWarning

    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, demo)
    visit = panel.tree.topLevelItem(0).child(0)
    panel.tree.setCurrentItem(visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=120000)
    summary = w.study.ou_view.summary
    docs = []
    real = ou_pdf.write_pdf

    def spy(doc, path, *args, **kwargs):
        docs.append(doc)
        return real(doc, path, *args, **kwargs)
    monkeypatch.setattr(ou_pdf, "write_pdf", spy)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    out = tmp_path / "ou.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    split = []
    for n in range(0, 44):  # a check a line: the table moves down the page a line at a time
        summary.checks = [StudyWarning("x", "other", f"check {k}") for k in range(n)]
        w.menu_actions["export_ou"].trigger()
        assert out.read_bytes()[:5] == b"%PDF-"
        _, page_of = _printed_pages(docs[-1], tmp_path)
        table_end, footnote = page_of("Vertical cup-to-disc ratio", last=True), page_of("n/a:", last=True)
        if page_of("n/a:") != page_of("Glaucoma probability") or footnote != table_end:
            split.append(n)
            _save_pages(docs[-1], tmp_path, f"h63_4_ou_split_{n}")
        elif n in (0, 30):
            _save_pages(docs[-1], tmp_path, f"h63_4_ou_{n}")
    assert split == []


# ---------------------------------------------------------------- 7: the Structure dock legible while analysing

def _darkest_and_lightest(widget) -> tuple[int, int]:
    image = widget.grab().toImage()
    greys = [image.pixelColor(x, y).lightness() for x in range(0, image.width(), 2)
             for y in range(0, image.height(), 2)]
    return min(greys), max(greys)


@pytest.mark.gui
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_structure_panels_text_is_legible_while_a_scan_is_analysed(qtbot, window, monkeypatch, demo, theme,
                                                                      held_analysis):
    """The Structure dock's text was light grey on light grey (H56's screenshot): the page drew its text in a fixed
    light grey, meant for the application's dark palette, on the panel's own window colour, light in any other
    (the test windows', a platform theme's). It takes the palette's text colour now."""
    from PySide6.QtWidgets import QApplication

    from octviewer.gui.app import dark_palette

    app = QApplication.instance()
    if theme == "dark":
        old_palette, old_style = app.palette(), app.style().name()
        dark_palette(app)
    try:
        w = window
        _open_scan(qtbot, w, monkeypatch, sorted(demo.rglob("OD_*.dcm"))[0])
        qtbot.waitUntil(lambda: w.controller.analysis_generation != -1, timeout=30000)
        panel = w.structure_panel
        qtbot.waitUntil(lambda: panel.report is None and "Measuring" in panel.empty_text, timeout=10000)
        panel.repaint()
        assert panel.isEnabled() and w.structure_panel.parentWidget().isEnabled()  # not greyed: its own colour was
        _save_grab(panel, f"h63_7_structure_while_analysed_{theme}")
        darkest, lightest = _darkest_and_lightest(panel)
        background = panel.palette().window().color().lightness()
        # text a clear step from the background: on a light window some pixel dark, on a dark one some light
        assert (background - darkest if background > 128 else lightest - background) > 120, (darkest, lightest)
    finally:
        if theme == "dark":
            app.setPalette(old_palette)
            app.setStyle(old_style)
