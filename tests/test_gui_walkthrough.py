"""The last clinician walk-through of the real window (findings M6, M7, M9 and the lows), driven as a
user drives it: menu entries through QAction.trigger(), buttons clicked, the window at 1400 x 850."""

import csv
import datetime as dt
import os
import re
import threading
import time

import numpy as np
import pyqtgraph as pg
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import demo_study, open_study_folder, open_window  # noqa: E402
from PySide6.QtCore import QMarginsF, Qt  # noqa: E402
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from octviewer.resources import DEMO_MODEL, DEMO_SCAN  # noqa: E402


def _open_by_menu(qtbot, w, path, monkeypatch, timeout=60000):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(w.settled, timeout=timeout):
        w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: not w.state.measuring, timeout=timeout)


# -- M6: the PDF report ------------------------------------------------------------------------------
def _page_fill(doc, tmp_path, by_line: bool = False) -> list[float]:
    """Share of each printed page's text area that holds content, laid out as QTextDocument.print_
    lays out the report on write_pdf's QPdfWriter (the page size and print_'s 2 cm frame margins).
    ``by_line``: a paragraph's lines (an image moved to the next page counts there, not on the page its
    paragraph began); else whole paragraphs."""
    writer = QPdfWriter(str(tmp_path / "layout.pdf"))
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait, QMarginsF(15, 15, 15, 15)))
    writer.setResolution(150)
    from octviewer.gui.export.scan_pdf import _printed_layout

    copy, height = _printed_layout(doc, writer)
    margin = int(2 / 2.54 * 96)  # print_'s frame margin, as _printed_layout sets it
    layout, bottoms = copy.documentLayout(), {}
    block = copy.begin()
    while block.isValid():
        whole = layout.blockBoundingRect(block)
        lines = block.layout()
        rects = ([lines.lineAt(k).rect().translated(0, whole.top()) for k in range(lines.lineCount())]
                 if by_line else [whole])
        for rect in rects:
            if rect.height() > 0:
                page = int(rect.top() // height)
                bottoms[page] = max(bottoms.get(page, 0.0), rect.bottom() - page * height)
        block = block.next()
    scale = writer.logicalDpiY() / 96
    usable = height - 2 * margin * scale
    return [(bottoms.get(k, 0.0) - margin * scale) / usable for k in range(copy.pageCount())]


def test_pdf_report_names_the_map_it_draws_fills_its_pages_and_prints_a_readable_bscan(qtbot, window, monkeypatch,
                                                                                          tmp_path):
    from octviewer.gui.export import scan_pdf

    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    assert w.state.structure is not None and w.state.structure.thickness_map_um is not None
    w.menu_actions["rnfl_deviation"].trigger()
    assert w.state.map_shown == "deviation"
    captured = {}
    real = scan_pdf.write_report

    def spy(path, state, images, meta, patient_id=None, sections=(), measured="", checks=""):
        captured.update(images=images, doc=scan_pdf.build_document(state, images, meta, patient_id, sections,
                                                                      measured, checks))
        return real(path, state, images, meta, patient_id, sections, measured, checks)
    monkeypatch.setattr(scan_pdf, "write_report", spy)
    out = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_pdf"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    text = captured["doc"].toPlainText()
    # the caption names the map drawn: it said "same CAM" under the deviation map
    assert "en-face with the RNFL deviation map" in text and "same CAM" not in text
    # ...and the map is drawn: the en-face has the deviation map's yellow or red where the scan has them
    enface = captured["images"]["enface"]
    rgb = np.frombuffer(enface.convertToFormat(enface.Format.Format_RGB888).constBits(), np.uint8)
    if (w.state.structure.deviation_map > 0).any():
        assert rgb.size and (np.abs(rgb.reshape(-1, 3)[:, 0].astype(int) - rgb.reshape(-1, 3)[:, 2]) > 60).any()
    # the B-scan is printed at a readable aspect (a Cirrus-like 6 x 2 mm B-scan was a thin strip), and
    # the caption says it is stretched
    bscan = captured["images"]["bscan"]
    assert bscan.height() / bscan.width() >= 0.5 and "depth stretched" in text
    # no page is mostly blank (page 2 held one figure: the structure page was forced onto page 3)
    fill = _page_fill(captured["doc"], tmp_path)
    data = out.read_bytes()
    assert len(fill) == data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type /Page/")
    # (the last page ends where the report ends: since the structure page's text is printed as paragraphs,
    # readable, the model section runs onto a third page, fifth walk-through)
    assert all(share > 0.6 for share in fill[:-1]), fill


# -- M7: a huge file that is not DICOM, and Cancel while opening --------------------------------------
def test_a_300_mb_file_of_zeros_named_dcm_is_refused_at_once(qtbot, window, monkeypatch, tmp_path):
    w = window
    zeros = tmp_path / "x.dcm"
    with open(zeros, "wb") as f:
        f.truncate(300 * 2**20)  # sparse: no disk, no time
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(zeros), ""))
    started = time.perf_counter()
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: bool(w.warnings), timeout=15000)  # it took ~140 s
    assert time.perf_counter() - started < 5
    assert "x.dcm" in w.warnings[-1] and "not a DICOM file" in w.warnings[-1]
    assert not w.progress.isVisible() and not w.cancel_button.isVisible()
    # the study index refuses it as fast, as one unreadable file
    from octviewer.study import index_folder

    started = time.perf_counter()
    index = index_folder(tmp_path, cache_dir=tmp_path / "cache")
    assert time.perf_counter() - started < 5 and index.skipped["unreadable files"] == 1


