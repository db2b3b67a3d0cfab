"""Walk-through H121 (U2, U4-U9), its items fixed by H123, each through the window as a user drives it: File > Open
(its dialog patched), File > Open study folder, the Study tree clicked, key presses on the widget with the focus, the
Analysis and View menus' actions, Help > Reading the results, the OU view and File > Export OU report. Grabs go to
$H123_GRABS when set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder

pytestmark = pytest.mark.gui


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H123_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _open_by_menu(qtbot, w, monkeypatch, path, result: bool = True) -> None:
    """File > Open… on ``path``, its dialog patched; back once the scan is on screen and settled (with its network
    result when ``result``)."""
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.volume is not None and w.state.volume.source == str(path)
                    and (w.state.prediction is not None or not result) and w.controller.analysis_generation == -1
                    and not w.state.measuring, timeout=240000)


def _items(tree, kind: str) -> list:
    from PySide6.QtWidgets import QTreeWidgetItemIterator

    from octviewer.gui.study.browser import ROLE

    found, iterator = [], QTreeWidgetItemIterator(tree)
    while iterator.value() is not None:
        data = iterator.value().data(0, ROLE)
        if data and data[0] == kind:
            found.append(iterator.value())
        iterator += 1
    return found


def _focused():
    from PySide6.QtWidgets import QApplication

    return QApplication.focusWidget()


# ---------------------------------------------------------------- U4: the B-scan keys after a scan opens

def test_a_scan_opened_with_the_study_tree_focused_takes_the_bscan_keys(qtbot, window, monkeypatch, demo, tmp_path):
    """U4: with the Study tree focused (a visit clicked), File > Open of another patient's scan left the focus in the
    tree: End, Page Up, Home, Down moved the tree's selection (OU view enabled for the study's patient, and a scan item
    reached opens that patient's scan), the B-scan stayed put. Opening a scan, by File > Open or from the tree, now
    gives the B-scan view the focus: the keys page through B-scans and the tree stays where it was."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    from octviewer.resources import DEMO_SCAN

    w = window
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=5000)
    panel = open_study_folder(qtbot, w, monkeypatch, Path(shutil.copytree(demo, tmp_path / "study")))
    tree = panel.tree
    visit = _items(tree, "visit")[0]
    _click_item(qtbot, tree, visit)  # the tree has the focus, a visit selected (no scan opens)
    assert tree.hasFocus() and w.state.volume is None
    _open_by_menu(qtbot, w, monkeypatch, DEMO_SCAN)
    n = w.state.n_bscans
    for key, index in ((Qt.Key_End, n - 1), (Qt.Key_PageUp, n - 11), (Qt.Key_Home, 0), (Qt.Key_Down, 1),
                       (Qt.Key_Down, 2), (Qt.Key_PageDown, 12), (Qt.Key_Up, 11)):
        qtbot.keyClick(_focused(), key)
        assert w.state.index == index, (key, w.state.index)
    assert _focused() is w.bscan
    assert w.state.volume.source == str(DEMO_SCAN)  # no other patient's scan replaced it
    assert tree.currentItem() is None or tree.currentItem() is visit  # the tree did not move
    _grab(w, "u4_open_keys")
    # from the tree: a click on a scan opens it, and the keys then page its B-scans, not the tree
    scan = _items(tree, "scan")[0]
    _click_item(qtbot, tree, scan)
    qtbot.waitUntil(lambda: w.state.volume is not None and os.path.realpath(w.state.volume.source)
                    == os.path.realpath(scan.data(0, Qt.UserRole)[4]), timeout=120000)
    assert _focused() is w.bscan
    start = w.state.index
    qtbot.keyClick(_focused(), Qt.Key_Down)
    assert w.state.index == min(start + 1, w.state.n_bscans - 1) != start or w.state.n_bscans == 1
    assert tree.currentItem() is scan
    _grab(w, "u4_tree_keys")


# ---------------------------------------------------------------- U2: a result the check, ticked again, refuses

