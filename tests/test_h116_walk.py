"""Walk-through H115 (Z1-Z6), its items fixed by H116, each through the window: File > Open study folder, the Study
tree's OU view, File > Export OU report / results as CSV, the Analysis menu (dialogs patched). Screenshots and
reports go to $H116_GRABS when set."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import open_study_folder
from test_h112_walk import _load_model, _open_scan, _pdf_text

pytestmark = pytest.mark.gui


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H116_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _keep(path: Path) -> None:
    folder = os.environ.get("H116_GRABS")
    if folder:
        shutil.copy(path, folder)


def _os_fields_another_persons(fields_demo, tmp_path) -> Path:
    """A copy of ``fields_demo`` whose OS fields' headers name another person (left out: H107 Y8), the OD fields the
    patient's own; scans and OD fields name ALPHA^ANN."""
    from test_attack16_person import _rename

    root = Path(shutil.copytree(fields_demo, tmp_path / "study"))
    for f in [*(root / "scans").rglob("*.dcm"), *(root / "perimetry").rglob("*.dcm")]:
        other = f.parent.name == "perimetry" or "perimetry" in f.parts
        other = other and "_OS_" in f.name
        _rename(f, *(("ZULU^ZED", "HOSP_B", "19400101") if other else ("ALPHA^ANN", "", "19500101")))
    return root


