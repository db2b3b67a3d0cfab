"""Attack run 15 (H94), four low findings fixed by H97: a B-scan folder's note on the count and the files' numbers
(A15-9), screen's "two people under one ID" refusal naming the options that pick one (A15-10), retrieve's person
rule with and without --patient-id (A15-18), and the trainer's "two people under one patient_id" warning (A15-14)."""

from __future__ import annotations

import orthanc_server  # a real archive for the PACS tests (skipped without its binary)
import pytest

# ---------------------------------------------------------------- A15-9: a folder numbered from 0, with a gap


@pytest.mark.gui
@pytest.mark.parametrize("first, expected", [
    (0, "on screen they are counted 1 to 16 in order, while the files are numbered otherwise: B-scan 1 is file "
        "000; past the gap, B-scan 9 is file 009"),
    (1, "on screen they are counted 1 to 16 in order, so from B-scan 8 on the count is not the file's number "
        "(B-scan 8 is file 009)")])
def test_a_folder_with_a_gap_says_the_files_numbers_as_written_for_0_and_1_based_names(
        qtbot, window, monkeypatch, tmp_path, first, expected):
    """A15-9: B000 .. B016 without B008 said "from B-scan 9 on the count is not the file's number (B-scan 9 is
    number 9)": the count was never the number (B-scan 1 is B000), and B-scan 9 is B009."""
    from corpus import oct_like
    from test_folder_h74 import _open_bscan_folder, _write_pngs

    w = window
    names = [f"B{n:03d}.png" for n in range(first, first + 17) if n != 8]
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "gap", oct_like((16, 64, 48)), names))
    assert not w.warnings and w.state.volume.n_bscans == 16
    text = w.results.caveats.text()
    assert "1 B-scan number is missing from the series (between 7 and 9)" in text
    assert expected in text
    assert "is number 9)" not in text and "is file 9)" not in text


# ---------------------------------------------------------------- A15-10, A15-18: one PatientID, two people (PACS)
orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures
TWO_STUDIES, ONE_STUDY = "MRN-1510", "MRN-1518"


def _store_people(orthanc, patient_id: str, dates: tuple[str, str], one_study: bool) -> str:
    """ALPHA^ANN (no issuer, born 1958, OD) and ZULU^ZED (issuer HOSP_B, born 1940, OS) under ``patient_id``, each
    in a study of their own or both in one study (their own series); the last study UID."""
    import pydicom
    from pydicom.uid import generate_uid

    shared, datasets = generate_uid(), []
    for (name, issuer, birth, sample), date in zip((("ALPHA^ANN", "", "19580412", "demo_normal_OD.dcm"),
                                                    ("ZULU^ZED", "HOSP_B", "19400101", "demo_early_glaucoma_OS.dcm")),
                                                   dates):
        ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / sample)
        orthanc_server._file_with_patient(ds, patient_id, name, shared if one_study else generate_uid(), date,
                                          series_number=1)
        ds.PatientBirthDate = birth
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.SeriesInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    orthanc.c_store(datasets)
    return shared


@pytest.fixture(scope="module")
def people(orthanc):
    """Under MRN-1510 two people's studies of different dates; under MRN-1518 one study holding both people's
    instances. The study UID of the latter."""
    _store_people(orthanc, TWO_STUDIES, ("20190612", "20210305"), one_study=False)
    return _store_people(orthanc, ONE_STUDY, ("20190612", "20190612"), one_study=True)


def _conf(orthanc, tmp_path, method: str = "get") -> list[str]:
    from orthanc_server import ARCHIVE_AE, LOCAL_AE

    from octviewer.pacs.cli import main

    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, "configure", "--archive-ae", ARCHIVE_AE, "--host", "127.0.0.1", "--port",
                 str(orthanc.dicom_port), "--local-ae", LOCAL_AE, "--local-port", str(orthanc.move_port),
                 "--retrieve", method]) == 0
    return conf


def _kept_names(data_dir) -> list[str]:
    import pydicom

    return sorted(str(pydicom.dcmread(p, stop_before_pixels=True).PatientName) for p in data_dir.glob("pacs/**/*.dcm"))


