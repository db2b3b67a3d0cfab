"""Attack run 14 (H85), the DICOM reader's eye (A14-3): ImageLaterality ``L\\R`` was read as no value and the
scan opened, was predicted and measured as the other field's eye (OD) without a word; "X" was skipped silently.
Several values are a contradiction refused in ``eye_of``'s words, by every reader of the eye (the scan reader the
commands use, the study index); a value that is no laterality code is a note on the volume."""

from __future__ import annotations

import csv

import pydicom
import pytest

from octviewer.resources import DEMO_SAMPLES


def _with_laterality(tmp_path, name: str, value):
    """The demo OD scan (ImageLaterality R, shared FrameLaterality R) with ImageLaterality ``value``."""
    ds = pydicom.dcmread(DEMO_SAMPLES / "demo_normal_OD.dcm")
    ds.ImageLaterality = value
    path = tmp_path / name
    ds.save_as(path)
    return path


@pytest.mark.parametrize("value, shown", [(["L", "R"], "L\\R"), (["R", "L"], "R\\L"), (["R", "R"], "R\\R")])
def test_predict_refuses_a_laterality_field_of_several_values_in_eye_ofs_words(tmp_path, capsys, value, shown):
    from octviewer.pipeline.predict_cli import main

    scan = _with_laterality(tmp_path, "lat.dcm", value)
    out = tmp_path / "p.csv"
    assert main([str(scan), "--out", str(out), "--no-store", "--no-pseudonymise", "--device", "cpu"]) == 1
    [row] = list(csv.DictReader(out.open(encoding="utf-8")))
    assert not row["laterality"] and not row["probability"]  # it was OD, 0.19, "normal"
    assert f"lat.dcm: ImageLaterality holds 2 values ({shown}): one field, one value; which eye the scan is " \
           "cannot be told" in row["error"]
    assert "1 failed" in capsys.readouterr().out


def test_the_study_index_refuses_it_by_the_same_rule(tmp_path):
    """Open study folder… reads the eye from the headers through ``eye_of`` too: the scan is left out, said."""
    from octviewer.study.index import index_folder

    folder = tmp_path / "study"
    folder.mkdir()
    _with_laterality(folder, "lat.dcm", ["L", "R"])
    index = index_folder(folder)
    assert index.scans == []
    assert "ImageLaterality holds 2 values (L\\R)" in index.problems_text()


def test_a_laterality_value_that_is_no_eye_code_is_said_in_a_note(tmp_path):
    from octviewer.io import load_volume

    volume = load_volume(_with_laterality(tmp_path, "x.dcm", "X"))
    assert volume.laterality == "OD"  # FrameLaterality R says it; "X" says nothing
    assert "ImageLaterality 'X' is no laterality code (R, L, B or U): not used for the eye" in volume.notes
    for code in ("R", "U", "B"):  # a code is no note ("B" beside FrameLaterality R: refused as before)
        try:
            notes = load_volume(_with_laterality(tmp_path, f"{code}.dcm", code)).notes
        except Exception as exc:  # noqa: BLE001
            assert code == "B" and "disagree" in str(exc)
            continue
        assert not any("laterality code" in n for n in notes)


# ---------------------------------------------------------------- A14-4: a CAM that would replace an input


def _scan_and_numpy_volume(folder):
    """b.dcm (a demo scan) and b_cam.npy: a NumPy volume (3-D) that a user named so, beside it."""
    import shutil

    import numpy as np

    from octviewer.io import load_volume

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO_SAMPLES / "demo_normal_OD.dcm", folder / "b.dcm")
    np.save(folder / "b_cam.npy", load_volume(DEMO_SAMPLES / "demo_early_glaucoma_OS.dcm").data)
    return folder / "b.dcm", folder / "b_cam.npy"


