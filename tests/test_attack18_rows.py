"""Attack run 18, part B (H111's A18-20 .. A18-26): which patient, eye and visit a scan counts for. Each test goes
through the window (File > Open study folder / Open study manifest, the Trend) or ``octviewer-train validate``'s main,
reading what the user sees; each fails on the code before its fix."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import demo_study, without_fields  # noqa: E402
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_attack16_copies import progressing  # noqa: E402,F401
from test_study_headers import _scans  # noqa: E402


def _text(html: str) -> str:
    return " ".join(re.sub("<[^>]+>", " ", html).split())


def _shown(panel) -> str:
    return " ".join(panel.problems.text().replace("\u200b", "").split())


@pytest.fixture(scope="module")
def two_patients(tmp_path_factory) -> Path:
    """Two SYNTHETIC patients, two yearly visits, both eyes (8 scans, tiny preset), no visual fields."""
    return demo_study(tmp_path_factory.mktemp("two") / "study", patients=2, visits=2, seed=7, fields=False)


# ---------------------------------------------------------------- A18-22: a cut-short file under a reused UID


@pytest.mark.gui
def test_a18_22_a_cut_short_file_under_a_reused_uid_joins_no_other_scan(qtbot, window, monkeypatch, two_patients,
                                                                        tmp_path):
    """Every file of the study saved with one SOPInstanceUID (an export or anonymiser writing a fixed UID), and the
    first file by name cut short: it does not decode, and every scan of the UID was compared with it alone, so the
    whole study was "one scan (the same DICOM UID and images) filed under the patients ...; neither is used". Now a
    file that does not decode joins no scan of a UID whose scans differ: every scan is used, the cut one said."""
    import pydicom

    root = Path(shutil.copytree(two_patients, tmp_path / "study"))
    files = sorted((root / "scans").rglob("*.dcm"))
    for f in files:
        ds = pydicom.dcmread(f)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        ds.save_as(f)
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) - 20000])
    panel = _open_folder(qtbot, window, monkeypatch, root)
    index = panel.index
    assert {s.path for s in index.scans} == {str(f) for f in files}, index.problems
    assert not index.problems and len(index.patients()) == 2, index.problems
    shown = _shown(panel)
    assert "cannot be told" not in shown and "cut short" in shown, shown


# ---------------------------------------------------------------- A18-21: two re-dated copies in a chain


@pytest.mark.gui
def test_a18_21_two_redated_copies_in_a_chain_leave_every_visit_its_own_scan(
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """The second visit's OD scan re-dated a day after the first visit's, and the third visit's a day after the
    second's (same UIDs and pixels): each copy was judged alone, so the second visit's scan was alone nowhere and
    counted at the first visit beside its own scan (a 'repeat', the mean of two years' scans), and the second visit,
    its own scan and the third's copy, was ringed and left out: the significant RNFL loss read p=0.138, 3 visits.
    Now the copies are settled together: the Trend is the study's without them, flagged, and no visit is ringed."""
    import datetime as dt

    import numpy as np
    from test_attack16_copies import _redated_copy
    from test_attack16_trend import _trend
    from test_study_headers import _header_date

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    w = window
    od = _scans(root, "OD")
    copies = {str(_redated_copy(od[k + 1], _header_date(od[k]) + dt.timedelta(days=1))) for k in (0, 1)}
    panel = _open_folder(qtbot, w, monkeypatch, root)
    index = panel.index
    assert {c.kind for c in index.warnings} == {"two visits"}, index.warnings  # no 'repeat' at the first visit
    assert index.later_copies() == copies, index.later_copies()
    view = _trend(qtbot, w, panel)
    history = view.history
    assert [d for d, _ in history.series["rnfl"]] == [_header_date(p) for p in od], history.series["rnfl"]
    assert history.trends["rnfl"].n == 4 and history.flagged("rnfl") and not history.twice, history.trends
    summary = _text(view.summary.text())
    assert "significant change" in summary and "not in the slope" not in summary, summary
    rnfl = [v for _, v in history.series["rnfl"]]
    assert np.all(np.diff(rnfl) < 0), rnfl  # each visit its own scan: the loss year by year


# ---------------------------------------------------------------- A18-24: the old and the new MRN in one split


def _old_mrn_rows(tiny_cohort, folder) -> tuple[Path, list[dict]]:
    """The tiny cohort with each patient named PERSONnn^ANNA, born on a day of their own, and each patient's first
    visit re-saved and listed under the MRN before a record merge (OLD-nn): (folder, rows)."""
    from test_attack16_rows import _copy, _resave

    _, rows = _copy(tiny_cohort, folder)
    first: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: r["visit"]):
        first.setdefault(r["patient_id"], r["visit"])
    for n, patient in enumerate(sorted(first)):
        for r in (r for r in rows if r["patient_id"] == patient):
            fields = {"PatientName": f"PERSON{n:02d}^ANNA", "PatientBirthDate": f"19{40 + n:02d}0315"}
            if r["visit"] == first[patient] and any(o["visit"] != r["visit"] for o in rows
                                                     if o["patient_id"] == patient):
                fields["PatientID"] = r["patient_id"] = f"OLD-{n:02d}"
            _resave(r["path"], **fields)
    return Path(folder), rows


