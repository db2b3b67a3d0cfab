"""H69: the H65 walk-through's items on the Results panel and the exports, through the window's own actions
(File > Open, Export PDF / CSV / OU report with their dialogs patched): W10 (an index worse than its baseline said
plainly), W11 (estimates marked by the measured values' rule), W12 (the CSV's RNFL class columns), W15 (every report
page names its patient, eye and date) and W16 (the anonymised trend's time axis)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import open_study_folder  # noqa: E402

GRABS = "/tmp/h69"


def _save(widget_or_path, name: str) -> None:
    """A grab of a widget, or a PDF's pages (pdftoppm), under /tmp/h69 when that folder exists (to look at)."""
    if not os.path.isdir(GRABS):
        return
    if isinstance(widget_or_path, Path):
        if shutil.which("pdftoppm"):
            subprocess.run(["pdftoppm", "-r", "60", "-png", str(widget_or_path), os.path.join(GRABS, name)],
                           check=False)
        return
    widget_or_path.grab().save(os.path.join(GRABS, f"{name}.png"))


def _pdf_text(path) -> list[str]:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return out.split("\f")


def _open_demo(qtbot, w, monkeypatch):
    """File > Open the bundled demo scan, and wait for its result and structure."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.resources import DEMO_SCAN

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring and w.state.structure is not None
                    and w.controller.analysis_generation == -1, timeout=120000)  # over: nothing lands later


def _export(w, monkeypatch, action: str, out: Path, identify: bool) -> Path:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identify else QMessageBox.No)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions[action].trigger()
    assert out.exists(), (action, w.warnings)
    return out


def _vf_rows(w) -> dict[str, list[str]]:
    """The Results panel's VF grid as {label: [cells]}."""
    grid, rows = w.results.vf, {}
    for r in range(grid.rowCount()):
        cells = [grid.itemAtPosition(r, c).widget().text() for c in range(3) if grid.itemAtPosition(r, c)]
        if cells:
            rows[cells[0]] = cells
    return rows


# ---------------------------------------------------------------- W10: an index worse than its baseline

@pytest.mark.gui
def test_an_estimate_worse_than_its_baseline_is_said_so_beside_it_on_screen_in_the_pdf_and_the_csv(
        qtbot, window, monkeypatch, tmp_path):
    """W10: the demo model's own evaluation finds PSD worse than the class-mean baseline (interval of the difference
    above 0), VFI and MD not distinguishable from it. The PSD row said "normal 0 to 2.5" under the same mild "read
    them as weak" caveat as VFI and MD; now "WORSE than the class-mean baseline" stands beside PSD alone, in the
    Results panel, the PDF's table and the CSV's column."""
    from octviewer.core.prediction import VF_WORSE_BESIDE

    w = window
    _open_demo(qtbot, w, monkeypatch)
    rows = _vf_rows(w)
    _save(w.results, "w10_results_panel")
    # (H75: "WORSE" in the narrow grid, the whole words its tooltip and "do not use" right under it, item 1)
    grid = w.results.vf
    [psd_cell] = [grid.itemAtPosition(r, 2).widget() for r in range(grid.rowCount())
                  if grid.itemAtPosition(r, 0) and grid.itemAtPosition(r, 0).widget().text() == "PSD"]
    assert rows["PSD"][2] == "WORSE" and psd_cell.toolTip() == VF_WORSE_BESIDE
    assert "PSD: WORSE than it, do not use" in w.results.vf_note.text()
    assert rows["VFI"][2].startswith("normal") and rows["MD"][2].startswith("normal")
    pdf = _export(w, monkeypatch, "export_pdf", tmp_path / "demo.pdf", identify=False)
    _save(pdf, "w10_pdf")
    text = " ".join(" ".join(_pdf_text(pdf)).split())
    assert "PSD" in text and "WORSE than the class-mean baseline: do not use" in text
    assert "estimates are WORSE than the class-mean baseline on independent data: do not use them" in text
    psd_line = next(line for page in _pdf_text(pdf) for line in page.splitlines() if line.strip().startswith("PSD"))
    assert "WORSE" in psd_line and "0 to 2.5" not in psd_line
    out = _export(w, monkeypatch, "export_csv", tmp_path / "demo.csv", identify=False)
    with open(out, newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert {r["vf_worse_than_baseline"] for r in table} == {"psd"}
    assert "PSD estimates are WORSE than the class-mean baseline" in table[0]["notice"]


def _open_ou(qtbot, w, monkeypatch, demo):
    """File > Open study folder, the first visit, *OU view*, as a user does; the view once analysed."""
    from PySide6.QtCore import Qt

    panel = open_study_folder(qtbot, w, monkeypatch, demo)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0).child(0))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=120000)
    return w.study.ou_view


