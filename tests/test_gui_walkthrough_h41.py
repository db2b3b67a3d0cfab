"""The seventh walk-through's (H35) and a review's (H36) GUI findings: the Study panel's width with a long
scan name, the weak-estimate caveat in the OU view and the Trend, the trend plots' date axis zoomed out, Esc on
the patient identifier question, the circle scan's CSV row, the Trend's and the OU view's marks.
Grabs to look at: OCTVIEWER_WALK_GRABS=folder."""

import datetime as dt
import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402

pytestmark = pytest.mark.gui

LONG = "Walkthrough_clinic_export_long_name_2024_OD_20180917.dcm"


def _grab(widget, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


# ---------------------------------------------------------------- the Study panel's width
def test_a_long_scan_name_selected_keeps_the_study_panel_within_its_dock(qtbot, tmp_path):
    """Selecting a scan with a long file name made the details line (word-wrapped, but one long word) wider
    than the dock: the panel scrolled sideways and Folder/Manifest/OU view/Trend became blank bars."""
    from PySide6.QtWidgets import QScrollArea

    from octviewer.gui.study.browser import StudyPanel
    from octviewer.study.index import ScanEntry, StudyIndex

    root = tmp_path / "a_study_folder_with_a_long_clinic_export_name_2024"
    index = StudyIndex(root=str(root), scans=[ScanEntry(str(root / LONG), "P1", "OD", "2018-09-17",
                                                        dt.date(2018, 9, 17), scan_pattern="volume", n_bscans=16)])
    panel = StudyPanel()
    scroll = QScrollArea()  # as the window's add_panel docks it, at the Study dock's minimum width
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    scroll.resize(180, 600)
    qtbot.addWidget(scroll)
    scroll.show()
    panel.set_index(index)
    panel.tree.expandAll()
    item = panel.tree.topLevelItem(0).child(0).child(0).child(0)
    panel.tree.setCurrentItem(item)
    qtbot.wait(50)
    _grab(scroll, "h41_study_panel.png")
    assert panel.details.isVisible() and "B-scans" in panel.details.text()
    assert panel.details.text().replace("\u200b", "").startswith(LONG)  # the whole name, wrapped
    assert panel.minimumSizeHint().width() <= 180
    assert not scroll.horizontalScrollBar().isVisible()
    for button in (panel.open_folder_button, panel.open_manifest_button, panel.ou_button, panel.trend_button):
        assert button.visibleRegion().boundingRect().width() >= button.sizeHint().width() - 8, button.text()
