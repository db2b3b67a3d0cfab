"""The scan PDF keeps the en-face and the per-B-scan curve side by side on one page, as its caption says."""

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMarginsF  # noqa: E402
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from octviewer.resources import DEMO_SAMPLES  # noqa: E402


def _image_pages(doc, writer) -> dict[str, int]:
    """The printed page of each image, laid out as write_pdf prints the report."""
    from octviewer.gui.export.scan_pdf import _printed_layout

    copy, height = _printed_layout(doc, writer)
    layout, pages = copy.documentLayout(), {}
    block = copy.begin()
    while block.isValid():
        top = layout.blockBoundingRect(block).top()
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().isImageFormat():
                line = block.layout().lineForTextPosition(fragment.position() - block.position())
                pages[fragment.charFormat().toImageFormat().name()] = int((top + line.rect().bottom()) // height)
            it += 1
        block = block.next()
    return pages


@pytest.mark.gui
def test_the_enface_and_the_curve_print_on_one_page(qtbot, window, monkeypatch, tmp_path):
    """In a table row the curve stayed at the foot of page 1 and the en-face went to page 2, under a caption
    saying "Left: en-face ... Right: P(glaucoma)" (advanced demo, CAM off as it now starts)."""
    from octviewer.gui.export import scan_pdf

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(DEMO_SAMPLES / "demo_advanced_glaucoma_OD.dcm"), ""))
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: not w.state.measuring, timeout=60000)
    captured = {}
    real = scan_pdf.write_report

    def spy(path, state, images, meta, patient_id=None, sections=(), measured="", checks=""):
        captured["doc"] = scan_pdf.build_document(state, images, meta, patient_id, sections, measured, checks)
        return real(path, state, images, meta, patient_id, sections, measured, checks)

    monkeypatch.setattr(scan_pdf, "write_report", spy)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)  # anonymised
    out = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_pdf"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    writer = QPdfWriter(str(tmp_path / "layout.pdf"))
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(15, 15, 15, 15)))
    writer.setResolution(150)
    pages = _image_pages(captured["doc"], writer)
    assert pages["enface"] == pages["curve"], pages
