"""H68: the H65 walk-through's items in the study views, each through the window's own actions: the Trend while a
new eye loads (W1), a disputed visit date left out of the slope (W3), one patient identity (W2), File > Export OU
report only while an OU view is open (W6), the tree's selection after a failed open (W9), the OU view while it
loads and for an unreadable scan (W7). Each test saves what it checked as a screenshot under $H68_GRABS."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from test_study_headers import _header_date, _scans, _write  # noqa: E402


@pytest.fixture
def window(qtbot, monkeypatch):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H68_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_folder(qtbot, w, monkeypatch, root: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    return w.study.panel


def _open_manifest(qtbot, w, monkeypatch, manifest: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    return w.study.panel


def _child(item, prefix: str):
    return next(item.child(k) for k in range(item.childCount()) if item.child(k).text(0).startswith(prefix))


# ---------------------------------------------------------------- W1: the Trend while a new eye loads

@pytest.mark.gui
def test_the_trend_clears_the_last_eye_at_once_when_another_eye_is_asked_for(qtbot, window, monkeypatch, demo):
    """OD's trend drawn, then Trend on OS: for the seconds OS took to load, OD's plots, slopes and "significant
    change" flags stayed under the header "... · OS" (W1), and the first Trend showed empty 0.2-0.8 axes (W28)."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    w = window
    panel = _open_folder(qtbot, w, monkeypatch, demo)
    visit = panel.tree.topLevelItem(0).child(0)
    _click_item(qtbot, panel.tree, _child(visit, "OD"))
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    view = w.study.trend_view
    assert view.history is None and not view.graphics.isVisible()  # no placeholder axes while it loads (W28)
    qtbot.waitUntil(lambda: view.history is not None, timeout=120000)
    assert view.history.eye == "OD" and view.graphics.isVisible() and "global RNFL" in view.summary.text()
    _click_item(qtbot, panel.tree, _child(visit, "OS"))
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    # at once, before the OS task has delivered anything: nothing of OD is left under the OS header
    assert view.header.text().endswith("OS: progression over all visits")
    assert view.history is None and view.notes == []
    assert not view.graphics.isVisible() and not view.key.isVisible()
    assert all(not plot.listDataItems() for plot in view.plots.values())
    assert "global RNFL" not in view.summary.text() and "significant" not in view.summary.text()
    assert "Loading the trend of OS" in view.summary.text()
    _grab(w.study.trend_dialog, "w1_trend_loading_os")
    qtbot.waitUntil(lambda: view.history is not None, timeout=120000)
    assert view.history.eye == "OS" and view.graphics.isVisible() and "global RNFL" in view.summary.text()
    _grab(w.study.trend_dialog, "w1_trend_os_loaded")
