"""Attack run 3 (issue 27), part B: study folders, DICOM headers, VF dates and IDs, killed workers.
Each test failed on the code before its fix."""

from __future__ import annotations

import dataclasses
import os
import signal
import types
from pathlib import Path

import pydicom
import pytest

from octviewer import load_volume
from octviewer.study import index_folder

DEMO = Path(__file__).resolve().parents[1] / "resources" / "samples"


def _edited(tmp_path, name: str, edit, source: str = "demo_normal_OD.dcm") -> Path:
    ds = pydicom.dcmread(DEMO / source)
    edit(ds)
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


# -- F21: an OCT DICOM's PatientID as the VF readers take it -----------------------------------------
BAD_IDS = {"two_values": ("A\\B", "holds 2 values"), "bidi": ("PAT\u202e1234", "U+202E"),
           "newline": ("PAT1\nPAT2", "control character"), "nul": ("PAT\x001", "control character")}


@pytest.mark.parametrize("case", sorted(BAD_IDS))
def test_an_oct_patient_id_that_is_two_values_or_holds_hidden_characters_is_refused(case, tmp_path):
    """``A\\B`` became the patient "['A', 'B']"; a bidi override, a newline or a NUL was kept as the ID."""
    pid, reason = BAD_IDS[case]

    def edit(ds):
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID = pid

    study = tmp_path / "study"
    study.mkdir()
    path = _edited(study, f"{case}.dcm", edit)
    index = index_folder(study, cache_dir=tmp_path / "cache")
    assert index.scans == []
    [(where, problem)] = index.problems
    assert where == str(path) and reason in problem and "PatientID" in problem
    assert "PAT" not in problem and "'A'" not in problem  # the ID is not shown
    volume = load_volume(path)
    assert volume.patient_id is None and any(reason in n for n in volume.notes)


def test_a_vf_table_patient_id_with_a_bidi_override_is_refused(tmp_path):
    from octviewer.study.vf import read_vf_rows

    table = tmp_path / "visual_fields.csv"
    table.write_text("patient_id,eye,date,md\nPAT\u202e1234,OD,2020-01-31,-2.5\nP2,OD,2020-01-31,-1.0\n",
                     encoding="utf-8")
    rows, bad = read_vf_rows(table)
    assert [m.patient_id for m in rows] == ["P2"] and len(bad) == 1 and "U+202E" in bad[0]


# -- F16: a VF date is the whole field ----------------------------------------------------------------
def test_a_vf_date_with_extra_characters_is_refused_not_cut(tmp_path):
    """``2020-01-319`` (31 or 19?), ``202001319``, ``2020-01-31 garbage`` and ``20200131T25:99`` were cut to
    their first 10 or 8 characters and kept as 2020-01-31."""
    from octviewer.study.vf import read_vf_rows
    from octviewer.study.vf_values import parse_date

    bad = ["2020-01-319", "202001319", "2020-01-31 garbage", "20200131T25:99", "2020-01-31T"]
    table = tmp_path / "visual_fields.csv"
    table.write_text("patient_id,eye,date,md\n" + "".join(f"P{n},OD,{d},-2\n" for n, d in enumerate(bad))
                     + "PX,OD,2020-01-31T09:30:00,-2\n")
    rows, refused = read_vf_rows(table)
    assert [m.patient_id for m in rows] == ["PX"]
    assert [r.split(":")[0] for r in refused] == [f"row {n + 2}" for n in range(len(bad))]
    assert all("date is" in r and "not a date" in r for r in refused)
    assert [parse_date(d) for d in bad] == [None] * len(bad)
    assert parse_date("2020-1-5").isoformat() == "2020-01-05" == parse_date("20200105 093000").isoformat()


# -- F30: a spacing no OCT has -------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-4, 100.0])
def test_a_dicom_spacing_scaled_out_of_any_oct_is_unknown_with_a_note(scale, tmp_path):
    """PixelSpacing x1e-4 or x100 passed the loader's 0-100 mm check, then the gate and the measurement
    raised IndexError/ValueError that reached the CSV as "unreadable"."""
    def edit(ds):
        pm = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        pm.PixelSpacing = [float(x) * scale for x in pm.PixelSpacing]
        for name in ("SliceThickness", "SpacingBetweenSlices"):
            if name in pm:
                setattr(pm, name, float(getattr(pm, name)) * scale)

    volume = load_volume(_edited(tmp_path, "scaled.dcm", edit))
    assert volume.spacing.as_tuple() == (None, None, None)
    assert any("PixelSpacing" in n and "where an OCT's is" in n for n in volume.notes)


@pytest.mark.parametrize("scale", [1e-4, 100.0])
def test_the_gate_and_the_measurement_refuse_a_geometry_no_oct_has_in_words(scale):
    from octviewer.core import Spacing
    from octviewer.structure import gate, measure

    volume = load_volume(DEMO / "demo_normal_OD.dcm")
    bent = volume.replace(spacing=Spacing(*(x * scale for x in volume.spacing.as_tuple())))
    verdict, _, _ = gate(bent)
    report = measure(bent)
    for quality in (verdict, report.quality):
        assert not quality.ok and "no OCT's" in quality.reasons[0]


