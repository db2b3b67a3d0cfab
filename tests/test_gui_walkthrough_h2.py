"""Open findings of the clinician walk-throughs of 2026-12 (GUI and PDF report), driven as a user drives
the window: menu entries through QAction.trigger(), keys and buttons clicked. OCTVIEWER_WALK_GRABS=folder
saves each step's window as a PNG to look at."""

import dataclasses
import os
import threading

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import open_window  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from octviewer.resources import DEMO_MODEL  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, monkeypatch):
    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def _grab(widget, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


# -- 1: a cancelled decoding no longer says "decoding…" -----------------------------------------------
def test_b_scans_of_a_cancelled_decoding_say_not_loaded(qtbot, window, monkeypatch, tmp_path):
    """After Cancel the B-scans never decoded kept saying 'decoding…', as if they were still coming."""
    from corpus import small_volume

    from octviewer import save_volume
    from octviewer.io import progressive

    w = window
    n = progressive.PARALLEL_MIN_FRAMES + 4
    path = save_volume(small_volume((n, 64, 48)), tmp_path / "big_j2k.dcm", compression="jpeg2000")
    gate = threading.Event()
    real = progressive._dicom_frames

    def held(frames):  # every frame after the first waits: decoding is still running when Cancel comes
        source = real(frames)

        def wait(decode):
            return lambda i: gate.wait(60) and decode(i)
        return dataclasses.replace(source, decode_here=wait(source.decode_here), codestream=wait(source.codestream))
    monkeypatch.setattr(progressive, "_dicom_frames", held)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    try:
        w.menu_actions["open"].trigger()
        qtbot.waitUntil(lambda: w.controller.decoding, timeout=30000)
        with qtbot.waitSignal(w.settled, timeout=5000):
            qtbot.mouseClick(w.cancel_button, Qt.LeftButton)
    finally:
        gate.set()
    qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=30000)
    w.bscan.setFocus()
    qtbot.keyClick(w, Qt.Key_End)  # a B-scan never decoded
    assert not w.state.is_loaded(w.state.index)
    _grab(w, "h2_1_cancelled_not_loaded")
    placeholder, label = w.bscan.placeholder, w.bscan.label
    assert placeholder.isVisible()
    for text in (placeholder.textItem.toPlainText(), label.textItem.toPlainText()):
        assert "decoding…" not in text and "not loaded" in text and "cancelled" in text, text


# -- 2 and 3: the measured VF's test date, and its values outside the normal range marked ---------------
@pytest.fixture
def hfa_study(tmp_path):
    """One SYNTHETIC patient, one visit, both eyes; the right eye's field is an HFA export done 5 days
    after the scans, with MD and PSD outside their normal ranges and VFI inside."""
    import shutil

    from test_hfa_xml import hfa_xml

    from octviewer.study import index_folder
    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=11)
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").unlink(missing_ok=True)
    index = index_folder(root, cache_dir=tmp_path / "cache0")
    [patient] = index.patients()
    [visit] = index.visits(patient)
    when = visit.date + __import__("datetime").timedelta(days=5)
    hfa_xml(root, name="hfa_export.xml", patient=patient, site="1", visit=when.isoformat(),
            series_time=f"{when.isoformat()}T11:02:00", md="-7.84", psd="6.21", vfi="98")
    return root, when


def _click_item(qtbot, tree, item):
    """Click an item of the tree as a user does (its parents expanded, scrolled into view)."""
    parent = item.parent()
    while parent is not None:
        parent.setExpanded(True)
        parent = parent.parent()
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=rect.center())


def _open_study_scan(qtbot, w, monkeypatch, root, eye="OD"):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    panel = w.study.panel
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    patient = panel.tree.topLevelItem(0)
    visit = patient.child(0)
    eye_item = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith(eye))
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, eye_item.child(0))
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=60000)
    return panel


def _export_pdf(qtbot, w, monkeypatch, tmp_path, identify: bool, name="report.pdf"):
    """File > Export PDF report as the user does it; returns the report's QTextDocument as printed."""
    from PySide6.QtWidgets import QMessageBox

    from octviewer.gui.export import scan_pdf

    captured = {}
    real = scan_pdf.write_report

    def spy(path, state, images, meta, patient_id=None, sections=(), measured=""):
        captured.update(images=images, doc=scan_pdf.build_document(state, images, meta, patient_id, sections,
                                                                      measured))
        return real(path, state, images, meta, patient_id, sections, measured)
    monkeypatch.setattr(scan_pdf, "write_report", spy)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identify else QMessageBox.No)
    out = tmp_path / name
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_pdf"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    return captured


def test_measured_vf_shows_its_test_date_and_marks_values_outside_the_normal_range(qtbot, window, monkeypatch,
                                                                                    tmp_path, hfa_study):
    root, when = hfa_study
    w = window
    _open_study_scan(qtbot, w, monkeypatch, root)
    qtbot.waitUntil(lambda: "Measured visual field" in w.results.text(), timeout=30000)
    _grab(w, "h2_2_vf_date_panel")
    text = w.results.extra.text()
    assert f"VF tested {when.isoformat()} (5 days after the scan)" in text
    assert "measured -7.8 dB ●" in text and "measured 6.2 dB ●" in text and "measured 98.0 % ●" not in text
    assert "● measured value outside the normal range" in text
    # the PDF: dated when the user prints the patient ID, only the interval when anonymised
    dated = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=True)["doc"].toPlainText()
    assert f"VF tested {when.isoformat()} (5 days after the scan)" in dated
    assert "-7.8 dB ●" in dated and "6.2 dB ●" in dated and "● outside the normal range" in dated
    anonymous = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False, name="anon.pdf")["doc"].toPlainText()
    assert "VF tested 5 days after the scan (date withheld: anonymised report)" in anonymous
    assert when.isoformat() not in anonymous
