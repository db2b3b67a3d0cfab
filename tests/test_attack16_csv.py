"""Attack run 16, A16-13: the window's CSV of a study scan carried the study's measured VF and patient ID but none of
the study's checks on the scan, which the Results panel and the PDF print ("Check (study): ...")."""

import csv
from pathlib import Path

import pytest
from conftest import open_study_folder

pytestmark = pytest.mark.gui


def test_the_windows_csv_of_a_study_scan_says_the_studys_checks(qtbot, window, monkeypatch, demo, tmp_path):
    import pydicom
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_attack14_study import _scans

    root = tmp_path / "study" / "scans"
    root.mkdir(parents=True)
    for source, name, person in ((_scans(demo, "OD")[0], "a.dcm", ("ALPHA^ANN", "", "19500101")),
                                 (_scans(demo, "OS")[0], "z.dcm", ("ZULU^ZED", "HOSP_B", "19400101"))):
        ds = pydicom.dcmread(source)
        ds.PatientID = "MRN1000"
        ds.PatientName, ds.IssuerOfPatientID, ds.PatientBirthDate = person
        ds.save_as(root / name)
    open_study_folder(qtbot, window, monkeypatch, root.parent)
    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(root / "a.dcm"), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.prediction is not None and w.controller.analysis_generation == -1, timeout=120000)
    assert w.study.scan_checks()  # what the Results panel and the PDF print above the estimates

    def export(identified: bool) -> dict:
        out = tmp_path / f"{identified}.csv"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identified else QMessageBox.No)
        w.menu_actions["export_csv"].trigger()
        with open(out, newline="", encoding="utf-8") as f:
            return next(r for r in csv.DictReader(f) if r["level"] == "volume")

    named = export(True)["notice"]
    assert 'Check (study): the scans of the patient "MRN1000" name different people in their headers' in named
    anonymous = export(False)
    assert "Check (study)" in anonymous["notice"] and "name different people" in anonymous["notice"]
    assert "MRN1000" not in str(anonymous) and "ALPHA" not in str(anonymous) and "a.dcm" not in str(anonymous)
    assert Path(tmp_path / "False.csv").stat().st_size > 0
