"""H86: the leftovers of walk-through H82 (W5 the line B-scan's T/N ends, W11 the study's status-bar message after
"Open a study anyway? Yes", W15 the RNFL map at the disc margin and its S/T/N/I marks, W17 wording and the CSV's
columns), each through the window or the command a user runs."""

from __future__ import annotations

import dataclasses
import os

import pytest


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
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(demo))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=60000):
        w.menu_actions["open_study_folder"].trigger()
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
    assert (shown[band][:, 3] == 0).all()  # blank on screen: the en-face shows through
    assert np.isfinite(report.rnfl_global_um)  # the measurement on the circle is unchanged by the blanking
    for mark in w.enface.orientation:  # over the map, each glyph with a halo
        assert mark.isVisible() and mark.zValue() > w.structure.thickness_item.zValue()
        assert mark.textItem.graphicsEffect() is not None
    qtbot.wait(50)
    _grab(w.enface, "h86_w15_thickness_map.png")