@pytest.mark.parametrize("pseudonymise", [False, True])
def test_predict_refuses_a_cam_that_would_replace_an_input_named_on_the_command_line(tmp_path, capsys,
                                                                                      pseudonymise):
    """``octviewer-predict b.dcm b_cam.npy --cam-out <their folder>`` dropped the named input b_cam.npy as "our own
    CAM" and replaced it with b.dcm's CAM, exit 0. A file named on the command line is an input: a CAM whose path
    is one is refused as --out or --key-file naming one is (exit 3, nothing written); pseudonymised, the CAM's
    name is a key, so the named b_cam.npy is read as a scan and kept."""
    from octviewer.pipeline.predict_cli import main

    scan, volume = _scan_and_numpy_volume(tmp_path / "in")
    before = volume.read_bytes()
    out = tmp_path / "p.csv"
    code = main([str(scan), str(volume), "--cam-out", str(volume.parent), "--out", str(out), "--no-store",
                 "--device", "cpu", "--no-quality-gate", *([] if pseudonymise else ["--no-pseudonymise"])])
    err = capsys.readouterr().err
    assert volume.read_bytes() == before  # the scan was overwritten by b.dcm's 4 kB CAM
    if not pseudonymise:
        assert code == 3 and f"--cam-out {volume} is one of the inputs; refusing to overwrite a scan" in err
        assert not out.exists() and not list(volume.parent.glob("*.tmp"))
    else:
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
        assert len(rows) == 2 and "CAM file(s)" not in err  # both inputs analysed; it was "1 analysed"
        assert len(list(volume.parent.glob("vol-*_cam.npy"))) == 2


def test_only_cams_found_in_a_folder_and_shaped_as_ours_are_passed_over(tmp_path, capsys):
    """A folder given as input that is also --cam-out: an earlier run's CAM (2-D float) is not read as a scan, a
    NumPy volume named *_cam.npy is, and the CAM b.dcm would write over it is refused."""
    import numpy as np

    from octviewer.pipeline.predict_cli import main

    folder = tmp_path / "in"
    scan, volume = _scan_and_numpy_volume(folder)
    np.save(folder / "vol-0123456789abcdef_cam.npy", np.zeros((16, 64), np.float32))  # an earlier run's
    out = tmp_path / "p.csv"
    assert main([str(folder), "--cam-out", str(folder), "--out", str(out), "--no-store", "--device", "cpu",
                 "--no-pseudonymise"]) == 3
    err = capsys.readouterr().err
    assert "1 CAM file(s) of --cam-out in the input folders are not read as scans" in err
    assert f"--cam-out {volume} is one of the inputs; refusing to overwrite a scan" in err
    assert np.load(volume).ndim == 3


# ---------------------------------------------------------------- A14-7: B-scan names compared as they are


@pytest.mark.gui
def test_a_folder_of_b_scans_whose_names_differ_only_in_case_is_two_exports(qtbot, window, monkeypatch, tmp_path):
    """``B001..B004.png`` beside ``b005..b008.png`` (one eye's export and another's) opened as one 8-B-scan scan: the
    one-series rule folded case. Now "2 kinds of name", not opened; a suffix's case alone (.PNG) still opens."""
    from corpus import oct_like
    from test_folder_h74 import _open_bscan_folder, _write_pngs

    w = window
    names = [f"B{i:03d}.{'PNG' if i % 2 else 'png'}" for i in range(1, 9)]
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "suffix", oct_like((8, 64, 48)), names))
    assert not w.warnings and w.state.volume.n_bscans == 8
    before = w.state.volume
    names = [f"B{i:03d}.png" for i in range(1, 5)] + [f"b{i:03d}.png" for i in range(5, 9)]
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "case", oct_like((8, 64, 48)), names))
    qtbot.waitUntil(lambda: bool(w.warnings), timeout=60000)  # the scan on screen met the helper's wait at once
    assert w.state.volume is before and len(w.warnings) == 1  # refused; the scan on screen stays
    assert "do not form one numbered series (2 kinds of name: B001.png, b005.png)" in w.warnings[0], w.warnings


# ---------------------------------------------------------------- A14-15: a date field of several values


@pytest.mark.parametrize("field, value", [("AcquisitionDateTime", ["20190924101010", "20200101101010"]),
                                          ("ContentDate", ["20200101", "20190924"])])
def test_a_date_field_of_several_values_gives_no_date_and_says_so(tmp_path, field, value):
    """The reader's date (``io.dicom.scan_date``): a field of two values read as the text "['2019...', ...]",
    no date, without a word. Now the date is unknown and a note says which field holds how many values."""
    from octviewer.io import load_volume

    ds = pydicom.dcmread(DEMO_SAMPLES / "demo_normal_OD.dcm")
    for name in ("AcquisitionDateTime", "ContentDate"):
        if name in ds:
            del ds[name]
    ds.StudyDate = "20180101"  # not reached: the field of several values decides that the date is unknown
    setattr(ds, field, value)
    ds.save_as(tmp_path / "d.dcm")
    volume = load_volume(tmp_path / "d.dcm")
    assert volume.acquired is None
    assert f"{field} holds 2 values ({value[0]}\\{value[1]}): one field, one value; the date is unknown" \
        in volume.notes, volume.notes

