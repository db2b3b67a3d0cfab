"""H92: the findings of walk-through H91 (W1 the CSV's approximate quadrants and clock hours, W4/W5 a result made
with the quality check off, ...), each through the window's menus as a user does it."""

from __future__ import annotations

import os
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import open_study_folder  # noqa: E402


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H92_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def _open_by_menu(qtbot, w, path, monkeypatch, timeout=120000):
    """File > Open on ``path`` (its dialog patched), until its result and structure are in."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.prediction is not None and not w.state.measuring
                    and w.state.structure is not None, timeout=timeout)


def _export_csv(w, monkeypatch, out: Path) -> list[dict]:
    """File > Export results as CSV… (anonymised: the question answered No), read back."""
    import csv

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_csv"].trigger()
    with open(out, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _export_pdf_text(w, monkeypatch, out: Path) -> str:
    """File > Export PDF report… (anonymised), its text on one line."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_pdf"].trigger()
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(unicodedata.normalize("NFKC", text).split())


PDFTOTEXT = pytest.mark.skipif(__import__("shutil").which("pdftotext") is None, reason="poppler-utils")


# ---------------------------------------------------------------- W1: which quadrants and clock hours are "~"

@pytest.mark.gui
@PDFTOTEXT
def test_the_csv_flags_the_quadrants_and_clock_hours_the_window_prints_approximate(qtbot, window, monkeypatch,
                                                                                  tmp_path):
    """W1: the window and the PDF print some quadrants and clock hours "~" (approximate); the CSV gave them at full
    precision with only the sectors flagged, and the PDF's quality notes named the sectors only."""
    from octviewer.gui.structure.page import clock_text, quadrant_text
    from octviewer.resources import DEMO_SCAN

    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    report = w.state.structure
    shown_q = [q for q in ("T", "S", "N", "I") if quadrant_text(report, q).startswith("~")]
    shown_h = [h for h in range(1, 13) if clock_text(report, h).startswith("~")]
    assert shown_q and shown_h  # the demo cube has both (T; 7, 8, 10)
    volume = _export_csv(w, monkeypatch, tmp_path / "r.csv")[0]
    assert volume["rnfl_uncertain_quadrants"] == " ".join(shown_q)
    assert volume["rnfl_uncertain_clock_hours"] == " ".join(str(h) for h in shown_h)
    assert volume["rnfl_uncertain_sectors"] == " ".join(report.uncertain_sectors)
    text = _export_pdf_text(w, monkeypatch, tmp_path / "r.pdf")
    notes = text[text.index("Quality notes"):]
    quadrants = f"quadrant{'s' if len(shown_q) > 1 else ''} {', '.join(shown_q)}"
    hours = f"clock hour{'s' if len(shown_h) > 1 else ''} {', '.join(str(h) for h in shown_h)}"
    assert f"{quadrants}, {hours} approximate (~)" in notes, notes[:400]


def test_the_measure_command_writes_the_flags_by_the_same_rule(tmp_path):
    """W1, the commands' side: octviewer-measure's CSV has the two columns, filled as the report's own sets."""
    import csv

    from octviewer.io import load_volume
    from octviewer.pipeline.measure_cli import main
    from octviewer.resources import DEMO_SCAN
    from octviewer.structure import measure

    out = tmp_path / "m.csv"
    assert main([str(DEMO_SCAN), "--out", str(out)]) == 0
    with open(out, newline="") as f:
        row = next(csv.DictReader(f))
    report = measure(load_volume(DEMO_SCAN))
    assert row["rnfl_uncertain_quadrants"] == " ".join(report.uncertain_quadrants) != ""
    assert row["rnfl_uncertain_clock_hours"] == " ".join(map(str, report.uncertain_clock_hours)) != ""


# ---------------------------------------------------------------- W4/W5: a result made with the check off

