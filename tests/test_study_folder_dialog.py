"""Walk-through H82, W12: File > Open study folder… started in the last single scan's folder (or the program's), never
in the study opened last, so a clinician reopening the study archive navigated there each time."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog

pytestmark = pytest.mark.gui


def test_open_study_folder_starts_in_the_last_study(qtbot, window, monkeypatch, demo):
    w = window
    starts = []

    def choose(parent, title, start="", *a, **k):
        starts.append(start)
        return str(demo)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", choose)
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    assert starts[0] != str(demo) and starts[1] == str(demo)
