"""Walk-through H131, W7: after Esc stopped a study scan's analysis, the OU view analysed the same scan and showed its
result while the Results panel kept "Analysis cancelled"; closing the OU view left the two windows disagreeing."""

import pytest


@pytest.mark.gui
def test_the_results_panel_shows_a_result_the_ou_view_made_after_esc(qtbot, window, monkeypatch, tmp_path):
    from conftest import open_study_folder
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item
    from test_h84 import _open_ou

    from octviewer.gui.viewer.state import CANCELLED
    from octviewer.pipeline.store import ResultsStore
    from octviewer.study.demo import write_demo_study

    w = window
    w.tasks.store = ResultsStore(tmp_path / "store" / "results.sqlite")  # as the app runs (the fixture has none)
    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=3)
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    w.predictor.batch_size = 1  # slow enough for Esc to land before the result
    visit = panel.tree.topLevelItem(0).child(0)
    od = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    scan = od.child(0) if od.childCount() else od
    with qtbot.waitSignal(w.tasks.cancelled, timeout=60000):
        with qtbot.waitSignal(w.tasks.batch, timeout=60000):
            _click_item(qtbot, panel.tree, scan)
        qtbot.keyClick(w, Qt.Key_Escape)
    assert w.state.reason == CANCELLED and w.state.prediction is None
    view = _open_ou(qtbot, w, panel, visit.text(0))
    assert view.summary.eyes["OD"].probability is not None
    qtbot.waitUntil(lambda: w.state.prediction is not None, timeout=60000)  # from the results store, at once
    assert "Analysis cancelled" not in w.results.text()
    assert w.state.prediction.probability == pytest.approx(view.summary.eyes["OD"].probability, abs=1e-6)