def test_opening_shows_progress_and_its_cancel_stops_the_read(qtbot, window, monkeypatch, tmp_path):
    from octviewer.io import VolumeReadError, progressive

    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    shown = w.volume
    stopped = threading.Event()

    def slow_reader(path, first_index=None, on_frames=None, on_done=None, cancel=None, **kwargs):
        while not cancel.is_set():  # a huge file on a slow disk: the reader checks its cancel event
            time.sleep(0.01)
        stopped.set()
        raise VolumeReadError(path, "loading was cancelled")

    monkeypatch.setattr(progressive, "open_volume_progressive", slow_reader)
    big = tmp_path / "big.dcm"
    big.write_bytes(b"")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(big), ""))
    w.menu_actions["open"].trigger()
    assert w.progress.isVisible() and "Reading big.dcm" in w.statusBar().currentMessage()
    assert w.cancel_button.isVisible()  # there was no Cancel: only waiting it out
    qtbot.mouseClick(w.cancel_button, Qt.LeftButton)
    assert stopped.wait(5)
    qtbot.waitUntil(lambda: not w.progress.isVisible(), timeout=5000)
    assert not w.cancel_button.isVisible() and w.volume is shown and not w.warnings
    assert "Opening cancelled" in w.statusBar().currentMessage()
    qtbot.wait(100)  # the read's own last word (cancelled) is not shown as a failure
    assert not w.warnings and w.volume is shown


# -- M9: the trend of three visits --------------------------------------------------------------------
def _prediction(md, vfi):
    from octviewer.core import Prediction

    return Prediction(bscan_probability=np.full(4, 0.6), bscan_vf={"md": np.full(4, md), "vfi": np.full(4, vfi)},
                      cam=np.zeros((4, 2, 2), np.float32), probability=0.6, vf={"md": md, "vfi": vfi},
                      threshold=0.5, model_name="test model", synthetic_model=True)


