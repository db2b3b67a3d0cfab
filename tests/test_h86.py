"""H86: the leftovers of walk-through H82 (W5 the line B-scan's T/N ends, W11 the study's status-bar message after
"Open a study anyway? Yes", W15 the RNFL map at the disc margin and its S/T/N/I marks, W17 wording and the CSV's
columns), each through the window or the command a user runs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from conftest import open_study_folder  # noqa: E402


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H86_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def _open_by_menu(qtbot, w, path, monkeypatch, timeout=60000):
    """File > Open on ``path`` (its dialog patched), until the scan's analysis has settled."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(w.settled, timeout=timeout):
        w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: not w.state.measuring, timeout=timeout)


# ---------------------------------------------------------------- W5: a line scan's B-scan names its ends

@pytest.mark.gui
@pytest.mark.samples
def test_a_horizontal_line_scan_names_its_ends_t_and_n(qtbot, window, monkeypatch, samples_dir):
    """Willis_B_716_0.vol, a right eye's line drawn left to right on the SLO (the en-face draws it from T to N):
    its B-scan had no letters at its ends, unlike the cube's and the circle's."""
    path = samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol"
    if not path.exists():
        pytest.skip("Willis_B_716_0.vol not among the samples")
    w = window
    w.resize(1600, 975)
    _open_by_menu(qtbot, w, path, monkeypatch)
    v = w.state.volume
    assert v.scan_pattern == "line" and v.laterality == "OD"
    shown = w.bscan.sides_shown()
    assert [letter for _, letter in shown] == ["T", "N"]
    width = v.shape[2] * w.bscan.scale[0]
    assert [round(x / width, 3) for x, _ in shown] == [0.015, 0.985]  # placed as the cube's end letters
    assert w.bscan.sides.isVisible()
    assert "line scan, 1 B-scan, " in w.results.scan.text()  # W17: not "1 B-scan(s)"
    assert [t.textItem.toPlainText() for t in w.enface.orientation[2:]] == ["T", "N"]  # the en-face's sides agree
    qtbot.wait(50)
    _grab(w, "h86_w5_line.png")


def test_line_sides_follow_the_direction_and_stay_off_where_it_is_unknown(samples_dir):
    """The rule behind the letters: the line's direction on the localizer and the eye; none where either is not
    known or the line is not near-horizontal."""
    from octviewer.core.volume import BscanPosition
    from octviewer.gui.viewer.render import bscan_sides
    from octviewer.io import load_volume

    path = samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol"
    if not path.exists():
        pytest.skip("Willis_B_716_0.vol not among the samples")
    v = load_volume(path)

    def moved(start, end, eye="OD"):
        return dataclasses.replace(v, laterality=eye, bscan_positions=(BscanPosition(start, end),))

    assert bscan_sides(moved((0, 384), (768, 384))) == ((0.0, "T"), (1.0, "N"))
    assert bscan_sides(moved((768, 384), (0, 384))) == ((0.0, "N"), (1.0, "T"))  # drawn right to left
    assert bscan_sides(moved((0, 384), (768, 384), "OS")) == ((0.0, "N"), (1.0, "T"))
    assert bscan_sides(moved((0, 300), (768, 400))) == ((0.0, "T"), (1.0, "N"))  # ~7 degrees: still horizontal
    assert bscan_sides(moved((384, 0), (384, 768))) == ()  # vertical: its ends are S and I, not T and N
    assert bscan_sides(moved((0, 0), (768, 768))) == ()  # 45 degrees: neither
    assert bscan_sides(moved((0, 384), (768, 384), None)) == ()  # eye unknown
    assert bscan_sides(dataclasses.replace(v, bscan_positions=None)) == ()  # no position on the localizer


# ---------------------------------------------------------------- W11: what happened to the scan's analysis

@pytest.mark.gui
def test_opening_a_study_after_the_analysis_finished_while_asked_says_so(qtbot, window, monkeypatch, demo,
                                                                          tmp_path):
    """The analysis of the scan on screen finished while "Still running … Open a study anyway?" was up; Yes: the
    status bar said "nothing was running on it, nothing lost" right after the question said it was running."""
    import threading

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    import octviewer.pipeline as pipeline
    from octviewer.study.demo import write_demo_study

    real, release = pipeline.analyse_scan, threading.Event()

    def held(*args, **kwargs):  # the analysis runs until the question is up
        release.wait(60)
        return real(*args, **kwargs)
    monkeypatch.setattr(pipeline, "analyse_scan", held)
    w = window
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(sorted(other.rglob("OD_*.dcm"))[0]), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.controller.analysis_generation != -1, timeout=30000)
    asked = []

    def finished_while_asked(*a, **k):
        asked.append(a[2])
        release.set()
        qtbot.waitUntil(lambda: w.controller.analysis_generation == -1, timeout=60000)
        return QMessageBox.Yes
    monkeypatch.setattr(QMessageBox, "question", finished_while_asked)
    open_study_folder(qtbot, w, monkeypatch, demo)
    assert len(asked) == 1 and "Still running: the analysis of the scan on screen" in asked[0]
    assert w.volume is None
    message = w.statusBar().currentMessage()
    assert "nothing was running" not in message and "its analysis was stopped" not in message
    assert ("the scan on screen is not part of it and was closed; its analysis finished while you were asked, "
            "so nothing was stopped") in message
    _grab(w, "h86_w11_finished_while_asked.png")


