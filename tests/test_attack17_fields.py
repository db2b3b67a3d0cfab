"""Attack run 17 (H106), A17-4, A17-7: whose measured field it is, exam by exam and header by header.

A17-4: an HFA XML export holding two exams under one PATIENT_ID, of two people, was judged by its LAST exam's person
for both (the study keyed the person by file): the other person's exam was shown as the patient's measured VF, or the
patient's own exam was left out. Each exam is judged by its own PATIENT element now.
A17-7: a header whose identity fields hold several values (PatientName "ZULU^ZED\\ZULU^Z") named no person at all,
so the field's issuer and birth date, which said another person, were not compared and the field was used. Such a
header names no one person: the file is left out, named, as the readers refuse a PatientID of several values and
PACS refuses such a header."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import pytest


def _rename(path, name, issuer: str, birth: str) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    ds.PatientName, ds.PatientBirthDate = name, birth
    if issuer:
        ds.IssuerOfPatientID = issuer
    elif "IssuerOfPatientID" in ds:
        del ds.IssuerOfPatientID
    ds.save_as(path)


def _study(demo, tmp_path, keep_fields: bool):
    """A copy of the demo whose scans name ALPHA^ANN, born 1950-01-01, no issuer; its OPV fields kept or removed."""
    root = shutil.copytree(demo, tmp_path / "study")
    for scan in (root / "scans").rglob("*.dcm"):
        _rename(scan, "ALPHA^ANN", "", "19500101")
    if not keep_fields:
        for f in (root / "perimetry").rglob("*.dcm"):
            f.unlink()
    return root


def _first_od_scan(root):
    import pydicom

    scan = sorted((root / "scans").rglob("OD_*.dcm"))[0]
    ds = pydicom.dcmread(scan, stop_before_pixels=True)
    day = str(ds.get("StudyDate") or ds.get("ContentDate"))
    return scan, str(ds.PatientID), dt.date(int(day[:4]), int(day[4:6]), int(day[6:8]))


def _patient(patient_id: str, last: str, given: str, birth: str, day: dt.date, md: str, tmp_path) -> str:
    """One PATIENT element of an HFA XML export (tests/test_hfa_xml.py's layout): an OD exam on ``day``."""
    from test_hfa_xml import hfa_xml

    visit = day.isoformat()
    text = hfa_xml(tmp_path, f"one_{last}.xml", patient=patient_id, visit=visit, series_time=f"{visit}T10:57:20",
                   md=md).read_text(encoding="utf-8")
    text = text.replace("<LAST_NAME>SYNTHETIC", f"<LAST_NAME>{last}").replace("<GIVEN_NAME>TEST",
                                                                              f"<GIVEN_NAME>{given}")
    text = text.replace("<BIRTH_DATE>1950-01-01", f"<BIRTH_DATE>{birth}")
    return re.search(r"<PATIENT>.*</PATIENT>", text, re.S).group(0)


def _problems(panel) -> str:
    return " ".join(panel.problems.text().replace("\u200b", "").split())


def _shown(index, scan) -> float | None:
    """The MD of the measured VF the Results panel shows beside ``scan`` (``measured_vf_for_scan``), or None."""
    m = index.measured_vf_for_scan(str(scan))
    return m.md_db if m is not None else None


@pytest.mark.gui
@pytest.mark.parametrize("zulu_first", [True, False], ids=["other-person-first", "own-exam-first"])
def test_each_exam_of_an_hfa_export_is_judged_by_its_own_person(qtbot, window, monkeypatch, fields_demo, tmp_path,
                                                                zulu_first):
    """A17-4: ZULU^ZED's exam (born 1940, a week after the scan, MD -4.56) and ALPHA^ANN's own (no birth date, two
    weeks after, MD -1.00) in one export under her ID. ZULU's exam is refused, named by its date; ALPHA's is shown
    beside her scan, whichever order the file holds them in (old code: the last exam's person judged both)."""
    from conftest import open_study_folder

    root = _study(fields_demo, tmp_path, keep_fields=False)
    scan, patient_id, day = _first_od_scan(root)
    zulu_day = day + dt.timedelta(days=7)
    zulu = _patient(patient_id, "ZULU", "ZED", "1940-01-01", zulu_day, "-4.56", tmp_path)
    alpha = _patient(patient_id, "ALPHA", "ANN", "", day + dt.timedelta(days=14), "-1.00", tmp_path)
    pair = (zulu, alpha) if zulu_first else (alpha, zulu)
    field = root / "perimetry" / "two.xml"
    field.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<HFA_EXPORT>\n' + "\n".join(pair) + "\n</HFA_EXPORT>\n",
                     encoding="utf-8")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    used = [m for m in panel.index.vf if m.source == str(field)]
    assert [m.md_db for m in used] == [-1.0], used
    assert _shown(panel.index, scan) == -1.0
    text = _problems(panel)
    assert ("its header names another person (another birth date) than this patient's scans; it is not used "
            f"(its exam of {zulu_day.isoformat()}, one of 2 in the file)") in text, text
    assert text.count("another person") == 1 and "ZULU" not in text and "1940" not in text, text


