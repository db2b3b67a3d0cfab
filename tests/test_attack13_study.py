"""Attack run 13's findings in the study views and the OU report (H81), each through the window's own actions:
File > Open study folder, the Study tree, OU view, Trend, File > Export OU report… (dialogs patched)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_study_headers import _scans  # noqa: E402


def _visit_item(panel, label: str):
    top = panel.tree.topLevelItem(0)
    return next(top.child(k) for k in range(top.childCount()) if top.child(k).text(0).startswith(label))


def _export_ou(qtbot, w, monkeypatch, out: Path, identified: bool) -> Path:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identified else QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    return out


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _truncate(path: Path, new_name: str, cut: int = 40000) -> Path:
    data = path.read_bytes()
    path.unlink()
    bad = path.with_name(new_name)
    bad.write_bytes(data[: len(data) - cut])
    return bad


# ---------------------------------------------------------------- A13-3: the picture of the eyes

@pytest.mark.gui
@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfimages") is None, reason="poppler-utils")
def test_the_ou_reports_picture_never_prints_an_unreadable_scans_error(qtbot, window, monkeypatch, demo, tmp_path):
    """A13-3: the OD scan of a visit, named as clinics name files (patient name, birth date), is cut short. The
    anonymised OU report's picture of the eyes printed "scan unreadable: SMITH_JOHN_1950-01-01_OD_... : the pixel
    data is truncated ..." in the en-face's place (its text withheld it, A10-3). The picture now says the scan is
    unreadable and withholds why (anonymised) or points to the report's text (identified); the screen keeps it."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[1]
    stamp = od.stem[3:]
    bad = _truncate(od, f"SMITH_JOHN_1950-01-01_OD_{stamp}.dcm")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    visit = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    _click_item(qtbot, panel.tree, _visit_item(panel, visit))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    view = w.study.ou_view
    qtbot.waitUntil(lambda: view.summary is not None, timeout=180000)
    on_screen = view.columns["OD"].image.text()
    assert bad.name in on_screen  # the screen may keep the error
    grabbed: list[str] = []
    real_grab = view.eye_pair.grab

    def grab(*args):  # the labels' text at the moment the page's picture is taken
        grabbed.append(view.columns["OD"].image.text())
        return real_grab(*args)
    monkeypatch.setattr(view.eye_pair, "grab", grab)
    anonymised = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou_anon.pdf", identified=False)
    identified = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou_id.pdf", identified=True)
    assert grabbed == ["scan unreadable (details withheld: anonymised report)",
                       "scan unreadable (reason in the report's text)"], grabbed
    assert view.columns["OD"].image.text() == on_screen  # put back on screen
    text = _pdf_text(anonymised)
    assert "SMITH" not in text and "1950" not in text and "truncated" not in text
    assert "truncated" in _pdf_text(identified)  # the identified report gives the reason in its text
    images = tmp_path / "images"
    images.mkdir()
    subprocess.run(["pdfimages", "-png", str(anonymised), str(images / "ou")], check=True)
    assert sorted(images.iterdir()), "the report's picture of the eyes"


# ---------------------------------------------------------------- A13-9: the trend's unreadable visits on paper

