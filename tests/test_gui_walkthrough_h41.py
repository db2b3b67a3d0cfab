"""The seventh walk-through's (H35) and a review's (H36) GUI findings: the Study panel's width with a long
scan name, the weak-estimate caveat in the OU view and the Trend, the trend plots' date axis zoomed out, Esc on
the patient identifier question, the circle scan's CSV row, the Trend's and the OU view's marks.
Grabs to look at: OCTVIEWER_WALK_GRABS=folder."""

import datetime as dt
import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402

pytestmark = pytest.mark.gui

LONG = "Walkthrough_clinic_export_long_name_2024_OD_20180917.dcm"


def _grab(widget, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


# ---------------------------------------------------------------- the Study panel's width
def test_a_long_scan_name_selected_keeps_the_study_panel_within_its_dock(qtbot, tmp_path):
    """Selecting a scan with a long file name made the details line (word-wrapped, but one long word) wider
    than the dock: the panel scrolled sideways and Folder/Manifest/OU view/Trend became blank bars."""
    from PySide6.QtWidgets import QScrollArea

    from octviewer.gui.study.browser import StudyPanel
    from octviewer.study.index import ScanEntry, StudyIndex

    root = tmp_path / "a_study_folder_with_a_long_clinic_export_name_2024"
    index = StudyIndex(root=str(root), scans=[ScanEntry(str(root / LONG), "P1", "OD", "2018-09-17",
                                                        dt.date(2018, 9, 17), scan_pattern="volume", n_bscans=16)])
    panel = StudyPanel()
    scroll = QScrollArea()  # as the window's add_panel docks it, at the Study dock's minimum width
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    scroll.resize(180, 600)
    qtbot.addWidget(scroll)
    scroll.show()
    panel.set_index(index)
    panel.tree.expandAll()
    item = panel.tree.topLevelItem(0).child(0).child(0).child(0)
    panel.tree.setCurrentItem(item)
    qtbot.wait(50)
    _grab(scroll, "h41_study_panel.png")
    assert panel.details.isVisible() and "B-scans" in panel.details.text()
    assert panel.details.text().replace("\u200b", "").startswith(LONG)  # the whole name, wrapped
    assert panel.minimumSizeHint().width() <= 180
    assert not scroll.horizontalScrollBar().isVisible()
    for button in (panel.open_folder_button, panel.open_manifest_button, panel.ou_button, panel.trend_button):
        assert button.visibleRegion().boundingRect().width() >= button.sizeHint().width() - 8, button.text()


# ---------------------------------------------------------------- the weak-estimate caveat in the OU view and Trend
def _caveat():
    """The caveat as the model writes it into a prediction's notes (the Results panel's and PDFs' source)."""
    from octviewer.model.meta import is_vf_baseline_caveat, vf_baseline_caveat

    meta = {"evaluation": {"vf_mae": {k: {"mae": 5.0, "class_mean_mae": 4.0} for k in ("vfi", "md", "psd")}}}
    text = vf_baseline_caveat(meta)
    assert text and is_vf_baseline_caveat(text)
    return text


def test_the_ou_view_shows_the_weak_estimate_caveat_beside_predicted_vf(qtbot):
    """The OU view listed predicted VFI/MD/PSD (and their inter-eye differences) without the caveat the Results
    panel and the PDFs carry (seventh walk-through, #4)."""
    from octviewer.gui.study.ou_view import OUView
    from octviewer.study.ou import EyeSummary, VisitSummary

    caveat = _caveat()
    eyes = {e: EyeSummary(e, [], probability=0.7, threshold=0.4, vf_predicted={"md": -8.0, "vfi": 80.0, "psd": 6.0},
                          notes=(caveat, "another note")) for e in ("OD", "OS")}
    view = OUView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    view.show_summary(VisitSummary("P1", "2024-04-02", eyes))
    _grab(view, "h41_ou_caveat.png")
    assert view.vf_note.isVisible() and view.vf_note.text() == caveat  # once, the prediction's own words
    view.show_summary(VisitSummary("P1", "2024-04-02", {"OD": EyeSummary("OD", [], notes=(caveat,))}))
    assert not view.vf_note.isVisible()  # no predicted value shown: nothing to qualify


def test_the_trend_shows_the_weak_estimate_caveat_under_predicted_slopes(qtbot):
    """The Trend printed 'MD predicted: -6.55 dB/yr' and drew its line without the caveat (seventh walk-through)."""
    import numpy as np

    from octviewer.core import Prediction
    from octviewer.gui.study.trend_view import TrendView, eye_history
    from octviewer.study.index import ScanEntry, StudyIndex

    caveat = _caveat()
    dates = [dt.date(2020 + k, 3, 1) for k in range(3)]
    index = StudyIndex(root="/nowhere", scans=[ScanEntry(f"/nowhere/{d}.dcm", "P1", "OD", d.isoformat(), d)
                                               for d in dates])
    vf = iter([-2.0, -4.0, -6.0])

    def analyse(volume, cancel):
        md = next(vf)
        return Prediction(bscan_probability=np.zeros(1), bscan_vf={}, cam=np.zeros((1, 1, 1), np.float32),
                          probability=0.5, vf={"md": md, "vfi": 90.0 + md}, threshold=0.4, model_name="m",
                          notes=(caveat,)), None

    import octviewer.io

    loader, octviewer.io.load_volume = octviewer.io.load_volume, lambda path: None
    try:
        history = eye_history(index, "P1", "OD", analyse, lambda *a: None, type("C", (), {"is_set": lambda s: 0})())
    finally:
        octviewer.io.load_volume = loader
    assert history.vf_caveats == [caveat] and history.series["md_predicted"]
    view = TrendView()
    qtbot.addWidget(view)
    view.resize(800, 900)
    view.show()
    view.show_history(history)
    qtbot.wait(50)
    _grab(view, "h41_trend_caveat.png")
    from PySide6.QtGui import QTextDocumentFragment

    shown = QTextDocumentFragment.fromHtml(view.summary.text()).toPlainText()
    assert "MD predicted:" in shown and caveat in shown


# ---------------------------------------------------------------- the trend plots zoomed out
@pytest.mark.parametrize("years", [3, 40, 1000, 20000])
def test_the_trend_date_axis_zoomed_out_has_few_ticks_and_no_error(qtbot, years):
    """Zooming out fell through from 10-year steps to day ticks (13,045 for 1000 years, 0.86 s a repaint), and
    past year 9999 every repaint raised ValueError (review H36 #7): year steps as far as needed, and the view
    goes no further than dates can (pytest-qt fails a test on an exception raised in a paint)."""
    import re
    import time

    from octviewer.gui.study.trend_view import DateAxis, _epoch, date_ticks

    x0 = _epoch(dt.date(2023, 11, 14))
    x1 = x0 + years * 365.25 * 86400
    started = time.perf_counter()
    ticks = date_ticks(x0, x1, 8)
    assert time.perf_counter() - started < 0.05
    assert 2 <= len(ticks) <= 8 and all(re.fullmatch(r"[A-Z][a-z]{2} \d{4}|\d{4}", t) for _, t in ticks), ticks

    from octviewer.gui.study.trend_view import TrendView

    view = TrendView()
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    plot = view.plots["md"]
    plot.setXRange(x0, x1, padding=0)
    qtbot.wait(20)
    _grab(view, f"h41_trend_zoom_{years}y.png")
    view.grab()
    assert plot.viewRange()[0][1] <= _epoch(dt.date(9999, 12, 31)) + 1
    axis = plot.getAxis("bottom")
    assert isinstance(axis, DateAxis) and 1 <= len(axis._labels) <= 12


# ---------------------------------------------------------------- Esc on the "Patient identifier" question
def test_esc_on_the_patient_identifier_question_is_cancel_and_enter_is_no(qtbot):
    """The question had Yes and No only: Esc answered No and went on to the save dialog (seventh walk-through)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from octviewer.gui.dialogs import ask_or_cancel

    def press(key):
        def go():
            box = QApplication.activeModalWidget()
            if not isinstance(box, QMessageBox):
                QTimer.singleShot(20, go)
                return
            qtbot.keyClick(box, key)
        QTimer.singleShot(20, go)

    press(Qt.Key_Escape)
    assert ask_or_cancel(None, "Patient identifier", "Print the patient ID?") is None
    press(Qt.Key_Return)
    assert ask_or_cancel(None, "Patient identifier", "Print the patient ID?") is False


def test_cancel_on_the_patient_identifier_question_exports_nothing(qtbot, monkeypatch):
    """Cancel (Esc, closing the question) ends the scan exports and the OU report before the save dialog."""
    from types import SimpleNamespace

    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from octviewer.gui.export.scan_exports import ScanExports
    from octviewer.gui.study.controller import StudyController

    saved = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Cancel)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: saved.append(a) or ("/tmp/h41/x", ""))
    window = SimpleNamespace(state=SimpleNamespace(volume=SimpleNamespace(acquired=dt.date(2024, 4, 2),
                                                                          laterality="OD")))
    exports = ScanExports(window)
    assert exports._target("Export PDF report", "report.pdf", "PDF (*.pdf)", "Print?") == (None, False)
    index = object()
    controller = SimpleNamespace(window=None, index=index, _ou_index=index,
                                 ou_view=SimpleNamespace(summary=SimpleNamespace(visit="2024-04-02", patient_id="P1")))
    assert StudyController.export_ou_report(controller) is None
    assert saved == []


# ---------------------------------------------------------------- the circle scan's CSV row
def test_a_scan_not_analysed_says_so_once_and_that_the_model_is_synthetic(tmp_path, monkeypatch):
    """The circle scan's row said "not analysed: Not analysed: this is a circle scan…" and, unlike every other
    row, not that the model was trained on SYNTHETIC data (seventh walk-through)."""
    import csv
    from types import SimpleNamespace

    import numpy as np

    from octviewer.core import OctVolume
    from octviewer.gui.export import scan_exports
    from octviewer.gui.export.results_csv import write_results_csv

    volume = OctVolume(np.zeros((1, 8, 8), np.uint8), laterality="OD", source=str(tmp_path / "circle.vol"))
    reason = "Not analysed: this is a circle scan; the glaucoma estimate needs a volume scan."
    path = write_results_csv(tmp_path / "r.csv", volume, None, reason=reason, model_name="m", synthetic_model=True)
    row = next(csv.DictReader(open(path)))
    assert row["decision"] == "not analysed"  # short; why, in the notice (walk-through H82, W17)
    assert "not analysed: this is a circle scan; the glaucoma estimate needs a volume scan." in row["notice"]
    assert "Not analysed" not in row["notice"]
    assert "model trained on SYNTHETIC data" in row["notice"]

    seen = {}
    monkeypatch.setattr("octviewer.gui.export.results_csv.write_results_csv", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(scan_exports, "write_export", lambda w, what, path, write, kind: write())
    model = SimpleNamespace(name="m", vf_names=(), short_digest="", trust=SimpleNamespace(text=lambda: ""),
                            meta=SimpleNamespace(synthetic_data=True))
    state = SimpleNamespace(measuring=False, prediction=None, volume=volume, structure=object(), reason=reason)
    window = SimpleNamespace(state=state, controller=SimpleNamespace(predictor=SimpleNamespace(model=model)),
                             study=SimpleNamespace(patient_line=lambda: None, measured_vf=lambda: None,
                                                 scan_checks=lambda: [], report_checks=lambda dated: []))
    scan_exports.ScanExports(window).csv(str(tmp_path / "s.csv"))
    assert seen["synthetic_model"] is True


# ---------------------------------------------------------------- the Trend's fitted line, the curve's label, OU red
def test_the_trends_fitted_vfi_line_stays_inside_the_plot(qtbot):
    """A VFI line fitted from 98 % falling steeply started above 100 % and ran off the plot's top (s2_19.png)."""
    import numpy as np

    from octviewer.gui.study.trend_view import EyeHistory, TrendView
    from octviewer.study import trend

    points = [(dt.date(2023, 3, 1), 97.0), (dt.date(2024, 3, 1), 98.0), (dt.date(2025, 3, 1), 66.0)]
    history = EyeHistory("P1", "OD", {"vfi_predicted": points})
    history.trends = {"vfi_predicted": trend(points, measure="vfi")}
    view = TrendView()
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    view.show_history(history)
    _grab(view, "h41_trend_vfi_line.png")
    plot = view.plots["vfi"]
    (_, _), (y0, y1) = plot.viewRange()
    lines = [item for item in plot.listDataItems() if item.opts.get("symbol") is None]
    assert lines
    for item in lines:
        _, y = item.getData()
        assert y0 <= np.nanmin(y) and np.nanmax(y) <= y1


def test_the_threshold_label_does_not_cover_the_probability_curve(qtbot):
    """"threshold 0.32" sat on the curve where the B-scans' values lie near the threshold (B-scans 1-10 of the
    early glaucoma demo, shot_9.png): placed where it covers none of the curve's points."""
    import numpy as np
    from PySide6.QtCore import QPointF

    from octviewer.core import OctVolume, Prediction
    from octviewer.gui.viewer.curve_view import CurveView
    from octviewer.gui.viewer.state import ViewerState

    n = 30
    probs = np.where(np.arange(n) < 12, 0.36, 0.05)  # just above 0.32 at the left, far below it at the right
    state = ViewerState()
    curve = CurveView(state)
    qtbot.addWidget(curve)
    curve.resize(500, 170)
    curve.show()
    state.apply_scan(OctVolume(np.zeros((n, 16, 16), np.uint8), laterality="OS", acquired=dt.date(2024, 3, 6)))
    state.set_prediction(Prediction(bscan_probability=probs, bscan_vf={}, cam=np.zeros((n, 2, 2), np.float32),
                                    probability=0.5, vf={}, threshold=0.32, model_name="m"))
    qtbot.wait(50)
    _grab(curve, "h41_curve_label.png")
    box = curve.threshold.label.sceneBoundingRect()
    view = curve.plotItem.vb
    x, y = curve.plotted()
    assert len(x) == n
    assert not any(box.contains(view.mapViewToScene(QPointF(float(a), float(b)))) for a, b in zip(x, y))


def test_an_asymmetric_ou_row_paints_only_the_difference_red(qtbot):
    """A row flagged ASYMMETRIC turned both eyes' values red, the normal eye's (global RNFL 99.8) too; red
    elsewhere means outside normal (s3_26.png). The difference carries the flag."""
    from types import SimpleNamespace

    from octviewer.gui.study.ou_view import FLAG_COLOUR, OUView
    from octviewer.study.ou import EyeSummary, VisitSummary

    eyes = {e: EyeSummary(e, [], structure=SimpleNamespace(rnfl_global_um=rnfl, cup_to_disc=0.5))
            for e, rnfl in (("OD", 99.8), ("OS", 60.0))}
    view = OUView()
    qtbot.addWidget(view)
    view.show_summary(VisitSummary("P1", "2024-04-02", eyes))
    table = view.asymmetry_table
    row = next(i for i in range(table.rowCount()) if table.verticalHeaderItem(i).text().startswith("Global RNFL"))
    assert "ASYMMETRIC" in table.item(row, 2).text() and table.item(row, 2).foreground().color() == FLAG_COLOUR
    for column in (0, 1):
        assert table.item(row, column).foreground().color() != FLAG_COLOUR


# ---------------------------------------------------------------- the study tree's name column
def test_the_study_trees_name_column_keeps_the_width_the_user_set(qtbot):
    """Every resize of the dock set the name column back to its default width (review H36 #12); it still
    narrows to the visible width in a narrow dock and comes back to the user's width when there is room."""
    from octviewer.gui.study.browser import StudyPanel

    panel = StudyPanel()
    qtbot.addWidget(panel)
    panel.resize(400, 500)
    panel.show()
    qtbot.wait(20)
    panel.tree.header().resizeSection(0, 140)  # as a drag of the header's edge does
    panel.resize(420, 500)
    qtbot.wait(20)
    assert panel.tree.columnWidth(0) == 140
    panel.resize(150, 500)
    qtbot.wait(20)
    assert panel.tree.columnWidth(0) <= panel.tree.viewport().width()
    panel.resize(420, 500)
    qtbot.wait(20)
    assert panel.tree.columnWidth(0) == 140


def test_a_cup_to_disc_difference_shown_at_the_limit_is_not_flagged(qtbot):
    """H129's V4: C/D 0.534 and 0.331 showed "+0.20 ASYMMETRIC" beside the limit 0.20: the row is flagged by its
    difference as shown; 0.54 / 0.33 (+0.21) is."""
    from types import SimpleNamespace

    from octviewer.gui.study.ou_view import OUView
    from octviewer.study.ou import EyeSummary, VisitSummary

    view = OUView()
    qtbot.addWidget(view)
    for od, flagged in ((0.534, False), (0.544, True)):
        eyes = {e: EyeSummary(e, [], structure=SimpleNamespace(rnfl_global_um=90.0, cup_to_disc=cd))
                for e, cd in (("OD", od), ("OS", 0.331))}
        view.show_summary(VisitSummary("P1", "2024-04-02", eyes))
        table = view.asymmetry_table
        row = next(i for i in range(table.rowCount()) if table.verticalHeaderItem(i).text().startswith("Vertical"))
        assert ("ASYMMETRIC" in table.item(row, 2).text()) == flagged, table.item(row, 2).text()
