"""Attack run 20 (H117): A20-7, two genuine rows of a clinic's visual-field table for one eye a year or more apart
with equal rounded VFI, MD and PSD (a stable eye) were taken for "a re-dated copy" and the later field left out;
A20-6, a HEYEX XML export folder was taken for a file stating no pixel size among copies of one scan at a visit; and
attack run 18's A18-30 (a HEYEX export's B-scan count), which shares the manifest step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_attack16_copies import progressing  # noqa: E402,F401


def _open_manifest(qtbot, window, monkeypatch, tmp_path, rows):
    """File > Open study manifest of ``rows`` (path, patient, eye, visit); the Study panel."""
    import csv

    from PySide6.QtWidgets import QFileDialog

    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "patient_id", "eye", "visit"], *rows])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    return window.study.panel


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
def test_a21_2_a_field_table_split_over_two_files_keeps_a_stable_eyes_equal_rows(  # noqa: F811
        qtbot, window, monkeypatch, progressing, tmp_path):  # noqa: F811
    """Attack run 21 (A21-2): a clinic's yearly exports of one table; equal rows in two files are two tests."""
    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    head = "patient_id,eye,date,vfi,md,psd\n"
    (root / "fields_2018_2019.csv").write_text(
        head + "DEMO00-000,OD,2018-09-20,99,-0.4,1.5\nDEMO00-000,OD,2019-09-26,98,-0.6,1.6\n")
    (root / "fields_2020_2021.csv").write_text(
        head + "DEMO00-000,OD,2020-10-07,99,-0.4,1.5\nDEMO00-000,OD,2021-09-27,97,-0.9,1.7\n")
    panel = _open_folder(qtbot, window, monkeypatch, root)
    dates = sorted(m.date.isoformat() for m in panel.index.vf if m.eye == "OD")
    assert dates == ["2018-09-20", "2019-09-26", "2020-10-07", "2021-09-27"], dates
    assert "re-dated copy" not in " ".join(panel.problems.text().split())


@pytest.mark.gui
def test_a20_6_a_heyex_export_folder_is_kept_before_its_numpy_export(qtbot, window, monkeypatch, samples_dir,
                                                                     tmp_path):
    """A visit listing a HEYEX XML export and its NumPy export (which states no pixel size) kept the NumPy file,
    first by name, and the visit lost its µm figures: the folder was taken for one that states no pixel size."""
    import numpy as np

    from octviewer.io.loading import load_volume

    heyex = shutil.copytree(samples_dir / "eyepy_synthetic" / "heyex_xml" / "test_volume", tmp_path / "z_heyex")
    npy = tmp_path / "a_export.npy"
    np.save(npy, load_volume(heyex).data)
    panel = _open_manifest(qtbot, window, monkeypatch, tmp_path, [[npy, "P1", "OD", "2020-01-01"],
                                                                  [heyex, "P1", "OD", "2020-01-01"]])
    assert [s.path for s in panel.index.scans] == [str(heyex)], panel.index.scans


@pytest.mark.gui
def test_a18_30_open_study_manifest_finds_a_heyex_export_and_its_numpy_copy_under_two_patients(
        qtbot, window, monkeypatch, samples_dir, tmp_path):
    """Attack run 18, A18-30: a HEYEX XML export folder counted its localizer (SLO/NIR) image as a B-scan, so its
    B-scan count never matched its own scan's elsewhere and the study never compared it by content: the same scan
    listed under another patient as a NumPy export was used under both, nothing said. The count is now the XML's
    OCT images (``io.heidelberg.heyex_bscan_count``)."""
    import numpy as np

    from octviewer.io.content import bscan_count
    from octviewer.io.loading import load_volume

    heyex = shutil.copytree(samples_dir / "eyepy_synthetic" / "heyex_xml" / "test_volume", tmp_path / "heyex")
    assert bscan_count(heyex) == load_volume(heyex).n_bscans == 10  # the localizer is no B-scan
    copy = tmp_path / "P2_export.npy"
    np.save(copy, load_volume(heyex).data)
    panel = _open_manifest(qtbot, window, monkeypatch, tmp_path, [[heyex, "P1", "OD", "2020-01-01"],
                                                                  [copy, "P2", "OD", "2020-01-01"]])
    assert not {s.path for s in panel.index.scans} & {str(heyex), str(copy)}, panel.index.scans
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "filed under the patients P1 and P2: whose scan it is cannot be told; neither is used" in problems, problems
