"""H99: walk-through H95's V10, V4, V6, V7 and V1 in the window (the "Open study" question's words, a refused scan's
Structure panel, the B-scan label after a missing file, the RNFL map's legend)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H99_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


# ---------------------------------------------------------------- V10: "its results are lost" with P on screen

KEPT = ("the scan's glaucoma result is kept (remembered); its RNFL and disc measurement is stopped and runs again "
        "when you reopen the scan")


def _measurement_held(monkeypatch):
    """The RNFL and disc measurement waits until the returned event is set: the network's result is in (and shown),
    the structure still measuring, as in H95's timing of V10."""
    import threading

    import octviewer.structure as structure

    real, release = structure.measure, threading.Event()

    def held(*args, **kwargs):
        release.wait(60)
        return real(*args, **kwargs)
    monkeypatch.setattr(structure, "measure", held)
    return release


def _ask_open_study(qtbot, w, monkeypatch, demo) -> list[str]:
    """File > Open study folder… through its QAction, "Open a study anyway?" answered Yes; the questions asked."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(" ".join(a[2].split()))
                        or QMessageBox.Yes)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(demo))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=60000):
        w.menu_actions["open_study_folder"].trigger()
    return asked


def _open_demo_scan(w, monkeypatch, tmp_path, gate: bool = True):
    """As H95: the app's results store, the quality check on, a study open, then File > Open of a bundled demo scan
    not in it (never analysed in this store)."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.pipeline.store import ResultsStore

    w.tasks.store = ResultsStore(tmp_path / "store" / "results.sqlite")  # as the app runs (the fixture has none)
    if gate:
        w.menu_actions["quality_gate"].trigger()
        assert w.state.options.gate
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(RESOURCES / "demo_normal_OD.dcm"), ""))
    w.menu_actions["open"].trigger()


@pytest.mark.gui
def test_open_study_with_the_glaucoma_result_shown_and_the_structure_measuring_says_kept(qtbot, window, monkeypatch,
                                                                                        demo, tmp_path):
    """V10: P(glaucoma) on screen, the Structure panel still measuring: the question says the result is kept, which
    reopening the scan shows (remembered)."""
    w = window
    release = _measurement_held(monkeypatch)
    try:
        _open_demo_scan(w, monkeypatch, tmp_path)
        qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.measuring, timeout=120000)
        _grab(w, "v10_state.png")
        asked = _ask_open_study(qtbot, w, monkeypatch, demo)
    finally:
        release.set()
    assert len(asked) == 1 and KEPT in asked[0] and "lost" not in asked[0], asked
    assert "its glaucoma result was kept (remembered)" in w.statusBar().currentMessage()


@pytest.mark.gui
def test_open_study_before_the_glaucoma_result_is_in_does_not_say_lost(qtbot, window, monkeypatch, demo, tmp_path,
                                                                       held_analysis):
    """V10: asked a moment before the network's result came in, the question said "its results are lost"; the result
    came in while the question was up and was kept (reopening showed "remembered result"). Not in yet, the question
    says what stopping costs and that a result shown before the answer is kept."""
    w = window
    _open_demo_scan(w, monkeypatch, tmp_path)
    qtbot.waitUntil(lambda: w.controller.analysis_generation != -1 and w.state.complete, timeout=60000)
    assert w.state.prediction is None
    asked = _ask_open_study(qtbot, w, monkeypatch, demo)
    assert len(asked) == 1 and "lost" not in asked[0] and KEPT not in asked[0], asked
    assert ("the scan's analysis is stopped and runs again when you reopen the scan (a glaucoma result shown before "
            "you answer is kept, remembered)") in asked[0], asked


@pytest.mark.gui
def test_open_study_says_kept_only_of_what_the_store_really_kept(qtbot, window, monkeypatch, demo, tmp_path):
    """V10: the words were picked from the result on screen, not from the store: a store that did not write the
    network's output (locked by another process) was said to keep it."""
    from octviewer.pipeline.store import ResultsStore

    monkeypatch.setattr(ResultsStore, "put_prediction", lambda self, network, prediction: False)
    w = window
    release = _measurement_held(monkeypatch)
    try:
        _open_demo_scan(w, monkeypatch, tmp_path)
        qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.measuring, timeout=120000)
        asked = _ask_open_study(qtbot, w, monkeypatch, demo)
    finally:
        release.set()
    assert len(asked) == 1 and KEPT not in asked[0], asked
    assert "its glaucoma result was kept" not in w.statusBar().currentMessage()


# ---------------------------------------------------------------- V4: a refused scan's reason, once, not in red

def _red_pixels(widget) -> int:
    """Pixels of the "outside normal" red (``CLASS_COLOURS['outside']``, anti-aliased) in a grab of ``widget``."""
    import numpy as np
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format_RGB888)
    a = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    a = a[:, :image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)
    return int(((a[..., 0] > 140) & (a[..., 1] < 90) & (a[..., 2] < 90)).sum())


@pytest.mark.gui
def test_a_refused_scans_structure_panel_says_why_once_and_not_in_red(qtbot, window, monkeypatch, tmp_path):
    """V4: with the quality check on, a refused cube's Structure panel said "REFUSED; ...: <why>" in its header and
    then "Not analysed: <why>" again under it in red, the colour of "outside normal"; W14's fix did this for line
    scans only."""
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QFileDialog
    from test_h92 import _noise_scan

    w = window
    w.menu_actions["quality_gate"].trigger()  # on, as the app starts
    assert w.state.options.gate
    path = _noise_scan(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and w.controller.analysis_generation == -1, timeout=120000)
    report = w.state.structure
    assert not report.quality.ok and report.quality.reasons
    reason = report.quality.reasons[0]
    drawn, real = [], QPainter.drawText

    def spy(painter, *args):
        drawn.append(next((a for a in args if isinstance(a, str)), ""))
        return real(painter, *args)
    monkeypatch.setattr(QPainter, "drawText", spy)
    w.structure_panel.grab()
    monkeypatch.setattr(QPainter, "drawText", real)
    said = [t for t in drawn if reason in t]
    assert len(said) == 1 and "REFUSED" in said[0], said
    assert not [t for t in drawn if t.startswith("Not analysed")], drawn
    assert _red_pixels(w.structure_panel) == 0
    _grab(w.structure_panel, "v4_panel.png")