def _model(path, threshold):
    """test_h112_walk's small random network with the given threshold, whose test split found its MD and PSD
    estimates WORSE than the class mean (the bundled demo model's case: "WORSE" beside them in the table)."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model

    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    meta["threshold"] = threshold
    meta.setdefault("provenance", {})["test_metrics"] = {"vf_mae": {
        name: {"mae": 3.0, "class_mean_mae": 1.0} for name in ("md", "psd")}}
    return save_model(path, net, meta)


def _first_visit(root: Path) -> str:
    import pydicom

    day = str(pydicom.dcmread(sorted((root / "scans").rglob("OD_*.dcm"))[0], stop_before_pixels=True).StudyDate)
    return f"{day[:4]}-{day[4:6]}-{day[6:8]}"


def _borderline_ou(qtbot, w, monkeypatch, root, tmp_path, by: float = 0.02):
    """The first visit's OU view on a model whose threshold lies ``by`` above OD's P(glaucoma) (a borderline OD;
    ``by`` < 0: a borderline glaucoma)."""
    from test_h84 import _open_ou

    visit = _first_visit(root)
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "far.safetensors", 0.99))
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    p = _open_ou(qtbot, w, panel, visit).summary.eyes["OD"].probability
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "near.safetensors", min(p + by, 0.999)))
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, visit)
    qtbot.waitUntil(lambda: view.summary.eyes["OD"].threshold == pytest.approx(min(p + by, 0.999)), timeout=120000)
    return panel, view


def _words_on_page(pdf: Path, page: int) -> list[tuple[float, float, str]]:
    """(x, y, word) of each word pdftotext finds on ``page``."""
    out = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    return [(float(m[1]), float(m[2]), m[3]) for m in
            re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)</word>', out)]


# ---------------------------------------------------------------- Z1: the OU report's table whole

@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_the_ou_reports_table_splits_no_number_or_word(qtbot, window, monkeypatch, fields_demo, tmp_path):
    """Z1: with a measured field beside OD (the table's 11 columns all filled), "WORSE" beside MD and PSD, OD a
    borderline glaucoma and OS's quality-check note in its P(glaucoma) cell, the OU report printed the PSD difference
    "+1.7" as "+1." over "7" and "(glaucoma" over ")". Every figure of the table and each verdict is now one word on
    the page, identified and anonymised."""
    from test_h84 import _export_ou, _swamp

    from octviewer.gui.study.ou_view import shown_difference

    w = window
    root = _os_fields_another_persons(fields_demo, tmp_path)
    _swamp(sorted((root / "scans").rglob("OS_*.dcm"))[0])  # refused by the check, analysed (the check is off)
    _panel, view = _borderline_ou(qtbot, w, monkeypatch, root, tmp_path, by=-0.02)
    od, os_ = view.summary.eyes["OD"], view.summary.eyes["OS"]
    assert od.vf_measured is not None and od.vf_compared() and od.decision == "glaucoma" and os_.gate_note
    figures = [f"({od.decision})", f"({os_.decision})"]
    for c in od.vf_comparison():
        figures += [f"{c.predicted:.1f}", f"{c.measured:.1f}", f"{shown_difference(c.predicted, c.measured):+.1f}"]
    for identified in (True, False):
        pdf = _export_ou(qtbot, w, monkeypatch, tmp_path / f"ou_{identified}.pdf", identified)
        _keep(pdf)
        words = [word for _x, _y, word in _words_on_page(pdf, 1)]
        assert "borderline" in " ".join(words)
        split = [f for f in figures if f not in words]
        assert not split, (split, words)


# ---------------------------------------------------------------- Z2: the OU report's n/a note of a left-out field

@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_the_ou_reports_na_note_says_the_fields_were_left_out(qtbot, window, monkeypatch, fields_demo, tmp_path):
    """Z2: OS's fields name another person and are left out; page 1 of the OU report said so ("Check (study): OS: 2
    measured visual fields left out ..."), and the asymmetry table's n/a note on page 2 said "no visual field recorded
    for this eye and visit" of the same eye. It now says they were left out, identified and anonymised; OD (its own
    field) keeps its figures."""
    from test_h84 import _export_ou, _open_ou

    from octviewer.gui.study.checks import LEFT_OUT_REASON

    w = window
    root = _os_fields_another_persons(fields_demo, tmp_path)
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, _first_visit(root))
    assert view.summary.eyes["OS"].vf_measured is None and view.summary.eyes["OD"].vf_measured is not None
    table = view.asymmetry_table  # the OU view's n/a cells say it in their tooltips too
    measured = [k for k in range(table.rowCount()) if "measured" in table.verticalHeaderItem(k).text()]
    assert measured and all(table.item(k, 0).text() != "n/a" and table.item(k, 1).text() == "n/a"
                            and html.escape(LEFT_OUT_REASON) in table.item(k, 1).toolTip() for k in measured)
    for identified in (True, False):
        pdf = _export_ou(qtbot, w, monkeypatch, tmp_path / f"ou_{identified}.pdf", identified)
        _keep(pdf)
        text = _pdf_text(pdf)
        assert "OS: 2 measured visual fields left out" in text, text[:1500]
        assert "no visual field recorded" not in text, text
        assert re.search(r"OS MD measured \(dB\), VFI measured \(%\): " + re.escape(LEFT_OUT_REASON), text), text
        assert "ZULU" not in text


# ---------------------------------------------------------------- Z3: "borderline" on the Results panel's verdict line

def test_the_results_panel_says_borderline_beside_its_verdict(qtbot, window, monkeypatch, fields_demo, tmp_path):
    """Z3: a borderline result's Results panel said so only as its last note ("close to the threshold ..."), below
    the fold once a study's checks were shown; the OU card says "(threshold 0.32) · borderline" beside the verdict.
    The panel now says "borderline: within 0.05 of the threshold" on the line right under its verdict, in sight; a
    result far from the threshold does not."""
    from octviewer.gui.viewer.results_panel import borderline_words

    w = window
    w.resize(1400, 850)
    root = _os_fields_another_persons(fields_demo, tmp_path)
    scan = sorted((root / "scans").rglob("OS_*.dcm"))[0]
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "far.safetensors", 0.99))
    open_study_folder(qtbot, w, monkeypatch, root)
    _open_scan(qtbot, w, monkeypatch, scan)
    p = w.state.prediction.probability
    assert not w.results.borderline.isVisible() and "borderline:" not in w.results.text()
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "near.safetensors", min(p + 0.02, 0.999)))
    open_study_folder(qtbot, w, monkeypatch, root)
    _open_scan(qtbot, w, monkeypatch, scan)
    qtbot.wait(300)
    _grab(w, "z3_window")
    r = w.results
    said = borderline_words(w.state.prediction.probability, w.state.prediction.threshold)
    assert said and "OS: 2 measured visual fields left out" in r.text()  # the study's check shown above the notes
    lines = r.text().splitlines()
    verdict = lines.index(f"{r.decision.text()} {r.threshold.text()}")
    assert lines[verdict + 1] == said, lines  # the verdict's next line, before the estimates and the checks
    port = w.results_scroll.viewport()
    top = r.borderline.mapTo(port, r.borderline.rect().topLeft()).y()
    assert r.borderline.isVisible() and 0 <= top - r.decision.mapTo(port, r.decision.rect().bottomLeft()).y() < 12
    assert top + r.borderline.height() <= port.height()  # in sight, not below the fold


# ---------------------------------------------------------------- Z5: the window CSV says the fields were left out

def test_the_window_csv_says_the_eyes_fields_were_left_out(qtbot, window, monkeypatch, fields_demo, tmp_path):
    """Z5: OS's fields name another person and are left out; the Results panel and the scan PDF say so, and File >
    Export results as CSV gave blank measured_* columns with no word why, identified or anonymised (a researcher
    pooling CSVs read "no perimetry"). The volume row's notice now carries the same line (no name, date or file)."""
    import csv

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.gui.study.checks import field_left_out_line

    w = window
    root = _os_fields_another_persons(fields_demo, tmp_path)
    open_study_folder(qtbot, w, monkeypatch, root)
    _open_scan(qtbot, w, monkeypatch, sorted((root / "scans").rglob("OS_*.dcm"))[0])
    said = field_left_out_line("OS", 2)
    assert said in w.results.text()
    for identified in (True, False):
        out = tmp_path / f"os_{identified}.csv"
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, out=out, **k: (str(out), ""))
        answer = QMessageBox.Yes if identified else QMessageBox.No
        monkeypatch.setattr(QMessageBox, "question", lambda *a, answer=answer, **k: answer)
        w.menu_actions["export_csv"].trigger()
        _keep(out)
        text = out.read_text(encoding="utf-8")
        with open(out, newline="", encoding="utf-8") as f:
            volume = next(r for r in csv.DictReader(f) if r["level"] == "volume")
        assert not volume["measured_vfi"] and said in volume["notice"], volume["notice"]
        assert "ZULU" not in text


