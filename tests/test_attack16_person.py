"""Attack run 16 (H100), A16-1, A16-2, A16-5: one person rule (``core.person``) for PACS, the study's scans and
measured fields: names folded before they are compared (O'BRIEN = OBRIEN, MÜLLER = MUELLER, DE LA CRUZ = DELACRUZ,
"JOHN DOE" = DOE^JOHN, YAMADA^TARO=山田^太郎 = 山田^太郎), and two tiers: another issuer of the ID or birth date is
another person (refused), a name that still differs is "another person, or one name written two ways" (kept, said)."""

from __future__ import annotations

import csv
import functools

import orthanc_server  # a real archive for the PACS tests (skipped without its binary)
import pytest

# ---------------------------------------------------------------- the rule itself


@pytest.mark.parametrize("one, two", [("O'BRIEN^SEAN", "OBRIEN^SEAN"), ("MÜLLER^JÜRGEN", "MUELLER^JUERGEN"),
                                      ("MÜLLER^JÜRGEN", "MULLER^JURGEN"), ("DE LA CRUZ^MARIA", "DELACRUZ^MARIA"),
                                      ("DOE^JOHN", "JOHN DOE"), ("DOE^JOHN", "DOE, JOHN"), ("Doe^John^A", "DOE^JOHN"),
                                      ("YAMADA^TARO=山田^太郎", "山田^太郎"), ("SMITH-JONES^ANN", "SMITH JONES^ANN"),
                                      ("STRAUß^ANNA", "STRAUSS^ANNA"), ("DOE", "DOE^JOHN")])
def test_one_name_written_two_ways_folds_to_equal_digests(one, two):
    """The study's header cache compares the traits as digests, by equality: the fold must give equal strings."""
    from octviewer.core.person import Patient, hashed_traits, one_set_of_traits

    a, b = Patient("P", name=one), Patient("P", name=two)
    assert one_set_of_traits([hashed_traits(a), hashed_traits(b)]) and not a.other_name(b) and not a.others(b)


@pytest.mark.parametrize("one, two", [("DOE^JOHN", "DOE^JANE"), ("DE SOUZA^MARIA", "DE LA CRUZ^MARIA"),
                                      ("山田^太郎", "田中^太郎")])
def test_another_name_is_said_not_another_person(one, two):
    from octviewer.core.person import Patient, hashed_traits, one_set_of_traits

    a, b = Patient("P", name=one, birth_date="19500101"), Patient("P", name=two, birth_date="1950-01-01")
    assert a.other_name(b) and not a.others(b)
    assert not one_set_of_traits([hashed_traits(a), hashed_traits(b)])
    assert one_set_of_traits([hashed_traits(a), hashed_traits(b)], names=False)


def test_another_issuer_or_birth_date_is_another_person_and_a_placeholder_date_is_none():
    from octviewer.core.person import Patient, what_differs

    ann = Patient("P", "", "ALPHA^ANN", "19500101")
    assert ann.others(Patient("P", "HOSP_B", "ZULU^ZED", "19400101"))
    assert ann.others(Patient("P", "", "ALPHA^ANN", "19400101"))
    assert not Patient("P", "hosp_a ", "X").others(Patient("P", "HOSP_A", "X"))
    for unknown in ("19000101", "00000000", "18991230"):
        assert not ann.others(Patient("P", "", "ALPHA^ANN", unknown))
    pair = [Patient("P", "H1", "A^B", "19500101"), Patient("P", "H2", "C^D", "19400101")]
    assert what_differs(p.traits() for p in pair) == "another issuer of the ID and another birth date"
    assert what_differs([ann.traits(), Patient("P", "HOSP_B", "ZULU^ZED", "19400101").traits()]) == \
        "another birth date"


# ---------------------------------------------------------------- A16-1: PACS screen and retrieve
orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures
APOSTROPHE, ONE_STUDY, TWO_NAMES, TWO_NAMES_STUDY = "MRN-1601", "MRN-1602", "MRN-1603", "MRN-1604"


def _store(orthanc, patient_id: str, names: tuple[str, str], one_study: bool) -> str:
    """The demo's OD cube named ``names[0]`` and its OS cube ``names[1]``, both under ``patient_id`` with one
    birth date and no issuer, in two studies or one (own series); the last study UID."""
    import pydicom
    from pydicom.uid import generate_uid

    shared, datasets = generate_uid(), []
    for name, sample in zip(names, ("demo_normal_OD.dcm", "demo_early_glaucoma_OS.dcm")):
        ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / sample)
        orthanc_server._file_with_patient(ds, patient_id, name, shared if one_study else generate_uid(), "20190924",
                                          series_number=1)
        ds.SeriesInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    orthanc.c_store(datasets)
    return shared


