"""Walk-throughs H104 and H107 (session 19), their low items (H112), each through the window: File > Open, File > Open
study folder, the Study tree's OU view and Trend, File > Export … (dialogs patched). Screenshots go to $H112_GRABS
when set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder

pytestmark = pytest.mark.gui


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H112_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_scan(qtbot, w, monkeypatch, path) -> None:
    """File > Open… on ``path``, its dialog patched; back once the scan has its network result."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and w.state.volume.source == str(path)
                    and w.state.prediction is not None and w.controller.analysis_generation == -1, timeout=120000)


# ---------------------------------------------------------------- X6: the Results dock after a study opens

def test_the_results_dock_is_not_left_squeezed_after_a_study_opens(qtbot, window, monkeypatch, demo, tmp_path):
    """X6: opening a study closes the scan on screen, and the Results dock was fitted to its one line "Open a scan"
    (~100 px); a click on the Study panel (a label: the press reaches the window) was then taken for the user's drag
    of the divider, so the fit never grew it back and the next scan's verdict sat below the fold."""
    from PySide6.QtCore import Qt

    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1400, 850)
    _open_scan(qtbot, w, monkeypatch, DEMO_SCAN)
    qtbot.wait(200)
    panel = open_study_folder(qtbot, w, monkeypatch, Path(shutil.copytree(demo, tmp_path / "study")))
    qtbot.wait(200)
    assert w.state.volume is None and w.results_dock.height() > 250, w.results_dock.height()
    qtbot.mouseClick(panel.status, Qt.LeftButton)  # the reader clicks the study's summary line
    assert w.results._fit is not None  # not taken for a drag of the divider: the fit goes on sizing the dock
    _open_scan(qtbot, w, monkeypatch, DEMO_SCAN)
    qtbot.wait(300)
    _grab(w, "x6_window")
    assert w.results_dock.height() > 250, w.results_dock.height()
    assert w.results_scroll.verticalScrollBar().maximum() == 0  # the verdict and its notes in sight


# ---------------------------------------------------------------- Y2: "borderline" beside the OU view's verdict

def _model(path, threshold):
    """A small random network (test_h104's) with the given threshold, saved where Model > Load model finds it."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model

    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    meta["threshold"] = threshold
    return save_model(path, net, meta)


def _load_model(qtbot, w, monkeypatch, path) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Ok)  # unsigned: its warning answered
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["load_model"].trigger()
    qtbot.waitUntil(lambda: str(w.controller.predictor.model.path) == str(path), timeout=30000)


def _pdf_text(path) -> str:
    import subprocess
    import unicodedata

    text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(unicodedata.normalize("NFKC", text).split())  # "ﬁ" ligatures as "fi"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_the_ou_view_and_its_report_say_borderline_beside_the_verdict(qtbot, window, monkeypatch, demo, tmp_path):
    """Y2: a result within 0.05 of the threshold reads "borderline" in the scan PDF and the Results panel's notes;
    the OU view's card and the OU report printed "NORMAL (threshold 0.321)" / "0.319 (normal)" alone."""
    from test_h84 import _export_ou, _open_ou, _scans, _stamp_date

    w = window
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    visit = _stamp_date(_scans(root, "OD")[0])
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "far.safetensors", 0.99))
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, visit)
    p = view.summary.eyes["OD"].probability
    assert "borderline" not in view.columns["OD"].decision.text()
    near = min(p + 0.02, 0.999)
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "near.safetensors", near))
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, visit)
    qtbot.waitUntil(lambda: view.summary.eyes["OD"].threshold == pytest.approx(near), timeout=120000)  # the new run's
    eye = view.summary.eyes["OD"]
    assert eye.probability == pytest.approx(p) and abs(eye.threshold - p - 0.02) < 1e-6
    decision = view.columns["OD"].decision.text()
    _grab(w.study.ou_dialog, "y2_ou")
    assert "· borderline" in decision, decision  # the word on the card (one line), why in its tooltip
    assert view.columns["OD"].decision.toolTip() == "borderline: within 0.05 of the threshold"
    text = _pdf_text(_export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", False))
    assert "(normal) borderline: within 0.05 of the threshold" in text, text[:1500]


# ---------------------------------------------------------------- X5: "REFUSED" beside a result made with the check off

def test_refused_with_the_check_off_says_the_check_does_not_change_the_measurement(qtbot, window, monkeypatch,
                                                                                    tmp_path):
    """X5: a scan the quality check refuses, analysed with the check off, has a network result, and its Structure
    header and the CSV's quality column read "REFUSED; signal not measured: ..." (true: the RNFL and disc are not
    measured on it either way), so the check being off seemed to have changed nothing. Now said beside "refused"."""
    import csv

    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_h92 import _noise_scan

    from octviewer.pipeline.outputs import REFUSED_EITHER_WAY

    w = window
    assert not w.state.options.gate  # off (the fixture's window, through Analysis > Quality check)
    _open_scan(qtbot, w, monkeypatch, _noise_scan(tmp_path))
    qtbot.waitUntil(lambda: w.state.structure is not None, timeout=60000)
    assert not w.state.structure.quality.ok
    drawn, real = [], QPainter.drawText

    def spy(painter, *args):
        drawn.append(next((a for a in args if isinstance(a, str)), ""))
        return real(painter, *args)
    monkeypatch.setattr(QPainter, "drawText", spy)
    w.structure_panel.grab()
    monkeypatch.setattr(QPainter, "drawText", real)
    _grab(w, "x5_window")
    head = " ".join(t for t in drawn if "REFUSED" in t)
    assert f"REFUSED ({REFUSED_EITHER_WAY}); signal" in " ".join(head.split()), drawn
    out = tmp_path / "scan.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_csv"].trigger()
    with open(out, newline="", encoding="utf-8") as f:
        volume = next(r for r in csv.DictReader(f) if r["level"] == "volume")
    assert volume["probability"] and volume["quality_check"] == "off"
    assert volume["quality"].startswith(f"refused ({REFUSED_EITHER_WAY}); signal"), volume["quality"]