@pytest.mark.gui
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_the_ou_reports_trend_says_which_visits_are_not_in_the_oct_slopes(qtbot, window, monkeypatch, demo, tmp_path):
    """A13-9: the OD scan of the last visit is cut short. The Trend says so in red; the OU report printed the OCT
    slopes over the other visits with no word of the one left out. Identified, the report names the visit and the
    error; anonymised, how many visits, without date or file name."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[-1]
    stamp = od.stem[3:]
    bad = _truncate(od, f"SMITH_JOHN_1950-01-01_OD_{stamp}.dcm")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    first = panel.tree.topLevelItem(0).child(0)
    _click_item(qtbot, panel.tree, first)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=180000)
    eye = next(first.child(k) for k in range(first.childCount()) if first.child(k).text(0).startswith("OD"))
    _click_item(qtbot, panel.tree, eye)
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    trend = w.study.trend_view
    qtbot.waitUntil(lambda: trend.history is not None, timeout=300000)
    assert trend.history.errors and bad.name in trend.summary.text()  # said on screen
    when = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    texts = {}
    for identified in (True, False):
        if not w.study.ou_open():
            w.study.ou_dialog.show()
        out = _export_ou(qtbot, w, monkeypatch, tmp_path / f"ou_{identified}.pdf", identified)
        texts[identified] = " ".join(_pdf_text(out).split())
    assert f"OD not in the OCT slopes: {when}: the scan could not be read or analysed" in texts[True], texts[True]
    assert bad.name in texts[True]
    assert ("OD: 1 visit's scan could not be read or analysed: not in the OCT slopes (details withheld: anonymised "
            "report)") in texts[False], texts[False]
    assert bad.name not in texts[False] and when not in texts[False] and "SMITH" not in texts[False]


# ---------------------------------------------------------------- A13-12: the Study panel at clinic scale

class _Counted(list):
    """A list that counts the passes over it (``for``, ``sorted``, comprehensions)."""

    passes = 0

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


def _clinic_index(patients: int):
    """N patients x 2 eyes x 3 yearly visits, a measured field 3 days after each scan (as A13_panel_time.py)."""
    import datetime as dt

    from octviewer.study.index import ScanEntry, StudyIndex
    from octviewer.study.vf_values import VfMeasurement

    scans, fields = [], []
    for p in range(patients):
        pid = f"P{p:05d}"
        for y in range(3):
            d = dt.date(2015 + y, 3, 1 + p % 27)
            for eye in ("OD", "OS"):
                scans.append(ScanEntry(f"/s/{pid}/{eye}_{d}.dcm", pid, eye, d.isoformat(), d, "volume", 128))
                fields.append(VfMeasurement(pid, eye, d + dt.timedelta(days=3), 95.0, -1.0, 2.0, "/s/vf.csv"))
    return StudyIndex("/s", scans=_Counted(scans), vf=_Counted(fields))


@pytest.mark.gui
def test_the_study_panel_fills_its_tree_in_a_few_passes_over_the_study(qtbot, window, monkeypatch, tmp_path):
    """A13-12: filling the Study panel (the GUI thread, when indexing ends) passed over every scan or field per
    patient, visit and eye, twice more for the status line's count: 53 s frozen at 800 patients. File > Open study
    folder of 300 patients (the indexing task patched to give them) now passes over the scans and the fields a
    handful of times, whatever the study's size; the tree and the status line say what they said."""
    import time

    from octviewer.gui.study import browser

    index = _clinic_index(300)
    monkeypatch.setattr(browser, "index_folder", lambda *a, **k: index)
    _Counted.passes = 0
    started = time.perf_counter()
    panel = _open_folder(qtbot, window, monkeypatch, tmp_path)
    took = time.perf_counter() - started
    assert _Counted.passes < 30, (_Counted.passes, took)  # the old code: some 20,000
    assert panel.tree.topLevelItemCount() == 300
    assert panel.status.text().replace("\u200b", "").startswith(
        "s: 1800 scans of 300 patients, 1800 measured visual fields;"), panel.status.text()
    visit = panel.tree.topLevelItem(0).child(0)
    assert visit.text(1) == "OD OS  · VF"
    assert visit.child(0).text(1) == "measured VF: MD -1.0 dB, VFI 95.0%, PSD 2.0 dB (tested 2015-03-04)"


# ---------------------------------------------------------------- A13-7: the OU export's folder

