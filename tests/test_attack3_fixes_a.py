"""Attack run 3 (issue 27), part A: the trainer's import, outputs naming octviewer's own secrets, and
command arguments that ended in a traceback. Each test failed on the code before its fix."""

from __future__ import annotations

import os

import numpy as np
import pytest


def _zenodo(tmp_path):
    root = tmp_path / "zen"
    root.mkdir()
    cube = root / "POAG-001-2019-03-02-OD.npy"
    np.save(cube, np.zeros((4, 8, 8), np.uint8))
    np.save(root / "Normal-002-2019-03-02-OS.npy", np.zeros((4, 8, 8), np.uint8))
    return root, cube


# -- F1: import --out is checked like the other trainer outputs -----------------------------------------
def test_import_out_naming_an_imported_cube_is_refused_and_the_cube_kept(tmp_path, capsys):
    from trainer.cli import main

    root, cube = _zenodo(tmp_path)
    before = cube.read_bytes()
    assert main(["import", "zenodo-onh", str(root), "--out", str(cube)]) == 3
    assert cube.read_bytes() == before
    assert "names an input" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["link", "folder", "under_a_file", "proc"])
def test_import_out_that_cannot_be_written_is_one_line_exit_3(case, tmp_path, capsys):
    from trainer.cli import main

    root, _ = _zenodo(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("clinic notes")
    out = {"link": tmp_path / "link.csv", "folder": tmp_path, "under_a_file": notes / "x.csv",
           "proc": "/proc/x.csv"}[case]
    if case == "link":
        out.symlink_to(notes)
    assert main(["import", "zenodo-onh", str(root), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --out")
    assert notes.read_text() == "clinic notes"


def test_import_out_writes_the_manifest(tmp_path):
    from trainer.cli import main

    root, _ = _zenodo(tmp_path)
    assert main(["import", "zenodo-onh", str(root), "--out", str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") == 3
