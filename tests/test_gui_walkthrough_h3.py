"""Findings of the third and fourth clinician walk-throughs (2026-12-06), driven as a user drives the
window: menu entries through QAction.trigger()."""

import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


from octviewer.resources import DEMO_MODEL, DEMO_SAMPLES  # noqa: E402

pytestmark = pytest.mark.gui


def test_the_next_scan_is_read_from_the_top_of_the_results(qtbot, window, monkeypatch):
    """The Results panel kept the last scan's scroll position: the next scan opened with its probability
    scrolled out of sight."""
    from test_gui_walkthrough import _open_by_menu

    w = window
    w.resize(1024, 640)
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_normal_OD.dcm", monkeypatch)
    bar = w.results_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=10000)
    bar.setValue(bar.maximum())
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_early_glaucoma_OS.dcm", monkeypatch)
    assert bar.value() == 0


def test_the_pdf_model_section_gives_sensitivity_and_specificity(qtbot, window, monkeypatch, tmp_path):
    """The model card gave sensitivity and specificity at the threshold; the printed report did not."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf

    w = window
    meta = w.controller.predictor.model.meta
    data, image = meta.evaluation["data"], meta.evaluation["image_level"]
    if data.get("volumes") != image.get("n"):
        pytest.skip("the bundled model's evaluation has no glaucoma count")
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_normal_OD.dcm", monkeypatch)
    text = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)["doc"].toPlainText()
    model = text.split("Model\n")[-1]
    assert "sensitivity 0." in model and "specificity 0." in model and f"threshold {meta.threshold:.2f}" in model


def test_the_study_list_opens_narrow_on_a_small_window(qtbot, window, monkeypatch, tmp_path):
    """At 1024 px the Study panel opened at its natural 264 px and the B-scan was left ~170 px wide."""
    import shutil

    from PySide6.QtWidgets import QFileDialog

    w = window
    w.resize(1024, 700)
    qtbot.wait(50)
    wide = w.bscan.width()
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(DEMO_SAMPLES / "demo_normal_OD.dcm", study)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(study))
    w.menu_actions["open_study_folder"].trigger()
    qtbot.waitUntil(lambda: w.study.dock.isVisible() and w.study.index is not None, timeout=30000)
    qtbot.wait(50)
    assert w.study.dock.width() <= 190
    assert w.bscan.width() >= 0.6 * wide  # the B-scan gives up less than the study list takes


def test_the_reason_for_no_result_sits_right_under_the_scan(qtbot, window, monkeypatch, tmp_path):
    """With no result the empty probability, decision and model lines left a gap that pushed 'Not analysed:
    ...' below the fold at 1024 x 700 (fourth walk-through)."""
    from test_gui_walkthrough import _open_by_menu
    from test_wiring import _noise_scan

    w = window
    w.menu_actions["quality_gate"].trigger()  # the gate on, as a user has it
    assert w.state.options.gate
    _open_by_menu(qtbot, w, _noise_scan(tmp_path), monkeypatch)
    panel = w.results
    assert w.prediction is None and panel.reason.text() and panel.reason.isVisible()
    assert not panel.probability.isVisible() and not panel.decision.isVisible() and not panel.model.isVisible()
    below_scan = panel.reason.y() - (panel.scan.y() + panel.scan.height())
    assert below_scan < 40, below_scan  # the next line but the caveats, not a screen further down


def test_the_model_card_says_the_volume_is_calibrated_after_the_mean():
    """'One volume = the mean of its B-scans' probabilities' did not reproduce from the per-B-scan CSV (the
    calibrated B-scan probabilities): the map is applied after the mean (fourth walk-through)."""
    from octviewer.gui.model.card import model_card_text
    from octviewer.model import load_model

    card = model_card_text(load_model(DEMO_MODEL, "cpu").meta)
    assert "mean of its B-scans' uncalibrated probabilities, then calibrated" in card