def test_ticking_the_check_again_greys_out_a_result_the_check_refuses(qtbot, window, monkeypatch, tmp_path):
    """U2: Analysis > Quality check off, a scan of noise opened and analysed ("P(glaucoma) = 0.00", a big green
    "normal", VF figures), the check ticked again: the verdict and the figures stayed as a result, only a small note
    under them saying it was made with the check off. They are now grey and struck through, with "NOT A RESULT NOW"
    right under the verdict; unticking the check gives them back; Analyse (F5) applies the check (no result)."""
    from test_h92 import _noise_scan

    from octviewer.gui.viewer.results_panel import REFUSED_NOW, VOID_STYLE

    w = window
    w.resize(1400, 1000)
    assert not w.state.options.gate  # the fixture's window: the check off
    _open_by_menu(qtbot, w, monkeypatch, _noise_scan(tmp_path))
    panel = w.results
    assert not w.state.structure.quality.ok and w.state.prediction is not None
    figures = [label for label in panel.vf_labels[1::3]]  # the estimates' values (label, value, range per row)
    assert "color: #66bb6a" in panel.decision.styleSheet() or "color: #ef5350" in panel.decision.styleSheet()
    assert REFUSED_NOW not in panel.text()
    qtbot.wait(200)
    _grab(w.results_dock, "u2_check_off")
    w.menu_actions["quality_gate"].trigger()  # ticked again: the check refuses this scan
    assert w.state.options.gate
    text = panel.text()
    assert REFUSED_NOW in text and panel.borderline.isVisible()
    decision_line = text.index(panel.decision.text() + " " + panel.threshold.text())
    assert decision_line < text.index(REFUSED_NOW) < text.index("quality check off: this scan fails it")
    for label in (panel.probability, panel.decision, panel.threshold, *panel.vf_labels[1::3]):
        assert label.styleSheet() == VOID_STYLE, (label.text(), label.styleSheet())
    assert "P(glaucoma) = " in text  # greyed out, not gone: F5 withdraws it
    qtbot.wait(200)  # laid out
    _grab(w, "u2_check_ticked_again")
    _grab(w.results_dock, "u2_results_dock")
    w.menu_actions["quality_gate"].trigger()  # off again: the result stands as made
    assert REFUSED_NOW not in panel.text() and panel.decision.styleSheet() != VOID_STYLE
    assert all(label.styleSheet() != VOID_STYLE for label in panel.vf_labels[1::3]) and figures
    w.menu_actions["quality_gate"].trigger()  # on, and Analyse (F5): no result at all
    w.menu_actions["analyse"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and not w.state.measuring and not w.state.analysing
                    and w.controller.analysis_generation == -1, timeout=240000)
    assert w.state.prediction is None and REFUSED_NOW not in panel.text() and "P(glaucoma)" not in panel.text()


# ---------------------------------------------------------------- U6: what the "3.00 mm" beside the B-scan number is

def test_the_bscan_label_says_its_mm_are_the_distance_from_the_first_bscan(qtbot, window, monkeypatch, demo,
                                                                           tmp_path):
    """U6: "B-scan 33 of 64   3.00 mm" with nothing saying what the 3.00 mm is: read as the B-scan's width or depth.
    The label now says "3.00 mm from B-scan 1", and it still fits the B-scan view of a 1024 x 700 window with the
    Study panel open."""
    from PySide6.QtCore import Qt

    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1024, 700)
    open_study_folder(qtbot, w, monkeypatch, Path(shutil.copytree(demo, tmp_path / "study")))
    w.activateWindow()
    _open_by_menu(qtbot, w, monkeypatch, DEMO_SCAN)
    step = w.state.volume.spacing.bscan_mm
    label = w.bscan.label.toPlainText
    qtbot.keyClick(_focused(), Qt.Key_Home)
    assert label().startswith(f"B-scan 1 of {w.state.n_bscans}   0.00 mm from B-scan 1"), label()
    qtbot.keyClick(_focused(), Qt.Key_End)
    assert f"B-scan {w.state.n_bscans} of {w.state.n_bscans}   {(w.state.n_bscans - 1) * step:.2f} mm from B-scan 1" \
        in label(), label()
    assert "this B-scan: P=" in label()
    qtbot.wait(100)
    assert w.bscan.view.sceneBoundingRect().contains(w.bscan.label.sceneBoundingRect())  # whole on the view
    _grab(w, "u6_label_1024")


# ---------------------------------------------------------------- U5: the CAM's opacity said

