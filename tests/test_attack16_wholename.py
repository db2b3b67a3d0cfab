"""Attack run 16, A16-14: after A16-1's two tiers, ANY name difference with no contradicting issuer or birth date was
"one name written two ways": two people whose family AND given names both differ (ALPHA^ANN / ZULU^ZED, an issuer
and birth date on one side only) were one person again: PACS screened both, the study showed the other person's
field as the patient's measured VF. A whole other name is another person (``core.person.whole_name_differs``)."""

from __future__ import annotations

import orthanc_server
import pytest

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures


def test_a_whole_other_name_is_another_person_and_one_part_is_a_spelling():
    from octviewer.core.person import Patient, what_differs

    ann = Patient("P", "", "ALPHA^ANN", "")
    assert ann.others(Patient("P", "HOSP_B", "ZULU^ZED", "19400101"))  # A15-15's field: was kept and said
    assert ann.others(Patient("P", "", "ZULU^ZED", ""))
    assert what_differs([ann.traits(), Patient("P", "", "ZULU^ZED", "").traits()]) == "another family and given name"
    for spelling in ("ALPHA^ANNE", "OMEGA^ANN", "ANN ALPHA", "Alpha^Ann^B"):  # a typo, a marriage, an order, a middle
        assert not ann.others(Patient("P", "", spelling, "")), spelling
    for other in ("ZULU ZED", "ZED ZULU", "ZULU"):  # A16-17: written without "^", no word shared
        assert ann.others(Patient("P", "", other, "")), other


def test_a16_17_the_header_cache_tells_a_whole_other_name_as_the_names_do():
    """The study's header cache keeps the traits hashed: the word-by-word digests must give the same answer."""
    from octviewer.core.person import Patient, hashed_traits, one_set_of_traits

    ann = hashed_traits(Patient("P", "", "ALPHA^ANN", ""))
    assert not one_set_of_traits([ann, hashed_traits(Patient("P", "", "ZULU ZED", ""))], names=False)
    assert one_set_of_traits([ann, hashed_traits(Patient("P", "", "ANN ALPHA", ""))], names=False)
    assert one_set_of_traits([ann, hashed_traits(Patient("P", "", "OMEGA^ANN", ""))], names=False)


@pytest.mark.gui
@pytest.mark.parametrize("name", ["ZULU^ZED", "ZULU ZED"])  # the second without "^": A16-17
def test_another_persons_field_with_a_whole_other_name_is_left_out_again(
        qtbot, window, monkeypatch, fields_demo, tmp_path, name):
    """A15-15's own files: the scans name ALPHA^ANN (no issuer, no birth date), the field ZULU^ZED of HOSP_B born
    1940: since A16-1 it was shown as the patient's measured VF with a 'people' check."""
    from conftest import open_study_folder
    from test_attack16_person import _problems, _shown_with_a_scan, _study

    root, od = _study(fields_demo, tmp_path, ("ALPHA^ANN", "", ""), (name, "HOSP_B", "19400101"))
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert str(od) not in {m.source for m in panel.index.vf} and not _shown_with_a_scan(panel.index, str(od))
    text = _problems(panel)
    assert "its header names another person (another family and given name) than this patient's scans; it is not " \
        "used" in text, text
    assert "ZULU" not in text and "1940" not in text, text


def test_screen_refuses_two_whole_other_names_under_one_id(orthanc, data_dir, tmp_path, capsys, monkeypatch):
    """PACS: ALPHA^ANN (no birth date given) and ZULU^ZED (born 1940) under one ID, no issuer, were screened as one
    patient since A16-1, a note saying "one name written two ways, or another person". (With one birth date on
    both, such names are said, not refused: A17-1.)"""
    import pydicom
    from pydicom.uid import generate_uid
    from test_attack16_person import _conf, _predict_stand_in

    from octviewer.pacs.cli import main

    datasets = []
    for name, birth, sample in (("ALPHA^ANN", "", "demo_normal_OD.dcm"),
                                ("ZULU^ZED", "19400101", "demo_early_glaucoma_OS.dcm")):
        ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / sample)
        orthanc_server._file_with_patient(ds, "WHOLE-1614", name, generate_uid(), "20190924", series_number=1)
        ds.PatientBirthDate = birth
        ds.SeriesInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        datasets.append(ds)
    orthanc.c_store(datasets)
    handed = []
    _predict_stand_in(monkeypatch, handed)
    conf = _conf(orthanc, tmp_path)
    capsys.readouterr()
    assert main([*conf, "screen", "--patient-id", "WHOLE-1614", "--out", str(tmp_path / "s.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the studies of this patient ID name different people (another family and given name" in err, err
    assert not handed and not (tmp_path / "s.csv").exists()