# ---------------------------------------------------------------- Z6: unticking the quality check on a refused scan

def test_unticking_the_quality_check_on_a_refused_scan_says_analyse_now_gives_a_result(qtbot, window, monkeypatch,
                                                                                     tmp_path):
    """Z6: a scan the quality check refused kept "Not analysed: ... No probability is given ..." alone once Analysis >
    Quality check was unticked, as if the untick did nothing (ticking it again over a result does say "Analysis >
    Analyse (F5) applies it"). The panel now says Analyse (F5) analyses the scan anyway; F5 does, and the hint goes."""
    from PySide6.QtWidgets import QFileDialog
    from test_h92 import _noise_scan

    from octviewer.gui.viewer.results_panel import CHECK_OFF_HINT

    w = window
    w.resize(1400, 1000)  # the walk-through's screen (1600 x 1000): the refusal's reason and the hint fit the dock
    w.menu_actions["quality_gate"].trigger()  # on (the fixture's window has it off)
    assert w.state.options.gate
    scan = _noise_scan(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(scan), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and (w.state.reason or "").startswith("Not analysed")
                    and w.state.structure is not None and w.controller.analysis_generation == -1, timeout=120000)
    assert w.state.prediction is None and w.state.refused
    assert w.state.reason in w.results.reason.text() and CHECK_OFF_HINT not in w.results.text()
    w.menu_actions["quality_gate"].trigger()  # off
    assert not w.state.options.gate
    assert w.results.reason.text() == f"{w.state.reason}\n{CHECK_OFF_HINT}" and w.results.reason.isVisible()
    port = w.results_scroll.viewport()
    # the hint in sight, not below the fold: the dock refits to the longer text
    qtbot.waitUntil(lambda: w.results.reason.mapTo(port, w.results.reason.rect().bottomLeft()).y() <= port.height(),
                    timeout=5000)
    _grab(w, "z6_unticked")
    w.menu_actions["quality_gate"].trigger()  # on again: as it was
    assert CHECK_OFF_HINT not in w.results.text()
    w.menu_actions["quality_gate"].trigger()
    w.menu_actions["analyse"].trigger()  # F5
    qtbot.waitUntil(lambda: w.state.prediction is not None and w.controller.analysis_generation == -1,
                    timeout=120000)
    assert CHECK_OFF_HINT not in w.results.text()


# ---------------------------------------------------------------- H112's note: the OU view's cards under long checks

def test_the_ou_views_verdict_line_stays_under_the_wheel_with_long_checks(qtbot, window, monkeypatch, demo, tmp_path):
    """H112's note on Y6: with the checks above the eyes running to four lines (two people under one ID, which visits
    are whose), the OU dialog at its default size drew each card's verdict line over the bottom of its en-face image
    and sector wheel: the scroll area gave the view its viewport's height, the wrapped lines' height not counted."""
    from test_attack16_person import _rename
    from test_h84 import _open_ou

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    scans = sorted((root / "scans").rglob("*.dcm"))
    first = sorted({s.stem[3:] for s in scans})[0]
    for scan in scans:
        _rename(scan, *(("ALPHA^ANN", "", "19500101") if scan.stem.endswith(first)
                        else ("ZULU^ZED", "HOSP_B", "19400101")))
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, panel.tree.topLevelItem(0).child(1).text(0))
    _grab(w.study.ou_dialog, "h112_ou")
    # three lines at least (four before the check said which facts differ, H140 W3, in fewer words)
    assert view.checks.text().count("\n") >= 1 and view.checks.height() >= 3 * view.checks.fontMetrics().height()
    for column in view.columns.values():
        top = column.decision.geometry().top()
        assert column.wheel.geometry().bottom() < top and column.image.geometry().bottom() < top, (
            column.wheel.geometry(), column.image.geometry(), column.decision.geometry())
        assert column.wheel.height() >= column.wheel.minimumHeight()
