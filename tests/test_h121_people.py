"""Walk-through H121, U3: where one patient's OD scans name one person and the OS scans another (one ID), the check
said "which visits name which person: 2018-04-07, 2019-04-17 one person; 2018-04-07, 2019-04-17 another": the same
visits on both sides read as a contradiction and did not say which eye to distrust. Such visits are named by their
eye now."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One SYNTHETIC patient, two yearly visits, both eyes."""
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", patients=1, visits=2, preset="tiny", seed=7)


@pytest.mark.gui
def test_two_people_split_by_eye_are_named_by_visit_and_eye(qtbot, window, monkeypatch, demo, tmp_path):
    from conftest import open_study_folder
    from test_attack16_person import _rename

    from octviewer.gui.study.checks import study_check_entries

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    scans = sorted((root / "scans").rglob("*.dcm"))
    for scan in scans:
        _rename(scan, *(("ALPHA^ANN", "", "19500101") if scan.name.startswith("OD_") else
                        ("ZULU^ZED", "HOSP_B", "19400101")))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert "people" in {c.kind for c in panel.index.warnings}, panel.index.warnings
    visits = [panel.tree.topLevelItem(0).child(k).text(0) for k in range(2)]
    split = f"{visits[0]} OD, {visits[1]} OD name one person; {visits[0]} OS, {visits[1]} OS another"
    entries = " ".join(study_check_entries(panel.index))
    assert f"visits: {split}" in entries, entries
    assert "ALPHA" not in entries and "ZULU" not in entries
    # the OU view of a visit whose OD and OS name different people compares nothing and flags nothing (walk-through
    # H135, W9: a cup-to-disc difference between two people was flagged ASYMMETRIC), on screen and in the report
    import html

    from test_h84 import _open_ou

    from octviewer.gui.export.ou_pdf import ou_report_html

    view = _open_ou(qtbot, window, panel, visits[0])
    summary = view.summary
    assert summary.eyes_apart and not any(r.flagged for r in summary.asymmetry())
    assert summary.eyes_apart in view.checks.text()  # on screen, not only in a tooltip (walk-through H137, W4)
    cells = [view.asymmetry_table.item(i, 2).text() for i in range(view.asymmetry_table.rowCount())]
    assert all(c in ("not compared", "") for c in cells), cells
    page = html.unescape(ou_report_html(summary))
    assert "ASYMMETRIC</b>" not in page and summary.eyes_apart in page  # the flag, not the footnote
