"""H73: H70's study items relanded with their breakage fixed, and W18 (a scan cut short, in a manifest study and
in the DICOM reader), through the window's own actions. Each GUI test saves what it checked as a screenshot under
$H73_GRABS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture
def window(qtbot, monkeypatch):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H73_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_folder(qtbot, w, monkeypatch, root: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    return w.study.panel


# ---------------------------------------------------------------- W8's splitter: the dock's width

@pytest.mark.gui
def test_the_study_dock_opens_as_wide_as_its_panel_with_the_problems_splitter(qtbot, window, monkeypatch, demo,
                                                                               tmp_path):
    """W8 put the tree on a splitter with the problems list. A splitter of Preferred width gave the panel a size
    hint of 174 px (not 264): the Study dock opened at its 180 px minimum in a 1400 px window, under a panel
    189 px wide that scrolled sideways, and a click at a scan's middle in the squeezed tree fell outside it."""
    from PySide6.QtWidgets import QScrollArea

    w = window
    w.resize(1400, 850)
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    panel = _open_folder(qtbot, w, monkeypatch, root)
    qtbot.wait(50)
    scroll = next(p for p in _parents(panel) if isinstance(p, QScrollArea))
    _grab(w, "w8_study_dock_width")
    assert w.study.dock.width() >= panel.sizeHint().width() > 250, (w.study.dock.width(), panel.sizeHint())
    assert not scroll.horizontalScrollBar().isVisible()
    assert panel.splitter.sizes()[1] > 0 and panel.tree.viewport().width() > 200


def _parents(widget):
    while widget is not None:
        yield widget
        widget = widget.parentWidget()
