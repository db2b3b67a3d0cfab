"""Attack run 14 (H85), octviewer-pacs: a study UID the archive files under two patients (a mis-filed or
half-merged record) sent both patients' instances, and `screen --patient-id P` screened the other patient's eye
as P's, nothing said (A14-2). Only the patient's own instances are kept, in screen, retrieve and the window."""

import csv

import orthanc_server
import pydicom
import pytest
from conftest import open_window
from orthanc_server import ARCHIVE_AE, LOCAL_AE
from pydicom.uid import generate_uid

from octviewer.pacs import save_settings
from octviewer.pacs.cli import main

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures
MODEL = "resources/models/demo_semt.safetensors"
SHARED_A, SHARED_B = "SHARED-A-141", "SHARED-B-142"


@pytest.fixture(scope="module")
def shared_study(orthanc):
    """Patient A's OD scan and patient B's OS scan filed in the archive under one study UID (own series)."""
    study = generate_uid()
    datasets = []
    for patient, name, sample in ((SHARED_A, "ALPHA^ANN", "demo_normal_OD.dcm"),
                                  (SHARED_B, "BRAVO^BOB", "demo_early_glaucoma_OS.dcm")):
        ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / sample)
        orthanc_server._file_with_patient(ds, patient, name, study, "20191112", series_number=1)
        ds.SeriesInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    orthanc.c_store(datasets)
    return study


def _conf(orthanc, tmp_path) -> list[str]:
    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, "configure", "--archive-ae", ARCHIVE_AE, "--host", "127.0.0.1", "--port",
                 str(orthanc.dicom_port), "--local-ae", LOCAL_AE, "--local-port", str(orthanc.move_port)]) == 0
    return conf


def _kept_patients(data_dir) -> list[str]:
    return sorted(str(pydicom.dcmread(p, stop_before_pixels=True).PatientID) for p in data_dir.glob("pacs/**/*.dcm"))


@pytest.mark.slow  # the demo cube screened on the CPU
def test_screen_keeps_only_the_screened_patients_instances_of_a_shared_study_uid(
        orthanc, shared_study, data_dir, tmp_path, capsys):
    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    out = tmp_path / "screen.csv"
    assert main([*conf, "screen", "--patient-id", SHARED_A, "--out", str(out), "--", "--device", "cpu",
                 "--no-quality-gate"]) == 0
    err = capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert [r["laterality"] for r in rows] == ["OD"]  # B's OS eye was screened as A's
    assert "1 instance(s) of another patient were refused" in err and SHARED_B not in err
    assert _kept_patients(data_dir) == [SHARED_A]


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_of_a_study_filed_under_two_patients_asks_which_and_keeps_only_that_ones(
        orthanc, shared_study, data_dir, tmp_path, capsys, method):
    conf = _conf(orthanc, tmp_path)
    assert main([*conf, "configure", "--retrieve", method]) == 0
    capsys.readouterr()
    assert main([*conf, "retrieve", shared_study]) == 2  # whose? the archive files it under two patients
    err = capsys.readouterr().err
    assert "under several patients" in err and "give the patient ID" in err and "Traceback" not in err
    assert _kept_patients(data_dir) == []
    assert main([*conf, "retrieve", shared_study, "--patient-id", SHARED_B]) == 0
    out = capsys.readouterr().out
    assert "1 file(s) retrieved" in out and "1 instance(s) of another patient were refused" in out
    assert _kept_patients(data_dir) == [SHARED_B]


@pytest.fixture
def window(qtbot, monkeypatch, data_dir):
    yield from open_window(qtbot, monkeypatch, MODEL)


