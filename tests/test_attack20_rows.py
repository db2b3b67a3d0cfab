"""Attack run 20 (H117): A20-7, two genuine rows of a clinic's visual-field table for one eye a year or more apart with
equal rounded VFI, MD and PSD (a stable eye) were taken for "a re-dated copy" and the later field left out; A20-6, a
HEYEX XML export folder was taken for a file stating no pixel size among copies of one scan at a visit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_attack16_copies import progressing  # noqa: E402,F401


@pytest.mark.gui
def test_a20_7_two_rows_of_one_table_with_equal_values_are_two_fields(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").write_text(
        "patient_id,eye,date,vfi,md,psd\nDEMO00-000,OD,2018-09-20,99,-0.4,1.5\nDEMO00-000,OD,2019-09-26,98,-0.6,1.6\n"
        "DEMO00-000,OD,2020-10-07,99,-0.4,1.5\nDEMO00-000,OD,2021-09-27,97,-0.9,1.7\n")
    panel = _open_folder(qtbot, window, monkeypatch, root)
    dates = sorted(m.date.isoformat() for m in panel.index.vf if m.eye == "OD")
    assert dates == ["2018-09-20", "2019-09-26", "2020-10-07", "2021-09-27"], dates
    assert "re-dated copy" not in " ".join(panel.problems.text().split())


@pytest.mark.gui
def test_a20_6_a_heyex_export_folder_is_kept_before_its_numpy_export(qtbot, window, monkeypatch, samples_dir,
                                                                     tmp_path):
    """A visit listing a HEYEX XML export and its NumPy export (which states no pixel size) kept the NumPy file,
    first by name, and the visit lost its µm figures: the folder was taken for one that states no pixel size."""
    import csv

    import numpy as np
    from PySide6.QtWidgets import QFileDialog

    from octviewer.io.loading import load_volume

    heyex = shutil.copytree(samples_dir / "eyepy_synthetic" / "heyex_xml" / "test_volume", tmp_path / "z_heyex")
    npy = tmp_path / "a_export.npy"
    np.save(npy, load_volume(heyex).data)
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "patient_id", "eye", "visit"], [npy, "P1", "OD", "2020-01-01"],
                                 [heyex, "P1", "OD", "2020-01-01"]])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    assert [s.path for s in window.study.panel.index.scans] == [str(heyex)], window.study.panel.index.scans
