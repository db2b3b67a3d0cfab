"""Issue 27's leftovers (H87): a swap of two rows in a cohort of one scan per patient (A13-16), fit's run folder made
before its manifest was read, a folder of B-scans numbered with a gap (A13-1's leftover) and two eyes' B-scans
renamed into one numbered series (walk-through H82, W7). Each through the command's main or the window's
File > Open folder… with its dialog patched."""

from __future__ import annotations

import html
import os
import shutil

import numpy as np
import pytest
from corpus import oct_like
from test_attack12_trainer import _rows, _write  # noqa: E402
from test_folder_h74 import _open_bscan_folder, _write_pngs


def _one_scan_per_patient(manifest):
    """Each patient's first OD row (a cross-sectional cohort, the usual shape of public data sets), paths absolute."""
    seen, rows = set(), []
    for r in _rows(manifest):
        if r["patient_id"] not in seen and r["eye"] == "OD":
            seen.add(r["patient_id"])
            rows.append({**r, "path": str(manifest.parent / r["path"]), "split": ""})
    return rows


# ---------------------------------------------------------------- A13-16: a swap with one scan per patient


def test_a13_16_two_swapped_rows_of_a_one_scan_per_patient_cohort_are_refused_by_trainer_and_study(tiny_cohort,
                                                                                                    capsys):
    """Rows of a normal and a glaucoma patient with their paths swapped: each scan's header names the OTHER row's
    patient, which no re-keyed export does. validate passed them ('a re-keyed export?', rc 0) and the study index
    used them with a warning; both leave them out now, by one rule (study.index.mixed_patient_scans)."""
    from octviewer.study.index import index_manifest
    from trainer.cli import main

    rows = _one_scan_per_patient(tiny_cohort)
    a = next(k for k, r in enumerate(rows) if r["label"] == "normal")
    b = next(k for k, r in enumerate(rows) if r["label"] == "glaucoma")
    rows[a]["path"], rows[b]["path"] = rows[b]["path"], rows[a]["path"]
    manifest = _write(rows, tiny_cohort.parent / "h87_swap_single.csv")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    for k, other in ((a, b), (b, a)):
        assert f"row {k + 2}: its scan's own header names the patient of row {other + 2}, whose own scans' headers " \
               "name someone else (rows swapped?); it is not used" in err, err
    assert "2 problem(s)" in err and "re-keyed" not in err and "SYN" not in err, err
    index = index_manifest(manifest)  # Open study manifest's reader: the same two scans left out, listed
    left_out = {os.path.realpath(p) for p, why in index.problems if "another patient of the study" in why}
    assert left_out == {os.path.realpath(rows[a]["path"]), os.path.realpath(rows[b]["path"])}, index.problems
    assert len(index.scans) == len(rows) - 2


def test_a13_16_one_persons_eyes_under_their_id_and_a_per_eye_id_still_pass(tiny_cohort, capsys):
    """P and P-OS, both scans' headers naming P (one person's eyes, one ID kept plain): the header ID is a row's
    patient whose own scan names them, so nothing is refused; the split keeps them together ('one per eye?')."""
    from trainer.cli import main

    rows = [{**r, "path": str(tiny_cohort.parent / r["path"]), "split": ""} for r in _rows(tiny_cohort)]
    person = next(p for p in (r["patient_id"] for r in rows) if {r["eye"] for r in rows if r["patient_id"] == p}
                  == {"OD", "OS"})
    for r in rows:
        if r["patient_id"] == person and r["eye"] == "OS":
            r["patient_id"] = f"{person}-OS"
    manifest = _write(rows, tiny_cohort.parent / "h87_per_eye.csv")
    assert main(["validate", "--data", str(manifest)]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "one per eye?" in err and "rows swapped" not in err, err


# ---------------------------------------------------------------- fit: nothing made before the manifest passes


FIT = ["--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu", "--variant", "resnet2d"]


def test_fit_refusing_its_manifest_makes_no_run_folder_cache_or_progress_file(tiny_cohort, tmp_path, capsys):
    """A manifest with a bad row: fit refuses it (exit 2) and leaves nothing on disk; it had made the run folder
    (and the --progress-json file) first, then refused, leaving an empty run folder behind."""
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    rows[3]["label"] = "maybe"
    manifest = _write([{**r, "path": str(tiny_cohort.parent / r["path"])} for r in rows], tmp_path / "bad.csv")
    run, cache, progress = tmp_path / "runs" / "run1", tmp_path / "cache", tmp_path / "progress.jsonl"
    assert main(["fit", "--data", str(manifest), "--out", str(run), "--cache-dir", str(cache),
                 "--progress-json", str(progress), *FIT]) == 2
    assert "row 5: unknown label 'maybe'" in capsys.readouterr().err
    assert not run.parent.exists() and not cache.exists() and not progress.exists()
    # a --device this computer lacks: one line before anything is made (it was a RuntimeError traceback after the
    # run folder and the whole cache were made)
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), *FIT, "--device", "mps"]) == 2
    err = capsys.readouterr().err
    assert "error: --device mps: MPS was requested but this computer has no Apple GPU" in err, err
    assert not run.parent.exists()
    # an --out that cannot be made is still refused at once (exit 3: a bad output path), before the manifest
    (tmp_path / "afile").write_text("x")
    assert main(["fit", "--data", str(manifest), "--out", str(tmp_path / "afile" / "run"), *FIT]) == 3
    err = capsys.readouterr().err
    assert "cannot be made" in err and "unknown label" not in err, err
    assert main(["fit", "--data", str(manifest), "--out", str(tmp_path / "afile"), *FIT]) == 3
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "unknown label" not in err, err