@pytest.mark.gui
def test_the_ou_report_says_beside_a_worse_estimate_that_it_is_worse(qtbot, window, monkeypatch, demo, tmp_path):
    """W10 in the OU report: the predicted PSD column carries "WORSE than baseline: do not use" beside its value,
    VFI and MD do not; the full note is among the result notes."""
    w = window
    ou = _open_ou(qtbot, w, monkeypatch, demo)
    assert any(e.vf_predicted for e in ou.summary.eyes.values() if e is not None)
    pdf = _export(w, monkeypatch, "export_ou", tmp_path / "ou.pdf", identify=False)
    _save(pdf, "w10_ou_pdf")
    pages = _pdf_text(pdf)
    text = " ".join(" ".join(pages).split())
    from octviewer.gui.export.ou_pdf import WORSE_KEY

    assert WORSE_KEY in text
    lines = pages[0].splitlines()
    rows = [k for k, line in enumerate(lines) if line.strip().startswith(("OD  ", "OS  ")) and "normal" in line]
    # under PSD pred., the row's last figure (beside it, it narrowed the table until numbers split: H115, Z1)
    assert len(rows) == 2 and all(lines[k + 1].strip() == "WORSE" for k in rows), [lines[k:k + 2] for k in rows]
    assert "PSD estimates are WORSE than the class-mean baseline" in text
    from octviewer.gui.export.ou_pdf import WORSE_CELL, ou_report_html

    html = ou_report_html(ou.summary)
    assert html.count(WORSE_CELL) == sum(1 for e in ou.summary.eyes.values()
                                         if e is not None and e.vf_predicted and "psd" in e.vf_predicted)


# ---------------------------------------------------------------- W11: estimates marked by the measured values' rule

@pytest.mark.gui
def test_estimates_outside_the_normal_range_are_marked_as_measured_values_are(qtbot, window, monkeypatch, tmp_path):
    """W11: the demo's VFI 65.3 % (normal 97-100) and MD -14.1 dB (normal -2 to 2) had no ● while a measured 95.3 %
    had one: the estimates are marked by core.outside_normal, the measured values' rule, in the panel and the PDF.
    PSD, which the model's evaluation finds worse than the class mean, carries the words of W10 instead."""
    from octviewer.core import outside_normal

    w = window
    _open_demo(qtbot, w, monkeypatch)
    vf = w.prediction.vf
    assert outside_normal("vfi", vf["vfi"]) and outside_normal("md", vf["md"]) and outside_normal("psd", vf["psd"])
    rows = _vf_rows(w)
    _save(w.results, "w11_results_panel")
    assert rows["VFI"][1].endswith("●") and rows["MD"][1].endswith("●")
    assert not rows["PSD"][1].endswith("●")  # worse than the class mean: said so beside it (W10), not marked
    pdf = _export(w, monkeypatch, "export_pdf", tmp_path / "demo.pdf", identify=False)
    _save(pdf, "w11_pdf")
    lines = {line.split()[0]: line for page in _pdf_text(pdf) for line in page.splitlines()
             if line.strip().startswith(("VFI ", "MD ", "PSD "))}
    assert "●" in lines["VFI"] and "●" in lines["MD"] and "●" not in lines["PSD"], lines
    assert "● outside the normal range" in " ".join(_pdf_text(pdf))


@pytest.mark.gui
def test_the_ou_report_marks_an_estimate_outside_the_normal_range(qtbot, window, monkeypatch, demo, tmp_path):
    """W11 in the OU report: a predicted VFI below 97 % is marked as a measured one would be."""
    from octviewer.core import outside_normal
    from octviewer.core.prediction import OUTSIDE_MARK

    w = window
    ou = _open_ou(qtbot, w, monkeypatch, demo)
    pdf = _export(w, monkeypatch, "export_ou", tmp_path / "ou.pdf", identify=False)
    _save(pdf, "w11_ou_pdf")
    rows = {line.split()[0]: line for line in _pdf_text(pdf)[0].splitlines()
            if line.strip().startswith(("OD  ", "OS  ")) and "normal" in line}
    checked = 0
    for eye, s in ou.summary.eyes.items():
        if s is None or "vfi" not in s.vf_predicted:
            continue
        shown = f"{s.vf_predicted['vfi']:.1f}"
        marked = f"{shown}{OUTSIDE_MARK.strip()}" in rows[eye].replace(OUTSIDE_MARK, OUTSIDE_MARK.strip())
        assert marked == outside_normal("vfi", s.vf_predicted["vfi"]), (eye, rows[eye])
        checked += marked
    assert checked  # the demo study has a predicted VFI below 97 %


