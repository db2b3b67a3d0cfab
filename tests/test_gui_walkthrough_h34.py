"""The open GUI items of the clinicians' walk-throughs (H34): what is marked, what the plots and the
panels show, what the exports are called. Grabs to look at: OCTVIEWER_WALK_GRABS=folder."""

import dataclasses
import datetime as dt
import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from octviewer.core import OctVolume, Prediction  # noqa: E402

pytestmark = pytest.mark.gui

WEAK_PSD = "PSD estimates not shown to beat the class-mean baseline on independent data (model card): read them as weak"


def _grab(widget, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def _prediction(n=4, notes=(WEAK_PSD,), vf=None):
    vf = vf or {"md": -8.0, "vfi": 98.0, "psd": 6.0}
    return Prediction(bscan_probability=np.linspace(0.1, 0.9, n), bscan_vf={k: np.full(n, v) for k, v in vf.items()},
                      cam=np.zeros((n, 2, 2), np.float32), probability=0.7, vf=vf, threshold=0.4,
                      model_name="test model", notes=tuple(notes))


def _volume(n=4):
    return OctVolume(np.random.default_rng(0).integers(0, 256, (n, 64, 48), dtype=np.uint8), laterality="OD",
                     acquired=dt.date(2024, 4, 2))


# ---------------------------------------------------------------- ● not on a weak estimate
def test_no_outside_mark_on_an_estimate_the_card_did_not_show_to_beat_the_class_mean(qtbot):
    """A predicted PSD of 6.0 dB was marked ● "outside the normal range" beside the note that PSD estimates are
    no better than the class mean: read as an abnormal field. MD (not weak) stays marked; so does every
    measured value, in the panel, the single-scan report, the OU view and the OU report."""
    from octviewer.core import outside_normal
    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.gui.export.scan_pdf import report_html
    from octviewer.gui.study.ou_view import EyeColumn
    from octviewer.gui.viewer.results_panel import ResultsPanel
    from octviewer.gui.viewer.state import ViewerState
    from octviewer.study.ou import EyeSummary, VisitSummary
    from octviewer.study.vf_values import VfMeasurement

    state = ViewerState()
    state.apply_scan(_volume())
    panel = ResultsPanel(state)
    qtbot.addWidget(panel)
    state.set_prediction(_prediction())
    panel.resize(300, 420)
    _grab(panel, "h34_weak_psd_panel.png")
    text = panel.text()
    # H69 (walk-through H65, W11): an estimate merely not shown to beat the class mean is marked as a measured value
    # is, under its caveat; only one the evaluation found WORSE is left unmarked (test_gui_h69)
    assert "-8.0 dB ●" in text and "6.0 dB ●" in text
    page = report_html(state, {})
    assert "-8.0 dB ●" in page and "6.0 dB ●" in page

    measured = VfMeasurement("P1", "OD", dt.date(2024, 4, 2), vfi=70.0, md_db=-9.0, psd_db=7.0)
    eye = EyeSummary("OD", [], probability=0.7, threshold=0.4, vf_predicted={"md": -8.0, "vfi": 98.0, "psd": 6.0},
                     vf_measured=measured, notes=(WEAK_PSD,))
    html = ou_report_html(VisitSummary("P1", "2024-04-02", {"OD": eye}))
    nowrap = "<td style='white-space: nowrap'>"  # (H69: the mark kept on the value's line)
    assert f"{nowrap}-8.0 ●</td>" in html and f"{nowrap}6.0 ●</td>" in html and f"{nowrap}7.0 ●</td>" in html
    column = EyeColumn("OD")
    qtbot.addWidget(column)
    column.show_summary(eye)
    # W11: a weak estimate is marked as the report marks it; only one the card finds WORSE goes unmarked
    assert column.cell("md", 0).endswith("●") and column.cell("psd", 0) == "6.0 ●"
    assert column.cell("psd", 1) == "7.0 ●"  # a measured value is never weak
    assert outside_normal("psd", 6.0) and not outside_normal("psd", 6.0, {"psd"})


# ---------------------------------------------------------------- settings: a grey window past 255 is clamped
@pytest.mark.parametrize("stored, expected", [(["30", "300"], (30.0, 255.0)), (["-20", "200"], (0.0, 200.0)),
                                              (["300", "400"], (0.0, 255.0)), (["200", "100"], (0.0, 255.0))])
def test_a_saved_grey_window_past_the_display_range_is_clamped(stored, expected, caplog):
    """A saved window of 30 to 300 was discarded (the full range drawn instead): it is clamped to 30-255. One
    that does not overlap 0-255, or is inverted, is still ignored; each is said in the log."""
    from octviewer.gui.settings import WindowSettings

    settings = WindowSettings()
    device = "h34 device " + "_".join(stored)
    settings.set(settings.levels_key(device), stored)
    with caplog.at_level("WARNING"):
        assert settings.levels(device) == expected
    assert "grey window" in caplog.text


# ---------------------------------------------------------------- the per-B-scan curve
def test_the_bscan_curve_draws_the_models_threshold(qtbot):
    """The app's curve had no threshold line (the PDF has one)."""
    from octviewer.gui.viewer.curve_view import CurveView
    from octviewer.gui.viewer.state import ViewerState

    state = ViewerState()
    curve = CurveView(state)
    qtbot.addWidget(curve)
    curve.resize(500, 170)
    curve.show()
    state.apply_scan(_volume(20))
    assert not curve.threshold.isVisible()
    state.set_prediction(_prediction(20))
    assert curve.threshold.isVisible() and curve.threshold.value() == pytest.approx(0.4)
    state.clear()
    assert not curve.threshold.isVisible()
    state.apply_scan(_volume(20))
    state.set_prediction(_prediction(20))
    _grab(curve, "h34_curve_threshold.png")


def test_the_bscan_curve_resets_its_axes_per_volume(qtbot):
    """After a study was opened (the scan closed) the last volume's B-scan axis and a zoom stayed up."""
    from octviewer.gui.viewer.curve_view import CurveView
    from octviewer.gui.viewer.state import ViewerState

    state = ViewerState()
    curve = CurveView(state)
    qtbot.addWidget(curve)
    curve.show()
    state.apply_scan(_volume(20))
    curve.setYRange(0.3, 0.5)
    curve.setXRange(5, 9)
    state.clear()
    (x0, x1), (y0, y1) = curve.viewRange()
    assert x1 < 3 and y0 <= 0.0 and y1 >= 1.0
    assert curve.getAxis("bottom")._tickLevels == [[]]
    state.apply_scan(_volume(4))
    curve.setYRange(0.3, 0.5)
    state.apply_scan(_volume(6))
    (x0, x1), (y0, y1) = curve.viewRange()
    assert y0 <= 0.0 and y1 >= 1.0 and 5.5 < x1 < 7


def test_the_slider_does_not_keep_the_last_volumes_position(qtbot, monkeypatch):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    gen = open_window(qtbot, monkeypatch, DEMO_MODEL)
    w = next(gen)
    w.state.apply_scan(_volume(20))
    w.state.set_index(15)
    assert w.slider.value() == 15
    w.controller.close_scan("closed")
    assert w.slider.maximum() == 0 and w.slider.value() == 0
    gen.close()


def test_the_structure_panels_note_is_at_its_top_after_a_tall_report(qtbot):
    """After a cancelled open the Structure panel read blank: its note ("Decoding cancelled", "Measuring") was
    centred in the last report's height (~870 px), below the fold of the dock scrolled to its top."""
    from PySide6.QtGui import QColor

    from octviewer.gui.structure.panel import MIN_HEIGHT, StructurePanel
    from octviewer.gui.viewer.controller import DECODING_CANCELLED

    panel = StructurePanel()
    qtbot.addWidget(panel)
    panel.setMinimumHeight(900)  # what a report on screen had made it
    panel.resize(240, 900)
    panel.show()
    panel.show_report(None, DECODING_CANCELLED)
    image = panel.grab().toImage()
    _grab(panel, "h34_structure_note.png")
    ground = QColor(image.pixel(2, 2))
    top = {image.pixel(x, y) for x in range(8, 232, 2) for y in range(8, 80, 2)}
    assert any(QColor(p) != ground for p in top)  # the note is drawn in the first lines
    qtbot.waitUntil(lambda: panel.minimumHeight() == MIN_HEIGHT, timeout=2000)  # and the panel shrinks to it


# ---------------------------------------------------------------- the trend plot: margins and dates
@pytest.mark.parametrize("days", [21, 120, 545, 3000])
def test_the_trend_plot_pads_its_time_axis_and_writes_unambiguous_dates(qtbot, days):
    """The first and last points sat on the plot's edge, and the time axis read "Apr02" (pyqtgraph's day beside
    its month): a margin of 45 days at least each side, labels "2024-04-02", "Apr 2024" or "2024"."""
    import re

    from octviewer.gui.study.trend_view import EyeHistory, TrendView, _epoch
    from octviewer.study import trend

    first = dt.date(2024, 4, 2)
    md = [(first + dt.timedelta(days=d), -1.0 - d / 365) for d in (0, days // 3, days)]
    history = EyeHistory("P1", "OD", {"md_measured": md})
    history.trends = {"md_measured": trend(md, measure="md")}
    view = TrendView()
    qtbot.addWidget(view)
    view.resize(700, 600)
    view.show()
    view.show_history(history)
    _grab(view, f"h34_trend_{days}d.png")
    x0, x1 = view.plots["md"].viewRange()[0]
    assert x0 <= _epoch(first) - 44 * 86400 and x1 >= _epoch(md[-1][0]) + 44 * 86400
    axis = view.plots["md"].getAxis("bottom")
    width = axis.geometry().width()
    labels = [text for spacing, values in axis.tickValues(x0, x1, width)
              for text in axis.tickStrings(values, 1.0, spacing)]
    assert len(labels) >= 2
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d|[A-Z][a-z]{2} \d{4}|\d{4}", t) for t in labels), labels


# ---------------------------------------------------------------- export names
def test_exports_offer_a_name_of_visit_date_eye_and_kind(qtbot, monkeypatch):
    """Every export offered "report.pdf" (two eyes' reports overwrote each other): visit date, eye and kind,
    never the file's stem (clinic file names carry patients' names and IDs)."""
    from conftest import open_window
    from PySide6.QtWidgets import QFileDialog

    from octviewer.gui.export.scan_exports import default_name
    from octviewer.resources import DEMO_MODEL

    assert default_name(dt.date(2024, 4, 2), "OD", "report.pdf") == "2024-04-02_OD_report.pdf"
    assert default_name(dt.datetime(2024, 4, 2, 9, 30), None, "results.csv") == "2024-04-02_results.csv"
    assert default_name(None, "OU", "report.pdf") == "OU_report.pdf"
    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    gen = open_window(qtbot, monkeypatch, DEMO_MODEL)
    w = next(gen)
    offered = []
    # the name offered; the folder it is offered in is the last export's (tests/test_export_folder.py)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda parent, title, name, kind: offered.append(os.path.basename(name)) or ("", ""))
    w.state.apply_scan(dataclasses.replace(_volume(), source="/clinic/Doe_John_123456_OS.vol"))
    w.state.set_prediction(_prediction())
    w.state.set_structure(None, "Not measured: test")
    w.exports.pdf()
    w.exports.csv()
    # the window's question is answered No (anonymised): a date is an identifier, the name leaves it out
    assert offered == ["OD_report.pdf", "OD_results.csv"]
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    w.exports.pdf()
    w.exports.csv()
    assert offered[2:] == ["2024-04-02_OD_report.pdf", "2024-04-02_OD_results.csv"]
    gen.close()


# ---------------------------------------------------------------- the Study tree
def test_long_scan_names_are_elided_in_the_middle_with_the_whole_name_in_a_tooltip(qtbot, tmp_path):
    """Scan names were cut at the right in the Study tree: names that differ at their end (eye, date, number)
    read alike. Elided in the middle; the tooltip holds the whole name."""
    from PySide6.QtCore import Qt

    from octviewer.gui.study.browser import StudyPanel
    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=3)
    for path in sorted(root.rglob("*.dcm")):
        if "perimetry" not in path.parts:
            path.rename(path.with_name("a_very_long_clinic_export_name_" + path.name))
    panel = StudyPanel(cache_dir=str(tmp_path / "cache"))
    qtbot.addWidget(panel)
    panel.resize(200, 500)
    panel.show()
    with qtbot.waitSignal(panel.index_ready, timeout=20000):
        panel.open_folder(str(root))
    assert panel.tree.textElideMode() == Qt.ElideMiddle
    item = panel.tree.topLevelItem(0)
    while item.childCount():
        item.setExpanded(True)
        item = item.child(0)
    assert item.text(0).startswith("a_very_long_clinic_export_name_") and item.text(0) in item.toolTip(0)
    assert panel.tree.columnWidth(0) <= panel.tree.viewport().width()  # elided where it shows, not cut by the edge
    _grab(panel, "h34_study_tree.png")


# ---------------------------------------------------------------- the Structure panel's colour key
def test_the_structure_panel_says_what_its_colours_mean(qtbot):
    """The panel's wheels and profile are green, yellow, red and grey with no key on screen (walk-through)."""
    from PySide6.QtWidgets import QApplication

    from octviewer import load_volume
    from octviewer.gui.app import dark_palette
    from octviewer.gui.structure.panel import COLOUR_KEY, StructurePanel, key_layout
    from octviewer.resources import DEMO_SAMPLES
    from octviewer.structure import measure

    if os.environ.get("OCTVIEWER_WALK_GRABS"):
        dark_palette(QApplication.instance())  # as the app draws it
    assert [name for name, _ in COLOUR_KEY] == ["normal", "borderline", "outside", ""]
    report = measure(load_volume(DEMO_SAMPLES / "demo_normal_OD.dcm"))
    panel = StructurePanel()
    qtbot.addWidget(panel)
    panel.resize(250, 600)
    panel.show()
    panel.show_report(report)
    qtbot.waitUntil(lambda: panel.minimumHeight() > 340, timeout=3000)
    panel.resize(250, panel.minimumHeight())
    image = panel.grab().toImage()
    _grab(panel, "h34_structure_key.png")
    entries, rows = key_layout(panel.fontMetrics(), panel.width() - 16)
    assert rows >= 2 and len(entries) == 4
    # the key's swatches are painted in the first rows of the panel, in the classes' colours
    from octviewer.gui.structure.page import CLASS_COLOURS

    top = {image.pixelColor(x, y).name() for x in range(0, 250) for y in range(0, rows * panel.fontMetrics().height())}
    assert all(CLASS_COLOURS[name].name() in top for name, _ in COLOUR_KEY)



# ---------------------------------------------------------------- the line legend on the B-scan
def test_the_line_legend_goes_where_it_covers_no_retina(qtbot, monkeypatch):
    """Always at the top left, the ILM/RNFL/BM legend covered the retina on the left of a B-scan at 1024 x 700:
    it stays in the vitreous when the ILM under it lies below it, and goes under Bruch's membrane otherwise."""
    import dataclasses
    from types import SimpleNamespace

    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    gen = open_window(qtbot, monkeypatch, DEMO_MODEL)
    w = next(gen)
    w.resize(1024, 700)
    w.state.apply_scan(_volume(4))
    overlay, view = w.structure, w.bscan.view
    sx, sy = w.bscan.scale
    x = np.arange(48) * sx

    def place(ilm_row, bm_row):
        overlay.lines["ilm"].setData(x, np.full(48, ilm_row * sy))
        overlay.lines["bm"].setData(x, np.full(48, bm_row * sy))
        # (H75, W29: the legend is placed for every B-scan's lines of the scan, read from its segmentation)
        seg = SimpleNamespace(ilm=np.full((4, 48), float(ilm_row)), bm=np.full((4, 48), float(bm_row)))
        monkeypatch.setattr(w.state, "_scan", dataclasses.replace(w.state._scan, structure=SimpleNamespace(
            segmentation=seg)))
        overlay.legend.setVisible(True)
        overlay._place_legend()
        qtbot.wait(50)
        box = overlay.legend.mapRectToParent(overlay.legend.boundingRect())
        return box, view.height()

    box, height = place(ilm_row=3, bm_row=20)  # retina high on the left: the legend goes under it
    assert box.top() > overlay._lines_in_view("bm", 1e9).max() and box.bottom() <= height
    _grab(w.bscan, "h34_legend_low.png")
    box, height = place(ilm_row=50, bm_row=60)  # a deep retina: the legend stays in the vitreous
    assert box.bottom() < overlay._lines_in_view("ilm", 1e9).min() and box.top() < height / 2
    gen.close()