@pytest.fixture
def three_visits(tmp_path):
    """One patient, three visits; the right eye's measured fields scatter as real ones do."""
    from octviewer.study import index_folder
    root = demo_study(tmp_path / "study", patients=1, visits=3, seed=11, fields=False)  # its own CSV below
    index = index_folder(root, cache_dir=tmp_path / "cache")
    [pid] = index.patients()
    with open(root / "visual_fields.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["patient_id", "eye", "date", "vfi", "md", "psd"])
        for visit, md, vfi in zip(index.visits(pid), (-2.0, -5.5, -3.0), (96, 85, 93)):
            writer.writerow([pid, "OD", visit.date.isoformat(), vfi, md, 2.0])
    return root


def test_trend_of_three_visits_keeps_band_and_time_axis_to_the_data(qtbot, window, three_visits, monkeypatch):
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, three_visits)

    def analyse(volume, cancel=None):  # the network's share is not what this test is about
        years = (volume.acquired - dt.date(2018, 1, 1)).days / 365.25
        return _prediction(-1.0 - 0.3 * years, 97.0), None
    w.study.analyse = analyse
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0).child(0).child(0))  # the first visit's OD
    assert panel.trend_button.isEnabled()
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    view = w.study.trend_view
    qtbot.waitUntil(lambda: view.history is not None and not view.tasks.busy(), timeout=30000)
    dates = sorted(d for points in view.history.series.values() for d, _ in points)
    first, last = (dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp() for d in (dates[0],
                                                                                                       dates[-1]))
    span = last - first
    x0, x1 = view.plots["md"].viewRange()[0]
    assert x0 >= first - 0.1 * span and x1 <= last + 0.1 * span  # it ran two years past the last visit
    for key, plot in view.plots.items():  # no band is drawn beyond the plot's own y range
        lo, hi = plot.viewRange()[1]
        for item in plot.items:
            if isinstance(item, pg.PlotCurveItem) and item.yData is not None and len(item.yData):
                assert lo - 1e-6 <= item.yData.min() and item.yData.max() <= hi + 1e-6, key
    text = view.summary.text()
    assert "docs/" not in text and ".md" not in text  # a clinician has no docs folder
    assert "least-squares fit" in text and "Band not drawn for" in text  # said, not painted over the plot


