"""Attack run 16: which patient a manifest row's scan belongs to (A16-11 the split, A16-4 the 'eye' rule,
A16-10 an old ID before a record merge, A16-2/A16-5 a field's person), through `octviewer-train validate`,
`python -m trainer.label_scarce prepare` and File > Open study manifest."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_attack12_trainer import _rows, _write  # noqa: E402


@pytest.fixture(scope="module")
def study_demo(tmp_path_factory) -> Path:
    """Two SYNTHETIC patients, two yearly visits, both eyes, with their perimeter DICOMs (the demo study)."""
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", patients=2, visits=2, preset="tiny", seed=5)


def _resave(path, **fields) -> None:
    """The DICOM at ``path`` with ``fields`` set in its header (the pixels unchanged)."""
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in fields.items():
        setattr(ds, key, value)
    ds.save_as(path)


def _copy(tiny_cohort, folder):
    """A copy of the tiny cohort (its files may be re-saved); (manifest, rows with absolute paths)."""
    root = shutil.copytree(tiny_cohort.parent, folder)
    rows = _rows(root / tiny_cohort.name)
    for r in rows:
        r["path"] = str(root / r["path"])
    return root / tiny_cohort.name, rows


# ---------------------------------------------------------------- A16-11: the split joins by the header's ID


def _per_eye(tiny_cohort, folder, od_name: str, os_name: str) -> tuple:
    """The cohort keyed per eye ("<ID>-OD" / "<ID>-OS", the export A11-4 is about) for every patient with both eyes,
    their OD scans' headers naming ``od_name``, the OS scans' ``os_name`` (one birth date): (manifest, rows, the
    per-eye patients' base IDs)."""
    manifest, rows = _copy(tiny_cohort, folder)
    both = {r["patient_id"] for r in rows if {o["eye"] for o in rows if o["patient_id"] == r["patient_id"]}
            == {"OD", "OS"}}
    for r in rows:
        if r["patient_id"] in both:
            _resave(r["path"], PatientName=od_name if r["eye"] == "OD" else os_name, PatientBirthDate="19500101")
            r["patient_id"] = f"{r['patient_id']}-{r['eye']}"
        r["split"] = ""
    return _write(rows, manifest.with_name("per_eye.csv")), rows, both


def test_a16_11_prepare_keeps_one_persons_per_eye_ids_in_one_split_whatever_the_names_spelling(tiny_cohort, tmp_path,
                                                                                               capsys):
    """One person keyed per eye, the two devices spelling the name two ways (a typo here, as a name written two ways
    by two devices): the split told them apart by name (7562edd) and put one person's eyes in train and test (A11-4's
    leak back). The split joins everyone under one header PatientID; the names only change the warning's words."""
    from trainer.label_scarce import main

    manifest, _, both = _per_eye(tiny_cohort, tmp_path / "c", "DOE^JOHN", "DOE^JHON")
    out = manifest.with_name("split.csv")
    assert main(["prepare", "--cohort", str(manifest), "--out", str(out), "--test-patients", "2",
                 "--val-patients", "2"]) == 0
    splits = {}
    for r in _rows(out):
        splits.setdefault(r["patient_id"].removesuffix("-OD").removesuffix("-OS"), set()).add(r["split"])
    parted = [p for p in both if len(splits[p]) > 1]
    assert len(both) >= 3 and not parted, splits
    err = capsys.readouterr().err
    assert "whose headers tell them apart" in err and "the split keeps each such ID's rows in one split" in err, err


def test_a16_11_validate_refuses_a_given_split_that_parts_one_header_ids_per_eye_ids(tiny_cohort, tmp_path, capsys):
    """The same per-eye cohort with a split column putting each person's right eye in train, the left in test:
    validate took it (the names told the eyes apart) and fit trained on the eyes it tested on."""
    from trainer.cli import main

    manifest, rows, _ = _per_eye(tiny_cohort, tmp_path / "c", "O'BRIEN^SEAN", "OBRIEN^SEAN")
    for r in rows:
        r["split"] = "test" if r["patient_id"].endswith("-OS") else "train"
        if r["patient_id"].endswith("-OS"):  # and a birth date apart: still one header ID, one split (the safe side)
            _resave(r["path"], PatientBirthDate="19510101")
    assert main(["validate", "--data", str(_write(rows, manifest))]) == 2
    err = capsys.readouterr().err
    assert "one patient's rows are in several splits" in err, err


# ---------------------------------------------------------------- A16-4 / A16-5: the 'eye' rule, the scan's date


def _mispointed(rows, visit: str) -> int:
    """A row turned into a new patient's (label flipped, visit ``visit``) pointing at a listed patient's scan whose
    eye that patient is listed with at the same visit under their own ID (A14-17's file): its index."""
    k = next(k for k, r in enumerate(rows) if any(o is not r and (o["patient_id"], o["eye"], o["visit"])
                                                  == (r["patient_id"], r["eye"], r["visit"]) for o in rows))
    rows[k].update(patient_id="NEWP-01", visit=visit, label="normal" if rows[k]["label"] == "glaucoma" else "glaucoma")
    return k


def test_a16_4_validate_and_prepare_refuse_a_mispointed_row_whatever_its_visit_cell_says(tiny_cohort, tmp_path,
                                                                                         capsys):
    """A14-17's mis-pointed row passed again as soon as its visit was not the other patient's visit label (the usual
    case: it carries its own patient's date, or a 'V1'): trained on with the opposite label as 'one per eye?'. The
    scan's own header date is compared now."""
    from trainer.cli import main
    from trainer.label_scarce import main as label_scarce

    for n, visit in enumerate(("2018-10-15", "V1", "")):
        rows = _rows(tiny_cohort)
        for r in rows:
            r["path"] = str(tiny_cohort.parent / r["path"])
        k = _mispointed(rows, visit)
        manifest = _write(rows, tmp_path / f"mispointed{n}.csv")
        words = (f"row {k + 2}: its scan's own header names the patient of row", "listed with this eye at this visit "
                 "under their own ID (another patient's scan?); it is not used")
        assert main(["validate", "--data", str(manifest)]) == 2, visit
        err = capsys.readouterr().err
        assert all(w in err for w in words), err
        assert label_scarce(["prepare", "--cohort", str(manifest), "--out", str(tmp_path / f"split{n}.csv"),
                             "--test-patients", "2", "--val-patients", "2"]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), err
        assert not (tmp_path / f"split{n}.csv").exists()


def test_a16_4_open_study_manifest_leaves_out_a_mispointed_row_dated_its_own_patients_way(qtbot, window, monkeypatch,
                                                                                          tiny_cohort, tmp_path):
    """The same row in the window: File > Open study manifest used the other patient's scan under the new patient
    ("the row's is used"), its header a year off the row's visit."""
    from PySide6.QtWidgets import QFileDialog

    rows = _rows(tiny_cohort)
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    owner = [dict(r) for r in rows]
    k = _mispointed(rows, "2018-10-15")
    listed = [r for r, o in zip(rows, owner) if o["patient_id"] == owner[k]["patient_id"]]  # the owner's and row k
    manifest = _write([{c: r[c] for c in ("path", "patient_id", "eye", "visit", "label")} for r in listed],
                      tmp_path / "mispointed.csv")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert rows[k]["path"] not in {s.path for s in panel.index.scans}, panel.index.scans
    assert {r["path"] for r in listed if r is not rows[k]} <= {s.path for s in panel.index.scans}
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert 'listed under the patient "NEWP-01"' in text and "a patient of the study listed with this eye at this " \
        "visit under their own ID: another patient's scan is not used" in text, text


def test_a16_5_empty_visit_cells_of_a_partly_rekeyed_export_are_judged_by_the_header_dates(tiny_cohort, tmp_path,
                                                                                           capsys):
    """A15-7's shape (one person's earlier visit under a study code, the later one under the MRN) with the visit cells
    left empty (the reader takes them): "" equalled "", and validate refused both rows 'at this visit', while Open study
    manifest (which dates an empty visit by the header) used them."""
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    person = next(p for p in dict.fromkeys(r["patient_id"] for r in rows)
                  if len({r["visit"] for r in rows if r["patient_id"] == p}) > 1)
    first = min(r["visit"] for r in rows if r["patient_id"] == person)
    for r in rows:
        if r["patient_id"] == person and r["visit"] == first:
            r["patient_id"] = "STUDY-7"
        r["visit"] = ""
    assert main(["validate", "--data", str(_write(rows, tmp_path / "novisit.csv"))]) == 0
    err = capsys.readouterr().err
    assert "it is not used" not in err and "another patient's scan" not in err, err


# ---------------------------------------------------------------- A16-10: an old ID of the same person


def _old_id(folder_rows, name_of_old: str = "DOE^JOHN") -> tuple[list[dict], dict]:
    """The first patient with three or more scans: every scan's header names DOE^JOHN born 1950-01-01, the first
    one's header (``name_of_old``) carries the PatientID OLD-4711 (the MRN before a record merge); (rows, that row)."""
    person = next(p for p in dict.fromkeys(r["patient_id"] for r in folder_rows)
                  if sum(r["patient_id"] == p for r in folder_rows) >= 3)
    theirs = [r for r in folder_rows if r["patient_id"] == person]
    for r in theirs:
        _resave(r["path"], PatientName="DOE^JOHN", PatientBirthDate="19500101")
    _resave(theirs[0]["path"], PatientID="OLD-4711", PatientName=name_of_old)
    return folder_rows, theirs[0]


def test_a16_10_validate_keeps_a_persons_scan_under_their_old_id_and_says_so(tiny_cohort, tmp_path, capsys):
    """A person's older scan whose header carries the MRN they had before a record merge (same name and birth date)
    was "another patient's scan" and the trainer refused the manifest. Kept, with a warning; another name under the
    old ID (a true other patient) is still refused."""
    from trainer.cli import main

    manifest, rows = _copy(tiny_cohort, tmp_path / "c")
    rows, old = _old_id(rows)
    assert main(["validate", "--data", str(_write(rows, manifest.with_name("merged.csv")))]) == 0
    err = capsys.readouterr().err
    assert "1 rows: their scan's header gives another PatientID than the other scans of their patient, with the " \
           "same name and birth date (an ID changed or records merged?)" in err, err
    assert "it is not used" not in err
    _resave(old["path"], PatientName="ROE^JANE")
    assert main(["validate", "--data", str(manifest.with_name("merged.csv"))]) == 2
    assert f"row {rows.index(old) + 2}: its scan's own header names another patient than the other scans of its " \
           "patient ID do" in capsys.readouterr().err


def test_a16_10_open_study_manifest_keeps_the_baseline_under_an_old_id_with_a_patient_check(qtbot, window,
                                                                                            monkeypatch, demo,
                                                                                            tmp_path):
    """The same in the window: the baseline visit vanished from the patient's visits and trend as "another patient's
    scan". Used now, with a 'patient' check naming both IDs and why."""
    from PySide6.QtWidgets import QFileDialog
    from test_study_headers import _scans  # noqa: E402

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    scans = sorted(_scans(root, "OD") + _scans(root, "OS"))
    patient = scans[0].parent.name
    rows = [{"path": str(p), "patient_id": patient, "eye": p.name[:2], "visit": ""} for p in scans]
    rows, old = _old_id(rows)
    manifest = _write(rows, tmp_path / "merged.csv")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert {s.path for s in panel.index.scans} == {str(p) for p in scans}, panel.index.problems
    text = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "another patient's scan" not in text, text
    assert f'whose other scans\' headers say "{patient}", while its own says "OLD-4711": the headers give the same ' \
           "name and birth date (an ID changed or records merged?)" in text, text


# ---------------------------------------------------------------- A16-2 / A16-5: a measured field's person, two tiers


def _study_with_a_field(demo, folder, scan_name: str, field_name: str, field_birth: str = "19500101",
                        field_issuer: str = "") -> tuple[Path, Path, str]:
    """A copy of the two-patient demo study: the first patient's scans name ``scan_name`` born 1950-01-01, their
    first perimeter DICOM ``field_name`` born ``field_birth`` (``field_issuer``); (root, that field, patient)."""
    import pydicom

    root = Path(shutil.copytree(demo, folder))
    field = sorted(root.rglob("perimetry/*.dcm"))[0]
    patient = pydicom.dcmread(field).PatientID
    for scan in (root / "scans" / patient).glob("*.dcm"):
        _resave(scan, PatientName=scan_name, PatientBirthDate="19500101")
    _resave(field, PatientName=field_name, PatientBirthDate=field_birth, **(
        {"IssuerOfPatientID": field_issuer} if field_issuer else {}))
    return root, field, patient


def _shown(panel) -> str:
    return " ".join(panel.problems.text().replace("\u200b", "").split())


@pytest.mark.gui
def test_a16_2_a_patients_own_field_written_another_way_is_shown_as_theirs(qtbot, window, monkeypatch, tmp_path,
                                                                           study_demo):
    """The perimeter writes O'BRIEN^SEAN, the OCT OBRIEN^SEAN: the patient's only measured field was left out as
    "another person's". One name after the fold: used, nothing said. A name that still differs (a typo) with the
    birth date agreeing: used, with a 'people' check on the patient's scans, as two scans' names are."""
    from conftest import open_study_folder

    root, field, patient = _study_with_a_field(study_demo, tmp_path / "apos", "OBRIEN^SEAN", "O'BRIEN^SEAN")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(field) in {m.source for m in panel.index.vf}, _shown(panel)
    assert "another person" not in _shown(panel) and not [w for w in panel.index.warnings if w.kind == "people"]
    root, field, patient = _study_with_a_field(study_demo, tmp_path / "typo", "DOE^JOHN", "DOE^JHON")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(field) in {m.source for m in panel.index.vf}, _shown(panel)
    people = [w for w in panel.index.warnings if w.kind == "field"]  # its own kind since A16-16 (H105)
    assert people and {Path(w.path).parent.name for w in people} == {patient}, panel.index.warnings
    assert f'the measured VF of the patient "{patient}"' in _shown(panel) and "names the patient otherwise in its " \
        "header than the scans do (another person, or one name written two ways)" in _shown(panel), _shown(panel)
    assert "JHON" not in _shown(panel)
    root, field, _ = _study_with_a_field(study_demo, tmp_path / "born", "DOE^JOHN", "DOE^JOHN", "19400101")
    panel = open_study_folder(qtbot, window, monkeypatch, root)  # another birth date: another person, refused
    assert str(field) not in {m.source for m in panel.index.vf}
    assert "its header names another person (another birth date) than this patient's scans; it is not used" in \
        _shown(panel), _shown(panel)


@pytest.mark.gui
def test_a16_5_another_persons_humphrey_xml_under_the_patients_id_is_not_shown_as_theirs(qtbot, window, monkeypatch,
                                                                                         tmp_path, study_demo):
    """Another person's HFA XML export (ZULU^ZED, born 1940) under the patient's ID was shown as the patient's
    measured VF (the XML record carried no person); the same field as an OPV DICOM was refused. The patient's own
    export, the name written another way (MÜLLER / MUELLER), is used."""
    import pydicom
    from conftest import open_study_folder
    from test_hfa_xml import hfa_xml

    for case, (last, given, born) in {"zulu": ("ZULU", "ZED", "1940-01-01"),
                                      "own": ("MÜLLER", "JÜRGEN", "1950-01-01")}.items():
        root, field, patient = _study_with_a_field(study_demo, tmp_path / case, "MUELLER^JUERGEN", "MUELLER^JUERGEN")
        field.unlink()  # the patient's field is the XML export
        od = sorted((root / "scans" / patient).glob("OD_*.dcm"))[0]
        date = pydicom.dcmread(od).StudyDate
        xml = hfa_xml(root, name="field.xml", patient=patient, site="1", visit=f"{date[:4]}-{date[4:6]}-{date[6:]}",
                      series_time=f"{date[:4]}-{date[4:6]}-{date[6:]}T10:57:20")
        xml.write_text(xml.read_text(encoding="utf-8").replace("<LAST_NAME>SYNTHETIC", f"<LAST_NAME>{last}")
                       .replace("<GIVEN_NAME>TEST", f"<GIVEN_NAME>{given}")
                       .replace("<BIRTH_DATE>1950-01-01", f"<BIRTH_DATE>{born}"), encoding="utf-8")
        panel = open_study_folder(qtbot, window, monkeypatch, root)
        used = str(xml) in {m.source for m in panel.index.vf}
        if case == "zulu":
            assert not used and f"measured VF of {patient} OD: its header names another person (another birth " \
                "date) than this patient's scans; it is not used" in _shown(panel), _shown(panel)
            assert "ZULU" not in _shown(panel)
        else:
            assert used and "another person" not in _shown(panel), _shown(panel)