# -- F23: a report header pydicom cannot carry names the file and the field ---------------------------
@pytest.mark.parametrize("birth", ["19501399", "19500231"])
def test_pacs_send_with_an_impossible_birth_date_names_the_file_and_field(birth, tmp_path, monkeypatch, capsys):
    """It printed only pydicom's "ValueError: month must be in 1..12", after the whole analysis."""
    from octviewer.pacs import cli

    scan = _edited(tmp_path, "bad_dob.dcm", lambda ds: setattr(ds, "PatientBirthDate", birth))
    monkeypatch.setattr(cli, "_settings", lambda args: None)
    monkeypatch.setattr("octviewer.model.Predictor", lambda *a, **k: pytest.fail("analysed before the check"))
    assert cli.main(["send", str(scan)]) == 2  # bad input (A8-16)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad_dob.dcm: PatientBirthDate is not a date" in err and birth not in err


# -- F28: a scan process killed mid-run --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _KillsItsProcessOn:
    victim: int

    def __call__(self, item, predictor):
        if item == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer or a crashing decoder does
        return "ok", item

    def lost(self, item):
        return "lost", item


def test_a_scan_process_that_dies_fails_its_scan_and_the_rest_are_analysed(monkeypatch):
    """`octviewer-predict --workers 2` with a worker killed by SIGKILL ended in a raw BrokenProcessPool
    traceback, exit 1, the journal holding only its header."""
    from octviewer.pipeline import parallel

    monkeypatch.setattr(parallel, "model_digest", lambda predictor: "digest")
    predictor = types.SimpleNamespace(precision="fp32", device=types.SimpleNamespace(type="cpu"),
                                      model=types.SimpleNamespace(name="m"))
    got = list(parallel.run_local(_KillsItsProcessOn(3), range(7), predictor, 2))
    assert got == [("ok", 0), ("ok", 1), ("ok", 2), ("lost", 3), ("ok", 4), ("ok", 5), ("ok", 6)]


def test_the_lost_row_of_octviewer_predict_names_the_scan_not_an_exception():
    from octviewer.pipeline.parallel import ScreeningJob

    row, notes = ScreeningJob(args=None, synthetic=False).lost((Path("x.dcm"), "vol-1", None))
    assert row["file"] == "vol-1" and "ended unexpectedly" in row["error"] and notes == [("skipped", row["error"])]


# -- F29: Cancel while a large VF table is read --------------------------------------------------------
def test_cancel_is_checked_while_a_large_vf_table_is_read(tmp_path):
    """A 300,000-row visual_fields.csv kept the index busy ~20 s after Cancel, then returned as complete."""
    import threading

    from octviewer.core.cancel import Cancelled
    from octviewer.study import IndexCancelled
    from octviewer.study.vf import read_vf_rows

    study = tmp_path / "study"
    study.mkdir()
    table = study / "visual_fields.csv"
    table.write_text("patient_id,eye,date,md\n" + "".join(f"P{n},OD,2020-01-01,-2\n" for n in range(5000)))
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        read_vf_rows(table, cancel=stop)
    calls = []

    def cancel():  # pressed once the table is being read
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(IndexCancelled):
        index_folder(study, cancel=cancel, cache_dir=tmp_path / "cache")


# -- F9: manifests that disagree about one scan ----------------------------------------------------------
def test_two_manifest_rows_that_disagree_about_a_scan_are_a_problem_not_the_last_one_wins(tmp_path):
    """study/a.csv said scan.npy is P-ALPHA OD, study/sub/b.csv P-BETA OS: the last one read won, problems == []."""
    import numpy as np

    study = tmp_path / "study"
    (study / "sub").mkdir(parents=True)
    np.save(study / "scan.npy", np.zeros((8, 64, 64), np.uint8))
    np.save(study / "agreed.npy", np.zeros((8, 64, 64), np.uint8))
    (study / "a.csv").write_text("path,patient_id,eye,visit\nscan.npy,P-ALPHA,OD,2020-01-01\n"
                                 "agreed.npy,P-GAMMA,OD,2020-01-01\n")
    (study / "sub" / "b.csv").write_text("path,patient_id,eye,visit\n../scan.npy,P-BETA,OS,2021-05-05\n"
                                         "../agreed.npy,P-GAMMA,OD,20200101\n")
    index = index_folder(study, cache_dir=tmp_path / "cache")
    assert [(Path(s.path).name, s.patient_id) for s in index.scans] == [("agreed.npy", "P-GAMMA")]
    [(where, problem)] = index.problems
    assert where == str(study / "scan.npy") and "a.csv row 2" in problem and "sub/b.csv row 2" in problem
    assert "P-ALPHA" not in problem and "P-BETA" not in problem


# -- F19/F22: DICOM header lies --------------------------------------------------------------------------
def _uncompressed(ds):
    ds.decompress()


