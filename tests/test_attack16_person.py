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


# MÜLLER / MULLER (marks dropped) is said since attack run 19 (A19-1: UE is not folded to U, XUE / XU are two
# names); tests/test_person_table.py holds the pair
@pytest.mark.parametrize("one, two", [("O'BRIEN^SEAN", "OBRIEN^SEAN"), ("MÜLLER^JÜRGEN", "MUELLER^JUERGEN"),
                                      ("DE LA CRUZ^MARIA", "DELACRUZ^MARIA"),
                                      ("DOE^JOHN", "JOHN DOE"), ("DOE^JOHN", "DOE, JOHN"), ("Doe^John^A", "DOE^JOHN"),
                                      ("YAMADA^TARO=山田^太郎", "山田^太郎"), ("SMITH-JONES^ANN", "SMITH JONES^ANN"),
                                      ("STRAUß^ANNA", "STRAUSS^ANNA"), ("DOE", "DOE^JOHN")])
def test_one_name_written_two_ways_folds_to_equal_digests(one, two):
    """The study's header cache compares the traits as digests, by equality: the fold must give equal strings."""
    from octviewer.core.person import Patient, hashed_traits, one_set_of_traits

    a, b = Patient("P", name=one), Patient("P", name=two)
    assert one_set_of_traits([hashed_traits(a), hashed_traits(b)]) and not a.other_name(b) and not a.others(b)


@pytest.mark.parametrize("one, two, birth", [("DOE^JOHN", "DOE^JANE", "19500101"),
                                             ("DE SOUZA^MARIA", "DE LA CRUZ^MARIA", ""),
                                             ("山田^太郎", "田中^太郎", "")])
def test_another_name_is_said_not_another_person(one, two, birth):
    """(A family name that differs under one full birth date is one person's since attack run 19, A19-3: a marriage;
    the family-name pairs are without birth dates.)"""
    from octviewer.core.person import Patient, hashed_traits, one_set_of_traits

    a, b = Patient("P", name=one, birth_date=birth), Patient("P", name=two, birth_date=birth)
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


# ---------------------------------------------------------------- A16-2, A16-5: the study's measured fields
def _study(demo, tmp_path, scans: tuple[str, str, str], field: tuple[str, str, str] | None):
    """A copy of the demo whose scans' headers name ``scans`` (name, issuer, birth date) and whose first OD field
    names ``field``; None: the OPV fields removed (an XML export is added by the test). The copy, the field."""
    import shutil

    import pydicom

    root = shutil.copytree(demo, tmp_path / "study")
    for scan in (root / "scans").rglob("*.dcm"):
        _rename(scan, *scans)
    fields = sorted((root / "perimetry").rglob("*.dcm"))
    od = next(f for f in fields if pydicom.dcmread(f, stop_before_pixels=True).get("Laterality", "") in ("R", "OD")
              or "OD" in f.name)
    if field is None:
        for f in fields:
            f.unlink()
        return root, None
    _rename(od, *field)
    return root, od


def _rename(path, name: str, issuer: str, birth: str) -> None:
    import pydicom

    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: MÜLLER, 山田
    ds.PatientName, ds.PatientBirthDate = name, birth
    if issuer:
        ds.IssuerOfPatientID = issuer
    elif "IssuerOfPatientID" in ds:
        del ds.IssuerOfPatientID
    ds.save_as(path)


def _shown_with_a_scan(index, source: str) -> bool:
    """Whether the Results panel's measured VF of some scan (``measured_vf_for_scan``) is the field ``source``."""
    return any((m := index.measured_vf_for_scan(s.path)) is not None and m.source == source for s in index.scans)


def _problems(panel) -> str:
    return " ".join(panel.problems.text().replace("\u200b", "").split())


@pytest.mark.gui
@pytest.mark.parametrize("scans, field", [("O'BRIEN^SEAN", "OBRIEN^SEAN"), ("MÜLLER^JÜRGEN", "MUELLER^JUERGEN"),
                                          ("DOE^JOHN", "JOHN DOE"), ("YAMADA^TARO=山田^太郎", "山田^太郎")])
def test_the_patients_own_field_whose_name_another_device_spells_otherwise_is_shown(
        qtbot, window, monkeypatch, fields_demo, tmp_path, scans, field):
    """A16-2: the perimeter's spelling of the name (no issuer, no birth date) left the patient's only measured VF out
    as "another person's"; the same spellings between two scans were only a check. Folded, they are one name."""
    from conftest import open_study_folder

    root, od = _study(fields_demo, tmp_path, (scans, "", ""), (field, "", ""))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(od) in {m.source for m in panel.index.vf} and _shown_with_a_scan(panel.index, str(od))
    assert "another person" not in _problems(panel)
    assert not [w for w in panel.index.warnings if w.kind == "people"], panel.index.warnings