# ---------------------------------------------------------------- X4: the Trend's checks name their visit

def test_the_trends_check_notes_name_their_visit_by_its_place(qtbot, window, monkeypatch, demo, tmp_path):
    """X4: the Trend's check notes said "a second copy of this scan at this visit" / "several scans of this eye at
    this visit" in a window of all the eye's visits. They name it by its place ("visit 2 of 3": the notes are
    printed in the anonymised OU report, so no date), in the Trend and in that report."""
    import numpy as np
    import pydicom
    from test_attack16_trend import _anonymised_ou_report, _trend
    from test_h84 import _scans

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")
    shutil.copy(od[0], od[0].with_name("copy_of_first.dcm"))  # a byte copy beside the first visit's scan
    ds = pydicom.dcmread(od[1])  # another image under the second visit's scan's UID: a repeat there
    ds.PixelData = np.roll(ds.pixel_array, 3, axis=-1).astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(od[1].with_name("other_image_same_uid.dcm"))
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _trend(qtbot, w, panel)
    qtbot.wait(200)
    _grab(w.study.trend_dialog, "x4_trend")
    notes = [n for n in view.notes if n.startswith("Check (")]
    assert notes and not [n for n in notes if "this visit" in n], notes
    assert ("Check (study): several scans of this eye at visit 2 of 3: their network results averaged; the trend "
            "plots the mean of the visit's scans, RNFL included.") in notes, notes
    assert "Check (study): a second copy of a scan at visit 1 of 3, used once; the trend counts it once." in notes
    assert all(n in " ".join(view.summary.text().split()) for n in notes)
    page = " ".join(_anonymised_ou_report(qtbot, w, panel, monkeypatch, tmp_path / "ou.pdf").split())
    assert all(n in page for n in notes), page


# ---------------------------------------------------------------- Y8: a field left out as another person's, said

