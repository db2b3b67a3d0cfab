"""Walk-throughs H104 and H107 (session 19), their low items (H112), each through the window: File > Open, File > Open
study folder, the Study tree's OU view and Trend, File > Export … (dialogs patched). Screenshots go to $H112_GRABS
when set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder

pytestmark = pytest.mark.gui


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H112_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_scan(qtbot, w, monkeypatch, path) -> None:
    """File > Open… on ``path``, its dialog patched; back once the scan has its network result."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and w.state.volume.source == str(path)
                    and w.state.prediction is not None and w.controller.analysis_generation == -1, timeout=120000)


# ---------------------------------------------------------------- X6: the Results dock after a study opens

def test_the_results_dock_is_not_left_squeezed_after_a_study_opens(qtbot, window, monkeypatch, demo, tmp_path):
    """X6: opening a study closes the scan on screen, and the Results dock was fitted to its one line "Open a scan"
    (~100 px); a click on the Study panel (a label: the press reaches the window) was then taken for the user's drag
    of the divider, so the fit never grew it back and the next scan's verdict sat below the fold."""
    from PySide6.QtCore import Qt

    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1400, 850)
    _open_scan(qtbot, w, monkeypatch, DEMO_SCAN)
    qtbot.wait(200)
    panel = open_study_folder(qtbot, w, monkeypatch, Path(shutil.copytree(demo, tmp_path / "study")))
    qtbot.wait(200)
    assert w.state.volume is None and w.results_dock.height() > 250, w.results_dock.height()
    qtbot.mouseClick(panel.status, Qt.LeftButton)  # the reader clicks the study's summary line
    assert w.results._fit is not None  # not taken for a drag of the divider: the fit goes on sizing the dock
    _open_scan(qtbot, w, monkeypatch, DEMO_SCAN)
    qtbot.wait(300)
    _grab(w, "x6_window")
    assert w.results_dock.height() > 250, w.results_dock.height()
    assert w.results_scroll.verticalScrollBar().maximum() == 0  # the verdict and its notes in sight