def test_a18_24_validate_keeps_one_persons_old_and_new_mrn_in_one_split(tiny_cohort, tmp_path, capsys):
    """A cohort listing each person's first visit under the old MRN and the later visits under the new one (same
    name and birth date): the split joined row patients by the header's PatientID only, so one person's baseline
    eyes were trained on and their later eyes tested, validate silent (rc 0). Now such IDs are one patient for the
    split: validate says so, and a split column that parts them is refused as any person in two splits is."""
    from test_attack12_trainer import _write

    from trainer.cli import main

    folder, rows = _old_mrn_rows(tiny_cohort, tmp_path / "c")
    old = sorted({r["patient_id"] for r in rows if r["patient_id"].startswith("OLD-")})
    assert len(old) >= 3, old
    free = _write([{**r, "split": ""} for r in rows], folder / "free.csv")
    assert main(["validate", "--data", str(free)]) == 0
    err = capsys.readouterr().err
    assert (f"the DICOM headers give the same name and birth date under other PatientIDs for {len(old)} group(s) of "
            "the manifest's patients (an ID changed or records merged, or namesakes); the split keeps each group in "
            "one split") in err, err

    parted = [{**r, "split": "train" if r["patient_id"].startswith("OLD-") else "test"} for r in rows]
    given = _write(parted, folder / "parted.csv")
    assert main(["validate", "--data", str(given)]) == 2
    err = capsys.readouterr().err
    assert "one patient's rows are in several splits" in err, err


# ---------------------------------------------------------------- A18-23: a folder study's row of an image folder


@pytest.mark.gui
def test_a18_23_a_folder_studys_manifest_row_of_b_scan_images_is_used_and_a_missing_file_named(
        qtbot, window, monkeypatch, two_patients, tmp_path):
    """File > Open study folder on a folder whose manifest lists a folder of B-scan PNGs (OD) and an .npy (OS) of one
    visit, and a third row naming a file that is not there: the image folder's row met no file of the walk and was
    dropped in silence (the OU view showed no right eye; its images counted as "other files"), and the missing
    file's row was not said, where Open study manifest uses the first and counts the second. Now the image folder
    is the patient's OD scan and the missing file's row is named."""
    import numpy as np
    from PIL import Image

    from octviewer.io import load_volume

    root = tmp_path / "study"
    (root / "P1" / "od_png").mkdir(parents=True)
    od, os_ = _scans(two_patients, "OD")[0], _scans(two_patients, "OS")[0]
    for k, bscan in enumerate(load_volume(od).data):
        Image.fromarray(np.asarray(bscan, dtype=np.uint8)).save(root / "P1" / "od_png" / f"B{k + 1:03d}.png")
    np.save(root / "P1" / "os.npy", load_volume(os_).data)
    (root / "manifest.csv").write_text("patient_id,eye,visit,path\nP1,OD,2019-04-17,P1/od_png\n"
                                       "P1,OS,2019-04-17,P1/os.npy\nP1,OD,2020-04-17,P1/missing.npy\n")
    panel = _open_folder(qtbot, window, monkeypatch, root)
    index = panel.index
    assert sorted((Path(s.path).name, s.patient_id, s.eye, s.visit) for s in index.scans) == [
        ("od_png", "P1", "OD", "2019-04-17"), ("os.npy", "P1", "OS", "2019-04-17")], index.scans
    assert "other files" not in index.skipped, index.skipped
    shown = _shown(panel)
    assert "P1/missing.npy: manifest.csv row 4: the file is missing; it is not used" in shown, shown