def _noise_scan(tmp_path, seed: int = 0) -> Path:
    """The demo OD cube with its pixels weak noise: the quality check refuses it, the network still reads it."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    from octviewer.resources import DEMO_SCAN

    ds = pydicom.dcmread(Path(DEMO_SCAN).parent / "demo_normal_OD.dcm")
    arr = ds.pixel_array
    ds.PixelData = np.random.default_rng(seed).integers(0, 12, arr.shape).astype(arr.dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / f"noise{seed}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.gui
def test_a_csv_of_a_result_made_with_the_check_off_says_so(qtbot, window, monkeypatch, tmp_path):
    """W4: Analysis > Quality check off, open a scan the check refuses, tick the check again, File > Export results
    as CSV: the row read "normal" beside quality "refused" with no word that the check was off (the PDF says it)."""
    w = window
    assert not w.state.options.gate
    _open_by_menu(qtbot, w, _noise_scan(tmp_path), monkeypatch, timeout=240000)
    assert not w.state.structure.quality.ok
    w.menu_actions["quality_gate"].trigger()  # ticked again: the result on screen was still made without it
    rows = _export_csv(w, monkeypatch, tmp_path / "noise.csv")
    volume = rows[0]
    assert volume["quality_check"] == "off" and volume["decision"]
    assert "quality check off: this scan fails it (signal 0." in volume["notice"]
    assert "with the check on it gets no result" in volume["notice"]
    assert all(r["quality_check"] == "off" and "quality check off" in r["notice"] for r in rows[1:])


# ---------------------------------------------------------------- W9: the ● key wherever a ● is drawn

@pytest.mark.gui
def test_the_results_panel_and_the_ou_view_say_what_the_mark_means(qtbot, window, monkeypatch, demo):
    """W9: the demo's estimates carry ● (VFI, MD) but the Results panel gave the key only under a study's measured
    VF, and the OU view's footer explained the colours and ~ only."""
    from test_gui_h69 import _open_ou

    from octviewer.core.prediction import OUTSIDE_KEY, OUTSIDE_MARK
    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1600, 975)
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    assert any(OUTSIDE_MARK.strip() in label.text() for label in w.results.vf_labels)  # the demo's estimates
    assert OUTSIDE_KEY in w.results.text() and w.results.key.isVisible()
    assert w.results.text().count(OUTSIDE_KEY) == 1
    _grab(w, "h92_w9_panel.png")
    # the structure measurement runs after the result: opening a study while it runs asks first (answered No here)
    qtbot.waitUntil(lambda: w.controller.analysis_generation == -1, timeout=240000)
    ou = _open_ou(qtbot, w, monkeypatch, demo)
    marked = any(OUTSIDE_MARK.strip() in c.cell(row, j) for c in ou.columns.values() for row in c.ROWS
                 for j in (0, 1))
    assert marked  # the demo study has a predicted VFI below 97 %
    assert OUTSIDE_KEY in ou.wheel_key.text()
    _grab(ou, "h92_w9_ou.png")


@pytest.mark.gui
def test_ticking_the_check_again_says_the_result_was_made_without_it_and_f5_applies_it(qtbot, window, monkeypatch,
                                                                                      tmp_path):
    """W5: after Analysis > Quality check was ticked again, the panel kept "quality check off: ..." in the present
    tense under a ticked menu entry. It now says the result was made with the check off and that it is on now, and
    Analysis > Analyse (F5), which it names, does withdraw the result."""
    w = window
    _open_by_menu(qtbot, w, _noise_scan(tmp_path), monkeypatch, timeout=240000)
    before = " ".join(w.results.text().split())
    assert "quality check off: this scan fails it" in before and "it is on now" not in before
    w.menu_actions["quality_gate"].trigger()
    qtbot.wait(20)
    now = " ".join(w.results.text().split())
    assert "P(glaucoma) = " in now  # the result stays until analysed again
    assert "this result was made with the check off; it is on now: Analysis > Analyse (F5) applies it" in now
    _grab(w, "h92_w5_ticked.png")
    w.menu_actions["analyse"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and not w.state.measuring and not w.state.analysing,
                    timeout=240000)
    assert w.state.prediction is None and "quality check off" not in w.results.text()


# ---------------------------------------------------------------- W18: scans without a map, the map ticked

@pytest.mark.gui
def test_scans_without_a_map_opened_with_the_map_ticked_say_why_and_raise_nothing(qtbot, window, monkeypatch,
                                                                                   tmp_path):
    """W18: with View > RNFL thickness map ticked, the second scan without a map raised in draw_maps (two volumes
    compared with ``!=``: their pixel arrays) and the "why nothing is drawn" note never came."""
    from octviewer.gui.structure.overlay import NO_MAP

    w = window
    w.menu_actions["rnfl_map"].trigger()
    told = []
    w.state.events.message.connect(told.append)
    for seed in (1, 2):
        _open_by_menu(qtbot, w, _noise_scan(tmp_path, seed), monkeypatch, timeout=240000)
        qtbot.waitUntil(lambda n=seed: told.count(NO_MAP) == n, timeout=60000)  # once per scan (the note comes late)
        qtbot.wait(50)
        assert told.count(NO_MAP) == seed
        assert not w.structure.thickness_item.isVisible()


# ---------------------------------------------------------------- W3/W13: the map's blank disc and margin

@pytest.mark.gui
@PDFTOTEXT
def test_the_thickness_maps_unmeasured_disc_is_grey_and_named_in_the_legend_and_the_pdf(qtbot, window, monkeypatch,
                                                                                        tmp_path):
    """W3/W13: View > RNFL thickness map left the disc and its 250 µm band transparent: the en-face's bright disc
    showed through as a large pale disc, and the legend (RNFL 250/125/0 µm) did not say it was not measured."""
    from octviewer.gui.structure.page import MAP_BLANK_RGB, map_blank_text
    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1600, 975)
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    w.menu_actions["rnfl_map"].trigger()
    report = w.state.structure
    blank = ~np.isfinite(report.thickness_map_um)
    assert blank[report.segmentation.disc_mask].all()
    shown = w.structure.thickness_item.image
    assert (shown[blank][:, :3] == MAP_BLANK_RGB).all() and (shown[blank][:, 3] == 255).all()
    legend = [label.text for _, label in w.structure.map_legend.items]
    assert legend[-1] == map_blank_text() and "250 µm margin, not measured" in legend[-1]
    qtbot.wait(50)
    _grab(w.enface, "h92_w13_map.png")
    text = _export_pdf_text(w, monkeypatch, tmp_path / "map.pdf")
    assert unicodedata.normalize("NFKC", "grey: disc + 250 µm margin, not measured") in text  # the caption