@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_a_field_left_out_as_another_persons_is_said_in_the_eyes_views(qtbot, window, monkeypatch, fields_demo,
                                                                        tmp_path):
    """Y8: a measured field whose header names another person (another birth date) is left out, and the Study panel
    says so; the Results panel, the OU view and the Trend of the eye said nothing, as if no perimetry was done."""
    import pydicom
    from test_attack16_person import _study
    from test_attack16_trend import _trend
    from test_h84 import _export_ou, _open_ou

    root, od = _study(fields_demo, tmp_path, ("ALPHA^ANN", "", "19500101"), ("ZULU^ZED", "HOSP_B", "19400101"))
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    assert str(od) not in {m.source for m in panel.index.vf}  # left out, in the Study panel's problems
    said = "Check (study): OD: 1 measured visual field left out: its header names another person than this " \
           "patient's scans (the Study panel lists the files)"
    scan = sorted((root / "scans").rglob("OD_*.dcm"))[0]
    _open_scan(qtbot, w, monkeypatch, scan)
    qtbot.wait(200)
    _grab(w, "y8_window")
    results = " ".join(w.results.text().split())
    assert said in results and "ZULU" not in results, results
    day = str(pydicom.dcmread(scan, stop_before_pixels=True).StudyDate)
    view = _open_ou(qtbot, w, panel, f"{day[:4]}-{day[4:6]}-{day[6:8]}")
    _grab(w.study.ou_dialog, "y8_ou")
    assert said in view.checks.text() and "OS: " not in view.checks.text(), view.checks.text()
    page = _pdf_text(_export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", False))
    assert said in page and "ZULU" not in page, page[:1500]
    w.study.ou_dialog.close()
    trend = _trend(qtbot, w, panel, "OD")
    assert said in trend.notes and said in " ".join(trend.summary.text().split())


# ---------------------------------------------------------------- Y7: the anonymised OU report of a copy's visit

@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_the_anonymised_ou_report_says_a_copys_visit_shows_its_own_scan(qtbot, window, monkeypatch, demo, tmp_path):
    """Y7: the last visit holds its own OD scan and a re-dated copy of the first visit's; the OU view shows the
    visit's own scan, but the anonymised OU report said only "the same scan at two visits: a trend would count it
    twice", so its reader could not tell whether the OD figures were the visit's scan or the copy. The first visit's
    report (the copy's original, counted there) keeps the plain line."""
    import datetime as dt

    from test_attack16_copies import _redated_copy
    from test_h84 import _export_ou, _open_ou
    from test_study_headers import _header_date, _scans

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")
    copy = _redated_copy(od[0], _header_date(od[-1]) - dt.timedelta(days=1))
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    assert {c.kind for c in w.study.index.warnings} == {"two visits"}, w.study.index.warnings
    last = panel.tree.topLevelItem(0).child(panel.tree.topLevelItem(0).childCount() - 1).text(0)
    view = _open_ou(qtbot, w, panel, last)
    assert str(copy) not in view.summary.eyes["OD"].paths  # the visit's own scan, not the copy
    page = _pdf_text(_export_ou(qtbot, w, monkeypatch, tmp_path / "last.pdf", False))
    said = ("Check (study): the same scan at two visits: a trend would count it twice; this visit's figures are from "
            "its own scan, the copy counts at the other visit; details withheld: anonymised report")
    assert said in page, page[:1200]
    first = panel.tree.topLevelItem(0).child(0).text(0)
    view = _open_ou(qtbot, w, panel, first)
    qtbot.waitUntil(lambda: view.summary.visit == first, timeout=120000)
    page = _pdf_text(_export_ou(qtbot, w, monkeypatch, tmp_path / "first.pdf", False))
    assert ("Check (study): the same scan at two visits: a trend would count it twice; details withheld" in page
            and "the copy counts at the other visit" not in page), page[:1200]


# ---------------------------------------------------------------- Y3: a misspelt field's check, where it bears

def test_a_misspelt_fields_check_is_said_once_and_only_beside_that_field(qtbot, window, monkeypatch, fields_demo,
                                                                          tmp_path):
    """Y3: both OD fields name the patient otherwise (one name written two ways: kept, with a check). The Study panel
    gave each field's check listing every OD scan, the first visit's Results panel and OU view gave the second
    visit's field's check too, and the Trend said "a measured VF" without saying which."""
    import pydicom
    from test_attack16_person import _rename, _study
    from test_attack16_trend import _trend
    from test_h84 import _open_ou

    from octviewer.gui.study.checks import study_check_entries

    root, od = _study(fields_demo, tmp_path, ("DOE^JOHN", "", "19500101"), ("DOE^JANE", "", "1950-01-01"))
    fields = sorted(f for f in (root / "perimetry").rglob("*.dcm") if "_OD_" in f.name)
    assert len(fields) == 2 and od in fields
    for f in fields:
        _rename(f, "DOE^JANE", "", "1950-01-01")
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    scans = sorted((root / "scans").rglob("OD_*.dcm"))
    entries = [e for e in study_check_entries(panel.index) if "names the patient otherwise" in e]
    assert len(entries) == 2 and all(f.name in e for f, e in zip(fields, sorted(entries))), entries
    assert not [e for e in entries if any(s.name in e for s in scans)], entries  # not every scan of the eye
    shown = panel.index.measured_vf_for_scan(str(scans[0]))
    mine, other = (f.name for f in sorted(fields, key=lambda f: str(f) != shown.source))
    _open_scan(qtbot, w, monkeypatch, scans[0])
    results = " ".join(w.results.text().split())
    assert f"({mine}) names the patient otherwise" in results and other not in results, results
    day = str(pydicom.dcmread(scans[0], stop_before_pixels=True).StudyDate)
    view = _open_ou(qtbot, w, panel, f"{day[:4]}-{day[4:6]}-{day[6:8]}")
    _grab(w.study.ou_dialog, "y3_ou")
    assert f"({mine}) names the patient otherwise" in view.checks.text() and other not in view.checks.text()
    w.study.ou_dialog.close()
    trend = _trend(qtbot, w, panel, "OD")
    note = trend.history.check_note("field")
    assert "(measured fields 1 and 2 of 2)" in note and note in trend.notes, trend.notes


# ---------------------------------------------------------------- Y6: two people under one ID: which visits are whose

def test_two_people_under_one_id_says_which_visits_name_which_person(qtbot, window, monkeypatch, demo, tmp_path):
    """Y6: the first visit's scans name ALPHA^ANN born 1950, the later two visits' ZULU^ZED born 1940 (another
    issuer): the Study panel, the Results panel, the OU view and the Trend said "name different people" and not
    where the break is, so a clinician had to open each header. Said by visit (dates where the view is identified,
    places in the Trend, whose notes the anonymised OU report prints), never by name."""
    from test_attack16_person import _rename
    from test_attack16_trend import _trend
    from test_h84 import _open_ou

    from octviewer.gui.study.checks import study_check_entries

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    scans = sorted((root / "scans").rglob("*.dcm"))
    stamps = sorted({s.stem[3:] for s in scans})
    assert len(stamps) == 3
    for scan in scans:
        _rename(scan, *(("ALPHA^ANN", "", "19500101") if scan.stem.endswith(stamps[0])
                        else ("ZULU^ZED", "HOSP_B", "19400101")))
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    assert {c.kind for c in panel.index.warnings} == {"people"}, panel.index.warnings
    visits = [panel.tree.topLevelItem(0).child(k).text(0) for k in range(3)]
    split = f"{visits[0]} names one person; {visits[1]}, {visits[2]} another"
    entries = " ".join(study_check_entries(panel.index))
    assert f"visits: {split}" in entries and "ZULU" not in entries, entries
    _open_scan(qtbot, w, monkeypatch, sorted(s for s in scans if s.name.startswith("OD_"))[-1])
    results = " ".join(w.results.text().split())
    assert f"Check (study): which visits name which person: {split}" in results and "ALPHA" not in results, results
    view = _open_ou(qtbot, w, panel, visits[1])
    _grab(w.study.ou_dialog, "y6_ou")
    assert f"which visits name which person: {split}" in view.checks.text(), view.checks.text()
    w.study.ou_dialog.close()
    trend = _trend(qtbot, w, panel, "OD")
    note = trend.history.check_note("people")
    assert "(visit 1 of 3 names one person; visits 2 and 3 of 3 another)" in note and note in trend.notes, note


# ---------------------------------------------------------------- X1: the edge streak's near-yellow run on

def test_the_edge_patchs_near_yellow_run_on_is_dark_grey_too(qtbot, window, monkeypatch):
    """X1: on the advanced-glaucoma demo's thickness map (key T) a dark-grey patch at the cube's edge was followed by
    values just under 250 µm, the scale's near-yellow, of the same streak. Those connected to the patch are dark grey
    too, and the legend says so; values under the run's floor keep their colour, the measurement stays as it was."""
    import numpy as np
    from conftest import structure_panel_texts
    from PySide6.QtCore import Qt

    from octviewer.gui.structure.page import MAP_EDGE_RGB, MAP_EDGE_RUN_UM, map_edge_text
    from octviewer.resources import DEMO_SCAN

    w = window
    drawn = "\n".join(structure_panel_texts(qtbot, w, monkeypatch,
                                            Path(DEMO_SCAN).parent / "demo_advanced_glaucoma_OD.dcm"))
    # H121's U10: "... sector TS and 1 more" made the reader count the wheel's colours: up to six are all named
    overall = next(line for line in drawn.splitlines() if line.startswith("Overall"))
    assert "sector TS" in overall and "sector TI" in overall and "more" not in overall, overall
    t = w.state.structure.thickness_map_um.copy()
    qtbot.keyClick(w, Qt.Key_T)
    qtbot.waitUntil(lambda: w.state.map_shown == "thickness" and w.structure.thickness_item.isVisible(), timeout=10000)
    grey = (w.structure.thickness_item.image[..., :3] == MAP_EDGE_RGB).all(-1)
    padded = np.pad(grey, 1)
    beside_grey = padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]
    near_top = np.isfinite(t) & (t >= MAP_EDGE_RUN_UM) & (t < 250)
    assert (grey & near_top).any(), "no value just under 250 µm is dark grey"  # the streak's yellow run on
    assert not (near_top & beside_grey & ~grey).any(), np.argwhere(near_top & beside_grey & ~grey)
    assert not (grey & np.isfinite(t) & (t < MAP_EDGE_RUN_UM)).any()  # the rest keeps the scale's colours
    assert map_edge_text() in [label.text for _sample, label in w.structure.map_legend.items]
    np.testing.assert_array_equal(w.state.structure.thickness_map_um, t)
    qtbot.wait(100)
    _grab(w.enface, "x1_map")