@pytest.mark.gui
def test_export_ou_report_starts_in_the_remembered_export_folder(qtbot, window, monkeypatch, demo, tmp_path):
    """A13-7: Export PDF / Export results start in the folder of the last export; File > Export OU report… started
    at a bare 'OU_report.pdf' (the program's working folder)."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_gui_walkthrough_h2 import _click_item

    w = window
    exports = tmp_path / "exports"
    exports.mkdir()
    w.settings.exported(exports / "earlier.pdf")  # an earlier export went there
    panel = _open_folder(qtbot, w, monkeypatch, Path(shutil.copytree(demo, tmp_path / "study")))
    _click_item(qtbot, panel.tree, panel.tree.topLevelItem(0).child(0))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=180000)
    offered = []

    def save(parent, title, start, kind, *a, **k):
        offered.append(start)
        return str(tmp_path / "elsewhere" / os.path.basename(start)), ""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    assert offered and os.path.dirname(offered[0]) == str(exports), offered
    assert (tmp_path / "elsewhere" / os.path.basename(offered[0])).read_bytes()[:5] == b"%PDF-"
    w.menu_actions["export_ou"].trigger()  # the folder just used is remembered for the next one
    assert os.path.dirname(offered[1]) == str(tmp_path / "elsewhere"), offered


# ---------------------------------------------------------------- A13-10: a field months from the one shown

@pytest.mark.gui
def test_a_field_nearer_to_no_visit_than_another_field_is_listed_and_not_counted(qtbot, window, monkeypatch, demo,
                                                                                  tmp_path):
    """A13-10: two real OD tests near the second visit, 3 days after its scan and 150 days before it. The tree
    shows the first; the second, within 180 days of the scan, was taken for another source of the same test: shown
    at no visit, listed nowhere, and counted ("2 measured visual fields"). It is now listed with why, not counted.
    The same test from another source (the same date) is still neither listed nor counted twice."""
    import datetime as dt

    from test_study_headers import _header_date

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[1]
    scan_date = _header_date(od)
    near, far = scan_date + dt.timedelta(days=3), scan_date - dt.timedelta(days=150)
    patient = od.parent.name
    (root / "visual_fields.csv").write_text(
        "patient_id,eye,date,vfi,md,psd\n"
        f"{patient},OD,{near},97.0,-0.5,1.9\n{patient},OD,{far},80.0,-9.0,6.0\n")
    (root / "copy_of_fields.csv").write_text(f"patient_id,eye,date,vfi,md,psd\n{patient},OD,{near},97.0,-0.5,1.9\n")
    panel = _open_folder(qtbot, window, monkeypatch, root)
    text = panel.problems.text().replace("\u200b", "")
    assert (f"measured VF of {patient} OD {far} is matched to no visit: the visit {scan_date} shows the field of "
            f"{near}, nearer") in text, text
    assert f"{near}" not in text.replace(f"the field of {near}", "")  # the duplicate of the shown test: not listed
    assert "1 measured visual field;" in panel.status.text().replace("\u200b", ""), panel.status.text()


# ---------------------------------------------------------------- walk-through wording: pp, "1 B-scan"

@pytest.mark.gui
def test_a_vfi_difference_reads_percentage_points_in_results_ou_view_and_ou_report(qtbot, window, monkeypatch, demo,
                                                                                    tmp_path):
    """A difference of two VFI percentages was written "+1.1 %" (a relative change, read so): the Results panel
    under the estimates, the OU view's pred − meas cell and the OU report's header now say percentage points."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item
    from test_study_headers import _header_date

    from octviewer.gui.export import ou_pdf

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[0]
    (root / "visual_fields.csv").write_text("patient_id,eye,date,vfi,md,psd\n"
                                            f"{od.parent.name},OD,{_header_date(od)},90.0,-4.0,4.0\n")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    visit = panel.tree.topLevelItem(0).child(0)
    eye = next(visit.child(k) for k in range(visit.childCount()) if visit.child(k).text(0).startswith("OD"))
    _click_item(qtbot, panel.tree, eye.child(0))  # the scan opens; the Results panel compares its field
    qtbot.waitUntil(lambda: w.state.prediction is not None and "difference" in w.results.extra.text(), timeout=120000)
    extra = w.results.extra.text()
    vfi = next(line for line in extra.splitlines() if line.startswith("VFI:"))
    assert vfi.endswith(" percentage points") and not vfi.endswith("%"), extra
    _click_item(qtbot, panel.tree, visit)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=180000)
    assert w.study.ou_view.columns["OD"].cell("vfi", 2).endswith(" pp")
    captured = []
    real = ou_pdf.write_pdf
    monkeypatch.setattr(ou_pdf, "write_pdf",
                        lambda doc, *a, **k: (captured.append(doc.toHtml()), real(doc, *a, **k))[1])
    _export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", identified=False)
    assert "(pp)" in captured[0] and "pp = percentage points" in captured[0] and "diff<br />(%)" not in captured[0]


@pytest.mark.gui
def test_the_study_tree_says_1_b_scan(qtbot, window, monkeypatch, tmp_path):
    """The tree said "1 B-scans" of a one-B-scan scan (File > Open study folder, the indexing task patched)."""
    import datetime as dt

    from octviewer.gui.study import browser
    from octviewer.study.index import ScanEntry, StudyIndex

    d = dt.date(2020, 1, 2)
    index = StudyIndex("/s", scans=[ScanEntry("/s/P/OD_one.dcm", "P", "OD", d.isoformat(), d, "line", 1),
                                    ScanEntry("/s/P/OS_cube.dcm", "P", "OS", d.isoformat(), d, "volume", 16)])
    monkeypatch.setattr(browser, "index_folder", lambda *a, **k: index)
    panel = _open_folder(qtbot, window, monkeypatch, tmp_path)
    visit = panel.tree.topLevelItem(0).child(0)
    details = [visit.child(k).child(0).text(1) for k in range(visit.childCount())]
    assert details == ["line, 1 B-scan", "volume, 16 B-scans"], details