def test_wording_of_the_device_note_the_scan_line_and_the_empty_structure_panel(qtbot, window):
    """'a octviewer-synth scan', 'circle, 1 B-scans', and 'No structure analysis for this scan' with no
    scan open at all (fourth walk-through)."""
    from octviewer.structure.normative import source_for

    assert "applied to an octviewer-synth SYNTHETIC scan" in source_for("octviewer-synth SYNTHETIC")
    assert "applied to a Heidelberg Spectralis scan" in source_for("Heidelberg Spectralis")
    assert window.structure_panel.empty_text == "No scan open"


def test_text_over_the_bscan_sits_on_a_dark_box(qtbot, window, monkeypatch, tmp_path):
    """The B-scan's label ('B-scan n of N ... P=') and the scale bar's '200 µm' were drawn straight
    over the image: over bright speckle they were unreadable (fourth walk-through)."""
    import numpy as np
    from test_gui_walkthrough import _open_by_menu
    from test_wiring import _noise_scan

    w = window
    _open_by_menu(qtbot, w, _noise_scan(tmp_path), monkeypatch)
    qtbot.wait(50)
    view = w.bscan
    image = view.grab().toImage()
    for item in (view.label, view.scale_bar.text):
        assert item.isVisible() and item.toPlainText()
        rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
        grey = [image.pixelColor(x, y).value() for x in range(rect.left() + 1, rect.right() - 1)
                for y in range(rect.top() + 1, rect.bottom() - 1)]
        assert np.median(grey) < 80, (item.toPlainText(), np.median(grey))  # the text's box, not the speckle


def test_a_pdf_heading_is_printed_on_the_page_of_what_follows_it(qtbot, tmp_path):
    """A heading could print alone at a page's foot with its table on the next page (fourth walk-through).
    A spacer of growing height moves the heading down over a page's foot."""
    import shutil
    import subprocess

    from PySide6.QtGui import QTextDocument

    from octviewer.gui.export.scan_pdf import write_pdf

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler) is not installed")
    table = "<table border='1'><tr><th>TABLECELL</th><th>estimate</th></tr><tr><td>MD</td><td>1</td></tr></table>"
    filler = "".join(f"<p>filler line {k}</p>" for k in range(32))
    for px in range(0, 60, 6):
        doc = QTextDocument()
        doc.setHtml(f"<body>{filler}<p style='margin-top:{px}px'>x</p><h2>HEADING</h2>{table}<p>after</p></body>")
        pdf = write_pdf(doc, tmp_path / f"r{px}.pdf", "t", anonymised=True)
        pages = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True, check=True).stdout.split("\f")
        [page] = [k for k, text in enumerate(pages) if "HEADING" in text]
        assert "TABLECELL" in pages[page], (px, page)


def test_the_bscan_image_keeps_its_room_beside_the_study_panel_at_1024_x_700(qtbot, window, monkeypatch, tmp_path):
    """At 1024 x 700 under a window manager, with the Study panel open, the window/level histogram took a
    third of the B-scan view and the image was ~240 px across (fourth walk-through, M4): the histogram
    becomes a strip in a narrow view (its level handles kept) and is whole again in a wide one."""
    import shutil

    from PySide6.QtWidgets import QFileDialog
    from test_gui_walkthrough import _open_by_menu

    from octviewer.gui.main_window import FRAME_ROOM_PX

    w = window
    w.resize(1024, 700 - FRAME_ROOM_PX)
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(DEMO_SAMPLES / "demo_normal_OD.dcm", study)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(study))
    w.menu_actions["open_study_folder"].trigger()
    qtbot.waitUntil(lambda: w.study.dock.isVisible() and w.study.index is not None, timeout=30000)
    _open_by_menu(qtbot, w, study / "demo_normal_OD.dcm", monkeypatch)
    qtbot.wait(50)
    view = w.bscan
    drawn = view.mapFromScene(view.image.sceneBoundingRect()).boundingRect().intersected(view.rect())
    assert drawn.width() >= 320 and drawn.height() >= 330, drawn
    assert view.histogram.isVisible() and view.histogram.region.isVisible()  # the levels can still be dragged
    w.resize(1400, 850)
    w.study.dock.hide()
    qtbot.waitUntil(lambda: view.histogram.vb.width() >= 45, timeout=2000)  # the whole histogram, with room
