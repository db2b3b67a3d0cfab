"""Attack run 7 (session 14), the window and the viewer command: names from files shown as markup
(A7-17, A7-18), the window's exports onto a FIFO, a link, the scan itself or a device (A7-1, A7-2,
A7-3, A7-13), a file name that is not UTF-8 (A7-10) or holds a right-to-left override (A7-11), and
``octviewer X --screenshot X`` (A7-20)."""

import csv
import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from conftest import open_window

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtGui  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QTextDocumentFragment  # noqa: E402
from PySide6.QtWidgets import QLabel  # noqa: E402

from octviewer.study.index import ScanEntry, StudyIndex  # noqa: E402
from octviewer.study.ou import EyeSummary  # noqa: E402

#: a patient ID, folder and file name that is markup (no "/": it is a folder's name too)
HOSTILE = '<h1><font color="red">NORMAL'


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model

    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=64))
    meta.update(name="tiny-test-model", synthetic_data=True)
    return save_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", build_network("semt", init="random"), meta)


@pytest.fixture
def window(qtbot, tiny_model_path, monkeypatch):
    yield from open_window(qtbot, monkeypatch, tiny_model_path)


def _open(qtbot, w, path):
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.open_path(str(path))
    qtbot.waitUntil(lambda: not w.state.measuring, timeout=60000)


def _scan(tiny_cohort, folder: Path, stem) -> str:
    """A cohort volume copied to ``folder`` as ``stem`` (str, or bytes for a name that is not UTF-8) plus
    the volume's own suffix; its path as the viewer gets it (a str, surrogate-escaped)."""
    source = sorted((tiny_cohort.parent / "volumes").iterdir())[0]
    name = (stem if isinstance(stem, bytes) else os.fsencode(stem)) + os.fsencode(source.suffix)
    target = os.path.join(os.fsencode(folder), name)
    shutil.copy(source, target)
    return os.fsdecode(target)


def _renders_markup(label: QLabel) -> bool:
    """As QLabel decides: rich text, or automatic and the text looks like markup (QtGui's Qt.mightBeRichText)."""
    fmt = label.textFormat()
    return fmt == Qt.RichText or (fmt == Qt.AutoText and QtGui.Qt.mightBeRichText(label.text()))


def _markup_shown(widget) -> list[str]:
    """The texts of labels under ``widget`` that hold the hostile markup and would render it."""
    return [label.text() for label in widget.findChildren(QLabel) if "<h1>" in label.text() and _renders_markup(label)]


