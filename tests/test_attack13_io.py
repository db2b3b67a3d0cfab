"""Attack run 13 (H79), the readers' rules for what is one scan's pixels (fixed by H80): a folder of B-scans
named with two numbers (A13-1), label masks as a TIFF stack or a NumPy file (A13-5), and a patient's surname
read as "mask" (A13-6). Each goes through File > Open folder… / File > Open with the dialog patched, or a
command's ``main``."""

from __future__ import annotations

import csv

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


# ---------------------------------------------------------------- A13-5: label masks in any pixel stack


def _mask_volume() -> np.ndarray:
    """A layer mask of a scan: its grey values quantised to 4 levels (0, 60, 120, 180)."""
    data = oct_like((8, 64, 48))
    return (np.digitize(data, np.percentile(data, [40, 70, 90])) * 60).astype(np.uint8)


def _write_stack(path, data) -> None:
    import tifffile

    from octviewer import OctVolume, save_volume

    if path.suffix == ".tif":
        tifffile.imwrite(path, data, photometric="minisblack")
    elif path.suffix == ".npy":
        np.save(path, data)
    elif path.name.startswith("ours"):
        save_volume(OctVolume(data=data), path)  # write_npz, no spacing: a stack saved again
    else:
        np.savez(path, oct_bscans=data)  # the Harvard-GF layout


def _open_file(qtbot, w, monkeypatch, path, count: int) -> None:
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: len(w.warnings) == count or (w.state.volume is not None and w.state.complete
                                                         and w.state.volume.source == str(path)), timeout=60000)


@pytest.mark.gui
def test_label_masks_are_refused_as_a_tiff_stack_or_numpy_file_as_in_a_folder(qtbot, window, monkeypatch, tmp_path):
    """The same 4-level masks were refused as a folder of PNGs and opened as "volume scan, 8 B-scans" as a TIFF
    stack, a .npy, or a .npz (ours without spacing, Harvard-GF layout). Now each is refused in the folder's
    words; the scan they label still opens in each format."""
    w = window
    mask = _mask_volume()
    folder = _write_pngs(tmp_path / "maskfolder", mask, [f"B{i + 1:03d}.png" for i in range(8)])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert len(w.warnings) == 1 and "only 4 grey levels: a label mask or segmentation" in w.warnings[0]
    for k, name in enumerate(["mask.tif", "mask.npy", "ours_mask.npz", "harvard_mask.npz"], start=2):
        path = tmp_path / name
        _write_stack(path, mask)
        _open_file(qtbot, w, monkeypatch, path, k)
        assert len(w.warnings) == k, name
        assert f"{name}: this volume has only 4 grey levels: a label mask or segmentation" in w.warnings[-1]
        assert w.state.volume is None
    scan = oct_like((8, 64, 48))
    for name in ["scan.tif", "scan.npy", "ours_scan.npz", "harvard_scan.npz"]:
        path = tmp_path / name
        _write_stack(path, scan)
        _open_file(qtbot, w, monkeypatch, path, 99)
        assert len(w.warnings) == 5, w.warnings[5:]
        np.testing.assert_array_equal(w.state.volume.data, scan)


@pytest.mark.gui
def test_our_npz_with_a_spacing_is_a_device_scan_saved_again_and_opens(qtbot, window, monkeypatch, tmp_path):
    """write_npz records a spacing only for a volume read from a device file, whose header the reader took as a
    scan's: the .npz keeps opening as that file did, few grey levels or not (check_not_label_mask's docstring)."""
    from octviewer import OctVolume, Spacing, save_volume

    w = window
    path = tmp_path / "saved.npz"
    save_volume(OctVolume(data=_mask_volume(), spacing=Spacing(0.1, 0.004, 0.02)), path)
    _open_file(qtbot, w, monkeypatch, path, 99)
    assert not w.warnings
    np.testing.assert_array_equal(w.state.volume.data, _mask_volume())


def test_measure_refuses_a_mask_stack_as_unreadable(tmp_path, capsys):
    """The command line: octviewer-measure measured a TIFF stack of masks as a scan; now its row says why not."""
    from octviewer.pipeline.measure_cli import main

    path = tmp_path / "masks.tif"
    _write_stack(path, _mask_volume())
    out = tmp_path / "m.csv"
    assert main([str(path), "--out", str(out), "--no-store", "--no-pseudonymise"]) == 1
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 1 and rows[0]["quality"].startswith("unreadable")
    assert "only 4 grey levels: a label mask or segmentation" in rows[0]["quality"]
    assert "only 4 grey levels" in capsys.readouterr().err


def test_a_large_scan_is_counted_from_a_sample_and_a_large_mask_whole():
    """The cost: a scan's levels show in a sample (the whole is never compared); a mask is read whole, so a level
    the sample missed still counts."""
    import time

    from octviewer.io.stacks import MAX_MASK_LEVELS, grey_levels

    scan = np.random.default_rng(0).integers(0, 256, (128, 512, 512), dtype=np.uint8)
    start = time.perf_counter()
    assert grey_levels(scan, MAX_MASK_LEVELS) > MAX_MASK_LEVELS
    assert time.perf_counter() - start < 0.5
    mask = scan // 64
    mask[-1, -1, -1] = 200  # one voxel outside the sample
    assert grey_levels(mask, MAX_MASK_LEVELS) == 5
    assert grey_levels(np.zeros((4, 8, 8), np.float32), MAX_MASK_LEVELS) == 1


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


def test_our_npz_without_a_spacing_says_so_when_opened_again(tmp_path):
    """A stack saved as our .npz records its spacing as [null, null, null]; opened again it lost the "no physical
    spacing" note (read as a recorded spacing), so nothing said why distances and the scale bar were missing (H80)."""
    import numpy as np

    from octviewer.core import OctVolume
    from octviewer.io import load_volume
    from octviewer.io.stacks import NO_SPACING, write_npz

    data = np.random.default_rng(0).integers(0, 255, (4, 32, 16), dtype=np.uint8)
    write_npz(OctVolume(data=data, notes=(NO_SPACING,)), tmp_path / "stack.npz")
    again = load_volume(tmp_path / "stack.npz")
    assert not again.spacing.known and NO_SPACING in again.notes
