"""Walk-through H65, W17: the clock-hour ring had no hour numbers, so which cell was 7 o'clock could not be read.
The Structure panel of the demo scan, opened through File > Open, painted as on screen."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog

pytestmark = pytest.mark.gui


def test_the_clock_hour_ring_numbers_its_hours_where_they_sit(qtbot, window, monkeypatch):
    from octviewer.gui.structure import page
    from octviewer.resources import DEMO_SCAN
    from octviewer.structure import rnfl

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and not w.state.measuring, timeout=120000)
    drawn, label_at = [], page._label_at

    def record(painter, centre, radius, clinical_deg, laterality, text):
        drawn.append((text, clinical_deg, radius))
        return label_at(painter, centre, radius, clinical_deg, laterality, text)
    monkeypatch.setattr(page, "_label_at", record)
    w.structure_panel.grab()
    outer = max(radius for _, _, radius in drawn)  # the hours sit at the ring's outer edge, the µm inside them
    hours = {text: deg for text, deg, radius in drawn if radius == outer}
    assert set(hours) == {str(h) for h in range(1, 13)}
    lat = w.state.structure.laterality
    assert all(hours[str(h)] == rnfl.clock_hour_centre_deg(h, lat) for h in range(1, 13))