# -- lows ---------------------------------------------------------------------------------------------
def test_a_line_scan_is_shown_and_said_to_need_a_volume(qtbot, window, samples_dir, monkeypatch):
    w = window
    w.menu_actions["quality_gate"].trigger()  # on, as at every start
    assert w.state.options.gate
    _open_by_menu(qtbot, w, samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol", monkeypatch)
    assert w.volume.scan_pattern == "line" and w.bscan.image.image is not None
    text = w.results.text()
    assert "line scan (a single B-scan)" in text and "needs a volume scan" in text
    assert "quality check" not in text  # its B-scan may be perfect: it was "refused" for its quality


def test_view_toggles_are_ticked_while_shown(qtbot, window, monkeypatch):
    w = window
    cam, lines = w.menu_actions["toggle_cam"], w.menu_actions["toggle_layers"]
    # the CAM starts off (eighth walk-through), the layer lines on
    assert cam.isCheckable() and not cam.isChecked() and lines.isCheckable() and lines.isChecked()
    cam.trigger()
    assert w.state.settings.show_cam and cam.isChecked()
    qtbot.keyClick(w, Qt.Key_C)  # the key does the same, and the tick follows
    assert not w.state.settings.show_cam and not cam.isChecked()
    lines.trigger()
    assert not w.state.settings.show_layers and not lines.isChecked()


def test_no_text_of_the_structure_panel_is_cut_off_at_1400_by_850(qtbot, window, monkeypatch):
    """Every text the Structure panel draws lies inside the panel, in the window at 1400 x 850 (the
    walk-through's size): the TSNIT title lost "(dashed: boundary unsure)" past the right edge, the
    disc figures their last lines past the bottom."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter

    from octviewer.gui.structure.page import draw_structure_page

    w = window
    w.resize(1400, 850)
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    qtbot.wait(50)
    panel = w.structure_panel
    assert w.state.structure is not None and panel.isVisible()
    cut, inside = [], QRectF(panel.rect()).adjusted(-1, -1, 1, 1)

    class Checking(QPainter):  # the page draws through Python: each text is checked as it is drawn
        def drawText(self, *args):  # noqa: N802 (Qt's name)
            if len(args) == 3 and isinstance(args[0], QRectF):
                if not inside.contains(self.boundingRect(*args)):  # drawn past the panel's edge: cut off
                    cut.append(args[2])
            super().drawText(*args)

    image = QImage(panel.size(), QImage.Format_RGB32)
    painter = Checking(image)
    painter.setFont(panel.font())
    draw_structure_page(painter, QRectF(panel.rect()).adjusted(8, 8, -8, -8), w.state.structure, dark=True)
    painter.end()
    assert not cut, cut


def test_an_empty_study_leaves_no_ou_or_trend_to_ask_for(qtbot, window, three_visits, monkeypatch, tmp_path):
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, three_visits)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0).child(0).child(0))
    assert panel.ou_button.isEnabled() and panel.trend_button.isEnabled()
    empty = tmp_path / "empty"
    empty.mkdir()
    open_study_folder(qtbot, w, monkeypatch, empty)
    assert not panel.ou_button.isEnabled() and not panel.trend_button.isEnabled()


def test_the_device_menu_offers_only_devices_this_computer_has(qtbot, monkeypatch):
    import torch

    from octviewer.gui import menus

    for has_gpu in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda has_gpu=has_gpu: has_gpu)
        windows = open_window(qtbot, monkeypatch, DEMO_MODEL)
        w = next(windows)
        assert ("device_cuda" in w.menu_actions) is has_gpu
        assert "device_auto" in w.menu_actions and "device_cpu" in w.menu_actions
        assert "cuda" not in [name for name, _ in menus.device_entries()] or has_gpu
        next(windows, None)


# -- walk-through of 2026-12-06 (screenshots 42b-d, 43, 44a, 44c, 01r, 35, 45r, 37) --------------------
def _grab(widget, name):
    """OCTVIEWER_WALK_GRABS=folder: each step's window as a PNG, to look at."""
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def test_cancel_by_button_esc_or_menu_stops_decoding_and_nothing_is_analysed(qtbot, window, monkeypatch, tmp_path):
    """While 'Decoding B-scans n/N' there was no Cancel, Esc and Analysis > Cancel did nothing and the
    analysis ran anyway. Now each stops the decoding; the B-scans decoded so far stay, said to be
    incomplete and not analysed."""
    import dataclasses

    from corpus import small_volume

    from octviewer import save_volume
    from octviewer.io import progressive

    w = window
    n = progressive.PARALLEL_MIN_FRAMES + 4
    path = save_volume(small_volume((n, 64, 48)), tmp_path / "big_j2k.dcm", compression="jpeg2000")
    gates = []
    real = progressive._dicom_frames

    def held(frames):  # every frame after the first waits for its open's gate: decoding is still running
        source, gate = real(frames), gates[-1]

        def wait(decode):
            return lambda i: gate.wait(60) and decode(i)
        return dataclasses.replace(source, decode_here=wait(source.decode_here), codestream=wait(source.codestream))
    monkeypatch.setattr(progressive, "_dicom_frames", held)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    cancels = {"button": lambda: qtbot.mouseClick(w.cancel_button, Qt.LeftButton),
               "Esc": lambda: qtbot.keyClick(w, Qt.Key_Escape),
               "menu": lambda: w.menu_actions["cancel"].trigger()}
    try:
        for how, cancel in cancels.items():
            gates.append(threading.Event())
            w.menu_actions["open"].trigger()
            qtbot.waitUntil(lambda: w.controller.decoding, timeout=30000)
            assert w.progress.text().startswith("Decoding B-scans 1/") and w.cancel_button.isVisible(), how
            _grab(w, f"cancel_{how}_before")
            decoding = w.controller._decoding
            with qtbot.waitSignal(w.settled, timeout=5000):
                cancel()
            assert decoding.cancelled and not w.controller.decoding, how
            gates[-1].set()  # the held frames go on: none may reach the screen, nothing is analysed
            qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=30000)
            qtbot.wait(100)
            assert not w.state.complete and w.state.loaded_count < n, how
            assert w.prediction is None and not w.state.analysing and w.controller.analysis_generation == -1, how
            assert w.state.structure is None and not w.progress.isVisible() and not w.cancel_button.isVisible()
            assert "Decoding cancelled: scan incomplete, not analysed" in w.results.text(), how
            assert "not analysed" in w.statusBar().currentMessage(), how
            _grab(w, f"cancel_{how}_after")
        w.menu_actions["analyse"].trigger()  # F5 on the incomplete scan: refused, said why
        assert w.prediction is None and w.controller.analysis_generation == -1
        assert "Decoding cancelled" in w.statusBar().currentMessage()
    finally:
        for gate in gates:
            gate.set()