# ---------------------------------------------------------------- A13-1's leftover: two exports numbered apart


@pytest.mark.gui
def test_a_folder_of_two_series_numbered_apart_is_refused_naming_the_two_runs(qtbot, window, monkeypatch, tmp_path):
    """B001 .. B016 and B101 .. B116 (two scans' exports in one folder: one pattern, one running number, no number
    twice) opened as one 32-B-scan scan. Refused now, naming the folder and both runs."""
    w = window
    names = [f"B{n:03d}.png" for n in [*range(1, 17), *range(101, 117)]]
    folder = _write_pngs(tmp_path / "two_exports", oct_like((32, 64, 48)), names)
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None and len(w.warnings) == 1
    assert "two_exports: the B-scan numbers jump from 16 to 101: B001.png .. B016.png (16 B-scans) and " \
           "B101.png .. B116.png (16) look like two scans' B-scans in one folder" in html.unescape(w.warnings[0])


@pytest.mark.gui
def test_a_folder_missing_one_b_scan_opens_and_the_window_says_it(qtbot, window, monkeypatch, tmp_path):
    """One number missing (B006 lost) is a B-scan lost from one scan: it opens, and the Results panel says so under
    the scan's line; every 4th B-scan (B0, B4, B8 ...) is a series of step 4 with nothing missing."""
    w = window
    data = oct_like((11, 64, 48))
    names = [f"B{n:03d}.png" for n in range(1, 13) if n != 6]
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "lost", data, names))
    assert not w.warnings and w.state.volume.n_bscans == 11
    assert "1 B-scan number is missing from the series (between 5 and 7)" in w.results.caveats.text()
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "every4", data, [f"B{4 * k}.png"
                                                                                        for k in range(11)]))
    qtbot.waitUntil(lambda: str(w.state.volume.source).endswith("every4") and w.state.complete, timeout=60000)
    assert not w.warnings and w.state.volume.n_bscans == 11
    assert "missing" not in w.results.caveats.text()


# ---------------------------------------------------------------- W7: two eyes' B-scans renamed into one series


@pytest.mark.gui
def test_two_eyes_b_scans_numbered_as_one_series_open_with_the_window_saying_they_look_unlike(
        qtbot, window, monkeypatch, tmp_path, samples_dir):
    """The two real Cirrus B-scans of different eyes renamed bscan_001.png, bscan_002.png opened as "volume scan,
    2 B-scans" with no word. Their thumbnails correlate 0.35, neighbours of one scan 0.8 or more: the scan opens
    and the Results panel says it (a warning, not a refusal: see io.stacks.unlike_pair for the margin)."""
    w = window
    folder = tmp_path / "two_eyes"
    folder.mkdir()
    tracings = samples_dir / "real_tracings"
    shutil.copy(tracings / "OCTseg-Zeiss_test_img_im0100.png", folder / "bscan_001.png")  # a temporary folder only
    shutil.copy(tracings / "OCTseg-Zeiss_train_img_im00001.png", folder / "bscan_002.png")
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings and w.state.volume.n_bscans == 2
    text = w.results.caveats.text()
    assert "B-scans 1 and 2 of 2 look unlike neighbouring B-scans of one scan (their thumbnails correlate 0.35" in text
    assert "bscan_00" not in text  # no file name in a note (names may carry the patient's)


@pytest.mark.gui
def test_a_synthetic_cube_as_a_folder_of_b_scans_opens_without_the_unlike_note(qtbot, window, monkeypatch, tmp_path):
    """Neighbouring B-scans of one cube (octviewer-synth, 16 B-scans 400 um apart, the sparsest preset) pass."""
    from octviewer.synth import random_eye, synth_scan

    w = window
    data = synth_scan(random_eye(np.random.default_rng(4), "OD", True), "tiny", seed=4).volume.data
    folder = _write_pngs(tmp_path / "cube", data, [f"bscan_{k + 1:03d}.png" for k in range(len(data))])
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert not w.warnings and w.state.volume.n_bscans == len(data)
    assert "look unlike" not in w.results.caveats.text()