@pytest.mark.gui
def test_the_ou_view_marks_estimates_and_says_which_are_worse_as_the_report_does(qtbot, window, monkeypatch, demo):
    """W10/W11 in the OU view itself: it still took the old "weak" set, so an estimate outside the normal range went
    unmarked on screen while the OU PDF marked it, and PSD's cell did not say it is worse than the class mean."""
    from octviewer.core import outside_normal
    from octviewer.core.prediction import OUTSIDE_MARK, VF_WORSE_BESIDE

    ou = _open_ou(qtbot, window, monkeypatch, demo)
    checked = 0
    for eye, s in ou.summary.eyes.items():
        if s is None or not s.vf_predicted:
            continue
        column = ou.columns[eye]
        table, rows = column.table, {name: k for k, name in enumerate(column.ROWS)}
        vfi = table.item(rows["vfi"], 0).text()
        assert vfi.endswith(OUTSIDE_MARK) == outside_normal("vfi", s.vf_predicted["vfi"]), (eye, vfi)
        psd = table.item(rows["psd"], 0)
        assert psd.text().endswith("WORSE") and psd.toolTip() == VF_WORSE_BESIDE, (eye, psd.text())
        checked += 1
    assert checked


# ---------------------------------------------------------------- W12: the CSV's RNFL class columns

@pytest.mark.gui
def test_the_csv_gives_the_global_rnfl_class_the_panel_shows_beside_the_overall_class(
        qtbot, window, monkeypatch, tmp_path):
    """W12: rnfl_class (the worst of the global RNFL, its quadrants and sectors: "borderline" from sector TI) sat
    beside rnfl_global_um while the window said "Global RNFL 88 µm (normal)". The CSV now has rnfl_global_class,
    the panel's class of the global RNFL, and its notice says what rnfl_class is."""
    import dataclasses

    from octviewer.gui.export.results_csv import CLASS_NOTE

    w = window
    _open_demo(qtbot, w, monkeypatch)
    report = w.state.structure
    classes = {k: "normal" for k in report.classes} | {"global": "normal", "sector_TI": "borderline"}
    w.state.set_structure(dataclasses.replace(report, classes=classes))
    qtbot.wait(20)
    _save(w.structure_panel, "w12_structure_panel")
    from octviewer.gui.structure.page import _disc_text

    shown = _disc_text(w.state.structure)  # the Structure panel's and the PDF's words
    out = _export(w, monkeypatch, "export_csv", tmp_path / "demo.csv", identify=False)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    volume = rows[0]
    assert volume["level"] == "volume"
    assert volume["rnfl_global_class"] == "normal" and volume["rnfl_class"] == "borderline"
    assert f"Global RNFL {report.rnfl_global_um:.0f} µm (normal)" in shown and "Overall" in shown
    assert CLASS_NOTE in volume["notice"]
    assert all(r["rnfl_global_class"] == "" for r in rows[1:])


# ---------------------------------------------------------------- W15: every page names its patient, eye and date

def _heads(pages) -> list[str]:
    """The first printed line of each page."""
    return [next((line.strip() for line in page.splitlines() if line.strip()), "") for page in pages if page.strip()]


@pytest.mark.gui
def test_every_page_of_the_scan_report_names_its_patient_eye_and_date(qtbot, window, monkeypatch, tmp_path):
    """W15: pages 2 and 3 of the scan report (structure, sectors, model) carried only a page number. Identified,
    every page's head names the patient, the eye and the scan date; anonymised, a pseudonymous key and the eye, with
    no ID and no date; every foot says "page x of y"."""
    from octviewer.gui.viewer.results_panel import scan_date

    w = window
    _open_demo(qtbot, w, monkeypatch)
    v = w.volume
    monkeypatch.setattr(w.study, "patient_line", lambda: "PAT-H69")
    pdf = _export(w, monkeypatch, "export_pdf", tmp_path / "id.pdf", identify=True)
    _save(pdf, "w15_scan_identified")
    pages = [p for p in _pdf_text(pdf) if p.strip()]
    assert len(pages) >= 2
    for n, head in enumerate(_heads(pages), 1):
        assert head.startswith("Patient PAT-H69") and v.laterality in head and scan_date(v) in head, (n, head)
    for n, page in enumerate(pages, 1):
        assert f"page {n} of {len(pages)}" in page
    pdf = _export(w, monkeypatch, "export_pdf", tmp_path / "anon.pdf", identify=False)
    _save(pdf, "w15_scan_anonymised")
    pages = [p for p in _pdf_text(pdf) if p.strip()]
    heads = _heads(pages)
    assert len(set(heads)) == 1 and heads[0].startswith("Anonymised report") and "key vol-" in heads[0], heads
    assert v.laterality in heads[0] and scan_date(v)[:4] not in " ".join(pages) and "PAT-H69" not in " ".join(pages)