HEADER_LIES = {
    "signed_over_unsigned": ({"PixelRepresentation": 1}, True, "PixelRepresentation says signed"),
    "signed_over_unsigned_j2k": ({"PixelRepresentation": 1}, False, "PixelRepresentation says signed"),
    "bits_stored_over_allocated": ({"BitsStored": 20}, True, "BitsStored is 20 with BitsAllocated 8"),
    "bits_stored_under_values": ({"BitsStored": 4, "HighBit": 3}, True, "BitsStored is 4, but"),
    "high_bit": ({"HighBit": 0}, True, "HighBit is 0"),
    "rgb": ({"PhotometricInterpretation": "RGB"}, True, "PhotometricInterpretation is 'RGB'"),
    "palette": ({"PhotometricInterpretation": "PALETTE COLOR"}, True, "PALETTE COLOR"),
    "monochrome1": ({"PhotometricInterpretation": "MONOCHROME1"}, True, "MONOCHROME1"),
    "eyes_disagree": ({"ImageLaterality": "L"}, False, "ImageLaterality L, FrameLaterality R"),
    "both_eyes_and_one": ({"ImageLaterality": "B"}, False, "ImageLaterality B, FrameLaterality R"),
}


@pytest.mark.parametrize("case", sorted(HEADER_LIES))
def test_pixel_description_and_laterality_that_contradict_the_data_are_refused_naming_the_field(case, tmp_path):
    """Each loaded without a word: signed over unsigned data (bright tissue wrapped negative), BitsStored
    beyond BitsAllocated or under the values, colour interpretations over grey data, MONOCHROME1 shown
    as MONOCHROME2, and ImageLaterality L over FrameLaterality R read as OS (mirrored sectors)."""
    from octviewer import VolumeReadError

    fields, decompress, reason = HEADER_LIES[case]

    def edit(ds):
        if decompress:
            _uncompressed(ds)
        for name, value in fields.items():
            setattr(ds, name, value)

    path = _edited(tmp_path, f"{case}.dcm", edit)
    with pytest.raises(VolumeReadError, match=reason):
        load_volume(path)
    if case.startswith(("eyes", "both")):  # the study index says the same
        study = tmp_path / "study"
        study.mkdir()
        path.rename(study / path.name)
        index = index_folder(study, cache_dir=tmp_path / "cache")
        assert index.scans == [] and reason in index.problems[0][1]


def test_unknown_image_laterality_leaves_the_eye_to_the_frame(tmp_path):
    path = _edited(tmp_path, "u.dcm", lambda ds: setattr(ds, "ImageLaterality", "U"))
    assert load_volume(path).laterality == "OD"


def test_a_header_cached_before_these_checks_is_read_again(tmp_path):
    """The study index serves headers from its cache by size and time: a scan cached as the patient
    "['A', 'B']" before the checks above would have stayed so."""
    from octviewer.pipeline.store import ResultsStore

    study = tmp_path / "study"
    study.mkdir()
    path = _edited(study, "two.dcm", lambda ds: setattr(ds, "PatientID", "A\\B"))
    st = path.stat()
    store = ResultsStore(tmp_path / "cache" / "results.sqlite")
    store.put_study_headers(str(study.resolve()), {"two.dcm": [st.st_size, st.st_mtime_ns, {
        "kind": "scan", "patient_id": "['A', 'B']", "eye": "OD", "date": "", "scan_pattern": "volume",
        "n_bscans": 64, "synthetic": True}]})
    store.close()
    index = index_folder(study, cache_dir=tmp_path / "cache")
    assert index.scans == [] and "holds 2 values" in index.problems[0][1] and index.from_cache == 0


# -- F17: manifest duplicates by pixel content -------------------------------------------------------------
def test_a_scan_resaved_with_another_patient_id_is_a_duplicate_in_the_manifest(tmp_path):
    """12 copies of one DICOM, pixels identical, PatientID and SOPInstanceUID changed, passed validate as
    12 patients across train/val/test: the content check compared whole-file bytes."""
    from pydicom.uid import generate_uid

    from trainer.manifest import ManifestError, read_manifest

    names = []
    for i in range(3):
        def edit(ds, i=i):
            ds.PatientID, ds.SOPInstanceUID = f"P{i}", generate_uid()
        names.append(_edited(tmp_path, f"copy{i}.dcm", edit).name)
    names.append(_edited(tmp_path, "other_eye.dcm", lambda ds: None, source="demo_normal_OS.dcm").name)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,patient_id,eye,visit,label,vfi,md,psd,split\n" + "".join(
        f"{n},P{i},{'OS' if n == 'other_eye.dcm' else 'OD'},,normal,,,,train\n" for i, n in enumerate(names)))
    with pytest.raises(ManifestError) as err:
        read_manifest(manifest)
    assert err.value.problems == [f"row {r}: duplicate scan: the same content as row 2 (the same pixel data under "
                                  "other header fields, encoding or format)" for r in (3, 4)]