def _wholly_visible(label) -> bool:
    """The label is on screen, uncut: no scroll area or dock edge hides any of it."""
    region = label.visibleRegion().boundingRect()
    return (label.isVisible() and label.height() >= label.heightForWidth(label.width())
            and region.width() == label.width() and region.height() == label.height())


@pytest.mark.parametrize("size", [(1400, 850), (1024, 640)])
def test_research_use_and_synthetic_warnings_stay_in_sight_beside_a_measured_vf(qtbot, window, monkeypatch, size):
    """At 1400 x 850 "Research use only" was cut and "model trained on SYNTHETIC data" scrolled away
    once a measured VF stood beside the estimate; at smaller sizes both were hidden (01r, 35, 45r)."""
    from PySide6.QtWidgets import QLabel

    w = window
    w.resize(*size)
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    assert w.prediction is not None and w.prediction.synthetic_model
    w.results.set_extra("Measured visual field (study) vs predicted:\n" + "\n".join(
        f"{name}: predicted -1.0, measured -2.0, difference 1.0" for name in ("VFI", "MD", "PSD")))
    qtbot.wait(50)
    _grab(w.results_dock, f"trust_{size[0]}x{size[1]}")
    labels = w.results_dock.findChildren(QLabel)
    for words in ("Research use only", "SYNTHETIC data"):
        shown = [label for label in labels if words in label.text()]
        assert shown and any(_wholly_visible(label) for label in shown), (words, size)


def test_the_title_names_the_scan_and_a_new_study_does_not_keep_the_old_scan(qtbot, window, three_visits,
                                                                              monkeypatch, tmp_path):
    """The title was generic and the file name only flashed in the status bar; a scan of the first
    study stayed on screen under the second study's tree (37)."""
    from octviewer.study.demo import write_demo_study

    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, three_visits)
    visit = panel.tree.topLevelItem(0).child(0)
    scan_item = visit.child(0).child(0)
    with qtbot.waitSignal(w.settled, timeout=60000):
        panel.tree.setCurrentItem(scan_item)  # a click on the scan opens it
    v = w.volume
    assert v is not None and v.laterality
    title = w.windowTitle()
    for part in (os.path.basename(v.source), v.laterality, v.acquired.strftime("%Y-%m-%d"), "research use only"):
        assert part in title, (part, title)
    _grab(w, "title_study_a")
    other = write_demo_study(tmp_path / "other", patients=1, visits=1, preset="tiny", seed=12)
    open_study_folder(qtbot, w, monkeypatch, other)
    qtbot.wait(50)
    _grab(w, "title_study_b")
    assert w.volume is None and os.path.basename(v.source) not in w.windowTitle()
    assert w.bscan.histogram.plot.xData is None or len(w.bscan.histogram.plot.xData) == 0  # nor its grey levels
    assert "not part of it" in w.statusBar().currentMessage() and not w.progress.isVisible()