def test_screen_refusing_two_people_names_every_option_that_picks_one(orthanc, people, data_dir, tmp_path, capsys):
    """A15-10: the refusal offered only --issuer, which cannot pick ALPHA^ANN, whose studies carry no issuer."""
    from octviewer.pacs.cli import main

    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    assert main([*conf, "screen", "--patient-id", TWO_STUDIES, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "the studies of this patient ID name different people" in err
    assert "give --issuer (where their studies carry one), --name, or --from/--to (where their study dates differ) " \
           "to pick one" in err
    assert "ALPHA" not in err and "ZULU" not in err and not (data_dir / "pacs").exists()


@pytest.mark.parametrize("pick, name", [(["--issuer", "HOSP_B"], "ZULU^ZED"), (["--name", "ALPHA^ANN"], "ALPHA^ANN"),
                                        (["--name", "ZULU"], "ZULU^ZED"), (["--from", "2021-01-01"], "ZULU^ZED"),
                                        (["--to", "2020-12-31"], "ALPHA^ANN")])
def test_each_option_the_two_people_refusal_names_screens_one_person(orthanc, people, data_dir, tmp_path, capsys,
                                                                     monkeypatch, pick, name):
    """A15-10: each option the refusal names picks one of the two people: only that person's instances are
    retrieved and handed to octviewer-predict (replaced here by a stand-in: the person rule is the screen's)."""
    import functools

    import octviewer.pipeline.predict_cli as predict_cli
    from octviewer.pacs.cli import main

    handed = []

    @functools.wraps(predict_cli.main)
    def predict(argv=None):
        return 0

    predict.__wrapped__ = lambda argv: handed.append(argv) or 0
    monkeypatch.setattr(predict_cli, "main", predict)
    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    assert main([*conf, "screen", "--patient-id", TWO_STUDIES, *pick, "--out", str(tmp_path / "s.csv")]) == 0
    assert "different people" not in capsys.readouterr().err
    assert _kept_names(data_dir) == [name]
    assert len(handed) == 1 and len([a for a in handed[0] if "pacs" in a]) == 1  # one series folder screened


@pytest.mark.parametrize("method", ["get", "move"])
@pytest.mark.parametrize("with_id", [True, False])
def test_retrieve_keeps_one_person_of_a_shared_id_with_or_without_the_patient_id(
        orthanc, people, data_dir, tmp_path, capsys, method, with_id):
    """A15-18: `retrieve --patient-id P STUDY` compared the PatientID only and kept both people's instances; without
    it one was refused as "the header's PatientID is not this patient's", though it was the same ID."""
    from octviewer.pacs.cli import main

    conf = _conf(orthanc, tmp_path, method)
    capsys.readouterr()
    assert main([*conf, "retrieve", people, *(["--patient-id", ONE_STUDY] if with_id else [])]) == 0
    out = capsys.readouterr().out
    assert "1 file(s) retrieved" in out
    assert "1 instance(s) of another patient were refused (not kept): the header gives this patient's ID but " \
           "another birth date (one ID, two people" in out  # what differed (A16-1); ALPHA^ANN gives no issuer
    assert "PatientID is not this patient's" not in out and "ALPHA" not in out and "ZULU" not in out
    assert len(_kept_names(data_dir)) == 1


# ---------------------------------------------------------------- A15-14: the trainer, two people under one ID


def _cohort_with_names(tiny_cohort, folder, names, both_eyes: bool = False) -> tuple:
    """A copy of the tiny cohort whose first patient's first scans (``both_eyes``: the first patient's with both
    eyes, an OD and an OS scan) carry ``names`` [(name, issuer, birth), ...] in their DICOM headers (the pixels
    unchanged); (manifest, those rows)."""
    import csv
    import shutil

    import pydicom

    root = shutil.copytree(tiny_cohort.parent, folder)
    manifest = root / tiny_cohort.name
    rows = list(csv.DictReader(manifest.open(newline="")))
    first = [r for r in rows if r["patient_id"] == rows[0]["patient_id"]][:len(names)]
    if both_eyes:
        patient = next(p["patient_id"] for p in rows if {r["eye"] for r in rows if r["patient_id"] == p["patient_id"]}
                       == {"OD", "OS"})
        first = [next(r for r in rows if r["patient_id"] == patient and r["eye"] == eye) for eye in ("OD", "OS")]
    assert len(first) == len(names)
    for row, (name, issuer, birth) in zip(first, names):
        ds = pydicom.dcmread(root / row["path"])
        ds.PatientName, ds.PatientBirthDate = name, birth
        if issuer:
            ds.IssuerOfPatientID = issuer
        ds.save_as(root / row["path"])
    return manifest, first


def test_validate_warns_of_one_patient_id_whose_scans_name_two_people(tiny_cohort, tmp_path, capsys):
    """A15-14: a manifest listing two people (one PatientID, another issuer, name and birth date) under one
    patient_id passed validate as one patient without a word, while Open study manifest says it. Warned, by row
    count and no name, as the study index's "people" check does; the rows stay one patient in one split."""
    from trainer.cli import main

    manifest, _ = _cohort_with_names(tiny_cohort, tmp_path / "two", [("ALPHA^ANN", "", "19580412"),
                                                                     ("ZULU^ZED", "HOSP_B", "19400101")])
    assert main(["validate", "--data", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 rows: the scans of 1 of the manifest's patients name different people in their DICOM headers " \
           "(another issuer of the ID, name or birth date" in err, err
    assert "ALPHA" not in err and "ZULU" not in err and "SYN" not in err


def test_validate_takes_one_name_written_two_ways_as_one_person(tiny_cohort, tmp_path, capsys):
    """The person rule's other side (A15-1): DOE^JOHN and Doe^John^A, one birth date, are one person: no warning."""
    from trainer.cli import main

    manifest, _ = _cohort_with_names(tiny_cohort, tmp_path / "one", [("DOE^JOHN", "", "19580412"),
                                                                     ("Doe^John^A", "", "1958-04-12")])
    assert main(["validate", "--data", str(manifest)]) == 0
    assert "different people" not in capsys.readouterr().err


def test_validate_does_not_call_two_people_of_one_header_id_filed_under_two_patient_ids_one_person(tiny_cohort,
                                                                                                    tmp_path, capsys):
    """A15-14 (with A15-3's trainer half): two people whose headers share a PatientID, filed by the manifest under two
    patient IDs (a study that re-keyed the archive's two MRN1000s correctly), were called "1 person(s) each filed
    under several patient IDs of the manifest (one per eye?)": the headers tell them apart. They stay in one split
    all the same (joined by the header ID, the safe side for a leak: attack run 16, A16-11), and the warning says so."""
    import csv

    from trainer.cli import main

    manifest, first = _cohort_with_names(tiny_cohort, tmp_path / "rekeyed", [("ALPHA^ANN", "", "19580412"),
                                                                             ("ZULU^ZED", "HOSP_B", "19400101")],
                                         both_eyes=True)
    rows = list(csv.DictReader(manifest.open(newline="")))
    next(r for r in rows if r["path"] == first[1]["path"]).update(patient_id="ZULU-2")
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["validate", "--data", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert "one per eye" not in err and "different people" not in err, err
    assert "whose headers tell them apart" in err and "in one split all the same" in err, err