@pytest.mark.gui
def test_every_page_of_the_ou_report_names_its_patient_and_visit(qtbot, window, monkeypatch, demo, tmp_path):
    """W15 in the OU report: every page's head names the patient, OU and the visit (identified), or the patient's
    pseudonymous key and OU (anonymised: no ID, no date)."""
    w = window
    ou = _open_ou(qtbot, w, monkeypatch, demo)
    summary = ou.summary
    pdf = _export(w, monkeypatch, "export_ou", tmp_path / "ou_id.pdf", identify=True)
    _save(pdf, "w15_ou_identified")
    pages = [p for p in _pdf_text(pdf) if p.strip()]
    assert len(pages) >= 2
    for head in _heads(pages):
        assert head == f"Patient {summary.patient_id}  ·  OU  ·  visit {summary.visit}".replace("  ", " ") or (
            head.startswith(f"Patient {summary.patient_id}") and f"visit {summary.visit}" in head), head
    pdf = _export(w, monkeypatch, "export_ou", tmp_path / "ou_anon.pdf", identify=False)
    _save(pdf, "w15_ou_anonymised")
    pages = [p for p in _pdf_text(pdf) if p.strip()]
    heads = _heads(pages)
    assert len(set(heads)) == 1 and heads[0].startswith("Anonymised report") and "key pat-" in heads[0], heads
    text = " ".join(pages)
    assert summary.patient_id not in text and summary.visit not in text


# ---------------------------------------------------------------- W16: the anonymised trend's time axis

@pytest.mark.gui
def test_the_anonymised_ou_reports_trend_counts_years_from_the_first_visit(qtbot, window, monkeypatch, demo,
                                                                          tmp_path):
    """W16: the anonymised OU report's trend plots had no ticks on their time axis and a stray "(x1e+09)" beside
    "time (dates withheld)": 6 months or 3 years could not be told apart. Now the axis counts years since the first
    visit (no dates), without the exponent; the window's own axis keeps its dates afterwards."""
    from PySide6.QtCore import Qt

    w = window
    ou = _open_ou(qtbot, w, monkeypatch, demo)
    panel = w.study.panel
    visit = panel.tree.topLevelItem(0).child(0)
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    panel.tree.setCurrentItem(eye)
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    trend = w.study.trend_view
    qtbot.waitUntil(lambda: trend.history is not None and trend.history.patient_id == ou.summary.patient_id,
                    timeout=120000)
    seen = []
    real = trend.graphics.grab

    def grab(*args):
        for plot in trend.plots.values():
            axis = plot.getAxis("bottom")
            lo, hi = axis.range
            values = axis.tickValues(lo, hi, axis.width())[0][1]
            seen.append((axis.labelString(), axis.tickStrings(values, 1.0, 1.0)))
        image = real(*args)
        image.save(os.path.join(GRABS, "w16_trend_grab.png")) if os.path.isdir(GRABS) else None
        return image
    monkeypatch.setattr(trend.graphics, "grab", grab)
    pdf = _export(w, monkeypatch, "export_ou", tmp_path / "ou_anon.pdf", identify=False)
    _save(pdf, "w16_ou_anonymised")
    assert seen and "Trend" in " ".join(_pdf_text(pdf))
    for label, ticks in seen:
        assert "years since the first visit" in label and "x1e" not in label, label
        assert len(ticks) >= 2 and all(t and float(t) >= -1 for t in ticks), ticks  # years, not dates
        assert not any("20" in t and len(t) >= 4 for t in ticks), ticks
    axis = trend.plots["rnfl"].getAxis("bottom")
    lo, hi = axis.range
    after = axis.tickStrings(axis.tickValues(lo, hi, axis.width())[0][1], 1.0, 1.0)
    assert any(len(t) >= 4 and t[-4:].isdigit() for t in after), after  # the window's dates again