def test_the_model_card_prints_a_small_learning_rate_in_powers_of_ten(qtbot, window):
    """Model > About this model said "3 epochs at learning rate 0.000" for the demo model's 1e-4."""
    from PySide6.QtWidgets import QPlainTextEdit

    w = window
    w.menu_actions["about_model"].trigger()
    text = w.dialog.findChild(QPlainTextEdit, "text").toPlainText()
    _grab(w.dialog, "model_card")
    assert "learning rate" in text and "learning rate 0.000" not in text
    assert re.search(r"learning rate \d(\.\d+)?e-\d+", text), text


def _panel_texts(w) -> str:
    """Every text the Structure panel draws, as drawn."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter

    from octviewer.gui.structure.page import draw_structure_page

    texts = []

    class Recording(QPainter):
        def drawText(self, *args):  # noqa: N802 (Qt's name)
            texts.append(str(args[-1]))
            super().drawText(*args)
    panel = w.structure_panel
    image = QImage(panel.size(), QImage.Format_RGB32)
    painter = Recording(image)
    draw_structure_page(painter, QRectF(panel.rect()).adjusted(8, 8, -8, -8), w.state.structure, dark=True)
    painter.end()
    return "\n".join(texts)


def test_the_overall_rnfl_class_sees_sectors_and_says_when_the_boundary_is_unsure(qtbot, window,
                                                                                        monkeypatch, tmp_path):
    """'Overall (worst of global and quadrants): normal' stood beside a red sector TI and clock hour,
    and beside a boundary unsure on 48% of the circle (37)."""
    import dataclasses

    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    report = w.state.structure
    assert report is not None
    if report.unsure_fraction <= 0.25:  # the demo scan read ~48 % unsure before the net's own spread judged it
        report = dataclasses.replace(report, unsure_fraction=0.48)
        w.state.set_structure(report)
        qtbot.wait(20)
    _grab(w, "overall_unsure")
    text = _panel_texts(w)
    pct = f"{100 * report.unsure_fraction:.0f}%"
    assert f"(uncertain: RNFL boundary unsure on {pct} of the circle)" in text, text
    assert "worst of global and quadrants): normal" not in text
    assert "Clock hours: µm only, not classed (no published normal range per clock hour)" in text, text
    out = tmp_path / "results.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_csv"].trigger()
    row = next(r for r in csv.DictReader(open(out)) if r["level"] == "volume")
    assert row["rnfl_class"] == f"uncertain: {report.rnfl_class}" and row["rnfl_unsure_pct"] == pct[:-1]
    # the same scan measured sure everywhere, with a sector and a clock hour outside normal limits
    classes = {k: "normal" for k in report.classes}
    classes.update(sector_TI="outside", clock_7="borderline")
    w.state.set_structure(dataclasses.replace(report, unsure_fraction=0.05, classes=classes))
    qtbot.wait(20)
    _grab(w, "overall_sector")
    text = _panel_texts(w)
    assert "outside normal limits in sector TI" in text, text
    w.menu_actions["export_csv"].trigger()
    row = next(r for r in csv.DictReader(open(out)) if r["level"] == "volume")
    assert row["rnfl_class"] == "outside"


def test_an_empty_study_folder_is_named_and_the_window_fits_1024_px(qtbot, window, monkeypatch, tmp_path):
    """"0 scans of 0 patients…" did not say which folder; with the Study panel open the window would
    not shrink below 1161 px."""
    w = window
    empty = tmp_path / "clinic_export_empty"
    empty.mkdir()
    panel = open_study_folder(qtbot, w, monkeypatch, empty)
    shown = panel.status.text().replace("\u200b", "")  # a long name's break points (browser.wrappable)
    assert "clinic_export_empty" in shown and "no OCT scans found" in shown
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    w.resize(1024, 700)
    qtbot.wait(50)
    _grab(w, "width_1024")
    assert w.study.dock.isVisible() and w.menu_actions["panel_structure"].isChecked()
    assert w.minimumSizeHint().width() <= 1024 and w.width() == 1024
    assert w.study.dock.width() >= 160 and w.structure_panel.parentWidget().width() >= 150
