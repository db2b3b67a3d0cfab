"""A closed window that had opened a scan is freed (its state, volume and results with it). A Task's
signals were connected to lambdas that referred to the task and the window; PySide kept them in C++
while the task lived, out of the garbage collector's sight, so every such window stayed in memory
(a pytest-xdist worker grew to 11-13 GB over the suite)."""

import gc
import os
import weakref

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import open_window  # noqa: E402
from PySide6.QtCore import QCoreApplication, QEvent  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from octviewer.resources import DEMO_MODEL, DEMO_SCAN  # noqa: E402


def test_a_window_that_opened_a_scan_is_freed_once_closed(qtbot, monkeypatch):
    if not DEMO_MODEL.exists() or not DEMO_SCAN.exists():
        pytest.skip("demo model or scan not built")
    windows = open_window(qtbot, monkeypatch, DEMO_MODEL)
    w = next(windows)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["open"].trigger()  # File > Open, as a user opens a scan
    qtbot.waitUntil(lambda: not w.state.measuring, timeout=60000)  # noqa: F821 (w is deleted only further down)
    assert w.state.volume is not None
    ref = weakref.ref(w)
    # closed as pytest-qt closes a window it was given, then the fixture's end
    w.close()
    w.deleteLater()
    with pytest.raises(StopIteration):
        next(windows)
    del w, windows
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        qtbot.wait(20)
        gc.collect()
    assert ref() is None