def test_the_cam_legend_says_the_cams_opacity(qtbot, window, monkeypatch, demo, tmp_path):
    """U5: C, then [ five times: the CAM faded to invisible while View > Show CAM stayed ticked and its legend shown,
    with nothing saying the opacity. The legend now says it ("CAM 5%"), and still fits a 1024 x 700 window with
    the Study panel open."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1024, 700)
    open_study_folder(qtbot, w, monkeypatch, Path(shutil.copytree(demo, tmp_path / "study")))
    w.activateWindow()
    _open_by_menu(qtbot, w, monkeypatch, DEMO_SCAN)
    legend = w.cam_legend

    def said() -> str:
        return " ".join(label.text() for label in legend.findChildren(QLabel) if label.isVisible())

    qtbot.keyClick(_focused(), Qt.Key_C)
    assert w.state.settings.show_cam and legend.isVisible()
    assert "CAM 50%" in said(), said()
    for _ in range(5):
        qtbot.keyClick(_focused(), Qt.Key_BracketLeft)
    assert "CAM 5%" in said() and w.menu_actions["toggle_cam"].isChecked(), said()
    qtbot.wait(50)
    _grab(w, "u5_cam_faded")
    _grab(legend, "u5_legend")
    assert w.width() == 1024 and legend.minimumSizeHint().width() <= legend.width()  # the words fit the window
    qtbot.keyClick(_focused(), Qt.Key_BracketRight)
    assert "CAM 15%" in said(), said()
    qtbot.keyClick(_focused(), Qt.Key_C)  # off again: the setting is saved for the next test's window


# ---------------------------------------------------------------- U7: Help explains the verdict's "borderline"

def test_help_reading_the_results_explains_the_verdicts_borderline(qtbot, window):
    """U7: the Results panel, the OU card and the PDFs say "borderline: within 0.05 of the threshold", but Help >
    Reading the results explained "borderline" only as the RNFL colour (1st-5th percentile), one word with two meanings
    on one screen. Its Glaucoma estimate section now says what the verdict's borderline is, and that it is not the
    RNFL colour."""
    from PySide6.QtWidgets import QPlainTextEdit

    from octviewer.gui.viewer.results_panel import borderline_words

    w = window
    w.menu_actions["reading_guide"].trigger()
    qtbot.waitUntil(w.dialog.isVisible)
    text = w.dialog.findChild(QPlainTextEdit).toPlainText()
    estimate = text[text.index("Glaucoma estimate"):text.index("Visual-field estimates")]
    said = borderline_words(0.30, 0.32)  # the words the panel prints
    assert said and f'"{said}"' in estimate, estimate
    assert "less than 0.05 from the threshold, on either side" in estimate
    assert 'not the RNFL colour "borderline (1st-5th)"' in estimate
    w.dialog.resize(560, 480)
    _grab(w.dialog, "u7_reading_guide")


# ---------------------------------------------------------------- U8: the threshold's label readable over the curve

def _curve_under_label(curve) -> int:
    """How many points of the drawn P(glaucoma) curve, its segments sampled, lie under the threshold's label."""
    import numpy as np
    from PySide6.QtCore import QPointF

    view, box = curve.plotItem.vb, curve.threshold.label.sceneBoundingRect()
    x, y = curve.plotted()
    s = np.linspace(0, 1, 20)
    return sum(box.contains(view.mapViewToScene(QPointF(float(a + t * (b - a)), float(p + t * (q - p)))))
               for a, b, p, q in zip(x, x[1:], y, y[1:]) for t in s)


def test_the_threshold_label_stays_readable_where_the_curve_runs_through_it(qtbot, window, monkeypatch, tmp_path):
    """U8: a scan whose B-scans' P(glaucoma) hovers about the threshold from end to end, the window at 1024 x 700: no
    place of "threshold 0.32" was free of the curve, which was drawn through it ("0.32" unreadable), and a window made
    smaller kept the place chosen at its former width. The label is placed again at every size, and where the curve
    still runs under it, it sits on a dark plate above the curve."""
    import numpy as np
    from PySide6.QtCore import Qt
    from test_h112_walk import _load_model
    from test_h116_walk import _model

    from octviewer.gui.viewer.curve_view import LABEL_PLATE
    from octviewer.resources import DEMO_SCAN

    w = window
    w.resize(1400, 850)
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "first.safetensors", 0.5))
    _open_by_menu(qtbot, w, monkeypatch, DEMO_SCAN)
    threshold = float(np.nanmedian(w.state.probs))  # the curve hovers about it from end to end
    _load_model(qtbot, w, monkeypatch, _model(tmp_path / "near.safetensors", threshold))
    _open_by_menu(qtbot, w, monkeypatch, DEMO_SCAN)
    qtbot.waitUntil(lambda: w.state.prediction.threshold == pytest.approx(threshold), timeout=120000)
    curve = w.curve
    label = curve.threshold.label
    w.resize(1024, 700)
    qtbot.wait(300)
    assert w.width() == 1024
    under = _curve_under_label(curve)
    assert under > 0  # no free place for it at this size
    assert label.fill.style() != Qt.NoBrush and label.fill.color() == LABEL_PLATE.color()  # on a plate: readable
    assert curve.threshold.zValue() > curve.line.zValue()
    _grab(curve, "u8_curve_1024")
    _grab(w, "u8_window_1024")


