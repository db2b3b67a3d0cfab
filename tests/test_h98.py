"""H98: attack run 15's A15-11 (the commands' CSV and the window's, one quality check rule) and re-walk H95's V3, V5,
V8, V9 (what the CSV, the PDFs, the Study panel's list and the OU view say of a result made with the check off, a
repeat scan and the sector classes), each through the window's menus or the command's ``main``."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from conftest import open_study_folder
from test_attack14_study import _repeat_scan, _scans
from test_gui_h69 import _export
from test_h92 import _export_csv, _export_pdf_text, _noise_scan, _open_by_menu


def _grab(widget, name: str) -> None:
    """A picture of ``widget`` under $H98_GRABS when set (to look at the change)."""
    if os.environ.get("H98_GRABS"):
        widget.grab().save(os.path.join(os.environ["H98_GRABS"], name))

SENTENCE = "quality check off: this scan fails it (signal "
NO_RESULT = "with the check on it gets no result"


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) not installed")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------- A15-11: octviewer-predict's quality_check column

def test_the_commands_csv_carries_the_windows_quality_check_column_and_sentence(tmp_path, capsys):
    """A15-11: ``octviewer-predict --no-quality-gate`` wrote a refused scan "normal" beside its quality "refused" with
    no quality_check column and no word in its notice, which the window's CSV has carried since W4."""
    from octviewer.pipeline.predict_cli import main
    from octviewer.resources import DEMO_SCAN

    noise, out = _noise_scan(tmp_path), tmp_path / "np.csv"
    code = main([str(noise), str(DEMO_SCAN), "--no-quality-gate", "--no-pseudonymise", "--no-store",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    rows = {Path(r["file"]).name: r for r in _rows(out)}
    refused, good = rows[noise.name], rows[Path(DEMO_SCAN).name]
    assert refused["quality"].startswith("refused") and refused["decision"] in ("normal", "glaucoma")
    assert refused["quality_check"] == "off"
    assert SENTENCE in refused["notice"] and NO_RESULT in refused["notice"], refused["notice"]
    assert "F5" not in refused["notice"] and "it is on now" not in refused["notice"]
    assert good["quality_check"] == "off" and SENTENCE not in good["notice"]  # a scan the check passes: no word


def test_resuming_a_csv_of_the_older_columns_is_refused_naming_the_column(tmp_path, capsys):
    """A15-11, --resume: a results CSV written before the quality_check column is refused in clear words (which
    version, which column, what to do), never continued with the column blank or its cells shifted."""
    from octviewer.pipeline.predict_cli import COLUMNS, main
    from octviewer.resources import DEMO_SCAN

    out = tmp_path / "old.csv"
    old = [c for c in COLUMNS if c != "quality_check"]
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=old)
        w.writeheader()
        w.writerow({"file": "/elsewhere/a.dcm", "error": "/elsewhere/a.dcm: unreadable"})
    before = out.read_bytes()
    code = main([str(DEMO_SCAN), "--no-pseudonymise", "--no-store", "--resume", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "an older version wrote it (it has no column quality_check)" in err, err
    assert "run without --resume to start over" in err and "Traceback" not in err
    assert out.read_bytes() == before  # not touched


# ---------------------------------------------------------------- V3: no menu state in a report

@pytest.mark.gui
def test_csv_and_pdf_of_a_result_made_with_the_check_off_name_no_menu_state(qtbot, window, monkeypatch, tmp_path):
    """V3: after the check was ticked again, the CSV's notice and the PDF printed "it is on now: Analysis >
    Analyse (F5) applies it", the window's state at export time: two reports of one result differed by it. They
    keep the sentence, by the commands' rule; the Results panel keeps the instruction on screen."""
    w = window
    _open_by_menu(qtbot, w, _noise_scan(tmp_path), monkeypatch, timeout=240000)
    qtbot.waitUntil(lambda: w.controller.analysis_generation == -1, timeout=240000)  # nothing lands later
    w.menu_actions["quality_gate"].trigger()  # ticked again: the result on screen was made without it
    qtbot.wait(20)
    panel = " ".join(w.results.text().split())
    later = "; this result was made with the check off; it is on now: Analysis > Analyse (F5) applies it"
    assert later in panel  # on screen, kept
    sentence = panel[panel.index(SENTENCE):panel.index(later)]  # the panel's sentence, up to its instruction
    assert sentence.endswith(NO_RESULT)
    for row in _export_csv(w, monkeypatch, tmp_path / "r.csv"):
        assert row["quality_check"] == "off" and sentence in " ".join(row["notice"].split()), row["notice"]
        assert "it is on now" not in row["notice"] and "F5" not in row["notice"]
    text = _export_pdf_text(w, monkeypatch, tmp_path / "r.pdf")
    assert SENTENCE in text and NO_RESULT in text, text[:600]
    assert "it is on now" not in text and "(F5)" not in text


# ---------------------------------------------------------------- V9: why NS / NI classes are blank

@pytest.mark.gui
def test_the_csv_notice_says_why_the_ns_and_ni_classes_are_blank(qtbot, window, monkeypatch, tmp_path):
    """V9: rnfl_NS_class / rnfl_NI_class were blank beside their µm with no word why; the PDF says it."""
    from octviewer.resources import DEMO_SCAN

    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    qtbot.waitUntil(lambda: w.controller.analysis_generation == -1, timeout=240000)
    volume = _export_csv(w, monkeypatch, tmp_path / "d.csv")[0]
    assert volume["rnfl_NS_um"] and volume["rnfl_NI_um"] and not volume["rnfl_NS_class"]
    assert ("rnfl_NS_class, rnfl_NI_class: always blank: sectors NS, NI are given in µm only, not classed (the "
            "quadrant's range would call normal eyes thin)") in volume["notice"], volume["notice"]
    assert "Garway-Heath sectors" in volume["notice"]


# ---------------------------------------------------------------- V5, V8: a repeat scan in the list, OU view, OU PDF

def _repeat_study(demo, tmp_path) -> tuple[Path, Path, Path]:
    """The demo study with a repeat acquisition of its first OS scan: (root, the scan, the repeat)."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    os_ = _scans(root, "OS")[0]
    return root, os_, _repeat_scan(os_, os_.stem + "_repeat.dcm")


@pytest.mark.gui
def test_a_repeat_is_one_entry_naming_the_file_whose_figures_the_ou_view_shows(qtbot, window, monkeypatch, demo,
                                                                              tmp_path):
    """V5: a repeat scan was listed twice in the Study panel (once per file, word for word) and counted twice, and
    "the RNFL and disc figures shown are one scan's" did not say whose; the OU card's probability, a mean of two
    scans, did not say so, nor which file the wheel was measured on. V8: the anonymised OU report said "several
    scans of this eye" on a page of two eyes, and dropped that the RNFL and disc figures are one scan's."""
    from PySide6.QtCore import Qt

    root, scan, repeat = _repeat_study(demo, tmp_path)
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    listed = panel.problems.text().replace("\u200b", "")
    entries = [line for line in listed.splitlines() if "2 scans at the visit" in line]
    assert len(entries) == 1, listed  # once, not once per file
    shown = panel.index.scans_for(panel.index.scan_at(scan).patient_id, panel.index.scan_at(scan).visit, "OS")[0]
    assert f"the OU view shows the RNFL and disc figures of {os.path.relpath(shown.path, root)}" in entries[0]
    checks = len({(x.kind, x.text) for x in panel.index.warnings})
    assert f"Check (used as listed): {checks}" in panel.problems_summary.text()
    assert checks < len(panel.index.warnings)  # the two files' identical check counted once
    _grab(w, "h98_v5_list.png")
    # the OU view of the visit
    top = panel.tree.topLevelItem(0)
    visit = next(top.child(k) for k in range(top.childCount())
                 if top.child(k).data(0, Qt.UserRole)[2] == panel.index.scan_at(scan).visit)
    panel.tree.setCurrentItem(visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=120000)
    ou = w.study.ou_view
    os_eye = ou.summary.eyes["OS"]
    assert os_eye.n_predictions == 2 and ou.summary.eyes["OD"].n_predictions == 1
    column = ou.columns["OS"]
    assert column.decision.text().startswith("NORMAL") or column.decision.text().startswith("GLAUCOMA")
    assert "· mean of 2 scans" in column.decision.text().splitlines()[0]  # beside the verdict the probability gives
    assert column.table.item(0, 0).toolTip() == "P(glaucoma) and the VF estimates: mean of 2 scans"
    assert "mean of" not in ou.columns["OD"].decision.text()
    assert column.figures_from.text() == f"RNFL and disc figures: {Path(os_eye.structure_path).name} (one of 2 scans)"
    assert Path(os_eye.structure_path).name == Path(shown.path).name  # the file the list names
    assert not ou.columns["OD"].figures_from.isVisibleTo(ou)
    _grab(ou, "h98_v5_ou.png")
    # the OU reports
    anon = _pdf_text(_export(w, monkeypatch, "export_ou", tmp_path / "ou_anon.pdf", identify=False))
    assert ("OS: 2 scans at this visit: their P(glaucoma) and VF estimates are averaged; the RNFL and disc figures "
            "shown are one scan's; file names withheld") in anon, anon[:1500]
    assert "several scans of this eye" not in anon and "mean of 2 scans" in anon
    assert scan.name not in anon and repeat.name not in anon and scan.stem not in anon
    named = _pdf_text(_export(w, monkeypatch, "export_ou", tmp_path / "ou.pdf", identify=True))
    assert f"OS: RNFL and disc figures: {Path(os_eye.structure_path).name} (one of 2 scans)" in named, named[:1500]
    assert "mean of 2 scans" in named and repeat.name in named
