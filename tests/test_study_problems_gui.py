"""The study browser lists the files it left out, with their reasons, beside the scans it indexed."""

import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from octviewer.gui.study.browser import StudyPanel  # noqa: E402
from octviewer.study.demo import write_demo_study  # noqa: E402


def test_left_out_files_are_named_with_their_reason(qtbot, tmp_path):
    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    os.mkfifo(root / "pipe.dcm")
    (root / "short.csv").write_text("patient_id,path\nP1\n")
    panel = StudyPanel(cache_dir=str(tmp_path / "cache"))
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.index_ready, timeout=20000):
        panel.open_folder(str(root))
    assert panel.tree.topLevelItemCount() == 1  # the good scans are there
    shown = panel.problems.text()
    assert panel.problems.isVisible()
    assert "pipe.dcm: not a regular file" in shown and "short.csv: row 2 is short" in shown
    panel.close()