# ---------------------------------------------------------------- U9: the asymmetry table's empty limit cells

@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils")
def test_the_asymmetry_tables_rows_without_a_limit_say_none_set(qtbot, window, monkeypatch, fields_demo, tmp_path):
    """U9: the OU view's and the OU report's asymmetry table left the "flag if |diff| >" cell empty for measured MD
    and VFI (and the probability and the estimates): beside a 5 dB MD difference, the empty cell read as "within
    limits" while the RNFL row was flagged in red. The cell now says "none set", and its tooltip and a note under the
    report's table say that the row is never flagged and which rows have a published limit."""
    import unicodedata

    from test_h84 import _export_ou, _open_ou
    from test_h112_walk import _pdf_text
    from test_h116_walk import _first_visit

    from octviewer.gui.study.ou_view import NO_LIMIT, no_limit_note

    w = window
    root = Path(shutil.copytree(fields_demo, tmp_path / "study"))
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, _first_visit(root))
    table = view.asymmetry_table
    rows = {table.verticalHeaderItem(i).text(): i for i in range(table.rowCount())}
    for name in ("MD measured (dB)", "VFI measured (%)", "Glaucoma probability", "MD predicted (dB)"):
        cell = table.item(rows[name], 3)
        assert cell.text() == NO_LIMIT and "never flagged ASYMMETRIC" in cell.toolTip(), name
    assert table.item(rows["MD measured (dB)"], 2).text() not in ("", "n/a")  # a measured difference stands there
    rnfl = next(i for name, i in rows.items() if name.startswith("Global RNFL"))
    assert table.item(rnfl, 3).text() == "9.0"  # a row with a limit keeps it
    qtbot.wait(100)
    _grab(view, "u9_ou_view")
    pdf = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", identified=False)
    shutil.copy(pdf, "/tmp/h123/u9_ou.pdf") if os.environ.get("H123_GRABS") else None
    text = _pdf_text(pdf)
    assert "MD measured (dB) " in text and NO_LIMIT in text
    row = text[text.index("MD measured (dB)", text.index("Inter-eye asymmetry")):]
    assert row.split(" VFI measured")[0].rstrip().endswith(NO_LIMIT), row[:80]
    assert unicodedata.normalize("NFKC", " ".join(no_limit_note().split())) in text  # (as _pdf_text: µ as μ)


# ---------------------------------------------------------------- U11: a visit the quality check refused, in the Trend

def test_the_trend_says_which_visits_scan_the_quality_check_refused(qtbot, window, monkeypatch, demo, tmp_path):
    """U11: with the quality check on, a visit whose OS scan the check refuses had no point in the Trend ("3 visits"
    of a 4-visit series) and nothing said it was missing or why: the reason was only in that visit's OU view. The
    Trend now says it under its slopes: on screen with the visit's date, in its notes (which the OU report prints,
    anonymised too) by the visit's place."""
    import math

    from test_attack16_trend import _trend
    from test_h84 import _swamp

    w = window
    w.resize(1400, 1000)
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    swamped = sorted((root / "scans").rglob("OS_*.dcm"))[1]  # the second of three visits
    _swamp(swamped)
    w.menu_actions["quality_gate"].trigger()  # on (the fixture's window has it off)
    assert w.state.options.gate
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _trend(qtbot, w, panel, "OS")
    history = view.history
    visit = sorted(history.visits)[1]
    assert visit in history.refused and len(history.visits) == 3, history.refused  # (the tiny demo's last may be too)
    summary = view.summary.text()
    for date in history.refused:
        assert not any(d == date and math.isfinite(v) for d, v in history.series["rnfl"])  # no point drawn
        assert f"OS {date}: a scan refused by the quality check (" in summary, summary
    assert "no value of it is plotted or in a slope" in summary
    said = [n for n in view.notes if "refused by the quality check" in n]
    assert len(said) == len(history.refused) and said[0].startswith("OS visit 2 of 3: a scan refused")
    assert str(visit) not in " ".join(view.notes)  # by place: the OU report prints the notes anonymised too
    qtbot.wait(100)
    _grab(view, "u11_trend")