# ---------------------------------------------------------------- A18-26 and A18-25: one scan under two IDs, used once


@pytest.mark.gui
def test_a18_26_one_scan_under_an_old_and_new_mrn_is_no_manifests_check_and_namesakes_are_said(
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """A study FOLDER (no manifest) with the first visit's scans beside their export under the MRN before a record
    merge (A17-6's shape): the scan is used once, and its check was labelled "Check (study manifest)", the anonymised
    OU report reading "the study manifest and this scan's header disagree (1 check: the patient ID)": there is no
    manifest. Its own kind now ('old id'), a study check; and since namesakes whose one scan was copied into the
    other's record look the same (A18-25), the check says to confirm whose scan it is."""
    from test_attack16_trend import _anonymised_ou_report
    from test_attack17_rows import _merged_folder

    root, first, old = _merged_folder(progressing, tmp_path / "study", False)
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert {s.path for s in panel.index.scans} >= {str(p) for p in first}
    assert {w.kind for w in panel.index.warnings} == {"old id"}, panel.index.warnings
    shown = _shown(panel)
    assert ("Two people of one name and birth date (namesakes, twins) look the same: check that it is DEMO00-000's "
            "scan before comparing visits") in shown, shown
    page = _anonymised_ou_report(qtbot, w, panel, monkeypatch, tmp_path / "ou.pdf")
    assert "Check (study)" in page and "study manifest" not in page, page
    assert "one scan filed under an old and a new patient ID" in " ".join(page.split()), page  # not "a study check"


# ---------------------------------------------------------------- A18-20: both IDs with a history: not used, said why


@pytest.mark.gui
def test_a18_20_one_scan_under_two_ids_each_with_a_history_is_left_out_and_the_problem_says_why(
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """The first visit's pair filed under the old MRN only, the second visit's pair under both (an export after the
    merge beside the old MRN's earlier one), one name and birth date throughout: both IDs have scans of their own,
    which namesakes with a history each have too, so the second visit's pair is still listed and not used (A17-3's
    rule: an ID in use is a patient). The problem says why now, where it read as any clash of two patients."""
    import pydicom

    root = without_fields(Path(shutil.copytree(progressing, tmp_path / "study")))
    (root / "scans" / "old").mkdir()
    od, os_ = _scans(root, "OD"), _scans(root, "OS")
    for scan in [*od, *os_]:
        ds = pydicom.dcmread(scan)
        ds.PatientName, ds.PatientBirthDate = "DOE^JOHN", "19500101"
        ds.save_as(scan)
        if scan in (od[0], os_[0]):
            ds.PatientID = "OLD-4711"
            ds.save_as(root / "scans" / "old" / scan.name)
            scan.unlink()
        elif scan in (od[1], os_[1]):
            ds.PatientID = "OLD-4711"
            ds.save_as(root / "scans" / "old" / scan.name)
    panel = _open_folder(qtbot, window, monkeypatch, root)
    assert str(od[1]) not in {s.path for s in panel.index.scans}
    shown = _shown(panel)
    assert ("filed under the patients DEMO00-000 and OLD-4711, whose headers give the same name and birth date while "
            "each ID has other scans (one person under two IDs whose records were not merged, or two people of one "
            "name and birth date): whose scan it is cannot be told; neither is used") in shown, shown


# ---------------------------------------------------------------- A18-27: the listed ID's own scans are the patient's


@pytest.mark.gui
def test_a18_27_open_study_manifest_uses_the_scans_whose_header_gives_the_listed_id(
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """A patient listed under the current MRN whose first three visits' headers still carry the old MRN (one name and
    birth date): the old MRN was the majority, and the last visit's scans, whose headers give exactly the listed ID,
    were refused as "another patient's scan" (A17-3's guard took the listed ID for another patient's). Now a header
    agreeing with its row is the row's patient's: every scan is used, the old-MRN scans with their 'patient' check."""
    import pydicom
    from PySide6.QtWidgets import QFileDialog

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    scans = sorted((root / "scans").rglob("*.dcm"))
    last = max(p.stem[3:] for p in scans)
    lines = ["path,patient_id,eye,visit"]
    for scan in scans:
        ds = pydicom.dcmread(scan)
        ds.PatientName, ds.PatientBirthDate = "DOE^JOHN", "19500101"
        if scan.stem[3:] != last:
            ds.PatientID = "OLD-4711"
        ds.save_as(scan)
        day = scan.stem[3:]
        lines.append(f"{scan},DEMO00-000,{scan.stem[:2]},{day[:4]}-{day[4:6]}-{day[6:]}")
    manifest = tmp_path / "current_mrn.csv"
    manifest.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert {s.path for s in panel.index.scans} == {str(p) for p in scans}, panel.index.problems
    assert not panel.index.problems, panel.index.problems
    assert "records merged" in _shown(panel)


def test_a18_27_validate_keeps_the_rows_whose_header_gives_the_listed_id(tiny_cohort, tmp_path, capsys):
    """The same through ``octviewer-train validate``: the rows whose scan's header gives the row's own ID were refused
    ("its scan's own header names another patient ...", rc 2); now the manifest passes, the old-MRN rows kept."""
    from test_attack12_trainer import _write
    from test_attack16_rows import _copy, _resave

    from trainer.cli import main

    manifest, rows = _copy(tiny_cohort, tmp_path / "c")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["patient_id"]] = counts.get(r["patient_id"], 0) + 1
    patient = max(counts, key=counts.get)
    theirs = sorted((r for r in rows if r["patient_id"] == patient), key=lambda r: r["visit"])
    assert len(theirs) >= 4, len(theirs)
    for r in theirs:
        fields = {"PatientName": "DOE^JOHN", "PatientBirthDate": "19500101"}
        if r["visit"] != theirs[-1]["visit"]:
            fields["PatientID"] = "OLD-4711"
        _resave(r["path"], **fields)
    out = _write(rows, manifest.with_name("current_mrn.csv"))
    assert main(["validate", "--data", str(out)]) == 0
    err = capsys.readouterr().err
    assert "names another patient" not in err and "records merged" in err, err


# ---------------------------------------------------------------- A18-31: the copy kept is the one that states most


@pytest.mark.gui
def test_a18_31_a_visits_dicom_is_kept_before_its_numpy_export(qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """Open study manifest listing the eye's four DICOM scans and a NumPy export of the last one at its visit (a
    research export kept beside the scan): the export, first by name, was kept and the DICOM left out as "the copy",
    so the visit had no pixel size, no RNFL, and the Trend's significant loss read p=0.112, 3 visits. Now the DICOM is
    kept and the export is the copy: the Trend has its four visits, flagged."""
    import numpy as np
    from PySide6.QtWidgets import QFileDialog
    from test_attack16_trend import _trend

    from octviewer.io import load_volume

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    od = _scans(root, "OD")
    export = od[-1].with_name("A_export.npy")  # sorts before the DICOMs'
    assert str(export) < str(od[-1])
    np.save(export, load_volume(od[-1]).data)
    day = lambda p: f"{p.stem[3:7]}-{p.stem[7:9]}-{p.stem[9:11]}"  # noqa: E731
    manifest = tmp_path / "with_export.csv"
    manifest.write_text("patient_id,eye,visit,path\n" + "".join(f"DEMO00-000,OD,{day(p)},{p}\n" for p in od)
                        + f"DEMO00-000,OD,{day(od[-1])},{export}\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert panel.index.copies == [str(export)], panel.index.copies
    history = _trend(qtbot, window, panel).history
    assert history.trends["rnfl"].n == 4 and history.flagged("rnfl"), history.trends
    assert not any(np.isnan(v) for _, v in history.series["rnfl"]), history.series["rnfl"]


# ---------------------------------------------------------------- A18-29: two copies of one B-scan image folder


@pytest.mark.gui
def test_a18_29_two_copies_of_one_image_folder_at_a_visit_are_one_scan_used_once(
        qtbot, window, monkeypatch, two_patients, tmp_path):
    """Open study manifest listing one folder of B-scan PNGs and a copy of it (cp -r) at one visit of an eye: the
    folders were hashed as files (which raised and was passed over), so they were "2 scans at the visit ... the OU
    view averages their network results" ('repeat'), where two .npy copies are one scan used once. Now a folder goes
    to the content comparison: one scan, used once, a 'copy' check."""
    import numpy as np
    from PIL import Image
    from PySide6.QtWidgets import QFileDialog

    from octviewer.io import load_volume

    images = tmp_path / "od_png"
    images.mkdir()
    for k, bscan in enumerate(load_volume(_scans(two_patients, "OD")[0]).data):
        Image.fromarray(np.asarray(bscan, dtype=np.uint8)).save(images / f"B{k + 1:03d}.png")
    copy = Path(shutil.copytree(images, tmp_path / "od_png_copy"))
    manifest = tmp_path / "dup.csv"
    manifest.write_text(f"patient_id,eye,visit,path\nP1,OD,2019-04-17,{images}\nP1,OD,2019-04-17,{copy}\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    index = window.study.panel.index
    assert [s.path for s in index.scans] == [str(images)] and index.copies == [str(copy)], index.scans
    assert {w.kind for w in index.warnings} == {"copy"}, index.warnings


# ---------------------------------------------------------------- A18-28: one measured field under two patients


@pytest.mark.gui
def test_a18_28_one_perimetry_field_filed_under_two_patients_is_used_for_neither(qtbot, window, monkeypatch,
                                                                                 tmp_path):
    """One patient's perimeter DICOM (OPV) re-saved under the other patient's ID (an export to the wrong record: the
    same test date and values): it was both patients' measured VF, nothing said, where one scan under two patients
    is "whose scan it is cannot be told; neither is used". Now the field is listed under both and used for neither."""
    import pydicom

    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=2, visits=2, preset="tiny", seed=7)
    a, b = sorted(p.name for p in (root / "scans").iterdir())
    field = sorted((root / "perimetry").glob(f"{a}_OD_*.dcm"))[0]
    ds = pydicom.dcmread(field)
    ds.PatientID = b
    ds.save_as(root / "perimetry" / f"misfiled_{field.name}")
    panel = _open_folder(qtbot, window, monkeypatch, root)
    date = f"{field.stem[-8:-4]}-{field.stem[-4:-2]}-{field.stem[-2:]}"
    assert not [m for m in panel.index.vf if m.eye == "OD" and m.date.isoformat() == date], panel.index.vf
    shown = _shown(panel)
    for patient in (a, b):
        assert (f"measured VF of {patient} OD {date}: the same test (eye, date, VFI, MD and PSD) is filed under the "
                f"patients {a} and {b}") in shown, shown


# ---------------------------------------------------------------- A18-28: one measured field at two dates


@pytest.mark.gui
def test_a18_28_a_redated_copy_of_a_field_is_one_test_in_the_measured_vf_trend(qtbot, window, monkeypatch,
                                                                                progressing, tmp_path):  # noqa: F811
    """The first OD field (OPV DICOM) re-dated three days after the last one and kept beside it (a date-shifting
    export: the same values): it was a fifth test in the measured MD slope, nothing said. Now it counts once, at the
    date with no other field of the eye (its own), listed; the Trend's measured MD has the four real tests."""
    import datetime as dt

    import pydicom
    from test_attack16_trend import _trend

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    fields = sorted((root / "perimetry").glob("*_OD_*.dcm"))
    last = dt.date.fromisoformat(f"{fields[-1].stem[-8:-4]}-{fields[-1].stem[-4:-2]}-{fields[-1].stem[-2:]}")
    stamp = (last + dt.timedelta(days=3)).strftime("%Y%m%d")
    ds = pydicom.dcmread(fields[0])
    for key in ("StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate", "PerformedProcedureStepStartDate"):
        if key in ds:
            setattr(ds, key, stamp)
    if "AcquisitionDateTime" in ds:
        ds.AcquisitionDateTime = stamp + "101010"
    copy = root / "perimetry" / f"copy_OD_{stamp}.dcm"
    ds.save_as(copy)
    panel = _open_folder(qtbot, window, monkeypatch, root)
    od = [m for m in panel.index.vf if m.eye == "OD"]
    assert len(od) == len(fields) and str(copy) not in {m.source for m in od}, od
    shown = _shown(panel)
    assert f"perimetry/copy_OD_{stamp}.dcm: measured VF of DEMO00-000 OD" in shown, shown
    assert "a re-dated copy?" in shown, shown
    history = _trend(qtbot, window, panel).history
    assert len(history.series["md_measured"]) == len(fields), history.series["md_measured"]