@pytest.fixture(scope="module")
def spelled(orthanc):
    """O'BRIEN^SEAN / OBRIEN^SEAN (one name written two ways) and DOE^JOHN / DOE^JANE (a name the fold does not
    join: another person, or a typo), each as two studies of one ID and as one study holding both series."""
    _store(orthanc, APOSTROPHE, ("O'BRIEN^SEAN", "OBRIEN^SEAN"), one_study=False)
    _store(orthanc, TWO_NAMES, ("DOE^JOHN", "DOE^JANE"), one_study=False)
    return {"apostrophe": _store(orthanc, ONE_STUDY, ("O'BRIEN^SEAN", "OBRIEN^SEAN"), one_study=True),
            "two names": _store(orthanc, TWO_NAMES_STUDY, ("DOE^JOHN", "DOE^JANE"), one_study=True)}


def _conf(orthanc, tmp_path) -> list[str]:
    from orthanc_server import ARCHIVE_AE, LOCAL_AE

    from octviewer.pacs.cli import main

    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, "configure", "--archive-ae", ARCHIVE_AE, "--host", "127.0.0.1", "--port",
                 str(orthanc.dicom_port), "--local-ae", LOCAL_AE, "--local-port", str(orthanc.move_port)]) == 0
    return conf


def _predict_stand_in(monkeypatch, handed: list):
    """octviewer-predict replaced by a stand-in writing one row per folder handed to it (the person rule is the
    screen's; the demo cubes are not screened on the CPU here)."""
    import octviewer.pipeline.predict_cli as predict_cli

    @functools.wraps(predict_cli.main)
    def predict(argv=None):
        return 0

    def write(argv):
        handed.append(argv)
        out = argv[argv.index("--out") + 1]
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["file", "probability", "notice"])
            writer.writeheader()
            for folder in argv[:argv.index("--out")]:
                writer.writerow({"file": folder[-8:], "probability": "0.5", "notice": "research use only"})
        return 0

    predict.__wrapped__ = write
    monkeypatch.setattr(predict_cli, "main", predict)


def _kept_names(data_dir) -> list[str]:
    import pydicom

    return sorted(str(pydicom.dcmread(p, stop_before_pixels=True).PatientName) for p in data_dir.glob("pacs/**/*.dcm"))


@pytest.mark.parametrize("patient", [APOSTROPHE, ONE_STUDY])
def test_screen_takes_one_name_written_with_and_without_the_apostrophe_as_one_person(
        orthanc, spelled, data_dir, tmp_path, capsys, monkeypatch, patient):
    """A16-1: screen of O'BRIEN^SEAN / OBRIEN^SEAN (two studies) was refused as "two people"; in one study the OD
    series was dropped as "the header's PatientID is not this patient's" though the ID was the same."""
    from octviewer.pacs.cli import main

    handed = []
    _predict_stand_in(monkeypatch, handed)
    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    out = tmp_path / "s.csv"
    assert main([*conf, "screen", "--patient-id", patient, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "different people" not in err and "another patient" not in err and "PatientID is not" not in err, err
    assert "different ways" not in err  # folded: one name, nothing to say
    assert _kept_names(data_dir) == ["O'BRIEN^SEAN", "OBRIEN^SEAN"]
    assert "different ways" not in out.read_text()


@pytest.mark.parametrize("patient", [TWO_NAMES, TWO_NAMES_STUDY])
def test_screen_keeps_a_name_the_fold_cannot_join_and_says_it_on_the_terminal_and_in_the_csv(
        orthanc, spelled, data_dir, tmp_path, capsys, monkeypatch, patient):
    """A16-1's second half: where only the name differs (ID and birth date agree, no issuer), the screen keeps the
    studies and instances and says "another person, or one name written two ways", as the study index does."""
    from octviewer.pacs.cli import main

    handed = []
    _predict_stand_in(monkeypatch, handed)
    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    out = tmp_path / "s.csv"
    assert main([*conf, "screen", "--patient-id", patient, "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "write the patient's name in different ways" in err and "one name written two ways, or another " \
        "person under this ID; kept" in err, err
    assert "refused" not in err and "DOE" not in err and "JANE" not in err
    assert _kept_names(data_dir) == ["DOE^JANE", "DOE^JOHN"]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and all(r["notice"].startswith("research use only; the screened patient's studies or instances "
                                               "write the patient's name in different ways") for r in rows), rows


@pytest.mark.parametrize("study, names, said", [("apostrophe", ["O'BRIEN^SEAN", "OBRIEN^SEAN"], False),
                                               ("two names", ["DOE^JANE", "DOE^JOHN"], True)])
def test_retrieve_keeps_both_series_of_one_study_whose_names_differ(orthanc, spelled, data_dir, tmp_path, capsys,
                                                                    study, names, said):
    from octviewer.pacs.cli import main

    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    assert main([*conf, "retrieve", spelled[study]]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "2 file(s) retrieved" in out and "refused" not in out, out
    assert ("1 instance(s) write the patient's name in different ways" in out) == said, out
    assert _kept_names(data_dir) == names