# -- A7-17, A7-18: names from files are shown as written, never rendered --------------------------
def test_no_label_of_the_study_panel_ou_view_or_trend_renders_a_name_as_markup(qtbot, tmp_path):
    """A patient ID, a folder name and a file name holding <h1>…: the OU view's and the Trend's headers put
    a big red "NORMAL" above the eyes, the Study panel's status did the same with the folder's name, and
    the OU eye panel's error label with a damaged scan's name (A7-17, A7-18)."""
    from octviewer.gui.study.browser import StudyPanel
    from octviewer.gui.study.ou_view import OUView
    from octviewer.gui.study.trend_view import EyeHistory, TrendView

    root = tmp_path / HOSTILE
    root.mkdir()
    scan = str(root / f"{HOSTILE}.dcm")
    index = StudyIndex(root=str(root), scans=[ScanEntry(scan, HOSTILE, "OD", "2018-09-18", dt.date(2018, 9, 18))])
    index.problems = [(str(root / f"{HOSTILE}2.dcm"), "not a DICOM file")]

    panel = StudyPanel()
    qtbot.addWidget(panel)
    panel.set_index(index)
    panel.tree.expandAll()
    assert HOSTILE in panel.status.text().replace("\u200b", "")  # a long word's break points (browser.wrappable)
    ou = OUView()
    qtbot.addWidget(ou)
    ou.show_visit(StudyIndex(root=str(root)), HOSTILE, "2018-09-18")
    qtbot.waitUntil(lambda: not ou.tasks.busy(), timeout=30000)
    ou.columns["OD"].show_summary(EyeSummary("OD", [scan], error=f"{HOSTILE}.dcm: not a DICOM file"))
    trend = TrendView()
    qtbot.addWidget(trend)
    trend.show_eye(StudyIndex(root=str(root)), HOSTILE, "OD")
    qtbot.waitUntil(lambda: not trend.tasks.busy(), timeout=30000)
    trend.show_history(EyeHistory(HOSTILE, "OD", errors=[f"{HOSTILE}.dcm: not a DICOM file"]))

    assert HOSTILE in ou.header.text() and HOSTILE in trend.header.text()
    assert HOSTILE in ou.columns["OD"].image.text()  # "scan unreadable: <reason>" in the image's place (H65 W7)
    for widget in (panel, ou, trend):
        assert _markup_shown(widget) == []
    # the trend's summary is rich text (its colours): the name in it is escaped, and reads as written
    assert HOSTILE in QTextDocumentFragment.fromHtml(trend.summary.text()).toPlainText()
    # tooltips guess markup as labels do: the scan's path in the tree's tooltip is escaped
    tips = []
    stack = [panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        tips += [item.toolTip(0), item.toolTip(1)]
        stack += [item.child(i) for i in range(item.childCount())]
    assert any("&lt;h1&gt;" in t for t in tips)
    assert not any("<h1>" in t for t in tips)


# -- A7-1, A7-2, A7-3, A7-13: the window's exports follow the batch outputs' rules ----------------
@pytest.mark.parametrize("case", ["fifo", "link", "scan_csv", "scan_pdf"])
def test_an_export_onto_a_fifo_a_link_or_the_scan_on_screen_is_refused_and_never_said_saved(
        qtbot, window, tiny_cohort, tmp_path, case):
    """Onto a FIFO the CSV export froze the window (A7-1: here the FIFO has a reader, so the old code wrote
    into it instead of hanging the test); through a link it overwrote the link's target (A7-2); to the
    open scan's own path it destroyed the scan, and said "saved" (A7-3)."""
    w = window
    scan = _scan(tiny_cohort, tmp_path, "scan")
    _open(qtbot, w, scan)
    before = Path(scan).read_bytes()
    victim = tmp_path / "notes.txt"
    victim.write_text("clinic notes\n")
    target, reader = str(tmp_path / "results.csv"), None
    if case == "fifo":
        os.mkfifo(target)
        reader = os.open(target, os.O_RDONLY | os.O_NONBLOCK)
    elif case == "link":
        os.symlink(victim, target)
    else:
        target = scan
    try:
        if case == "scan_pdf":
            result = w.exports.pdf(target)
        else:
            result = w.exports.csv(target)
    finally:
        if reader is not None:
            os.close(reader)
    assert result is None and "saved" not in w.statusBar().currentMessage()
    assert w.warnings and w.warnings[-1].startswith("<p>Cannot write " + os.path.dirname(target))
    assert victim.read_text() == "clinic notes\n" and Path(scan).read_bytes() == before
    assert not list(tmp_path.glob(".export-*")) and not list(tmp_path.glob(".report-*"))


def test_the_export_rule_refuses_a_device_a_folder_the_model_and_a_file_in_use(tmp_path, tiny_model_path):
    """A7-13: Export PDF to /dev/full replaced the device by the report (run as root). The rule is looked at
    with lstat only: this test never writes to /dev."""
    from octviewer.gui.export.targets import target_problem

    assert "character device" in target_problem("/dev/null")
    assert "folder" in target_problem(str(tmp_path))
    scan = tmp_path / "scan.dcm"
    scan.write_bytes(b"DICM")
    assert "has open" in target_problem(str(scan), [str(scan)])
    assert "model file" in target_problem(str(tiny_model_path), [], tiny_model_path)
    assert target_problem(str(tmp_path / "new.csv"), [str(scan)], tiny_model_path) == ""


def test_a_csv_export_that_fails_leaves_the_old_file_as_it_was(qtbot, window, tiny_cohort, tmp_path, monkeypatch):
    """Written beside and renamed into place: a failure half-way left the chosen file holding the header."""
    from octviewer.gui.export import results_csv

    w = window
    _open(qtbot, w, _scan(tiny_cohort, tmp_path, "scan"))
    target = tmp_path / "results.csv"
    target.write_text("level,an earlier export\n")  # one of the window's results CSVs: it may be replaced

    def fails(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(results_csv, "csv_cell", fails)
    assert w.exports.csv(str(target)) is None and "No space left" in w.warnings[-1]
    assert target.read_text() == "level,an earlier export\n" and not list(tmp_path.glob(".export-*"))


def test_an_export_replaces_only_a_file_of_its_own_kind(qtbot, window, tiny_cohort, tmp_path):
    """Export PDF named over another scan (not open, not in the study), after Qt's "Replace?", left a
    3-page PDF called .dcm and no scan (eighth walk-through). An existing file is replaced only by its
    own kind: a PDF by a report, the window's results CSV by a results CSV."""
    w = window
    _open(qtbot, w, _scan(tiny_cohort, tmp_path, "scan"))
    other = tmp_path / "other_scan.dcm"
    other.write_bytes(b"\0" * 128 + b"DICM" + b"\1" * 64)
    before = other.read_bytes()
    assert w.exports.pdf(str(other)) is None and w.exports.csv(str(other)) is None
    assert "is not a PDF" in w.warnings[-2] and "is not a results CSV" in w.warnings[-1]
    assert other.read_bytes() == before
    report, table = tmp_path / "r.pdf", tmp_path / "r.csv"
    assert w.exports.pdf(str(report)) == str(report) and w.exports.pdf(str(report)) == str(report)
    assert w.exports.csv(str(table)) == str(table) and w.exports.csv(str(table)) == str(table)
    assert report.read_bytes().startswith(b"%PDF") and table.read_bytes().startswith(b"level,")


# -- A7-10, A7-11: file names that are not UTF-8, or hold hidden characters -----------------------
def test_a_latin1_file_name_is_exported_as_its_bytes(qtbot, window, tiny_cohort, tmp_path):
    """A7-10: UnicodeEncodeError out of the CSV export (no dialog), the file left holding the header."""
    w = window
    scan = _scan(tiny_cohort, tmp_path, b"M\xfcller_Hans")
    _open(qtbot, w, scan)
    out = tmp_path / "results.csv"
    assert w.exports.csv(str(out)) == str(out), w.warnings
    rows = list(csv.reader(out.open(newline="", encoding="utf-8", errors="surrogateescape")))
    assert len(rows) > 2 and os.fsencode(rows[1][rows[0].index("file")]) == os.fsencode(Path(scan).name)


def test_a_right_to_left_override_in_a_file_name_is_shown_escaped(qtbot, window, tiny_cohort, tmp_path):
    """A7-11: PAT<U+202E>mcd.1234 read as "PAT4321.dcm" in the title, the CSV's file cell and the recent files."""
    w = window
    scan = _scan(tiny_cohort, tmp_path, "PAT\u202emcd.1234")
    _open(qtbot, w, scan)
    assert "\u202e" not in w.windowTitle() and "PAT\\u202emcd.1234" in w.windowTitle()
    texts = [a.text() for a in w.recent_menu.actions()]
    assert texts and not any("\u202e" in t for t in texts) and any("\\u202e" in t for t in texts)
    out = tmp_path / "results.csv"
    assert w.exports.csv(str(out)) == str(out)
    rows = list(csv.reader(out.open(newline="", encoding="utf-8")))
    assert rows[1][rows[0].index("file")].startswith("PAT\\u202emcd.1234.")


# -- A7-20: --screenshot never replaces what the viewer reads -------------------------------------
def test_screenshot_naming_the_scan_the_model_or_a_file_that_is_no_png_is_refused(tmp_path, tiny_model_path,
                                                                                   capsys):
    """``octviewer x.dcm --screenshot x.dcm`` replaced the scan by the PNG, exit 0; the model file and the
    pseudonym salt likewise (A7-20). Refused before anything starts, exit 3, one line."""
    from octviewer.gui.app import main, screenshot_problem

    scan = tmp_path / "x.dcm"
    scan.write_bytes(b"\0" * 128 + b"DICM")
    notes = tmp_path / "notes.txt"
    notes.write_text("clinic notes\n")
    assert main([str(scan), "--screenshot", str(scan)]) == 3
    assert scan.read_bytes() == b"\0" * 128 + b"DICM"
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--screenshot" in err[0]
    assert "model file" in screenshot_problem(Path(tiny_model_path), [], Path(tiny_model_path))
    assert "not a PNG" in screenshot_problem(notes)
    png = tmp_path / "old.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    assert screenshot_problem(png) == "" and screenshot_problem(tmp_path / "new.png") == ""
    bscans = tmp_path / "bscans"  # a folder of B-scan images opened: its PNGs are the scan
    bscans.mkdir()
    (bscans / "b1.png").write_bytes(png.read_bytes())
    assert "folder being opened" in screenshot_problem(bscans / "b1.png", [str(bscans)])
