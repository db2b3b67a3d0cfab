"""The eighth walk-through's (H43) low findings in the Trend, the scan PDF's curve, the CSV, the line-scan PDF
and the CAM default. Grabs to look at: OCTVIEWER_WALK_GRABS=folder."""

import datetime as dt
import os
import types

import numpy as np
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytestmark = pytest.mark.gui


def _grab(widget, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


# ---------------------------------------------------------------- the Trend
DATES = [dt.date(2022, 6, 1), dt.date(2023, 6, 1), dt.date(2025, 6, 1)]


def _history(n=3, **series):
    from octviewer.gui.study.trend_view import EyeHistory
    from octviewer.study import trend

    points = {name: list(zip(DATES[:n], values[:n])) for name, values in series.items()}
    history = EyeHistory("P1", "OD", points)
    history.trends = {name: trend(p, measure=name.split("_")[0]) for name, p in points.items()}
    return history


def _trend_view(qtbot, history, size=(800, 700)):
    from octviewer.gui.study.trend_view import TrendView

    view = TrendView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    view.show_history(history)
    qtbot.wait(20)
    return view


def _lines(plot):
    return [item for item in plot.listDataItems() if item.opts.get("symbol") is None]


def test_two_visits_draw_no_fitted_line_and_no_caption_for_one(qtbot):
    """With 2 visits the summary said "at least 3 needed for a trend", yet a line was drawn and the caption
    said "Lines: least-squares fit over the visits" (shot_18)."""
    from PySide6.QtGui import QTextDocumentFragment

    view = _trend_view(qtbot, _history(2, vfi_measured=[98.0, 90.0], md_measured=[-1.0, -3.0]))
    _grab(view, "h43_trend_two_visits.png")
    assert not _lines(view.plots["vfi"]) and not _lines(view.plots["md"])
    shown = QTextDocumentFragment.fromHtml(view.summary.text()).toPlainText()
    assert "at least 3 needed" in shown and "Lines:" not in shown and "Lines:" not in " ".join(view.notes)


def test_the_vfi_line_ends_at_100_and_no_point_sits_on_the_top_edge(qtbot):
    """A VFI line fitted from 99.5 % started above 100 %: it was cut short of the plot's edge, and the first
    point sat on the top edge, half cut (shot_44)."""
    view = _trend_view(qtbot, _history(vfi_measured=[99.5, 95.0, 70.0]))
    _grab(view, "h43_trend_vfi_edge.png")
    plot = view.plots["vfi"]
    (_, _), (y0, y1) = plot.viewRange()
    (line,) = _lines(plot)
    _, y = line.getData()
    assert np.all(np.isfinite(y)) and np.max(y) == pytest.approx(100.0, abs=1e-6) and np.min(y) >= 0
    assert y1 - 99.5 >= 0.05 * (y1 - y0)  # room above the highest point for its symbol


@pytest.mark.parametrize("key, low, high", [("vfi", 0.0, 100.0), ("md", -35.0, 5.0), ("rnfl", 0.0, 200.0)])
def test_the_y_axes_zoom_and_pan_no_further_than_the_index_can_go(qtbot, key, low, high):
    """Zoomed out, the VFI axis ran from -50 to 200 % (shot_19): the view stops near the index's range."""
    view = _trend_view(qtbot, _history(vfi_measured=[99.0, 95.0, 70.0], md_measured=[-1.0, -3.0, -9.0],
                                       rnfl=[100.0, 95.0, 60.0]))
    box = view.plots[key].getViewBox()
    box.setYRange(low - 5 * (high - low), high + 5 * (high - low), padding=0)
    box.scaleBy(y=10)
    qtbot.wait(20)
    (_, _), (y0, y1) = box.viewRange()
    margin = 0.1 * (high - low)
    assert low - margin <= y0 and y1 <= high + margin


def test_the_trend_summary_fits_a_1024x700_screen(qtbot):
    """At 1024 x 700 the summary's last line was cut off ("...even at") and the Trend dialog scrolled (shot_44):
    the plots give way to it. The dialog is the controller's own (screen height less a title bar)."""
    from PySide6.QtWidgets import QScrollArea, QWidget

    from octviewer.gui.study.controller import StudyController
    from octviewer.gui.study.trend_view import TrendView

    window = QWidget()
    qtbot.addWidget(window)
    view = TrendView()
    dialog = StudyController._dialog(types.SimpleNamespace(window=window), "Trend", view)
    qtbot.addWidget(dialog)
    dialog.resize(1024, 660)
    dialog.show()
    view.show_history(_history(rnfl=[100.0, 99.0, 55.0], md_predicted=[0.5, -0.5, -14.0],
                               md_measured=[0.0, -2.0, -11.0], vfi_predicted=[99.5, 98.0, 66.0],
                               vfi_measured=[99.5, 95.0, 70.0]))
    qtbot.wait(50)
    _grab(dialog, "h43_trend_1024x700.png")
    scroll = dialog.findChild(QScrollArea)
    assert view.height() <= scroll.viewport().height()
    assert view.summary.geometry().bottom() <= view.height()
    assert view.summary.height() >= view.summary.heightForWidth(view.summary.width())
    assert view.graphics.height() >= 300


# ---------------------------------------------------------------- the scan PDF's per-B-scan curve
def _curve_state(probs, threshold=0.32):
    from octviewer.core import OctVolume, Prediction
    from octviewer.gui.viewer.state import ViewerState

    n = len(probs)
    state = ViewerState()
    state.apply_scan(OctVolume(np.zeros((n, 16, 16), np.uint8), laterality="OS", acquired=dt.date(2024, 3, 6)))
    state.set_prediction(Prediction(bscan_probability=np.asarray(probs, float), bscan_vf={},
                                    cam=np.zeros((n, 2, 2), np.float32), probability=0.5, vf={},
                                    threshold=threshold, model_name="m"))
    return state


@pytest.mark.parametrize("probs", [np.full(30, 0.05), np.where(np.arange(30) < 12, 0.36, 0.05), np.full(30, 0.9)])
def test_the_reports_curve_labels_its_threshold_line(probs):
    """The scan PDF drew the dashed threshold line with no label; the window writes "threshold 0.32" (pdf1/q-2.png).
    The label is red text near the line, off the line's own row, where it covers none of the curve."""
    import cv2

    from octviewer.gui.viewer import render

    state = _curve_state(probs)
    img = render.curve_image(state)
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        cv2.imwrite(os.path.join(folder, f"h43_pdf_curve_{probs[0]:.2f}.png"), img[..., ::-1])
    c = img.astype(int)  # the threshold's red (200, 60, 60), not the curve's orange (230, 100, 40)
    red = (abs(c[..., 0] - 200) < 30) & (abs(c[..., 1] - 60) < 25) & (abs(c[..., 2] - 60) < 25)
    rows = np.flatnonzero(red.sum(axis=1))
    line_row = np.bincount(rows, weights=red.sum(axis=1)[rows]).argmax()
    assert red[np.abs(np.arange(len(img)) - line_row) >= 3].sum() > 40  # text beside the line, not only the line


# ---------------------------------------------------------------- the CSV export
CAVEAT = ("VFI, MD, PSD estimates not shown to beat the class-mean baseline on independent data (model card): "
          "read them as weak")


def _export_csv(tmp_path, monkeypatch, notes, structure):
    """File > Export results as CSV, as the window's exports run it (no dialog: the path given)."""
    import csv
    from types import SimpleNamespace

    from octviewer.core import OctVolume, Prediction
    from octviewer.gui.export import scan_exports

    n = 3
    volume = OctVolume(np.zeros((n, 8, 8), np.uint8), laterality="OD", source=str(tmp_path / "scan.dcm"))
    prediction = Prediction(bscan_probability=np.full(n, 0.9), bscan_vf={"md": np.full(n, -14.0)},
                            cam=np.zeros((n, 2, 2), np.float32), probability=0.95, vf={"vfi": 65.0, "md": -14.0,
                                                                                      "psd": 5.8},
                            threshold=0.32, model_name="m", notes=tuple(notes))
    monkeypatch.setattr(scan_exports, "write_export", lambda w, what, path, write, kind: write())
    model = SimpleNamespace(name="m", vf_names=("vfi", "md", "psd"), short_digest="", meta=SimpleNamespace(
        synthetic_data=False), trust=SimpleNamespace(text=lambda: ""))
    state = SimpleNamespace(measuring=False, prediction=prediction, volume=volume, structure=structure, reason="")
    window = SimpleNamespace(state=state, controller=SimpleNamespace(predictor=SimpleNamespace(model=model)),
                             study=SimpleNamespace(patient_line=lambda: None, measured_vf=lambda: None,
                                                 scan_checks=lambda: [], report_checks=lambda dated: []))
    exports = scan_exports.ScanExports(window)
    monkeypatch.setattr(exports, "exportable", lambda: True)
    exports.csv(str(tmp_path / "r.csv"))
    with open(tmp_path / "r.csv", newline="") as f:
        return list(csv.DictReader(f))


def _report(classes):
    from octviewer.structure.analysis import StructureReport
    from octviewer.structure.quality import Quality

    return StructureReport("OD", "volume", Quality(True, 0.5), source="own", classes=classes)


def test_the_csv_notice_carries_the_weak_estimate_caveat(tmp_path, monkeypatch):
    """The window and the PDF say the VF estimates are weak; the CSV's notice cell did not (r1.csv)."""
    rows = _export_csv(tmp_path, monkeypatch, [CAVEAT], None)
    assert rows[0]["level"] == "volume" and CAVEAT in rows[0]["notice"]
    assert all(CAVEAT in row["notice"] for row in rows[1:])  # the B-scan rows carry VF values too
    rows = _export_csv(tmp_path, monkeypatch, [], None)
    assert not any("class-mean" in row["notice"] for row in rows)  # no caveat, none written


def test_the_csv_gives_the_superior_and_inferior_quadrants_classes(tmp_path, monkeypatch):
    """The PDF gave "outside normal limits in quadrant S, quadrant I" as the reason for the RNFL class; the CSV had
    sector columns and the worst class only (r1.csv). The header stays one that csv_is_ours knows for older files."""
    from octviewer.core.files import csv_is_ours

    classes = {"global": "borderline", "quadrant_S": "outside", "quadrant_I": "outside", "quadrant_T": "normal"}
    rows = _export_csv(tmp_path, monkeypatch, [], _report(classes))
    # named rnfl_quadrant_*_class since H92 (walk-through H91, W2)
    assert (rows[0]["rnfl_quadrant_S_class"], rows[0]["rnfl_quadrant_I_class"]) == ("outside", "outside")
    assert rows[0]["rnfl_class"] == "outside" and rows[1]["rnfl_quadrant_S_class"] == ""
    assert list(rows[0])[-1] == "notice"
    header = list(rows[0])
    older = tmp_path / "older.csv"
    older.write_text(",".join(c for c in header if not c.endswith("_class") or c == "rnfl_class") + "\n")
    assert csv_is_ours(older, header) and csv_is_ours(tmp_path / "r.csv", header)


# ---------------------------------------------------------------- the line scan's PDF and norms
def test_a_line_scans_report_says_nothing_of_norms_it_did_not_use():
    """The line-scan PDF said "norms: another device's (Cirrus)" and "compared with published population figures",
    though nothing was measured (pdfl/p-1.png). A report that classed regions still names the norms' device."""
    from octviewer.gui.export.scan_pdf import structure_section
    from octviewer.structure import normative
    from octviewer.structure.analysis import StructureReport
    from octviewer.structure.quality import Quality

    norms = normative.source_for("Heidelberg Spectralis")
    assert normative.other_device(norms)
    refused = StructureReport("OD", "line", Quality(False, None, ("a line scan: structure analysis needs a "
                                                                   "peripapillary circle scan or an optic-disc cube",)),
                              norms_source=norms)
    text = structure_section(refused)
    assert "norms" not in text and "population" not in text and "a line scan" in text
    classed = StructureReport("OD", "circle", Quality(True, 0.6), source="own", norms_source=norms,
                              classes={"global": "normal"})
    assert "norms: another device&#x27;s" in structure_section(classed)


# ---------------------------------------------------------------- the CAM's default
def test_the_cam_is_off_until_the_clinician_turns_it_on(qtbot, monkeypatch, tmp_path):
    """On by default, the coarse 5 x 5 CAM painted the whole advanced demo B-scan red, vitreous included, over the
    layers a clinician reads (shot_01). With no saved setting it is off; View > Show CAM (C) turns it on."""
    from conftest import open_window

    from octviewer.gui.viewer import render
    from octviewer.resources import DEMO_MODEL, DEMO_SAMPLES

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no saved setting: the default
    windows = open_window(qtbot, monkeypatch, DEMO_MODEL)
    w = next(windows)
    try:
        w.resize(1280, 800)
        with qtbot.waitSignal(w.settled, timeout=60000):
            w.open_path(str(DEMO_SAMPLES / "demo_advanced_glaucoma_OD.dcm"))
        qtbot.wait(50)
        _grab(w, "h43_cam_default_off.png")
        toggle = w.menu_actions["toggle_cam"]
        assert w.prediction is not None and w.state.cams is not None  # computed, only not drawn
        assert not w.state.settings.show_cam and not toggle.isChecked()
        assert not w.bscan.cam.isVisible() and not w.enface.cam.isVisible() and not w.cam_legend.isVisible()
        assert render.enface_content(w.state) == ""
        toggle.trigger()
        assert w.bscan.cam.isVisible() and w.enface.cam.isVisible() and w.cam_legend.isVisible()
        _grab(w, "h43_cam_turned_on.png")
    finally:
        next(windows, None)
