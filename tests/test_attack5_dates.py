"""Attack run 5: implausible dates (F6), hidden characters in manifest patient IDs (F17) and our own
.npz read with the workstation's clock set back (F18). One date rule for every reader
(``io.limits.date_problem``): a VF or manifest row with an impossible date is refused naming the row,
a scan's impossible date becomes unknown with a note (the pixels are fine)."""

import copy
import datetime as dt

import numpy as np
import pydicom
import pytest

from octviewer.resources import DEMO_SAMPLES

TREND = "patient_id,eye,date,vfi,md,psd\n" + "".join(
    f"P1,OD,{2020 + i}-01-01,{95 - i},{-2.0 - 2 * i},2.0\n" for i in range(4))


# -- F6: visual fields -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("date, words", [("1900-01-01", "date is before 1970"),
                                         ("2999-01-01", "date is later than this workstation's date")])
def test_a_vf_row_dated_1900_or_2999_is_refused_naming_the_row_and_field(tmp_path, date, words):
    """Row 6 dated 1900 entered the trend: -1.98 dB/yr became -0.04 dB/yr, without a word."""
    from octviewer.study.vf import read_vf_rows

    table = tmp_path / "visual_fields.csv"
    table.write_text(TREND + f"P1,OD,{date},99,-0.5,1.5\n")
    measured, problems = read_vf_rows(table)
    assert len(measured) == 4 and len(problems) == 1 and problems[0].startswith(f"row 6: {words}")
    assert date not in problems[0]


def test_a_vf_from_1975_is_kept():
    """Perimetry is older than OCT: a 1975 field is no OCT date but a plausible VF date."""
    from octviewer.study.vf_values import vf_date_problem

    assert vf_date_problem("date", dt.date(1975, 6, 1)) == ""
    assert vf_date_problem("date", dt.date(1969, 12, 31)) == "date is before 1970"


def test_an_opv_file_dated_1900_is_refused_naming_the_file_and_field(tmp_path):
    from octviewer.study.vf import VfReadError, read_opv, write_opv

    path = write_opv(tmp_path / "vf.dcm", "P1", "OD", dt.date(1900, 1, 1), md_db=-3.0)
    with pytest.raises(VfReadError, match="vf.dcm: the StudyDate .* is before 1970"):
        read_opv(path)


def test_an_hfa_export_dated_2999_is_refused(tmp_path):
    from test_hfa_xml import hfa_xml

    from octviewer.study.hfa_xml import read_hfa_xml
    from octviewer.study.vf import VfReadError

    with pytest.raises(VfReadError, match="exam.xml: the exam's date .* later than this workstation's date"):
        read_hfa_xml(hfa_xml(tmp_path, visit="2999-01-01", series_time="2999-01-01T10:00:00"))


# -- F6: scans -------------------------------------------------------------------------------------------------
def _dicom(folder, stamp):
    ds = pydicom.dcmread(sorted(DEMO_SAMPLES.glob("*.dcm"))[0])
    x = copy.deepcopy(ds)
    x.AcquisitionDateTime = x.StudyDate = x.ContentDate = stamp
    x.SOPInstanceUID = pydicom.uid.generate_uid()
    path = folder / f"scan_{stamp}.dcm"
    x.save_as(path)
    return path


@pytest.mark.parametrize("stamp, words", [("19000101", "before 1991"), ("29991231", "later than this workstation")])
def test_a_dicom_scan_dated_1900_or_2999_opens_with_the_date_unknown_and_a_note(tmp_path, stamp, words):
    from octviewer import load_volume

    volume = load_volume(_dicom(tmp_path, stamp))
    assert volume.acquired is None
    note = [n for n in volume.notes if "acquisition date" in n]
    assert len(note) == 1 and words in note[0] and stamp[:4] not in note[0]


