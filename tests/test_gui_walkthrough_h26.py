"""Findings of the fifth clinician walk-through (2026-12-06): the PDF reports and the Results panel,
driven as a user drives the window. OCTVIEWER_WALK_GRABS=folder saves the PDFs and grabs to look at."""

import os
import shutil
import subprocess

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


from octviewer.resources import DEMO_SAMPLES  # noqa: E402

pytestmark = pytest.mark.gui


def _keep(path, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        shutil.copy(path, os.path.join(folder, name))


def _word_heights(pdf, word) -> list[float]:
    """Heights in points of each printed ``word`` in ``pdf`` (pdftotext's word boxes)."""
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext not installed")
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    heights = []
    for line in out.splitlines():
        if line.strip().startswith("<word") and f">{word}</word>" in line:
            attrs = dict(part.split("=") for part in line.split(">")[0].split()[1:])
            heights.append(float(attrs["yMax"].strip('"')) - float(attrs["yMin"].strip('"')))
    return heights


def test_the_structure_page_text_prints_at_a_readable_size(qtbot, window, monkeypatch, tmp_path):
    """The structure page's text block (disc figures, unsure notes, the normal figures' source) was drawn
    into the picture and came out ~4 pt on paper."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf

    w = window
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_normal_OS.dcm", monkeypatch)
    assert w.state.structure is not None
    _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)
    pdf = tmp_path / "report.pdf"
    _keep(pdf, "h26_structure.pdf")
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "BMO-MRW" in text and "Cirrus HD-OCT normals (n=239" in text  # text, no longer pixels
    heights = _word_heights(pdf, "BMO-MRW")  # a word of the text block
    assert heights and min(heights) >= 8.0, heights


from test_gui_walkthrough_h2 import hfa_study  # noqa: E402,F401 (a fixture)


def _in_sight(w, widget) -> tuple[int, int]:
    """(top, bottom) of ``widget`` in the Results scroll area's viewport."""
    viewport = w.results_scroll.viewport()
    top = widget.mapTo(viewport, widget.rect().topLeft()).y()
    return top, top + widget.height()


@pytest.mark.parametrize("size", [(1280, 800), (1024, 700)])
def test_the_vf_caveat_is_in_sight_with_the_estimates(qtbot, window, monkeypatch, hfa_study, size):  # noqa: F811
    """At 1024 x 700 with the Study panel open the Results panel scrolled in ~170 px and PSD, the caveat on
    the VF estimates and the measured VF were below the fold; at 1280 x 800 the caveat was cut off
    mid-sentence (fifth walk-through)."""
    from test_gui_walkthrough_h2 import _open_study_scan

    from octviewer.gui.main_window import FRAME_ROOM_PX

    w = window
    w.resize(size[0], size[1] - FRAME_ROOM_PX)
    root, _ = hfa_study
    _open_study_scan(qtbot, w, monkeypatch, root)
    qtbot.waitUntil(lambda: "Measured visual field" in w.results.text(), timeout=30000)
    qtbot.wait(100)
    r = w.results
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        w.grab().save(os.path.join(folder, f"h26_results_{size[0]}.png"))
    height = w.results_scroll.viewport().height()
    shown = {name: _in_sight(w, widget) for name, widget in
             (("probability", r.probability), ("decision", r.decision), ("caveat", r.vf_note),
              ("last VF row", r.vf_labels[-1]), ("measured VF", r.extra))}
    print(size, height, shown)
    assert w.results_scroll.verticalScrollBar().value() == 0
    for name in ("probability", "decision", "caveat", "last VF row"):
        assert shown[name][1] <= height, (name, shown, height)


def test_a_pdf_heading_is_printed_on_the_page_of_its_figure(qtbot, tmp_path):
    """The structure page's heading and intro printed alone at the foot of page 2, its figure on page 3
    (fifth walk-through; headings were kept with tables only). A spacer of growing height moves the
    heading and its lead-in down over a page's foot."""
    from PySide6.QtCore import QUrl
    from PySide6.QtGui import QImage, QTextDocument

    from octviewer.gui.export.scan_pdf import write_pdf

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler) is not installed")
    filler = "".join(f"<p>filler line {k}</p>" for k in range(26))
    lead = "<p>An introduction of one line.</p><p>" + "A paragraph of several lines before the figure. " * 8 + "</p>"
    image = QImage(500, 360, QImage.Format_RGB32)
    image.fill(0xFFCCCCCC)
    for px in range(0, 400, 25):
        doc = QTextDocument()
        doc.addResource(QTextDocument.ImageResource, QUrl("figure"), image)
        doc.setHtml(f"<body>{filler}<p style='margin-top:{px}px'>x</p><h2>HEADING</h2>{lead}"
                    "<p><img src='figure' width='500' height='360'> FIGURE</p><p>after</p></body>")
        pdf = write_pdf(doc, tmp_path / f"r{px}.pdf", "t", anonymised=True)
        pages = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True).stdout.split("\f")
        [page] = [k for k, text in enumerate(pages) if "HEADING" in text]
        assert "FIGURE" in pages[page], (px, page)


def test_the_ou_report_prints_the_trend_notes_after_the_slopes_they_speak_of():
    """The OU PDF said "the slope's interval above" in a note printed above the slopes."""
    import datetime as dt

    import numpy as np
    from PySide6.QtGui import QTextDocument

    from octviewer.core import Prediction
    from octviewer.gui.export.ou_pdf import ou_report_html, trend_key_html
    from octviewer.gui.study.trend_view import KEY
    from octviewer.study.ou import VisitSummary, case_level

    prediction = Prediction(bscan_probability=np.array([0.2]), bscan_vf={}, cam=np.zeros((1, 2, 2)), probability=0.2,
                            vf={}, threshold=0.5, model_name="m")
    eyes = {eye: case_level(eye, [f"{eye}.dcm"], [(prediction, None)]) for eye in ("OD", "OS")}
    note = "Band not drawn for RNFL: (the slope's interval above says how uncertain the trend is)."
    doc = QTextDocument()
    doc.setHtml(ou_report_html(VisitSummary("P1", dt.date(2024, 1, 2).isoformat(), eyes),
                               ["OD RNFL: -1.0 µm/yr [-3.0, 1.0]"], trend_key=trend_key_html(KEY), trend_notes=[note]))
    text = doc.toPlainText()
    assert text.index("Key:") < text.index("µm/yr [-3.0, 1.0]") < text.index("interval above")


@pytest.mark.samples
def test_the_circle_scan_report_names_its_bscan_figure(qtbot, window, monkeypatch, tmp_path):
    """In the circle-scan report the B-scan began page 2 with no heading, after the structure page."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf, _spectralis_circle

    w = window
    _open_by_menu(qtbot, w, _spectralis_circle(), monkeypatch)
    assert w.state.volume.scan_pattern == "circle" and w.prediction is None
    _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)
    _keep(tmp_path / "report.pdf", "h26_circle.pdf")
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    pages = subprocess.run(["pdftotext", str(tmp_path / "report.pdf"), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    [page] = [k for k, text in enumerate(pages) if "B-scan 1 of 1" in text]
    assert "\nB-scan\n" in "\n" + pages[page], pages[page][:200]
