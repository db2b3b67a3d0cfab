"""Walk-through H65, W20: every export dialog (PDF, CSV) started in the program's working folder, never in the
folder the user had just exported to. Through the window: File > Export results / Export PDF, dialogs patched."""

from __future__ import annotations

import os

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox

pytestmark = pytest.mark.gui


def test_the_next_export_dialog_starts_where_the_last_export_went(qtbot, window, monkeypatch, tmp_path):
    from octviewer.resources import DEMO_SCAN

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=120000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    offered = []
    chosen = tmp_path / "clinic exports"
    chosen.mkdir()

    def dialog(parent, title, start, kind):
        offered.append(start)
        return str(chosen / os.path.basename(start)), ""
    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    w.menu_actions["export_csv"].trigger()
    assert [p.suffix for p in chosen.iterdir()] == [".csv"]
    assert os.path.dirname(offered[0]) != str(chosen)  # nothing exported yet: not there
    w.menu_actions["export_pdf"].trigger()
    assert os.path.dirname(offered[1]) == str(chosen) and os.path.basename(offered[1]).endswith(".pdf")
    # a folder since removed: the dialog starts in the home folder, not in a folder that is gone
    for p in chosen.iterdir():
        p.unlink()
    chosen.rmdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda parent, title, start, kind: (offered.append(start),
                                                                                          ("", ""))[1])
    w.menu_actions["export_csv"].trigger()
    assert os.path.dirname(offered[2]) == os.path.expanduser("~")