def test_the_study_index_files_such_a_scan_with_the_date_unknown_and_says_so(tmp_path):
    from octviewer.study.index import index_folder

    study = tmp_path / "study"
    study.mkdir()
    _dicom(study, "19000101")
    index = index_folder(study, cache_dir=tmp_path / "cache")
    assert [v.date for p in index.patients() for v in index.visits(p)] == [None]
    assert index.problems == [(str(study / "scan_19000101.dcm"),
                               "the acquisition date in the header is before 1991; the date is unknown")]


def test_a_manifest_visit_dated_1900_is_refused_naming_the_row(tmp_path):
    import numpy as np

    from octviewer.study.index import index_manifest

    np.savez(tmp_path / "scan.npz", volume=np.zeros((2, 8, 8), np.uint8))  # a NumPy archive: a row listing an
    # empty file is refused for that first (A14-5)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,eye,visit,label\nscan.npz,P1,OD,1900-01-01,0\nscan.npz,P1,OD,2020-01-01,0\n")
    index = index_manifest(manifest)
    assert index.problems == [(str(manifest), "row 2: the visit is before 1991")]
    assert [s.date for s in index.scans] == [dt.date(2020, 1, 1)]


@pytest.mark.parametrize("visit", ["1989-06-01", "2150-03-04", "0001-01-01"])
def test_the_trainer_manifest_takes_date_shifted_research_visits(tmp_path, visit):
    """De-identified research sets shift visit dates by years (before 1991, after today): training only
    orders and groups visits, so the viewer's plausibility rule does not refuse them there (review)."""
    from trainer.manifest import read_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,patient_id,eye,visit,label\nscan.npz,P1,OD,{visit},0\n")
    records, _ = read_manifest(manifest, check_files=False)
    assert [r.visit for r in records] == [visit]


# -- F17: patient IDs of manifest rows -------------------------------------------------------------------------
HIDDEN = "PAT\u202e4321\n\x1b[2JX"


def test_a_study_manifest_row_whose_patient_id_hides_characters_is_refused(tmp_path):
    from octviewer.study.index import index_folder, index_manifest

    (tmp_path / "scan1.npz").write_bytes(b"")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f'path,patient_id,eye,visit,label\n"scan1.npz","{HIDDEN}",OD,2020-01-01,0\n', newline="")
    for index in (index_manifest(manifest), index_folder(tmp_path, cache_dir=tmp_path / "cache")):
        assert index.patients() == []
        assert (str(manifest), "row 2: patient_id holds the invisible character U+202E (right-to-left override)") \
            in index.problems


def test_the_trainer_manifest_refuses_a_patient_id_with_a_hidden_character(tmp_path):
    from trainer.manifest import ManifestError, read_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,patient_id,eye,visit,label\nscan.npz,PAT\u202e4321,OD,2020-01-01,0\n")
    with pytest.raises(ManifestError, match="row 2: patient_id holds the invisible character U\\+202E"):
        read_manifest(manifest, check_files=False)


# -- F18: our own .npz with the workstation's clock set back ---------------------------------------------------
def test_our_own_npz_read_with_the_clock_30_days_behind_opens_with_the_date_unknown(tmp_path):
    """Written where the clock was right, read here with the clock 30 days behind: the file's date is
    30 days after this workstation's today. It was refused whole; a DICOM of the same date opened."""
    from octviewer import OctVolume, load_volume, save_volume

    path = tmp_path / "today.npz"
    save_volume(OctVolume(data=np.zeros((2, 32, 32), np.uint8), acquired=dt.date.today() + dt.timedelta(days=30)),
                path)
    volume = load_volume(path)
    assert volume.acquired is None
    assert any("later than this workstation's date" in n for n in volume.notes)


def test_the_clock_is_read_through_one_function(tmp_path, monkeypatch):
    """``io.limits.today`` is the one clock the date rule reads (a test sets it back)."""
    from octviewer import OctVolume, load_volume, save_volume
    from octviewer.io import limits

    path = tmp_path / "today.npz"
    save_volume(OctVolume(data=np.zeros((2, 32, 32), np.uint8), acquired=dt.date.today()), path)
    monkeypatch.setattr(limits, "today", lambda: dt.date.today() - dt.timedelta(days=30))
    assert load_volume(path).acquired is None