@pytest.mark.gui
def test_a_field_whose_name_holds_two_values_is_left_out_naming_the_file(
        qtbot, window, monkeypatch, fields_demo, tmp_path):
    """A17-7: ZULU's field (issuer HOSP_B, born 1940) with PatientName 'ZULU^ZED\\ZULU^Z' under ALPHA's ID was used
    as her measured VF, nothing said (its person was none, so nothing was compared); with the one name it is refused.
    A header naming no one person is left out with its file named."""
    import pydicom
    from conftest import open_study_folder

    root = _study(fields_demo, tmp_path, keep_fields=True)
    od = next(f for f in sorted((root / "perimetry").rglob("*.dcm"))
              if pydicom.dcmread(f, stop_before_pixels=True).get("Laterality", "") in ("R", "OD") or "OD" in f.name)
    _rename(od, ["ZULU^ZED", "ZULU^Z"], "HOSP_B", "19400101")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(od) not in {m.source for m in panel.index.vf}
    assert all((m := panel.index.measured_vf_for_scan(s.path)) is None or m.source != str(od)
               for s in panel.index.scans)
    text = _problems(panel)
    assert f"{od.name}: its header names no one person (several values) in PatientName: whose measured VF it is " \
           "cannot be told; it is not used" in text, text
    assert "ZULU" not in text and "1940" not in text, text


@pytest.mark.gui
def test_a_scan_whose_birth_date_holds_two_values_is_left_out_naming_the_file(qtbot, window, monkeypatch, fields_demo,
                                                                              tmp_path):
    """A17-7's one rule, for a scan: a header with two birth dates names no one person; it was filed under the ID
    with no person compared. It is left out, named, like a scan whose PatientID holds two values."""
    from conftest import open_study_folder

    root = _study(fields_demo, tmp_path, keep_fields=True)
    scan, _, _ = _first_od_scan(root)
    _rename(scan, "ALPHA^ANN", "", ["19500101", "19400101"])
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(scan) not in {s.path for s in panel.index.scans} and panel.index.scans
    text = _problems(panel)
    assert f"{scan.name}: its header names no one person (several values) in PatientBirthDate: whose scan it is " \
           "cannot be told; it is not used" in text, text
    assert "1940" not in text, text


@pytest.mark.gui
def test_open_study_manifest_refuses_a_listed_scan_naming_no_one_person(
        qtbot, window, monkeypatch, fields_demo, tmp_path):
    """The manifest route reads the same header record: a listed scan whose birth date holds two values was used
    under the row's patient with no person compared; it is refused, its row named, as a study folder leaves it out."""
    from PySide6.QtWidgets import QFileDialog

    root = _study(fields_demo, tmp_path, keep_fields=False)
    scan, patient_id, _ = _first_od_scan(root)
    other = sorted((root / "scans").rglob("OS_*.dcm"))[0]
    _rename(scan, "ALPHA^ANN", "", ["19500101", "19400101"])
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,patient_id,eye,visit\n{scan},{patient_id},OD,\n{other},{patient_id},OS,\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    index = window.study.panel.index
    assert str(scan) not in {s.path for s in index.scans} and str(other) in {s.path for s in index.scans}
    text = _problems(window.study.panel)
    assert "row 2 lists a scan: its header names no one person (several values) in PatientBirthDate: whose scan it " \
           "is cannot be told; it is not used" in text, text
