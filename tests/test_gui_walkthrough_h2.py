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
