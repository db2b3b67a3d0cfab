"""Walk-through H65, W12: the window's results CSV carried neither the patient the window names nor the study's
measured visual field, while the Results panel and the PDF show both. Through the window: File > Open study folder,
a click on a scan in the tree, File > Export results (dialogs patched), identified and anonymised."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from conftest import open_study_folder  # noqa: E402
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

pytestmark = pytest.mark.gui


def _export(w, monkeypatch, out, identify: bool) -> list[dict]:
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identify else QMessageBox.No)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_csv"].trigger()
    with open(out, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_csv_names_the_patient_and_gives_the_measured_field_the_panel_shows(
        qtbot, window, monkeypatch, demo, tmp_path):
    import shutil

    from octviewer.study import index_folder

    study = tmp_path / "study"
    shutil.copytree(demo, study)
    index = index_folder(study, cache_dir=tmp_path / "cache")
    [pid] = index.patients()
    first = index.visits(pid)[0].date
    (study / "visual_fields.csv").write_text("patient_id,eye,date,vfi,md,psd\n"
                                             f"{pid},OD,{(first + dt.timedelta(days=74)).isoformat()},93.5,-3.25,2.5\n")
    w = window
    w.resize(1600, 975)
    panel = open_study_folder(qtbot, w, monkeypatch, study)
    od = panel.tree.topLevelItem(0).child(0).child(0)
    item = od.child(0) if od.childCount() else od
    assert "OD" in item.text(0) or "OD" in od.text(0)
    panel.tree.scrollToItem(item)
    qtbot.mouseClick(panel.tree.viewport(), Qt.LeftButton, pos=panel.tree.visualItemRect(item).center())
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=120000)
    assert "93.5" in w.results.text()  # the panel shows the measured field ...
    qtbot.wait(300)  # ... all of it in sight with the Study panel open: its block was cut (walk-through H82, W8)
    assert w.results_scroll.verticalScrollBar().maximum() == 0

    [volume_row, *bscan_rows] = _export(w, monkeypatch, tmp_path / "identified.csv", identify=True)
    assert volume_row["patient"] == w.study.patient_line() and pid in volume_row["patient"]
    # each B-scan row repeats the patient as it repeats file, eye and date (walk-through H121, U14)
    assert bscan_rows and all(r["patient"] == volume_row["patient"] for r in bscan_rows)
    assert all(r["measured_vfi"] == "" for r in bscan_rows)
    assert volume_row["measured_vf_date"] == (first + dt.timedelta(days=74)).isoformat()
    scan = w.volume.acquired.date() if isinstance(w.volume.acquired, dt.datetime) else w.volume.acquired
    assert volume_row["measured_vf_days_from_scan"] == str((first + dt.timedelta(days=74) - scan).days)
    assert (volume_row["measured_vfi"], volume_row["measured_md"], volume_row["measured_psd"]) == ("93.50", "-3.25",
                                                                                                   "2.50")
    assert volume_row["measured_vf_compared"] == "yes"

    rows = _export(w, monkeypatch, tmp_path / "anonymised.csv", identify=False)
    assert rows[0]["patient"] == "withheld" and rows[0]["measured_vf_date"] == "withheld"
    assert rows[0]["measured_vfi"] == "93.50" and rows[0]["measured_vf_days_from_scan"]
    assert pid not in (tmp_path / "anonymised.csv").read_text()
    assert all(r["patient"] == "withheld" for r in rows[1:])  # B-scan rows: as the volume row


def test_a_scan_outside_a_study_has_its_headers_id_and_no_measured_field(qtbot, window, monkeypatch, tmp_path):
    from octviewer.resources import DEMO_SCAN

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=120000)
    [row, *_] = _export(w, monkeypatch, tmp_path / "demo.csv", identify=True)
    assert row["patient"] == (w.volume.patient_id or "")
    assert row["measured_vfi"] == "" and row["measured_vf_compared"] == ""


def test_a_results_csv_saved_in_the_study_is_not_read_as_measured_fields(qtbot, window, monkeypatch, demo, tmp_path):
    """A13-15: the window's CSV (with W12's patient column beside eye, date and the estimates' vfi, md, psd) saved in
    the study folder was read on the next File > Open study folder as a VF table: the estimate was then shown as the
    measured field beside itself, "difference +0.0". octviewer's own results, the window's or octviewer-predict's,
    are never measured fields."""
    import shutil

    study = tmp_path / "study"
    shutil.copytree(demo, study)
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, study)
    od = panel.tree.topLevelItem(0).child(0).child(0)
    item = od.child(0) if od.childCount() else od
    panel.tree.scrollToItem(item)
    qtbot.mouseClick(panel.tree.viewport(), Qt.LeftButton, pos=panel.tree.visualItemRect(item).center())
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring, timeout=120000)
    _export(w, monkeypatch, study / "OD_results.csv", identify=True)
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
    assert w.study.index.vf == []
    assert "Measured visual field" not in w.results.text()
    # octviewer-predict's CSV with a patient_id column added by hand is no VF table either
    from octviewer.study.vf import NotAVfTable, read_vf_rows

    predicted = tmp_path / "predicted.csv"
    predicted.write_text("patient_id,file,eye,date,probability,decision,vfi,md,psd,notice\n"
                         "P1,vol-1,OD,2020-01-02,0.2,normal,95,-1,2,research use only\n")
    with pytest.raises(NotAVfTable, match="octviewer's own results"):
        read_vf_rows(predicted)
