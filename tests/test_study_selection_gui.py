"""The Study panel's selection follows the scan on screen (walk-through): File > Open of a file from
outside the study left the study scan highlighted with OU view and Trend enabled, and OU view put the
study patient's visit beside another patient's scan."""

import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import open_study_folder, open_window  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from octviewer.study.demo import write_demo_study  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sel")
    study = write_demo_study(root / "study", patients=1, visits=1, preset="tiny", seed=7)
    outside = write_demo_study(root / "elsewhere", patients=1, visits=1, preset="tiny", seed=8)
    return study, sorted((outside / "scans").rglob("*.dcm"))[0]


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    from test_pipeline import tiny_model

    yield from open_window(qtbot, monkeypatch, tiny_model(tmp_path))


def _first_scan_item(tree):
    item = tree.topLevelItem(0)
    while item.childCount():
        item = item.child(0)
    return item


def test_opening_a_file_from_outside_the_study_clears_the_selection(qtbot, window, folders, monkeypatch):
    w, (study, outside) = window, folders
    panel = open_study_folder(qtbot, w, monkeypatch, study)
    item = _first_scan_item(panel.tree)
    with qtbot.waitSignal(w.settled, timeout=60000):
        panel.tree.setCurrentItem(item)  # as a click on the scan: it opens
    assert panel.ou_button.isEnabled() and panel.trend_button.isEnabled()
    assert w.study.index.scan_at(w.state.volume.source) is not None

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(outside), ""))
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and os.path.samefile(w.state.volume.source, outside),
                    timeout=30000)
    assert panel.tree.currentItem() is None and not panel.tree.selectedItems()
    assert not panel.ou_button.isEnabled() and not panel.trend_button.isEnabled()

    with qtbot.waitSignal(w.settled, timeout=60000):
        panel.tree.setCurrentItem(item)  # a study scan chosen again: both back
    assert panel.ou_button.isEnabled() and panel.trend_button.isEnabled()
    assert panel.tree.currentItem() is item
