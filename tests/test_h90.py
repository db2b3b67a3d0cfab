"""Attack run 14's low findings A14-6, A14-12, A14-13, A14-14 (H90): each through the command's main or the window."""

from __future__ import annotations

import os

import pytest
from test_attack12_trainer import _rows, _write  # noqa: E402

from trainer import stop


@pytest.fixture(autouse=True)
def _no_stop_left():
    stop.clear()
    yield
    stop.clear()


# -- A14-13: label_scarce prepare refuses what validate refuses, in its words, exit 2, nothing written ----------

def _refused_alike(manifest, capsys) -> str:
    from trainer import label_scarce as ls
    from trainer.cli import main

    assert main(["validate", "--data", str(manifest)]) == 2
    said = capsys.readouterr().err
    out = manifest.parent / f"{manifest.stem}_prepared.csv"
    assert ls.main(["prepare", "--cohort", str(manifest), "--out", str(out), "--test-patients", "2",
                    "--val-patients", "2"]) == 2
    err = capsys.readouterr().err
    assert err == said, (err, said)  # the same words (no "one per eye?" warning before them)
    assert not out.exists()
    return err


def test_a14_13_prepare_refuses_swapped_rows_as_validate_does(tiny_cohort, capsys):
    rows = _rows(tiny_cohort)
    a = next(k for k, r in enumerate(rows) if r["label"] == "normal" and r["eye"] == "OD")
    b = next(k for k, r in enumerate(rows) if r["label"] == "glaucoma" and r["eye"] == "OD")
    rows[a]["path"], rows[b]["path"] = rows[b]["path"], rows[a]["path"]
    err = _refused_alike(_write(rows, tiny_cohort.parent / "h90_swapped.csv"), capsys)
    assert f"row {a + 2}: its scan's own header names another patient" in err and "one per eye" not in err, err


def test_a14_13_prepare_refuses_an_unreadable_volume_as_validate_does(tiny_cohort, capsys):
    rows = _rows(tiny_cohort)
    src = tiny_cohort.parent / rows[3]["path"]
    cut = tiny_cohort.parent / "h90_cut.dcm"
    data = src.read_bytes()
    cut.write_bytes(data[:len(data) - len(data) // 3])  # the header reads, the pixel data is cut short
    rows[3]["path"] = cut.name
    err = _refused_alike(_write(rows, tiny_cohort.parent / "h90_cut.csv"), capsys)
    assert "row 5: unreadable volume" in err, err


# -- A14-14: --progress-json naming the run folder is refused before anything is made ---------------------------

def test_a14_14_progress_json_naming_the_run_folder_is_refused_before_it_is_made(tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    run, cache = tmp_path / "run", tmp_path / "cache"
    fit = ["fit", "--data", str(tiny_cohort), "--variant", "resnet2d", "--epochs", "1", "--image-size", "32",
           "--init", "random", "--out", str(run)]
    for given, words in ((run, "names the --out folder, not a file"), (tmp_path, "names a folder above --out"),
                         (cache, "names the --cache-dir folder, not a file")):
        assert main([*fit, "--cache-dir", str(cache), "--progress-json", str(given)]) == 3
        err = capsys.readouterr().err
        assert words in err and "nothing was written" in err, err
        assert not run.exists() and not cache.exists()


# -- A14-12: the demo rewrites a file at one of its own scan paths only when it is its SYNTHETIC DICOM -----------

def test_a14_12_demo_refuses_a_file_at_its_scan_path_that_it_did_not_write(tmp_path, capsys):
    import pydicom

    from octviewer.study.demo import main

    args = ["--patients", "1", "--visits", "2", "--preset", "tiny", "--seed", "0"]
    first = tmp_path / "first"
    assert main(["--out", str(first), *args]) == 0
    assert main(["--out", str(first), *args]) == 0  # an earlier demo's output is its own: written again
    scan = sorted((first / "scans").glob("DEMO00-000/OD_*.dcm"))[0]
    capsys.readouterr()
    real = pydicom.dcmread(scan)  # a DICOM of another maker under the demo's name: not the demo's
    real.Manufacturer = "Heidelberg Engineering"
    del real.ImageComments
    for name, content in (("mine", b"mine\n"), ("real", None)):
        folder = tmp_path / name / "scans" / "DEMO00-000"
        folder.mkdir(parents=True)
        if content is None:
            real.save_as(folder / scan.name)
            content = (folder / scan.name).read_bytes()
        else:
            (folder / scan.name).write_bytes(content)
        assert main(["--out", str(tmp_path / name), *args]) == 3
        err = capsys.readouterr().err
        assert "1 file(s) under the demo's names that are not its SYNTHETIC DICOM" in err, err
        assert (folder / scan.name).read_bytes() == content  # the user's file as it was
        assert os.listdir(folder) == [scan.name] and os.listdir(tmp_path / name) == ["scans"]  # nothing written


# -- A14-6: an OU view or Trend opened over another patient's scan closes the scan (one rule for both orders) ----

def _patient_item(panel, patient: str):
    tree = panel.tree
    return next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                if patient in tree.topLevelItem(i).text(0))


def _open_file(qtbot, w, monkeypatch, path) -> None:
    """File > Open… with the dialog patched; waits until the scan is on screen."""
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and w.state.volume.source
                    and Path(w.state.volume.source).resolve() == Path(path).resolve(), timeout=60000)


def _click(qtbot, panel, patient: str, eye: str | None = None, button: str = "ou"):
    """The patient's last visit (or its ``eye`` there) clicked in the Study tree, then OU view or Trend."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    top = _patient_item(panel, patient)
    item = top.child(top.childCount() - 1)
    if eye is not None:
        item = next(item.child(k) for k in range(item.childCount()) if item.child(k).text(0).startswith(eye))
    _click_item(qtbot, panel.tree, item)
    qtbot.mouseClick(getattr(panel, f"{button}_button"), Qt.LeftButton)


@pytest.mark.gui
def test_a14_6_ou_view_or_trend_of_another_patient_closes_the_scan_on_screen(qtbot, window, monkeypatch, tmp_path):
    from conftest import open_study_folder

    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=2, visits=2, preset="tiny", seed=5)
    a, b = "DEMO05-000", "DEMO05-001"
    b_scan = sorted((root / "scans" / b).glob("OD_*.dcm"))[-1]
    w = window
    c = w.study
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    _open_file(qtbot, w, monkeypatch, b_scan)  # patient B's scan on screen
    _click(qtbot, panel, a)  # patient A's OU view
    assert c.ou_dialog.isVisible() and w.state.volume is None  # B's scan closed, A's OU view alone
    said = w.statusBar().currentMessage()
    assert said.startswith("The scan on screen closed: it shows another patient than the OU view just opened"), said
    assert w.menu_actions["export_ou"].isEnabled()

    _open_file(qtbot, w, monkeypatch, sorted((root / "scans" / a).glob("OD_*.dcm"))[-1])  # A's own scan: all stay
    _click(qtbot, panel, a, "OD", "trend")
    assert c.ou_dialog.isVisible() and c.trend_dialog.isVisible() and w.state.volume is not None

    _click(qtbot, panel, b, "OD", "trend")  # B's Trend: A's OU view and A's scan close
    assert c.trend_dialog.isVisible() and c._trend_patient == b
    assert not c.ou_dialog.isVisible() and w.state.volume is None and not w.menu_actions["export_ou"].isEnabled()
    said = w.statusBar().currentMessage()
    assert said.startswith("The scan on screen and OU view closed: they show another patient than the Trend just "
                           "opened"), said
