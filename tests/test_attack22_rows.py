"""Attack run 22 (H119): A22-15, a date-shifted copy of a whole field table kept beside the original counted every
test twice (A21-2's fix spared every table row); A22-13, a twin's fields beside the other twin's eye carried no
'field' check where the twin had one scan under the shared ID; A22-10, the trainer's split parted one person's old
and new MRN where two devices wrote the name or birth date differently. After 2b06961 (H124): A22-15's copy shifted
by each patient's own offset, or backward; A22-22, a year-only birth date chaining same-year namesakes into a group
too big to join the person's old and new MRN. After cd11cbe (H126, attack run 23): A23-5/A23-6, a re-dated copy
decided per patient and by the scans' dates where either file lacks a row; A23-7, one person's spellings with a
year-only birth date parted by the split. After c660c33: A23-17, a year-only hangul header chaining same-year Latin
namesakes past the cap, which dropped the person's own link."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_attack16_copies import progressing  # noqa: E402,F401

_HEAD = "patient_id,eye,date,vfi,md,psd\n"
_TABLE = [("OD", "2018-09-20", 99, -0.4, 1.5), ("OS", "2018-09-20", 98, -0.2, 1.4),
          ("OD", "2019-09-26", 97, -1.1, 1.9), ("OS", "2019-09-26", 98, -0.5, 1.6),
          ("OD", "2020-10-07", 95, -2.0, 2.4), ("OS", "2020-10-07", 97, -0.8, 1.7)]


def _table(rows, shift: int = 0) -> str:
    return _HEAD + "".join(f"DEMO00-000,{eye},{dt.date.fromisoformat(day) + dt.timedelta(days=shift)},{vfi},{md},"
                           f"{psd}\n" for eye, day, vfi, md, psd in rows)


@pytest.mark.gui
def test_a22_15_a_date_shifted_copy_of_a_field_table_counts_each_test_once(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """The clinic's table and exports/vf_export.csv, the same rows each a year later (a date-shifting export kept
    beside it): 21b66cf spared every table row, and the Trend fitted six OD tests out of three. Now the copy's rows
    are said and counted once, at the table's dates; a stable eye's equal rows in yearly exports stay two tests
    (tests/test_attack20_rows.py)."""
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").write_text(_table(_TABLE))
    (root / "exports").mkdir()
    (root / "exports" / "vf_export.csv").write_text(_table(_TABLE, shift=365))
    panel = _open_folder(qtbot, window, monkeypatch, root)
    od = sorted((m.date.isoformat(), Path(m.source).name) for m in panel.index.vf if m.eye == "OD")
    assert od == [("2018-09-20", "visual_fields.csv"), ("2019-09-26", "visual_fields.csv"),
                  ("2020-10-07", "visual_fields.csv")], od
    assert len(panel.index.vf) == 6, panel.index.vf
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())  # the Study panel's list
    assert problems.count("(a re-dated copy?)") == 6, problems
    assert ("exports/vf_export.csv: measured VF of DEMO00-000 OD 2019-09-20: the same test (VFI, MD and PSD) as "
            "visual_fields.csv of 2018-09-20 (a re-dated copy?)") in problems, problems


_OTHER = [("OD", "2017-05-02", 91, -4.1, 5.2), ("OS", "2017-05-02", 93, -3.0, 4.4),
          ("OD", "2018-05-08", 89, -4.9, 5.9), ("OS", "2018-05-08", 92, -3.3, 4.6)]


def _rows(patient: str, rows, shift: int = 0) -> str:
    return "".join(f"{patient},{eye},{dt.date.fromisoformat(day) + dt.timedelta(days=shift)},{vfi},{md},{psd}\n"
                   for eye, day, vfi, md, psd in rows)


@pytest.mark.gui
def test_a22_15_a_copy_shifted_by_each_patients_own_offset_counts_each_test_once(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """De-identification tools shift each patient's dates by their own offset: exports/vf_export.csv holds the
    table's rows of DEMO00-000 a year later and another patient's 200 days later. 2b06961 asked one offset over the
    whole file, so every test counted twice (six OD tests out of three in the Trend). Now the offset is tested per
    patient (both eyes at the patient's one offset): the export's rows are said and counted once."""
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").write_text(_table(_TABLE) + _rows("DEMO00-001", _OTHER))
    (root / "exports").mkdir()
    (root / "exports" / "vf_export.csv").write_text(_table(_TABLE, shift=365) + _rows("DEMO00-001", _OTHER, 200))
    panel = _open_folder(qtbot, window, monkeypatch, root)
    mine = sorted((m.eye, m.date.isoformat(), Path(m.source).name) for m in panel.index.vf
                  if m.patient_id == "DEMO00-000")
    assert mine == sorted((eye, day, "visual_fields.csv") for eye, day, *_ in _TABLE), mine
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())  # the Study panel's list
    assert len(panel.index.vf) == len(_TABLE) + len(_OTHER), panel.index.vf
    assert problems.count("(a re-dated copy?)") == len(_TABLE) + len(_OTHER), problems
    assert ("exports/vf_export.csv: measured VF of DEMO00-000 OD 2019-09-20: the same test (VFI, MD and PSD) as "
            "visual_fields.csv of 2018-09-20 (a re-dated copy?)") in problems, problems


@pytest.mark.gui
def test_a22_15_a_copy_shifted_backward_counts_at_the_originals_dates(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """A copy of the table shifted a year backward, written after it: 2b06961 took the later-dated file for the copy
    whichever it was, so the tests counted at the copy's dates, a year before the scans that showed them. Now the
    original is the file whose dates lie nearer the scans' (else the one written first): the table's dates count."""
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").write_text(_table(_TABLE))
    (root / "exports").mkdir()
    (root / "exports" / "vf_export.csv").write_text(_table(_TABLE, shift=-365))
    panel = _open_folder(qtbot, window, monkeypatch, root)
    od = sorted((m.date.isoformat(), Path(m.source).name) for m in panel.index.vf if m.eye == "OD")
    assert od == [("2018-09-20", "visual_fields.csv"), ("2019-09-26", "visual_fields.csv"),
                  ("2020-10-07", "visual_fields.csv")], od
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert ("exports/vf_export.csv: measured VF of DEMO00-000 OD 2017-09-20: the same test (VFI, MD and PSD) as "
            "visual_fields.csv of 2018-09-20 (a re-dated copy?)") in problems, problems


@pytest.mark.gui
def test_a22_13_a_twins_fields_beside_her_sisters_scans_carry_the_field_check(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """One ID and birth date: GARCIA^MARIA has every scan but the last visit's OS, which is her twin GARCIA^ANA's;
    every perimetry field is ANA's. ANA's one scan matched her fields, so nothing said that the OD Trend's measured
    VF is not MARIA's (only the scans' 'people' check). Now each field is compared with the scans of its eye: a
    'field' check on MARIA's scans of both eyes, none on ANA's own scan, and the Trend says it."""
    from test_attack16_person import _rename
    from test_attack16_trend import _trend

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    scans = sorted((root / "scans").rglob("*.dcm"))
    anas = sorted(s for s in scans if s.name.startswith("OS"))[-1]
    for scan in scans:
        _rename(scan, "GARCIA^ANA" if scan == anas else "GARCIA^MARIA", "", "19800101")
    fields = sorted((root / "perimetry").rglob("*.dcm"))
    assert {f.name.split("_")[1] for f in fields} == {"OD", "OS"}, fields
    for f in fields:
        _rename(f, "GARCIA^ANA", "", "19800101")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert len(panel.index.vf) == len(fields)  # kept: one birth date, a name "said", not another person's
    flagged = {Path(c.path).name for c in panel.index.warnings if c.kind == "field"}
    assert flagged == {s.name for s in scans if s != anas}, flagged
    view = _trend(qtbot, w, panel, "OD")
    note = view.history.check_note("field")
    assert note in view.notes and "names the patient otherwise in its header than the scans do" in note, view.notes


def _variant_rows(tiny_cohort, folder, variants) -> list[dict]:
    """The tiny cohort, each multi-visit patient's first visit re-saved and listed under the MRN before a record
    merge (OLD-nn) with the name and birth date an older device wrote, the later visits under the new MRN with the
    new device's (``variants``: (old name, old birth, new name, new birth)); split column: OLD-nn train, the new MRN
    test. The rows."""
    from test_attack16_rows import _copy, _resave

    _, rows = _copy(tiny_cohort, folder)
    first: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: r["visit"]):
        first.setdefault(r["patient_id"], r["visit"])
    patients = [p for p in sorted(first) if len({r["visit"] for r in rows if r["patient_id"] == p}) > 1]
    assert len(patients) >= len(variants), patients
    for r in rows:
        r["split"] = "val"
    for n, (patient, (old_name, old_birth, new_name, new_birth)) in enumerate(zip(patients, variants)):
        for r in (r for r in rows if r["patient_id"] == patient):
            if r["visit"] == first[patient]:
                r["patient_id"], r["split"] = f"OLD-{n:02d}", "train"
                _resave(r["path"], PatientID=r["patient_id"], PatientName=old_name, PatientBirthDate=old_birth,
                        SpecificCharacterSet="ISO_IR 192")
            else:
                r["split"] = "test"
                _resave(r["path"], PatientName=new_name, PatientBirthDate=new_birth, SpecificCharacterSet="ISO_IR 192")
    return rows


def test_a22_10_validate_keeps_one_persons_old_and_new_mrn_in_one_split_whatever_the_devices_write(
        tiny_cohort, tmp_path, capsys):
    """One person under an old and a new MRN whose devices write the name in Cyrillic and Latin, as components and
    free text, in Hangul and Latin, or the birth date to the month: the split joined the two MRNs only where the
    names agreed (validate rc 0 with each person's baseline in train and later visits in test). Now each is one
    person for the split: every parted person is refused. Two people with whole other names on one birth date stay
    two."""
    from test_attack12_trainer import _write

    from trainer.cli import main

    variants = [("ПЕТРОВА^АННА", "19410315", "PETROVA^ANNA", "19410315"),
                ("DUPONT^JEAN PIERRE", "19420315", "JEAN-PIERRE DUPONT", "19420315"),
                ("DOE^JOHN^ALBERT", "19430315", "JOHN ALBERT DOE", "19430315"),
                ("WANG^XIAOMING", "19450315", "WANG^XIAOMING", "194503"),
                ("KIM^MINSU", "19460315", "김^민수", "19460315")]
    _each_person_refused(tiny_cohort, tmp_path, capsys, variants)

    # whole other names on one birth date under two MRNs: two people, not joined (a given split is theirs)
    others = _variant_rows(tiny_cohort, tmp_path / "d", [("SMITH^ANN", "19440315", "JONES^BOB", "19440315")])
    assert main(["validate", "--data", str(_write(others, tmp_path / "others.csv"))]) != 2
    assert "one patient's rows are in several splits" not in capsys.readouterr().err


def _numbered(rows: list[dict]) -> list[dict]:
    """The rows with the row number validate names (the header is row 1)."""
    return [{**r, "row": n} for n, r in enumerate(rows, start=2)]


def _kims(tiny_cohort, folder, person: tuple, others: list[tuple]) -> list[dict]:
    """``_variant_rows`` with one person KIM^MINSU under an old and a new MRN (``person``: old name, old birth, new
    name, new birth) and other cohort patients under their own IDs re-saved with ``others`` (name, birth date)."""
    from test_attack16_rows import _resave

    rows = _variant_rows(tiny_cohort, folder, [person])
    moved = {r["patient_id"] for r in rows if r["split"] == "test"}
    rest = sorted({r["patient_id"] for r in rows} - moved - {"OLD-00"})
    assert len(rest) >= len(others), rest
    for patient, (name, birth) in zip(rest, others):
        for r in (r for r in rows if r["patient_id"] == patient):
            _resave(r["path"], PatientName=name, PatientBirthDate=birth, SpecificCharacterSet="ISO_IR 192")
    return rows


def test_a22_22_validate_keeps_a_persons_old_and_new_mrn_together_beside_same_year_namesakes(
        tiny_cohort, tmp_path, capsys):
    """KIM^MINSU under an old MRN (born 19450315) and a new one whose headers give the year only (1945), beside
    three other cohort patients named KIM^... born on other 1945 days: the year-only header shared the word KIM with
    each, union-find chained the five IDs into one group above MAX_IDS_PER_PERSON, which joined none, and validate
    passed with the person's baseline in train and later visits in test. Now a link by a year or month joins only
    where the names agree, and a group too big keeps its links by a full date: refused in both layouts."""
    from test_attack12_trainer import _write

    from trainer.cli import main

    others = [("KIM^JIHOON", "19450101"), ("KIM^SEOYEON", "19450607"), ("KIM^DOHYUN", "19451111")]
    rows = _kims(tiny_cohort, tmp_path / "c", ("KIM^MINSU", "19450315", "KIM^MINSU", "1945"), others)
    assert main(["validate", "--data", str(_write(rows, tmp_path / "parted.csv"))]) == 2
    err = capsys.readouterr().err
    assert err.count("one patient's rows are in several splits") == 1, err

    # four namesakes KIM^MINSU whose headers give the year only (a de-identified export) beside the person's full
    # dates: the loose links make a group of six; its link by the full date still joins the old and new MRN
    namesakes = [("KIM^MINSU", "1945")] * 4
    rows = _kims(tiny_cohort, tmp_path / "d", ("KIM^MINSU", "19450315", "KIM^MINSU", "19450315"), namesakes)
    assert main(["validate", "--data", str(_write(rows, tmp_path / "namesakes.csv"))]) == 2
    err = capsys.readouterr().err
    assert err.count("one patient's rows are in several splits") == 1, err


def test_a23_7_validate_keeps_one_persons_spellings_together_where_the_new_mrn_gives_the_birth_year_only(
        tiny_cohort, tmp_path, capsys):
    """A22-10's persons under an old MRN (full birth date) and a new one whose headers give the year or month only
    (a de-identified export), the name written another way: cd11cbe joined a link by a year or month only where the
    names agreed, so each was parted again and validate named none of them (attack run 23, A23-7). Now a loose link
    joins wherever no whole other name parts the two (the KIM chain stays bounded: test above)."""
    variants = [("ПЕТРОВА^АННА", "19410315", "PETROVA^ANNA", "1941"),
                ("DUPONT^JEAN PIERRE", "19420315", "JEAN-PIERRE DUPONT", "1942"),
                ("DOE^JOHN^ALBERT", "19430315", "JOHN ALBERT DOE", "1943"),
                ("WANG^XIAOMING", "19450315", "XIAO MING WANG", "194503"),
                ("KIM^MINSU", "19460315", "김^민수", "1946"),
                ("MUELLER^JUERGEN", "19470315", "MULLER^JURGEN", "1947")]
    _each_person_refused(tiny_cohort, tmp_path, capsys, variants)


def test_a23_17_validate_keeps_a_persons_hangul_year_only_mrn_with_the_old_one_beside_same_year_kims(
        tiny_cohort, tmp_path, capsys):
    """KIM^MINSU under an old MRN (born 19450315) and a new one whose headers write 김^민수 and the year only, beside
    three other cohort patients KIM^... born on other 1945 days: the hangul header shares no script with the KIMs,
    so its loose link joined each, the group of five was above MAX_IDS_PER_PERSON, and the cap kept only loose links
    whose names agree in one script, which a cross-script pair never is: the person's own link was dropped with the
    namesakes', the old MRN in train and the new in test, validate rc 0 and silent (attack run 23, A23-17). Now the
    person's link (민수 / MINSU read alike) outranks the namesakes' (민수 / JIHOON): refused. Where the namesakes read
    alike too (three more KIM^MINSU born that year), which is the person cannot be told: validate says so, by counts
    only (no name, birth date or ID)."""
    from test_attack12_trainer import _write

    from trainer.cli import main

    person = ("KIM^MINSU", "19450315", "김^민수", "1945")
    others = [("KIM^JIHOON", "19450101"), ("KIM^SEOYEON", "19450607"), ("KIM^DOHYUN", "19451111")]
    rows = _kims(tiny_cohort, tmp_path / "c", person, others)
    assert main(["validate", "--data", str(_write(rows, tmp_path / "parted.csv"))]) == 2
    err = capsys.readouterr().err
    assert err.count("one patient's rows are in several splits") == 1, err
    assert "which of them is the person cannot be told" not in err, err  # the person's own link was kept

    namesakes = [("KIM^MINSU", "19450101"), ("KIM^MINSU", "19450607"), ("KIM^MINSU", "19451111")]
    rows = _kims(tiny_cohort, tmp_path / "d", person, namesakes)
    assert main(["validate", "--data", str(_write(rows, tmp_path / "namesakes.csv"))]) == 0
    captured = capsys.readouterr()
    new = {r["patient_id"] for r in rows if r["split"] == "test"}
    five = {"OLD-00", *new, *sorted({r["patient_id"] for r in rows} - new - {"OLD-00"})[:len(namesakes)]}
    said = [line for line in captured.err.splitlines() if "which of them is the person cannot be told" in line]
    assert len(said) == 1, captured.err
    assert f"{sum(r['patient_id'] in five for r in rows)} rows: the DICOM headers of 5 of the manifest's" in said[0]
    # the rows by number, which name no one (attack run 24, A24-7: "check these patients" pointed at none)
    numbers = said[0].split("check the patients of rows ")[1].split(" and give")[0].split(" and ")[0].split(", ")
    assert len(numbers) == min(12, sum(r["patient_id"] in five for r in rows)) and all(n.isdigit() for n in numbers)
    for secret in ("KIM", "MINSU", "1945", *five):
        assert secret not in captured.err + captured.out, secret


def _each_person_refused(tiny_cohort, tmp_path, capsys, variants) -> None:
    """``octviewer-train validate`` of a cohort whose persons (``variants``: old header, birth date, new header, birth
    date) are split with their old MRN in train and new MRN in test: refused (exit 2), each person named once."""
    import re

    from test_attack12_trainer import _write

    from trainer.cli import main

    rows = _variant_rows(tiny_cohort, tmp_path / "c", variants)
    assert main(["validate", "--data", str(_write(rows, tmp_path / "parted.csv"))]) == 2
    err = capsys.readouterr().err
    refused = [set(re.findall(r"row (\d+)", line)) for line in err.splitlines()
               if "one patient's rows are in several splits" in line]
    olds = [{str(r["row"]) for r in _numbered(rows) if r["patient_id"] == f"OLD-{n:02d}"}
            for n in range(len(variants))]
    assert all(any(old <= rows_said for rows_said in refused) for old in olds), (olds, err)
    assert len(refused) == len(variants), err


@pytest.mark.gui
def test_a23_5_a_per_patient_copy_and_a_table_each_lacking_a_row_count_each_test_once(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """exports/vf_export.csv holds the table's rows of DEMO00-000 a year later but for its last OS test, and
    another patient's 200 days later; the table lacks that patient's last OD test. cd11cbe asked every patient of
    a file to map at its offset, so one row missing from either file cleared the whole file and every test counted
    twice (the OD Trend: six tests out of three; attack run 23, A23-5). Now it is decided per patient: DEMO00-000's
    tests count once, at the table's dates."""
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").write_text(_table(_TABLE) + _rows("DEMO00-001", _OTHER[:2] + _OTHER[3:]))
    (root / "exports").mkdir()
    (root / "exports" / "vf_export.csv").write_text(_table(_TABLE[:-1], shift=365) + _rows("DEMO00-001", _OTHER, 200))
    panel = _open_folder(qtbot, window, monkeypatch, root)
    mine = sorted((m.eye, m.date.isoformat(), Path(m.source).name) for m in panel.index.vf
                  if m.patient_id == "DEMO00-000")
    assert mine == sorted((eye, day, "visual_fields.csv") for eye, day, *_ in _TABLE), mine
    assert len(panel.index.vf) == len(_TABLE) + len(_OTHER), panel.index.vf
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())  # the Study panel's list
    assert problems.count("(a re-dated copy?)") == len(_TABLE) - 1 + len(_OTHER) - 1, problems