# ---------------------------------------------------------------- W15: the RNFL map at the disc margin, its marks

def _open_demo(qtbot, w, monkeypatch):
    """File > Open the bundled demo cube, until its result and structure are in."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.resources import DEMO_SCAN

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring and w.state.structure is not None,
                    timeout=120000)


@pytest.mark.gui
def test_the_thickness_map_leaves_the_disc_margin_blank_and_its_marks_read_over_it(qtbot, window, monkeypatch):
    """View > RNFL thickness map: a >= 250 um (yellow) rim hugged the disc margin (rim tissue measured as RNFL), and
    the orange S/T/N/I marks lay under the map, nearly invisible on its teal."""
    import numpy as np
    from scipy import ndimage

    from octviewer.gui.structure.page import MAP_BLANK_RGB
    from octviewer.structure.analysis import DISC_MARGIN_BAND_UM

    w = window
    w.resize(1600, 975)
    _open_demo(qtbot, w, monkeypatch)
    w.menu_actions["rnfl_map"].trigger()
    assert w.structure.thickness_item.isVisible()
    report, v = w.state.structure, w.state.volume
    disc = report.segmentation.disc_mask
    assert disc is not None and disc.any()
    sp = v.spacing
    distance = ndimage.distance_transform_edt(~disc, sampling=(sp.bscan_mm * 1000, sp.ascan_mm * 1000))
    band = (distance > 0) & (distance <= DISC_MARGIN_BAND_UM)
    assert band.any() and 100 <= DISC_MARGIN_BAND_UM <= 300  # a thin band, in um
    assert np.isnan(report.thickness_map_um[band]).all()
    assert np.isfinite(report.thickness_map_um[distance > DISC_MARGIN_BAND_UM + 100]).mean() > 0.9
    shown = w.structure.thickness_item.image
    assert (shown[band][:, :3] == MAP_BLANK_RGB).all()  # blank on screen: grey, "not measured" (H91 W13)
    assert np.isfinite(report.rnfl_global_um)  # the measurement on the circle is unchanged by the blanking
    for mark in w.enface.orientation:  # over the map, each glyph with a halo
        assert mark.isVisible() and mark.zValue() > w.structure.thickness_item.zValue()
        assert mark.textItem.graphicsEffect() is not None
    qtbot.wait(50)
    _grab(w.enface, "h86_w15_thickness_map.png")


# ---------------------------------------------------------------- W17: the CSV's quadrants, clock hours and decision

def _export_csv(qtbot, w, monkeypatch, out: Path) -> list[dict]:
    """File > Export results as CSV… (anonymised: the question answered No), read back."""
    import csv

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_csv"].trigger()
    with open(out, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.gui
def test_the_csv_gives_all_four_quadrants_and_the_twelve_clock_hours(qtbot, window, monkeypatch, tmp_path):
    """The window and the PDF show four quadrants and 12 clock hours; the CSV had the S and I quadrants only
    (rnfl_T_um and rnfl_N_um are the Garway-Heath sectors) and no clock hour."""
    from octviewer.structure.columns import COLUMNS

    w = window
    _open_demo(qtbot, w, monkeypatch)
    report = w.state.structure
    rows = _export_csv(qtbot, w, monkeypatch, tmp_path / "results.csv")
    header, volume = list(rows[0]), rows[0]
    assert volume["level"] == "volume"
    quadrants = [f"rnfl_quadrant_{q}_um" for q in ("T", "S", "N", "I")]
    clocks = [f"rnfl_clock{h:02d}_um" for h in range(1, 13)]
    assert [c for c in header if c in quadrants + clocks] == quadrants + clocks
    assert [volume[c] for c in quadrants] == [f"{report.quadrants[q]:.1f}" for q in ("T", "S", "N", "I")]
    assert [volume[c] for c in clocks] == [f"{report.clock_hours[h]:.1f}" for h in range(1, 13)]
    assert "rnfl_S_um" not in volume  # no duplicate of rnfl_quadrant_S_um (walk-through H91, W2)
    assert volume["rnfl_T_um"] == f"{report.sectors['T']:.1f}"  # and the sector columns, as they were
    assert COLUMNS[:20] == OLD_STRUCTURE_COLUMNS  # the commands' older columns keep their places
    assert "rnfl_clock01_um to rnfl_clock12_um: clock hours" in volume["notice"]
    assert all(r[c] == "" for r in rows[1:] for c in quadrants + clocks)  # B-scan rows: not measured per B-scan


#: octviewer.structure.COLUMNS before H86 (the commands' --out/--resume read older headers by these names)
OLD_STRUCTURE_COLUMNS = [
    "laterality", "scan_pattern", "quality", "rnfl_global_um", "rnfl_T_um", "rnfl_TS_um", "rnfl_TI_um", "rnfl_N_um",
    "rnfl_NS_um", "rnfl_NI_um", "rnfl_class", "cup_to_disc", "rim_area_mm2", "cup_to_disc_average", "disc_area_mm2",
    "cup_area_mm2", "bmo_mrw_um", "rnfl_unsure_pct", "rnfl_uncertain_sectors", "segmentation_used"]


def test_the_measure_command_writes_the_quadrants_and_clock_hours(tmp_path):
    """octviewer-measure's CSV gets the same new columns, through its main."""
    import csv

    from octviewer.pipeline.measure_cli import main
    from octviewer.resources import DEMO_SCAN

    out = tmp_path / "rnfl.csv"
    assert main([str(DEMO_SCAN), "--out", str(out)]) == 0
    (row,) = list(csv.DictReader(out.open(newline="")))
    assert float(row["rnfl_quadrant_T_um"]) > 0 and float(row["rnfl_clock12_um"]) > 0
    assert row["rnfl_T_um"] and row["rnfl_quadrant_N_um"] and row["rnfl_clock06_um"]