# ---------------------------------------------------------------- W2: one naming for the quadrant columns

@pytest.mark.gui
def test_the_windows_csv_names_every_quadrant_column_rnfl_quadrant(qtbot, window, monkeypatch, tmp_path):
    """W2: the window's CSV had rnfl_S_um == rnfl_quadrant_S_um (a duplicate) beside rnfl_T_um / rnfl_N_um, which
    are Garway-Heath sectors: read side by side, all four looked like quadrants."""
    from octviewer.resources import DEMO_SCAN

    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    report = w.state.structure
    volume = _export_csv(w, monkeypatch, tmp_path / "q.csv")[0]
    assert not {"rnfl_S_um", "rnfl_I_um", "rnfl_S_class", "rnfl_I_class"} & set(volume)
    for q in ("T", "S", "N", "I"):
        assert volume[f"rnfl_quadrant_{q}_um"] == f"{report.quadrants[q]:.1f}"
        assert volume[f"rnfl_quadrant_{q}_class"] == report.classes.get(f"quadrant_{q}", "")
    assert volume["rnfl_T_um"] == f"{report.sectors['T']:.1f}"  # the commands' sector columns keep their names
    said = "(rnfl_quadrant_T_class to rnfl_quadrant_I_class): quadrants (earlier versions' rnfl_S_um"
    assert said in volume["notice"]


# ---------------------------------------------------------------- W10: what closing a scan for a study keeps

@pytest.mark.gui
def test_closing_a_scan_for_a_study_says_its_glaucoma_result_is_kept(qtbot, window, monkeypatch, demo, tmp_path):
    """W10: a scan whose glaucoma result was in (and remembered by the results store) while its RNFL measurement
    still ran; File > Open study folder asked "Close it and stop its analysis (its results are lost)?" and the status
    bar said "its analysis was stopped", yet reopening the scan showed "remembered result" at once."""
    import threading

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    import octviewer.structure as structure
    from octviewer.pipeline.store import ResultsStore
    from octviewer.study.demo import write_demo_study

    w = window
    w.tasks.store = ResultsStore(tmp_path / "store" / "results.sqlite")  # as the app runs (the fixture has none)
    real, release = structure.measure, threading.Event()

    def held(*args, **kwargs):  # the measurement runs until the study is open
        release.wait(60)
        return real(*args, **kwargs)
    monkeypatch.setattr(structure, "measure", held)
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    scan = sorted(other.rglob("OD_*.dcm"))[0]
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(scan), ""))
    try:
        w.menu_actions["open"].trigger()
        qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.measuring, timeout=120000)
        asked = []
        monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.Yes)
        open_study_folder(qtbot, w, monkeypatch, demo)
    finally:
        release.set()
    assert len(asked) == 1 and "its results are lost" not in asked[0]
    assert ("the scan's glaucoma result is kept (remembered); its RNFL and disc measurement is stopped and runs "
            "again when you reopen the scan") in " ".join(asked[0].split()), asked[0]
    assert w.volume is None
    message = w.statusBar().currentMessage()
    assert "its analysis was stopped" not in message
    assert ("was closed; its glaucoma result was kept (remembered); its RNFL and disc measurement was stopped and "
            "runs again when you reopen the scan") in message, message
    _grab(w, "h92_w10_status.png")
    qtbot.wait(200)
    _open_by_menu(qtbot, w, scan, monkeypatch)  # and so it is: remembered
    assert w.state.prediction.remembered


@pytest.mark.gui
def test_help_explains_the_thickness_maps_grey_band_and_the_uncertain_columns(qtbot, window):
    """W3/W13 and W1's notes: Help > Reading the results had no word on the RNFL maps (their grey disc and band, a
    lone thickest patch at the scan's edge) and said the CSV names only "the sector" among the uncertain ones."""
    from PySide6.QtWidgets import QPlainTextEdit

    from octviewer.gui.structure.page import map_blank_text

    w = window
    w.menu_actions["reading_guide"].trigger()
    qtbot.waitUntil(w.dialog.isVisible)
    text = w.dialog.findChild(QPlainTextEdit).toPlainText()
    assert "RNFL thickness map (View, T)" in text and map_blank_text() in text
    assert "in a corner of the cube" in text and "read it on the B-scan" in text
    assert "rnfl_uncertain_quadrants or rnfl_uncertain_clock_hours" in text
