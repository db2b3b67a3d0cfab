"""Attack run 18, A18-30: a Heidelberg HEYEX XML export folder counted its localizer (SLO/NIR) image as a B-scan, so
its B-scan count never matched its own scan's elsewhere and the study never compared it by content: the same scan
listed under another patient as a NumPy export was used under both, nothing said (the trainer refuses such rows by
content). The count is now the XML's OCT images (``io.heidelberg.heyex_bscan_count``)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest


@pytest.mark.gui
def test_open_study_manifest_finds_a_heyex_export_and_its_numpy_copy_under_two_patients(
        qtbot, window, monkeypatch, samples_dir, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    from octviewer.io.content import bscan_count
    from octviewer.io.loading import load_volume

    heyex = shutil.copytree(samples_dir / "eyepy_synthetic" / "heyex_xml" / "test_volume", tmp_path / "heyex")
    assert bscan_count(heyex) == load_volume(heyex).n_bscans == 10  # the localizer is no B-scan
    copy = tmp_path / "P2_export.npy"
    np.save(copy, load_volume(heyex).data)
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([["path", "patient_id", "eye", "visit"], [heyex, "P1", "OD", "2020-01-01"],
                                 [copy, "P2", "OD", "2020-01-01"]])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    assert not {s.path for s in panel.index.scans} & {str(heyex), str(copy)}, panel.index.scans
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert "filed under the patients P1 and P2: whose scan it is cannot be told; neither is used" in problems, problems