@pytest.mark.gui
def test_a23_6_a_clinic_table_lacking_a_row_of_the_shifted_export_keeps_its_own_dates(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """The clinic's table lacks the last OD test that exports/vf_export.csv (every row 200 days later) holds:
    cd11cbe took the table, a subset of the export, for the copy whatever its dates, so each visit showed a test
    dated 200 days off the scans, and the list said "which date is right cannot be told" (attack run 23, A23-6).
    Now the original is the file whose dates lie nearer the scans' also where only one maps into the other: the
    table's dates count, the list says why, and the test only the copy holds (at the copy's date) is not used."""
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").write_text(_table(_TABLE[:-2] + _TABLE[-1:]))
    (root / "exports").mkdir()
    (root / "exports" / "vf_export.csv").write_text(_table(_TABLE, shift=200))
    panel = _open_folder(qtbot, window, monkeypatch, root)
    kept = sorted((m.eye, m.date.isoformat(), Path(m.source).name) for m in panel.index.vf)
    assert kept == sorted((eye, day, "visual_fields.csv") for eye, day, *_ in _TABLE[:-2] + _TABLE[-1:]), kept
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())  # the Study panel's list
    assert ("exports/vf_export.csv: measured VF of DEMO00-000 OD 2019-04-08: the same test (VFI, MD and PSD) as "
            "visual_fields.csv of 2018-09-20 (a re-dated copy?): this file's rows of the patient equal that file's "
            "at one date offset, and that file's dates lie nearer the scans'; it is counted once, at 2018-09-20 "
            "(the table's own row)") in problems, problems
    assert "which date is right cannot be told" not in problems, problems
    assert ("exports/vf_export.csv: measured VF of DEMO00-000 OD 2021-04-25: this file's other rows of the patient "
            "are a re-dated copy of another table's, and this test is in the copy only") in problems, problems
