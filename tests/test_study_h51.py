"""The H51 walk-through's study findings: a far measured VF from a study folder, one scan listed at two
visits, many manifest warnings in the Study panel, the open scan's own warnings in Results and the PDF,
and visit labels shown with their dates."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder  # noqa: E402

# the study's scans and manifests as the header checks' tests make them (one copy of the helpers; the
# ``demo`` study fixture itself is shared through conftest.py)
from test_study_headers import _grab, _header_date, _scans, _write  # noqa: E402

from octviewer.study import index_folder, index_manifest


def _open_manifest(qtbot, w, monkeypatch, manifest: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    panel = w.study.panel
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    return panel


def _tree_texts(item) -> list[str]:
    return [item.child(k).text(0) for k in range(item.childCount())]


# ---------------------------------------------------------------- 5: visit labels with their dates

@pytest.mark.gui
def test_visit_labels_that_are_not_dates_show_their_dates(qtbot, window, monkeypatch, demo, tmp_path):
    """V1/V10/V2 ordered by scan date read "V2, V10, V1" with no dates: it looked like a sorting bug."""
    od = _scans(demo, "OD")
    patient = od[0].parent.name
    manifest = _write(tmp_path / "m.csv", [[str(od[2]), patient, "OD", "V1"], [str(od[0]), patient, "OD", "V2"],
                                           [str(od[1]), patient, "OD", "V10"]])
    panel = _open_manifest(qtbot, window, monkeypatch, manifest)
    assert _tree_texts(panel.tree.topLevelItem(0)) == [f"V2 ({_header_date(od[0])})", f"V10 ({_header_date(od[1])})",
                                                       f"V1 ({_header_date(od[2])})"]
    _grab(window, "h52_visit_labels")
    dated = _write(tmp_path / "d.csv", [[str(od[0]), patient, "OD", _header_date(od[0]).isoformat()]])
    panel = _open_manifest(qtbot, window, monkeypatch, dated)
    assert _tree_texts(panel.tree.topLevelItem(0)) == [_header_date(od[0]).isoformat()]  # a date: once


# ---------------------------------------------------------------- 1: a far VF from a study folder's table

@pytest.mark.gui
def test_a_far_field_in_a_study_folder_is_shown_not_compared(qtbot, window, monkeypatch, demo, tmp_path):
    """A VF 366 days before the scan in the folder's visual_fields.csv was counted but shown nowhere (the
    same field on a manifest row said "not compared"): Results and the PDF say it now, as for a manifest."""
    from test_gui_walkthrough_h2 import _click_item, _export_pdf

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    when = (_header_date(od) - dt.timedelta(days=366)).isoformat()
    _write(root / "visual_fields.csv", [[od.parent.name, "OD", when, 98, -0.8, 1.6]],
           header=("patient_id", "eye", "date", "vfi", "md", "psd"))
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    assert len(panel.index.vf) == 1
    visit = panel.tree.topLevelItem(0).child(0)
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, eye.child(0))
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=60000)
    qtbot.waitUntil(lambda: "Measured visual field" in w.results.extra.text(), timeout=30000)
    _grab(w.results, "h52_folder_far_vf_results")
    text = w.results.extra.text()
    assert f"VF tested {when} (366 days before the scan: not compared, more than 180 days apart)" in text
    assert "difference not compared" in text and "difference +" not in text
    pdf = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)["doc"].toPlainText()
    assert "366 days before the scan: not compared" in pdf


# ---------------------------------------------------------------- 2: one scan listed at two visits

@pytest.mark.gui
def test_one_scan_at_two_visits_is_used_once_with_a_warning(qtbot, window, monkeypatch, demo, tmp_path):
    """The scan was left out ("neither is used") and its visit's OD vanished from the tree, OU view and trend:
    it is used once, at the visit its header's date agrees with, and the Check list says so."""
    od = _scans(demo, "OD")
    patient = od[0].parent.name
    first, second = _header_date(od[0]).isoformat(), _header_date(od[1]).isoformat()
    manifest = _write(tmp_path / "m.csv", [[str(od[0]), patient, "OD", second], [str(od[1]), patient, "OD", second],
                                           [str(od[0]), patient, "OD", first]])
    panel = _open_manifest(qtbot, window, monkeypatch, manifest)
    index = panel.index
    assert [(Path(s.path).name, s.visit) for s in index.scans_for(patient)] == [(od[0].name, first),
                                                                               (od[1].name, second)]
    assert not index.problems
    assert (str(od[0]), "rows", f"rows 2, 4 list it at the visits {second}, {first}: it is used once, at {first} (the "
                                "date in its header); correct the other rows") in index.warnings
    assert _tree_texts(panel.tree.topLevelItem(0)) == [first, second]
    shown = panel.problems.text().replace("\u200b", "")
    assert "Check (used as listed)" in shown and "Left out" not in shown and "used once" in shown
    _grab(window, "h52_two_visits")


