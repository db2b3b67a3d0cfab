"""Walk-through H65, W24: a Spectralis line scan carries its device's own lines (ILM, BM), and the B-scan showed
none: the line scan, which no structure analysis measures, was treated as a scan the quality check refused.
Through File > Open with the quality check on, as at every start."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QFileDialog

pytestmark = [pytest.mark.gui, pytest.mark.samples]


def test_a_line_scan_shows_its_files_own_lines(qtbot, window, samples_dir, monkeypatch):
    from octviewer.gui.viewer import render

    w = window
    w.menu_actions["quality_gate"].trigger()  # on, as at every start
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol"), ""))
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: not w.state.measuring, timeout=60000)
    assert w.volume.scan_pattern == "line" and not w.state.refused
    shown = [c for c in w.bscan.layer_curves if c.isVisible() and c.yData is not None and np.isfinite(c.yData).any()]
    assert len(shown) >= 2  # ILM and BM, the file's own
    names = [name for name, _, _ in render.bscan_lines(w.state)]
    assert any("ILM" in n and "file's own" in n for n in names), names
    assert "needs a volume scan" in w.results.text()  # still not analysed, and said why
    # View > layer lines off hides them, as on any scan
    w.menu_actions["toggle_layers"].trigger()
    assert not [c for c in w.bscan.layer_curves if c.isVisible()]


def test_the_structure_panel_says_a_line_scan_is_not_measured_not_refused(qtbot, window, samples_dir, monkeypatch):
    """Its header read "REFUSED; signal not measured: a line scan: ...", the words of a scan that failed the
    quality check."""
    from octviewer.gui.structure.page import head_text

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol"), ""))
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.structure_panel.report is not None, timeout=60000)
    head = head_text(w.structure_panel.report)
    assert "REFUSED" not in head and "not measured: a line scan" in head