def test_the_windows_study_retrieve_keeps_only_the_chosen_patients_instances(window, orthanc, shared_study, qtbot,
                                                                          data_dir):
    save_settings(orthanc.settings())
    window.menu_actions["open_pacs"].trigger()
    dialog = window._pacs_actions.dialog
    dialog.patient_id.setText(SHARED_A)
    dialog.search_button.click()
    qtbot.waitUntil(lambda: dialog.results.topLevelItemCount() == 1, timeout=60000)
    dialog.results.setCurrentItem(dialog.results.topLevelItem(0))
    dialog.retrieve_button.click()
    panel = window.study.panel
    qtbot.waitUntil(lambda: panel.index is not None, timeout=60000)
    assert [(s.patient_id, s.eye) for s in panel.index.scans] == [(SHARED_A, "OD")]
    assert _kept_patients(data_dir) == [SHARED_A]


def _noisy_scan(tmp_path, patient_id: str):
    """The demo OD cube as a clinic's archive holds it, its pixels weak noise: the quality check refuses it and
    the network still reads it when the check is off (as in tests/test_attack13_pacs.py)."""
    import numpy as np
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / "demo_normal_OD.dcm")
    arr = ds.pixel_array
    ds.PixelData = np.random.default_rng(0).integers(0, 12, arr.shape).astype(arr.dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    orthanc_server._file_with_patient(ds, patient_id, "GATE^OFF", generate_uid(), "20240101", series_number=1)
    path = tmp_path / f"{patient_id}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _sr_screening(orthanc, patient_id: str) -> dict:
    from octviewer.pacs.sr import sr_values

    [sr] = [orthanc.dataset(i["ID"]) for i in orthanc.instances_of(patient_id)
            if orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality") == "SR"]
    return sr_values(sr)["glaucoma screening"]


def test_the_windows_sr_of_a_decision_made_with_the_quality_check_off_says_so(window, orthanc, qtbot, data_dir,
                                                                               tmp_path, monkeypatch):
    """A14-10: File > Send results to PACS with Analysis > Quality check off filed "Screening decision: Normal" for
    a scan the check refuses, the SR saying nothing of the check being off (the PDF beside it says it, A13-11).
    The SR now carries, beside the decision, the note in the panel's words and the result's analysis settings."""
    from test_gui_walkthrough import _open_by_menu

    from octviewer.pacs.sr import ANALYSIS_SETTINGS, QUALITY_CHECK_OFF

    w = window
    assert not w.state.options.gate
    save_settings(orthanc.settings())
    _open_by_menu(qtbot, w, _noisy_scan(tmp_path, "GATEOFF-1410"), monkeypatch, timeout=240000)
    qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.structure is not None, timeout=240000)
    assert not w.state.structure.quality.ok
    w.menu_actions["send_pacs"].trigger()
    qtbot.waitUntil(lambda: not w._pacs_actions.work.busy(), timeout=60000)
    values = _sr_screening(orthanc, "GATEOFF-1410")
    assert values["Screening decision"] in ("Normal", "Glaucoma")
    assert values[QUALITY_CHECK_OFF].startswith("quality check off: this scan fails it (signal 0.")
    assert values[QUALITY_CHECK_OFF].endswith("with the check on it gets no result")
    assert values[ANALYSIS_SETTINGS].startswith("quality gate off, ")


@pytest.mark.slow  # the demo cube analysed on the CPU
def test_sends_sr_of_a_good_scan_names_its_settings_and_no_check_off(orthanc, data_dir, tmp_path, capsys):
    from octviewer.pacs.sr import ANALYSIS_SETTINGS, QUALITY_CHECK_OFF

    scan = tmp_path / "good.dcm"
    ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / "demo_normal_OD.dcm")
    orthanc_server._file_with_patient(ds, "GATEON-1410", "GATE^ON", generate_uid(), "20240101", series_number=1)
    ds.save_as(scan, enforce_file_format=True)
    conf = _conf(orthanc, tmp_path)
    assert main([*conf, "send", str(scan), "--device", "cpu"]) == 0
    values = _sr_screening(orthanc, "GATEON-1410")
    assert values[ANALYSIS_SETTINGS].startswith("quality gate on, ") and QUALITY_CHECK_OFF not in values


