"""H63: the H56 walk-through's leftovers in the window: opening a study while work runs (item 2), the CSV's sector
classes (item 3), the OU report's n/a footnote kept with its table (item 4), and the Structure dock drawn legibly
while a scan is analysed (item 7)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest


@pytest.fixture
def window(qtbot, monkeypatch):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


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


@pytest.fixture
def held_analysis(monkeypatch):
    """The window's analysis waits (cancellably) until ``release`` is set: an analysis that is running."""
    import octviewer.pipeline as pipeline

    real, release = pipeline.analyse_scan, threading.Event()

    def held(*args, cancel=None, **kwargs):
        while not release.wait(0.02):
            if cancel is not None and cancel.is_set():
                from octviewer.core import Cancelled

                raise Cancelled()
        return real(*args, cancel=cancel, **kwargs)
    monkeypatch.setattr(pipeline, "analyse_scan", held)
    yield release
    release.set()


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
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.study.demo import write_demo_study

    w = window
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _open_scan(qtbot, w, monkeypatch, sorted(other.rglob("OD_*.dcm"))[0])
    qtbot.waitUntil(lambda: w.controller.analysis_generation == -1 and w.prediction is not None, timeout=60000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.No)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(demo))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
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

