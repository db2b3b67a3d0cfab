"""Findings of the third clinician walk-through (2026-12-06) left open by the session that ran it, driven
as a user drives the window: menu entries through QAction.trigger()."""

import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import open_window  # noqa: E402

from octviewer.resources import DEMO_MODEL, DEMO_SAMPLES  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, monkeypatch):
    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def test_the_next_scan_is_read_from_the_top_of_the_results(qtbot, window, monkeypatch):
    """The Results panel kept the last scan's scroll position: the next scan opened with its probability
    scrolled out of sight."""
    from test_gui_walkthrough import _open_by_menu

    w = window
    w.resize(1024, 640)
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_normal_OD.dcm", monkeypatch)
    bar = w.results_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0, timeout=10000)
    bar.setValue(bar.maximum())
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_early_glaucoma_OS.dcm", monkeypatch)
    assert bar.value() == 0