def test_a_study_folder_uses_one_scan_at_two_visits_once(demo, tmp_path):
    """The folder's manifests get the same rule: rows that differ only in the visit warn, the scan is used."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")
    patient = od[0].parent.name
    _write(root / "m.csv", [[os.path.relpath(od[0], root), patient, "OD", _header_date(od[0]).isoformat()],
                            [os.path.relpath(od[0], root), patient, "OD", _header_date(od[1]).isoformat()]])
    index = index_folder(root, cache_dir=tmp_path / "cache")
    assert str(od[0]) in [s.path for s in index.scans] and not index.problems
    assert any(p == str(od[0]) and "list it at different visits: it is used once" in w for p, _, w in index.warnings)


@pytest.mark.gui
def test_counts_of_a_manifest_whose_scans_are_all_left_out_are_true(qtbot, window, monkeypatch, demo, tmp_path):
    """Every row left out read "no OCT scans found; skipped 2 scans ...", and the fields of left-out rows were
    counted as the study's measured visual fields."""
    od = _scans(demo, "OD")
    patient = od[0].parent.name
    visit = _header_date(od[0]).isoformat()
    header = ("path", "patient_id", "eye", "visit", "vfi", "md", "psd")
    manifest = _write(tmp_path / "m.csv", [[str(od[0]), patient, "OD", visit, 90, -4.0, 4.0],
                                           [str(od[0]), "OTHER", "OD", visit, 90, -4.0, 4.0]], header=header)
    panel = _open_manifest(qtbot, window, monkeypatch, manifest)
    assert panel.index.vf == []
    status = panel.status.text().replace("\u200b", "")
    assert "no scan used" in status and "no OCT scans found" not in status
    assert "skipped 1 scan that manifests disagree about, 2 visual fields on rows of scans not used" in status
    kept = _write(tmp_path / "k.csv", [[str(od[0]), patient, "OD", visit, 90, -4.0, 4.0],
                                       [str(od[1]), patient, "OS", visit, 80, -6.0, 5.0]], header=header)
    index = index_manifest(kept)  # od[1] is an OD scan listed as OS: left out, and its field with it
    assert [(m.eye, m.vfi) for m in index.vf] == [("OD", 90)]


# ---------------------------------------------------------------- 4: the open scan's checks in Results and the PDF

@pytest.mark.gui
def test_results_and_pdf_repeat_the_open_scans_checks(qtbot, window, monkeypatch, demo, tmp_path):
    """A manifest row filed the scan under another patient and date: the tree and OU view used the row's,
    the window title the header's, and Results and the PDF said nothing of it."""
    from test_gui_walkthrough_h2 import _click_item, _export_pdf

    od = _scans(demo, "OD")[0]
    visit = (_header_date(od) - dt.timedelta(days=300)).isoformat()
    panel = _open_manifest(qtbot, window, monkeypatch, _write(tmp_path / "m.csv", [[str(od), "ROW-ID", "OD", visit]]))
    w = window
    item = panel.tree.topLevelItem(0).child(0).child(0).child(0)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click_item(qtbot, panel.tree, item)
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=60000)
    qtbot.waitUntil(lambda: "Check (study manifest)" in w.results.study_checks.text(), timeout=30000)
    _grab(w.results, "h52_results_checks")
    text = w.results.study_checks.text()
    assert f'Check (study manifest): row 2 gives the patient "ROW-ID", the scan\'s own header says "{od.parent.name}"' \
        in text and f"row 2 gives the visit {visit}, the scan's own header dates it {_header_date(od)}" in text
    pdf = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=True)["doc"].toPlainText()
    assert 'Check (study manifest): row 2 gives the patient "ROW-ID"' in pdf and f"dates it {_header_date(od)}" in pdf
    anonymised = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False, name="a.pdf")["doc"].toPlainText()
    assert "this scan's header disagree (2 checks" in anonymised and "details withheld" in anonymised
    assert "ROW-ID" not in anonymised and visit not in anonymised


# ---------------------------------------------------------------- 3: many checks leave the tree and buttons in sight

def _fully_visible(widget) -> bool:
    return widget.visibleRegion().boundingRect().size() == widget.size()


@pytest.mark.gui
def test_many_checks_keep_the_tree_and_buttons_in_sight_at_1024x700(qtbot, window, monkeypatch, demo, tmp_path):
    """About 8 checks filled the Study panel at 1024x700 (4 at 1280x800), the tree, OU view and Trend below
    the dock's edge, in one run of text with paths broken mid-word."""
    od = _scans(demo, "OD")[0]
    deep = tmp_path / "clinic_export_2024" / "glaucoma_service" / "cirrus_macular_cubes"
    deep.mkdir(parents=True)
    rows = []
    for k in range(7):  # each: the patient, the visit date and the same scan (its UID) at another visit
        copy = deep / f"{od.parent.name}_macular_cube_512x128_{k:02d}.dcm"
        shutil.copyfile(od, copy)
        rows.append([str(copy), "ROW-ID", "OD", (_header_date(od) - dt.timedelta(days=30 * (k + 1))).isoformat()])
    panel = _open_manifest(qtbot, window, monkeypatch, _write(tmp_path / "m.csv", rows))
    assert len(panel.index.warnings) >= 20
    window.resize(1024, 700)
    window.study.dock.raise_()
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0).child(0))
    qtbot.wait(200)
    _grab(window, "h52_many_checks_1024x700")
    assert _fully_visible(panel.ou_button) and _fully_visible(panel.trend_button)
    assert panel.tree.visibleRegion().boundingRect().height() >= 150
    assert _fully_visible(panel.problems_summary)
    shown = panel.problems.text().replace("\u200b", "")
    assert shown.count("\n• ") >= 20  # one entry a line
    assert "\u200bmacular_\u200bcube_" in panel.problems.text()  # a name breaks at its separators, not mid-word
    assert panel.problems_summary.text() == f"Check (used as listed): {len(panel.index.warnings)} - scroll the list"