# ---------------------------------------------------------------- A14-19: two people under one patient ID
TWO_PEOPLE, MISFILED = "MRN-1419", "MRN-1420"


@pytest.fixture(scope="module")
def two_people(orthanc):
    """Under the ID MRN-1419: ALPHA^ANN's study (no issuer) and ZULU^ZED's (issuer HOSP_B, born 1940), each its
    own; under MRN-1420 one study holding both people's instances (ZULU^ZED's mis-filed, its own series). The
    archive answers for a study with the patient fields it stored last, so the two layouts are two IDs."""
    ann_study, datasets = generate_uid(), []
    for patient_id, name, issuer, birth, sample, study in (
            (TWO_PEOPLE, "ALPHA^ANN", "", "19580412", "demo_normal_OD.dcm", generate_uid()),
            (TWO_PEOPLE, "ZULU^ZED", "HOSP_B", "19400101", "demo_early_glaucoma_OS.dcm", generate_uid()),
            (MISFILED, "ALPHA^ANN", "", "19580412", "demo_normal_OD.dcm", ann_study),
            (MISFILED, "ZULU^ZED", "HOSP_B", "19400101", "demo_early_glaucoma_OS.dcm", ann_study)):
        ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / sample)
        orthanc_server._file_with_patient(ds, patient_id, name, study, "20190612", series_number=1)
        ds.PatientBirthDate = birth
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.SeriesInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    orthanc.c_store(datasets)
    return ann_study


def test_screen_refuses_one_patient_id_naming_two_people_before_retrieving_anything(
        orthanc, two_people, data_dir, tmp_path, capsys):
    """A14-19: a PatientID is unique only within its issuer; `screen --patient-id MRN1000` screened another
    hospital's MRN1000 (another name, birth date) into one CSV that names no patient. Refused as several IDs
    are (A12-7), exit 2, nothing retrieved."""
    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    out = tmp_path / "screen.csv"
    assert main([*conf, "screen", "--patient-id", TWO_PEOPLE, "--out", str(out), "--", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "the studies of this patient ID name different people" in err and "give --issuer" in err
    assert "ZULU" not in err and "Traceback" not in err
    assert not (data_dir / "pacs").exists() and not out.exists()


@pytest.mark.parametrize("method", ["get", "move"])
def test_retrieve_keeps_only_the_studys_person_of_an_instance_under_the_same_id(orthanc, two_people, data_dir,
                                                                                tmp_path, capsys, method):
    """The mis-filed instance of the same PatientID but another name, birth date and issuer is refused as
    another patient's is (A14-2's rule, by the person)."""
    conf = _conf(orthanc, tmp_path)
    assert main([*conf, "configure", "--retrieve", method]) == 0
    capsys.readouterr()
    assert main([*conf, "retrieve", two_people]) == 0
    out = capsys.readouterr().out
    assert "1 file(s) retrieved" in out and "1 instance(s) of another patient were refused" in out
    kept = [pydicom.dcmread(p, stop_before_pixels=True) for p in data_dir.glob("pacs/**/*.dcm")]
    assert len(kept) == 1 and kept[0].PatientID == MISFILED


@pytest.mark.slow  # the demo cube screened on the CPU
def test_screen_with_the_issuer_screens_that_hospitals_patient_only(orthanc, two_people, data_dir, tmp_path, capsys):
    conf = _conf(orthanc, tmp_path)
    out = tmp_path / "screen.csv"
    assert main([*conf, "screen", "--patient-id", TWO_PEOPLE, "--issuer", "HOSP_B", "--out", str(out), "--",
                 "--device", "cpu", "--no-quality-gate"]) == 0
    assert [r["laterality"] for r in csv.DictReader(out.open())] == ["OS"]  # ZULU^ZED's eye only
    assert {str(pydicom.dcmread(p, stop_before_pixels=True).PatientName)
            for p in data_dir.glob("pacs/**/*.dcm")} == {"ZULU^ZED"}