@pytest.mark.gui
def test_a_field_whose_name_alone_differs_is_kept_with_the_people_check(
        qtbot, window, monkeypatch, fields_demo, tmp_path):
    """A16-2's other half: a name the fold does not join (birth date and ID agree, no issuer) is "another person, or
    one name written two ways": the field is kept and the check is in the Study panel's list, as for scans."""
    from conftest import open_study_folder

    from octviewer.gui.study.checks import study_check_entries

    root, od = _study(fields_demo, tmp_path, ("DOE^JOHN", "", "19500101"), ("DOE^JANE", "", "1950-01-01"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert _shown_with_a_scan(panel.index, str(od))
    people = [w for w in panel.index.warnings if w.kind == "field"]  # its own kind since A16-16 (H105)
    eye = next(m.eye for m in panel.index.vf if m.source == str(od))
    assert {w.path for w in people} == {s.path for s in panel.index.scans if s.eye == eye}, panel.index.warnings
    entries = " ".join(study_check_entries(panel.index))
    assert f"({od.name}) names the patient otherwise in its header than the scans do (another person, or one name " \
        "written two ways)" in entries and "JANE" not in entries, entries


@pytest.mark.gui
def test_a_field_of_another_birth_date_is_refused_naming_the_birth_date(
        qtbot, window, monkeypatch, fields_demo, tmp_path):
    """A15-15's true positive, still refused; the words name what differed (the issuer is the field's only)."""
    from conftest import open_study_folder

    root, od = _study(fields_demo, tmp_path, ("ALPHA^ANN", "", "19500101"), ("ZULU^ZED", "HOSP_B", "19400101"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(od) not in {m.source for m in panel.index.vf} and not _shown_with_a_scan(panel.index, str(od))
    text = _problems(panel)
    assert "its header names another person (another birth date) than this patient's scans; it is not used" in text
    assert "ZULU" not in text and "1940" not in text, text


def _xml_field(root, last: str, given: str, birth: str):
    """An HFA XML export of the patient's OD at the first OD scan's date, naming LAST_NAME, GIVEN_NAME and
    BIRTH_DATE (tests/test_hfa_xml.py's layout)."""
    import pydicom
    from test_hfa_xml import hfa_xml

    scan = sorted((root / "scans").rglob("OD_*.dcm"))[0]
    ds = pydicom.dcmread(scan, stop_before_pixels=True)
    day = str(ds.get("StudyDate") or ds.get("ContentDate"))
    visit = f"{day[:4]}-{day[4:6]}-{day[6:8]}"
    path = hfa_xml(root / "perimetry", "field.xml", patient=str(ds.PatientID), visit=visit,
                   series_time=f"{visit}T10:57:20")
    text = path.read_text(encoding="utf-8")
    text = text.replace("<LAST_NAME>SYNTHETIC</LAST_NAME>", f"<LAST_NAME>{last}</LAST_NAME>")
    text = text.replace("<GIVEN_NAME>TEST</GIVEN_NAME>", f"<GIVEN_NAME>{given}</GIVEN_NAME>")
    path.write_text(text.replace("<BIRTH_DATE>1950-01-01</BIRTH_DATE>", f"<BIRTH_DATE>{birth}</BIRTH_DATE>"),
                    encoding="utf-8")
    return path


@pytest.mark.gui
def test_another_persons_hfa_xml_export_under_the_id_is_refused_as_an_opv_field_is(
        qtbot, window, monkeypatch, fields_demo, tmp_path):
    """A16-5: ZULU^ZED's Humphrey XML export (born 1940) under ALPHA^ANN's ID (born 1950) was shown as her measured
    VF; the same field as an OPV DICOM was refused. The XML record carries the person traits now."""
    from conftest import open_study_folder

    root, _ = _study(fields_demo, tmp_path, ("ALPHA^ANN", "", "19500101"), None)
    field = _xml_field(root, "ZULU", "ZED", "1940-01-01")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(field) not in {m.source for m in panel.index.vf} and not _shown_with_a_scan(panel.index, str(field))
    text = _problems(panel)
    assert "its header names another person (another birth date) than this patient's scans; it is not used" in text
    assert "ZULU" not in text, text


@pytest.mark.gui
def test_the_patients_own_hfa_xml_export_spelling_the_name_otherwise_is_shown(qtbot, window, monkeypatch, fields_demo,
                                                                              tmp_path):
    from conftest import open_study_folder

    root, _ = _study(fields_demo, tmp_path, ("O'BRIEN^SEAN", "", "19500101"), None)
    field = _xml_field(root, "OBRIEN", "SEAN", "1950-01-01")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert _shown_with_a_scan(panel.index, str(field)), panel.index.vf
    assert "another person" not in _problems(panel)
    assert not [w for w in panel.index.warnings if w.kind == "people"], panel.index.warnings


# ---------------------------------------------------------------- the trainer: one rule, a warning
@pytest.mark.parametrize("names, warned", [
    ([("O'BRIEN^SEAN", "", ""), ("OBRIEN^SEAN", "", "")], False),
    ([("MÜLLER^JÜRGEN", "", "19580412"), ("MUELLER^JUERGEN", "", "1958-04-12")], False),
    ([("DE LA CRUZ^MARIA", "", ""), ("DELACRUZ^MARIA", "", "")], False),
    ([("DOE^JOHN", "", "19580412"), ("DOE^JANE", "", "19580412")], True)])
def test_validate_warns_of_a_name_only_where_the_fold_cannot_join_it(tiny_cohort, tmp_path, capsys, names, warned):
    """The trainer's "different people" warning follows the one rule: one name written two ways is one person (the
    same spellings made the warning before), a name the fold cannot join is warned of (the rows stay)."""
    from test_attack15_lows import _cohort_with_names

    from trainer.cli import main

    manifest, _ = _cohort_with_names(tiny_cohort, tmp_path / "c", names)
    assert main(["validate", "--data", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert ("name different people in their DICOM headers" in err) == warned, err
