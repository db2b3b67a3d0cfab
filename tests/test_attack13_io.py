"""Attack run 13 (H79), the readers' rules for what is one scan's pixels (fixed by H80): a folder of B-scans
named with two numbers (A13-1), label masks as a TIFF stack or a NumPy file (A13-5), and a patient's surname
read as "mask" (A13-6). Each goes through File > Open folder… / File > Open with the dialog patched, or a
command's ``main``."""

from __future__ import annotations

import numpy as np
import pytest
from corpus import oct_like
from test_folder_h74 import _open_bscan_folder, _write_pngs

# ---------------------------------------------------------------- A13-1: one running number, not two


@pytest.mark.gui
def test_a_folder_of_two_patients_numbered_b_scans_is_refused_naming_two_files(qtbot, window, monkeypatch, tmp_path):
    """``patient1_bscan001.png`` .. ``patient2_bscan004.png``: two eyes of two patients passed the one-series rule
    (every digit run became '#') and opened as one 8-B-scan scan. Now refused, naming two files that differ in the
    patient number, and nothing is open."""
    w = window
    names = [f"patient{p}_bscan{b:03d}.png" for p in (1, 2) for b in range(1, 5)]
    folder = _write_pngs(tmp_path / "twoeyes", oct_like((8, 64, 48)), names)
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None
    assert len(w.warnings) == 1
    assert "patient1_bscan001.png and patient2_bscan001.png differ in more than the B-scan number" in w.warnings[0]


@pytest.mark.gui
def test_a_b_scan_number_given_twice_is_refused_naming_both_files(qtbot, window, monkeypatch, tmp_path):
    """``B1.png`` and ``B001.png`` are both B-scan 1 (the same series by the name pattern): one of them came from
    another scan, or is the same B-scan twice. It opened as a 5-B-scan scan."""
    w = window
    folder = _write_pngs(tmp_path / "twice", oct_like((5, 64, 48)), ["B1.png", "B2.png", "B3.png", "B4.png",
                                                                   "B001.png"])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None
    assert len(w.warnings) == 1 and "carry the same B-scan number (1)" in w.warnings[0]
    assert "B1.png" in w.warnings[0] and "B001.png" in w.warnings[0]


@pytest.mark.gui
@pytest.mark.parametrize("pattern", ["B{}.png", "B{:03d}.png", "scan_2019_{:03d}.png", "Subject_01_eye_2_{}.png"])
def test_one_running_number_beside_fixed_numbers_still_opens(qtbot, window, monkeypatch, tmp_path, pattern):
    """One number that runs (with or without zero padding, across 1 and 2 digits) beside numbers that are the same
    in every name (a year, a subject) is one scan's series, opened in number order."""
    w = window
    data = oct_like((12, 64, 48))
    folder = _write_pngs(tmp_path / "cube", data, [pattern.format(i + 1) for i in range(12)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings
    np.testing.assert_array_equal(w.state.volume.data, data)


# ---------------------------------------------------------------- A13-6: a surname is no "mask"


@pytest.mark.gui
@pytest.mark.parametrize("surname", ["HANNOTAUX", "MASKELL", "LABELLE", "DAMASKE"])
def test_a_patients_surname_holding_mask_or_label_is_no_label_mask(qtbot, window, monkeypatch, tmp_path, surname):
    """A clinic's ``HANNOTAUX_Jean_001.png`` .. was refused as "the folder holds label masks" ("annot" inside the
    name); the words are whole words now, and the scan opens."""
    w = window
    data = oct_like((6, 64, 48))
    folder = _write_pngs(tmp_path / surname, data, [f"{surname}_Jean_{i + 1:03d}.png" for i in range(6)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings
    np.testing.assert_array_equal(w.state.volume.data, data)


@pytest.mark.gui
@pytest.mark.parametrize("mask_name", ["B1_mask.png", "B1-labels.png", "annotation_B1.png", "B1 Annotated.png",
                                       "B1_seg.png"])
def test_masks_named_as_masks_are_still_refused_by_name(qtbot, window, monkeypatch, tmp_path, mask_name):
    w = window
    folder = _write_pngs(tmp_path / "named", oct_like((3, 64, 48)), ["B1.png", "B2.png", mask_name])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None
    assert len(w.warnings) == 1 and f"the folder holds label masks, not only B-scans: {mask_name}" in w.warnings[0]