@pytest.mark.gui
@pytest.mark.samples
def test_a_circle_scans_csv_decision_is_short_and_its_reason_in_the_notice(qtbot, window, monkeypatch, samples_dir,
                                                                          tmp_path):
    """The circle scan's decision cell was a sentence ("not analysed: this is a circle scan; ...")."""
    path = samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol"
    if not path.exists():
        pytest.skip("Willis_B_716_2.vol not among the samples")
    w = window
    _open_by_menu(qtbot, w, path, monkeypatch)
    qtbot.waitUntil(lambda: w.state.structure is not None, timeout=30000)
    assert w.prediction is None and w.state.volume.scan_pattern == "circle"
    (row,) = _export_csv(qtbot, w, monkeypatch, tmp_path / "circle.csv")
    assert row["decision"] == "not analysed"
    assert row["notice"].startswith("research use only")
    assert "; not analysed: " in row["notice"] and "circle scan" in row["notice"]
    assert row["rnfl_clock12_um"] and row["rnfl_quadrant_T_um"]  # a circle's clock hours too


# ---------------------------------------------------------------- W17: the OU report's date, the wheel's centre

@pytest.mark.gui
@pytest.mark.skipif(__import__("shutil").which("pdftotext") is None, reason="poppler-utils")
def test_the_ou_report_dates_itself_as_the_scan_report_and_the_centre_fits(qtbot, window, monkeypatch, demo,
                                                                          tmp_path):
    """File > Export OU report… (identified) printed "Report created 2026-12-07T05:22" where the scan report prints
    "2026-12-07"; the OU view's "RNFL loading…" ran out of the centre circle."""
    import datetime as dt
    import math
    import re
    import subprocess

    from conftest import open_study_folder
    from test_h84 import _export_ou, _open_ou, _stamp_date
    from test_study_headers import _scans

    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, demo)
    view = _open_ou(qtbot, w, panel, _stamp_date(_scans(demo, "OD")[0]))
    out = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", identified=True)
    text = subprocess.run(["pdftotext", "-raw", str(out), "-"], capture_output=True, text=True, check=True).stdout
    created = re.search(r"Report created\s+(\S+)", text)
    assert created and created.group(1) == dt.date.today().isoformat(), text[:600]

    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QFontMetricsF

    wheel = view.columns["OD"].wheel
    wheel.set_summary(None, loading=True)
    wheel.resize(160, 160)
    text = wheel.centre_text(None)
    assert "loading" in text
    diameter = (min(wheel.width(), wheel.height()) - 24) * 0.4  # the centre circle, as paintEvent draws it
    font = wheel.centre_font(wheel.font(), text, diameter)
    box = QFontMetricsF(font).boundingRect(QRectF(0, 0, 1000, 1000), int(Qt.AlignCenter), text)
    assert box.width() <= diameter / math.sqrt(2) + 0.5 and box.height() <= diameter / math.sqrt(2) + 0.5
    old = QFontMetricsF(wheel.font()).boundingRect(QRectF(0, 0, 1000, 1000), int(Qt.AlignCenter), text)
    assert old.width() > diameter / math.sqrt(2)  # at the widget's own font it did not fit
    _grab(wheel, "h86_w17_ou_loading.png")
