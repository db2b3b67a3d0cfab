"""H70: the H65 walk-through's items left in the study views, each through the window's own actions: visual
fields matched to no visit listed with their reason and not counted (W5), the field the Results panel compares
shown in the tree and its test date in the OU view and OU PDF (W4), room for the study's problems (W8), and H68's
leftovers. Each test saves what it checked as a screenshot under $H70_GRABS."""

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
    folder = os.environ.get("H70_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_folder(qtbot, w, monkeypatch, root: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    return w.study.panel


def _child(item, prefix: str):
    return next(item.child(k) for k in range(item.childCount()) if item.child(k).text(0).startswith(prefix))


def _study(demo: Path, tmp_path: Path, rows: list[str]) -> Path:
    """The demo study (DEMO05-000, visits 2018-08-06, 2019-08-10, 2020-08-02) with these VF table rows."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    (root / "visual_fields.csv").write_text("patient_id,eye,date,vfi,md,psd\n" + "\n".join(rows) + "\n")
    return root


# ---------------------------------------------------------------- W5: fields matched to no visit

@pytest.mark.gui
def test_fields_matched_to_no_visit_are_listed_with_their_reason_and_not_counted(qtbot, window, monkeypatch, demo,
                                                                                  tmp_path):
    """Five VF rows, one matched: a blank date, a field years from any scan and a patient not in the study were
    counted ("4 measured visual fields") and shown nowhere; and "skipped 1 table rows refused"."""
    root = _study(demo, tmp_path, ["DEMO05-000,OD,2018-08-10,97.0,-1.0,2.0",
                                   "DEMO05-000,OD,,96.0,-1.5,2.1",
                                   "DEMO05-000,OS,2010-01-10,95.0,-2.0,2.2",
                                   "DEMO05-009,OD,2019-08-12,94.0,-2.5,2.3",
                                   "DEMO05-000,OS,2015-02-30,93.0,-3.0,2.4"])
    panel = _open_folder(qtbot, window, monkeypatch, root)
    status, listed = panel.status.text().replace("\u200b", ""), panel.problems.text().replace("\u200b", "")
    _grab(panel, "w5_unmatched_fields")
    assert "1 measured visual field;" in status, status
    assert "1 table row refused" in status and "3 visual fields matched to no visit" in status, status
    assert "DEMO05-000 OD no date is matched to no visit: it has no test date" in listed, listed
    assert "OS 2010-01-10 is matched to no visit: no dated scan of this eye within 180 days" in listed, listed
    assert "DEMO05-009 OD 2019-08-12 is matched to no visit: its patient is not in the study" in listed, listed
    assert "2015-02-30" in listed
