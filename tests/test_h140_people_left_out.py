"""Walk-through H140, W1: another patient's scan copied under this patient's ID with another name is left out as the
same scan as that patient's, but the 'people' check it caused stayed on every scan of this patient, all of which
name one person. The check is made again over the scans used."""

import pytest


def test_a_left_out_copy_naming_another_person_puts_no_people_check_on_the_patients_own_scans(tmp_path):
    import shutil

    import pydicom

    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_folder

    root = write_demo_study(tmp_path / "study", patients=2, visits=2, preset="tiny", seed=0)
    own, other = sorted(p for p in (root / "scans").iterdir() if p.is_dir())
    for path in own.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientBirthDate = "ALPHA^ANN", "19500101"
        ds.save_as(path)
    patient_id = pydicom.dcmread(next(own.rglob("*.dcm")), stop_before_pixels=True).PatientID
    copy = own / "moved.dcm"
    shutil.copy(next(other.rglob("*.dcm")), copy)
    ds = pydicom.dcmread(copy)
    ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient_id, "ZULU^ZED", "19400101"
    ds.save_as(copy)
    index = index_folder(root, cache_dir=tmp_path / "cache")
    assert str(copy) in {str(p) for p, _ in index.problems}, index.problems  # left out, named
    assert str(copy) not in {s.path for s in index.scans}
    assert not [w for w in index.warnings if w.kind == "people"], [w.text[:80] for w in index.warnings]


def test_the_people_check_says_which_header_facts_differ_without_naming_them(tmp_path):
    """Walk-through H140, W3: the check named no difference; a clinician had to open the headers elsewhere to tell
    twins, a typo or another patient apart. It says which facts differ (here the birth date), no name nor date."""
    import pydicom

    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_folder

    root = write_demo_study(tmp_path / "study", patients=1, visits=2, preset="tiny", seed=0)
    for k, path in enumerate(sorted(root.rglob("scans/*/*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientBirthDate = "DOE^JOHN", ("19500101", "19400101")[k % 2]
        ds.save_as(path)
    index = index_folder(root, cache_dir=tmp_path / "cache")
    texts = {w.text for w in index.warnings if w.kind == "people"}
    assert len(texts) == 1, texts
    (text,) = texts
    assert "(another birth date: " in text and "1950" not in text and "1940" not in text and "DOE" not in text, text


@pytest.mark.gui
def test_the_study_tree_marks_a_patient_whose_scans_name_different_people(qtbot, window, monkeypatch, tmp_path):
    """Walk-through H140, W4: the check was in the list above the tree only, which scrolls away; the patient's row in
    the tree (File > Open study folder) says it too."""
    import pydicom
    from conftest import open_study_folder

    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=2, visits=2, preset="tiny", seed=0)
    first = sorted(p for p in (root / "scans").iterdir() if p.is_dir())[0]
    for k, path in enumerate(sorted(first.glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientBirthDate = "DOE^JOHN", ("19500101", "19400101")[k % 2]
        ds.save_as(path)
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    rows = [panel.tree.topLevelItem(k) for k in range(panel.tree.topLevelItemCount())]
    marked = [r.text(0) for r in rows if "check: scans name different people" in r.text(1)]
    assert len(marked) == 1, [(r.text(0), r.text(1)) for r in rows]
