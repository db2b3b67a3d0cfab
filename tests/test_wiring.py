"""Structure analysis and the study browser in the real main window, driven as a user drives them:
menu actions (QAction.trigger) with the file dialogs answered, clicks in the study tree and on
the panel's buttons. The window has a results store of its own (a fresh one per test)."""

import dataclasses
import os
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import open_study_folder  # noqa: E402

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from octviewer import load_volume, save_volume  # noqa: E402
from octviewer.gui.main_window import MainWindow  # noqa: E402
from octviewer.gui.viewer.state import MEASURING  # noqa: E402
from octviewer.model import Predictor  # noqa: E402
from octviewer.model import precision as precision_mod  # noqa: E402
from octviewer.pipeline import refusal_text  # noqa: E402
from octviewer.pipeline.store import ResultsStore  # noqa: E402
from octviewer.resources import DEMO_MODEL, DEMO_SCAN  # noqa: E402
from octviewer.study import read_opv  # noqa: E402
from octviewer.study.demo import write_demo_study  # noqa: E402


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_demo_study(tmp_path_factory.mktemp("wire") / "study", patients=2, visits=3, preset="small", seed=7)


def _window(qtbot, monkeypatch, tmp_path, model):
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w = MainWindow(Predictor(str(model), device="cpu"), store=ResultsStore(tmp_path / "results.sqlite"))
    w.warnings = warnings
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    yield from _window(qtbot, monkeypatch, tmp_path, DEMO_MODEL)


def test_results_panel_names_the_precision_and_a_remembered_result(qtbot, monkeypatch, tmp_path):
    """The panel says which precision made the result on screen (walk-through M4): after Device >
    CPU (exact fp32) it still names bf16 until Analysis > Analyse replaces the result, and a result
    read back from the results store says "remembered"."""
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: True)  # both CPU entries offered
    windows = _window(qtbot, monkeypatch, tmp_path, DEMO_MODEL)
    w = next(windows)
    w.menu_actions["quality_gate"].trigger()  # the demo cube is small: this test is about the panel
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    assert w.prediction.precision == "bf16" and not w.prediction.remembered
    assert f"{w.prediction.seconds:.1f} s on cpu, bf16" in w.results.text()
    w.menu_actions["device_cpu-fp32"].trigger()
    assert w.models.status_device.text() == "device: CPU (exact fp32)"
    assert "s on cpu, bf16" in w.results.text()  # the result on screen was made in bf16
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["analyse"].trigger()
    assert w.prediction.precision == "fp32"
    assert "s on cpu, exact fp32" in w.results.text() and "bf16" not in w.results.text()
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)  # the same file again: from the results store
    assert w.prediction.remembered
    assert "remembered result (cpu, exact fp32)" in w.results.text() and " s on " not in w.results.text()
    next(windows, None)


def _open_by_menu(qtbot, w, path, monkeypatch, measured=True):
    """File > Open with the dialog answered; returns once the scan is analysed and measured
    (``measured``), or once its network result is shown (the measurement follows it)."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    if measured:
        with qtbot.waitSignal(w.settled, timeout=60000):
            w.menu_actions["open"].trigger()
        assert w.state.structure is not None or w.state.structure_note.startswith("Not measured")
    else:
        w.menu_actions["open"].trigger()
        qtbot.waitUntil(lambda: w.prediction is not None, timeout=60000)


def _click(qtbot, tree, item):
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=tree.visualItemRect(item).center())


def _open_study(qtbot, w, study, monkeypatch):
    panel = open_study_folder(qtbot, w, monkeypatch, study)
    assert w.study.dock.isVisible()
    return panel


def _scan_item(panel, patient=0, visit=0, eye=0):
    return panel.tree.topLevelItem(patient).child(visit).child(eye).child(0)


def test_noise_heyex_volume_is_refused_with_a_reason(qtbot, window, samples_dir, monkeypatch):
    w = window
    _open_by_menu(qtbot, w, samples_dir / "eyepy_synthetic" / "heyex_xml" / "test_volume" / "test_dummy.xml",
                  monkeypatch)
    text = w.results.text()
    assert w.prediction is None and "P(glaucoma)" not in text
    assert "Not analysed: the scan failed the quality check" in text and "field of view" in text
    assert w.state.structure is not None and not w.state.structure.quality.ok
    assert w.structure_panel.report is w.state.structure
    assert len(w.curve.plotted()[0]) == 0
    # Analysis > Quality check off (research on the gate): F5 analyses the same scan
    w.menu_actions["quality_gate"].trigger()
    with qtbot.waitSignal(w.settled, timeout=60000):
        qtbot.keyClick(w, Qt.Key_F5)
    assert w.prediction is not None and "P(glaucoma)" in w.results.text()


@pytest.fixture
def slow_gate(monkeypatch):
    """The gate's verdict waits for ``release`` (so the network finishes first); every network run
    is recorded in ``runs`` as (volume, Prediction or the exception it raised)."""
    import octviewer.structure as structure

    release, entered, runs = threading.Event(), threading.Event(), []
    gate, predict = structure.gate, Predictor.predict

    def slow_gate(volume, *args, **kwargs):
        entered.set()
        release.wait(60)
        return gate(volume, *args, **kwargs)

    def recorded_predict(self, volume, *args, **kwargs):
        try:
            prediction = predict(self, volume, *args, **kwargs)
        except Exception as exc:
            runs.append((volume, exc))
            raise
        runs.append((volume, prediction))
        return prediction

    monkeypatch.setattr(structure, "gate", slow_gate)
    monkeypatch.setattr(Predictor, "predict", recorded_predict)
    yield SimpleNamespace(release=release, entered=entered, runs=runs)
    release.set()


def _watch_network_output(w) -> list:
    """(volume on screen, kind) for every piece of network output the window shows: a batch's
    probabilities or CAMs, or a Prediction."""
    shown = []

    def analysis():
        s = w.state
        if s.prediction is not None:
            shown.append((s.volume, "prediction"))
        elif s.cams is not None or np.isfinite(s.probs).any():
            shown.append((s.volume, "batch"))
    w.state.events.analysis.connect(analysis)
    return shown


def _start_open(w, path, monkeypatch):
    """File > Open with the dialog answered, without waiting for the scan to settle."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()


def _noise_scan(tmp_path):
    """The demo cube's geometry filled with noise: no retina, so the gate refuses it."""
    demo = load_volume(DEMO_SCAN)
    noise = np.random.default_rng(0).integers(0, 256, demo.data.shape, dtype=np.uint8)
    return save_volume(dataclasses.replace(demo, data=noise, source=None), tmp_path / "noise.npz")


def test_network_starts_only_once_the_gate_has_passed(qtbot, window, slow_gate, monkeypatch):
    w = window
    shown = _watch_network_output(w)
    _start_open(w, DEMO_SCAN, monkeypatch)
    qtbot.waitUntil(lambda: w.volume is not None and w.state.complete, timeout=60000)
    qtbot.waitUntil(slow_gate.entered.is_set, timeout=60000)  # the gate is judging the scan
    # the verdict is not known yet: the network has not run and nothing of it is shown
    assert slow_gate.runs == [] and w.prediction is None and shown == [] and w.state.structure is None
    with qtbot.waitSignal(w.settled, timeout=60000):
        slow_gate.release.set()
    assert len(slow_gate.runs) == 1 and w.prediction is slow_gate.runs[0][1]
    assert "P(glaucoma)" in w.results.text() and len(w.curve.plotted()[0]) == w.volume.n_bscans
    kinds = [kind for _, kind in shown]
    assert "batch" in kinds and kinds[-1] == "prediction" and all(v is w.volume for v, _ in shown)
    assert w.state.structure.quality.ok


def test_noise_scan_is_refused_without_running_the_network(qtbot, window, slow_gate, monkeypatch, tmp_path):
    w = window
    shown = _watch_network_output(w)
    _start_open(w, _noise_scan(tmp_path), monkeypatch)
    qtbot.waitUntil(lambda: w.volume is not None and w.state.complete, timeout=60000)
    with qtbot.waitSignal(w.settled, timeout=60000):
        slow_gate.release.set()
    report = w.state.structure
    assert report is not None and not report.quality.ok
    text = w.results.text()
    assert refusal_text(report.quality) in text and "P(glaucoma)" not in text
    assert slow_gate.runs == [] and shown == [] and w.prediction is None and w.state.cams is None
    assert len(w.curve.plotted()[0]) == 0
    # no layer lines over the noise: they looked like a measurement (third walk-through)
    assert report.segmentation is not None and w.state.settings.show_layers
    assert not any(line.isVisible() for line in w.structure.lines.values()) and not w.structure.legend.isVisible()


def test_whole_measurement_waits_for_the_network(qtbot, window, monkeypatch):
    """On 2 cores the measurement beside the network held the result back by seconds: it starts
    once the analysis is over."""
    import time

    import octviewer.structure as structure

    events, measure, predict = [], structure.measure, Predictor.predict

    def timed_measure(volume, **kwargs):
        events.append(("measure starts", time.perf_counter()))
        return measure(volume, **kwargs)

    def timed_predict(self, volume, *args, **kwargs):
        try:
            return predict(self, volume, *args, **kwargs)
        finally:
            events.append(("network ends", time.perf_counter()))
    monkeypatch.setattr(structure, "measure", timed_measure)
    monkeypatch.setattr(Predictor, "predict", timed_predict)
    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    assert [name for name, _ in events] == ["network ends", "measure starts"]
    assert w.prediction is not None and w.state.structure.quality.ok


def test_failed_gate_refuses_the_scan(qtbot, window, monkeypatch):
    import octviewer.structure as structure

    def broken(volume, *args, **kwargs):
        raise RuntimeError("segmentation exploded")
    monkeypatch.setattr(structure, "gate", broken)
    w = window
    shown = _watch_network_output(w)
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    text = w.results.text()
    assert "Not analysed: the quality check could not run (RuntimeError: segmentation exploded)." in text
    assert shown == [] and w.prediction is None and "P(glaucoma)" not in text


def test_result_does_not_wait_for_the_whole_measurement(qtbot, window, monkeypatch, tmp_path):
    """The gate's verdict lets the result through; the full measurement fills the structure panel
    when it comes (on 2 cores it used to hold the probability back by ~1 s)."""
    import octviewer.structure as structure

    release, measure = threading.Event(), structure.measure

    def slow_measure(volume, **kwargs):
        release.wait(60)
        return measure(volume, **kwargs)
    monkeypatch.setattr(structure, "measure", slow_measure)
    w = window
    pdf = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(pdf), ""))
    try:
        _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch, measured=False)
        assert w.prediction is not None and "P(glaucoma)" in w.results.text() and w.state.structure is None
        assert w.structure_panel.report is None and w.structure_panel.empty_text == MEASURING  # says what comes
        # File > Export PDF now would lose the structure page: the user is told to wait
        w.menu_actions["export_pdf"].trigger()
        assert not pdf.exists() and "still running" in w.warnings[-1]
        with qtbot.waitSignal(w.settled, timeout=60000):
            release.set()
    finally:
        release.set()
    assert w.state.structure.quality.ok and w.structure_panel.report is w.state.structure
    assert w.prediction is not None
    w.menu_actions["export_pdf"].trigger()
    assert pdf.read_bytes().startswith(b"%PDF")


def test_full_measurement_refusing_a_passed_scan_withdraws_its_result(qtbot, window, monkeypatch):
    """A borderline scan the thinned copy passed and the full resolution refuses: the result shown
    is taken back, with the reasons, and the next analysis of it (from the results store) is
    refused at once, without showing a probability again."""
    import octviewer.structure as structure

    release, measure = threading.Event(), structure.measure

    def refusing_measure(volume, **kwargs):
        release.wait(60)
        report = measure(volume, **kwargs)
        return dataclasses.replace(report, quality=dataclasses.replace(
            report.quality, ok=False, reasons=("segmentation failed on 21% of A-scans (test)",)))
    monkeypatch.setattr(structure, "measure", refusing_measure)
    w = window
    try:
        _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch, measured=False)
        assert w.prediction is not None
        with qtbot.waitSignal(w.settled, timeout=60000):
            release.set()
    finally:
        release.set()
    text = w.results.text()
    assert w.prediction is None and w.state.cams is None and "P(glaucoma)" not in text
    assert refusal_text(w.state.structure.quality) in text and "(test)" in text
    shown = _watch_network_output(w)
    with qtbot.waitSignal(w.settled, timeout=60000):
        qtbot.keyClick(w, Qt.Key_F5)  # analysed again: refused, without showing anything
    assert w.prediction is None and "(test)" in w.results.text() and shown == []


def test_switching_scans_while_the_gate_judges_analyses_only_the_new_one(qtbot, window, slow_gate, monkeypatch,
                                                                          tmp_path):
    w = window
    other = tmp_path / "other.dcm"
    other.write_bytes(DEMO_SCAN.read_bytes())  # the same eye in another file: another volume object
    shown = _watch_network_output(w)
    _start_open(w, DEMO_SCAN, monkeypatch)
    qtbot.waitUntil(lambda: w.volume is not None and w.state.complete, timeout=60000)
    first = w.volume  # its verdict is not known yet
    _start_open(w, other, monkeypatch)
    qtbot.waitUntil(lambda: w.volume is not first and w.state.complete, timeout=60000)
    slow_gate.release.set()
    qtbot.waitUntil(lambda: w.prediction is not None and w.state.structure is not None, timeout=60000)
    assert os.path.samefile(w.volume.source, other) and w.state.structure.quality.ok
    assert [run[0] for run in slow_gate.runs] == [w.volume] and w.prediction is slow_gate.runs[0][1]
    qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=60000)  # every report of the first scan delivered
    assert shown and all(volume is w.volume for volume, _ in shown)  # nothing of the first scan, ever
    assert w.prediction is slow_gate.runs[0][1]


def test_structure_panel_and_lines_for_a_spectralis_circle(qtbot, window, samples_dir, monkeypatch):
    w = window
    _open_by_menu(qtbot, w, samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol", monkeypatch)
    report = w.state.structure
    assert report.quality.ok and report.source == "vendor" and 40 < report.rnfl_global_um < 160
    assert w.structure_panel.report is report and w.menu_actions["panel_structure"].isChecked()
    # ILM / RNFL / BM lines with a legend, replacing the file's own lines (never drawn twice)
    assert all(curve.isVisible() and len(curve.getData()[0]) > 100 for curve in w.structure.lines.values())
    assert w.structure.legend.isVisible() and {"ILM", "RNFL", "BM"} <= w.bscan.hidden_layers
    assert [label.text for _, label in w.structure.legend.items] == [
        "ILM (file's own)", "RNFL outer boundary (file's own)", "Bruch's membrane (file's own)"]
    w.menu_actions["toggle_layers"].trigger()
    assert not any(curve.isVisible() for curve in w.structure.lines.values())
    w.menu_actions["toggle_layers"].trigger()
    # View > Segmentation > own: measured again with our segmentation
    with qtbot.waitSignal(w.settled, timeout=30000):
        w.menu_actions["segmentation_own"].trigger()
    assert w.state.structure.source == "own"
    assert all(label.text.endswith("(octviewer)") for _, label in w.structure.legend.items)
    assert abs(w.state.structure.rnfl_global_um - report.rnfl_global_um) < 5


def test_study_menu_tree_scan_measured_vf_and_pdf_with_structure(qtbot, window, study, monkeypatch, tmp_path):
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    item = _scan_item(panel, patient=0, visit=2, eye=0)  # DEMO07-000 (VF as OPV files), last visit, OD
    path = item.data(0, Qt.UserRole)[4]
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click(qtbot, panel.tree, item)
    assert os.path.samefile(w.volume.source, path) and w.prediction is not None
    # measured VF beside the estimate, with the difference
    measured = w.study.measured_vf()
    opv = read_opv(sorted((study / "perimetry").glob("DEMO07-000_OD_*.dcm"))[-1])
    assert measured is not None and measured.md_db == pytest.approx(opv.md_db)
    text = w.results.text()
    md = w.prediction.vf["md"]
    assert (f"MD: predicted {md:.1f} dB, measured {opv.md_db:.1f} dB, difference {md - opv.md_db:+.1f} dB") in text
    # structure measured, en-face thickness map from the View menu; the CAM on (off by default), which steps aside
    assert w.state.structure.quality.ok and w.state.structure.thickness_map_um is not None
    w.menu_actions["toggle_cam"].trigger()
    w.menu_actions["rnfl_map"].trigger()
    assert w.structure.thickness_item.isVisible()
    legend = w.structure.map_legend  # the map's colour scale, in um (a map without one was unreadable)
    assert legend.isVisible() and [label.text for _, label in legend.items][0] == "RNFL 250 µm or more"
    w.menu_actions["rnfl_deviation"].trigger()  # one map at a time: their yellows mean different things
    assert w.structure.deviation_item.isVisible() and not w.structure.thickness_item.isVisible()
    assert not w.enface.cam.isVisible()  # the CAM's red and the map's "outside" red would mix
    assert not w.menu_actions["rnfl_map"].isChecked()
    assert [label.text for _, label in legend.items][0].startswith("borderline")
    w.menu_actions["rnfl_map"].trigger()
    assert w.structure.thickness_item.isVisible() and not w.structure.deviation_item.isVisible()
    assert not w.menu_actions["rnfl_deviation"].isChecked()
    w.menu_actions["rnfl_map"].trigger()
    assert not w.structure.thickness_item.isVisible() and not legend.isVisible()
    assert w.enface.cam.isVisible() == (w.prediction is not None and w.prediction.cam is not None)
    w.menu_actions["toggle_cam"].trigger()  # off again: the setting is saved for the next test's window
    # File > Export PDF: the structure page and the measured VF are in the report
    out = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_pdf"].trigger()
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 2
    from octviewer.gui.export.scan_pdf import build_document

    doc = build_document(w.state, w.exports.report_images(), w.models.model_meta(), None,
                         w.exports.report_sections(), w.study.comparison_html())
    plain = doc.toPlainText()
    assert "Structure: RNFL and optic disc" in plain and "Measured visual field" in plain
    assert doc.resource(1, "structure") is not None  # QTextDocument.ImageResource


def test_ou_view_trend_and_ou_report_from_the_panel(qtbot, window, study, monkeypatch, tmp_path):
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    visit = panel.tree.topLevelItem(0).child(2)
    _click(qtbot, panel.tree, visit)
    ou_ready = []
    with qtbot.waitSignal(w.study.panel.ou_requested, timeout=5000):
        qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    ou = w.study.ou_view
    ou.ready.connect(ou_ready.append)
    qtbot.waitUntil(lambda: ou.summary is not None, timeout=60000)
    assert w.study.ou_dialog.isVisible()
    od = ou.summary.eyes["OD"]
    assert od.probability is not None and od.structure is not None and od.structure.quality.ok
    assert ou.columns["OD"].cell("probability", 0) == f"{od.probability:.2f}"
    # the OU view's predictor is its own, never the window's
    assert w.study.analyse._predictor is not w.predictor
    assert w.study.analyse._predictor.network is not w.predictor.network
    # trend of the selected eye
    eye = panel.tree.topLevelItem(0).child(0).child(0)
    _click(qtbot, panel.tree, eye)
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    trend = w.study.trend_view
    qtbot.waitUntil(lambda: trend.history is not None, timeout=60000)
    assert w.study.trend_dialog.isVisible()
    assert len(trend.history.series["md_predicted"]) == 3 and len(trend.history.series["rnfl"]) >= 2
    assert np.isfinite([v for _, v in trend.history.series["rnfl"]]).all()
    # File > Export OU report…
    out = tmp_path / "ou.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_ou"].trigger()
    assert out.read_bytes().startswith(b"%PDF")
    # the anonymised page hid the trend's dates while it was grabbed; the view shows them again
    assert all(plot.getAxis("bottom").style["showValues"] for plot in trend.plots.values())
    # another study opened (the folder again: a new index): the OU view on screen is of the last one, and
    # its page printed beside the new study's trend on one anonymised report (sixth walk-through)
    out.unlink()
    _open_study(qtbot, w, study, monkeypatch)
    assert not w.study.ou_dialog.isVisible() and not w.study.trend_dialog.isVisible()
    assert not w.menu_actions["export_ou"].isEnabled()  # no OU view open: nothing to export (H65 walk-through, W6)
    w.menu_actions["export_ou"].trigger()
    assert not out.exists()


def test_ou_view_prints_uncertain_sectors_as_the_structure_page_does(qtbot, window, study, monkeypatch):
    """A sector resting on unsure A-scans reads "~45" (rounded to 5 µm) in the OU view's wheel, as on
    the structure page and in the PDF, never an exact-looking number (walk-through M5)."""
    from octviewer.gui.structure.page import sector_text
    from octviewer.structure import rnfl

    monkeypatch.setattr(rnfl, "uncertain_sectors", lambda *a, **k: ("TI",))
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    _click(qtbot, panel.tree, panel.tree.topLevelItem(0).child(2))
    with qtbot.waitSignal(w.study.panel.ou_requested, timeout=5000):
        qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    ou = w.study.ou_view
    qtbot.waitUntil(lambda: ou.summary is not None, timeout=60000)
    column = ou.columns["OD"]
    eye = column.wheel.summary
    assert eye is not None and eye.structure is not None and eye.structure.uncertain_sectors == ("TI",)
    value = eye.structure.sectors["TI"]
    assert column.wheel.sector_label("TI") == f"TI\n~{5 * round(value / 5):.0f}"
    assert sector_text(eye.structure, "TI") == f"~{5 * round(value / 5):.0f}"  # the structure page's helper
    assert column.wheel.sector_label("TS") == f"TS\n{eye.structure.sectors['TS']:.0f}"  # a sure sector: exact


def test_a_newer_scan_drops_the_older_structure_result(qtbot, window, study, monkeypatch):
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    first, second = _scan_item(panel, 0, 0, 0), _scan_item(panel, 0, 0, 1)
    _click(qtbot, panel.tree, first)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click(qtbot, panel.tree, second)
    qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=60000)  # every report of the first scan delivered
    assert w.state.structure.laterality == w.volume.laterality == "OS"
    assert w.structure_panel.report is w.state.structure


def test_study_manifest_from_the_menu_with_measured_vf(qtbot, window, study, monkeypatch, tmp_path):
    w = window
    scans = sorted((study / "scans" / "DEMO07-001").glob("*.dcm"))
    manifest = tmp_path / "manifest.csv"
    rows = ["path,patient_id,eye,visit,md"]
    for k, scan in enumerate(scans):
        eye, date = scan.stem.split("_")
        rows.append(f"{scan},P-{k // 100},{eye},{date[:4]}-{date[4:6]}-{date[6:]},{-1.5 - k:.1f}")
    manifest.write_text("\n".join(rows) + "\n")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    panel = w.study.panel
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    assert w.study.dock.isVisible() and len(panel.index.scans) == len(scans)
    item = _scan_item(panel, 0, 0, 0)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click(qtbot, panel.tree, item)
    k = scans.index(next(s for s in scans if os.path.samefile(s, w.volume.source)))
    assert f"measured {-1.5 - k:.1f} dB" in w.results.text()


@pytest.fixture
def network_runs(monkeypatch):
    """The source file of every volume the network runs on, from any thread."""
    runs, predict = [], Predictor.predict

    def recorded(self, volume, *args, **kwargs):
        runs.append(os.path.realpath(volume.source))
        return predict(self, volume, *args, **kwargs)
    monkeypatch.setattr(Predictor, "predict", recorded)
    return runs


def test_the_scan_on_screen_is_never_analysed_again(qtbot, window, study, monkeypatch, network_runs):
    """Reopening the scan, and the OU and trend views of it, read its result from the results store."""
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    item = _scan_item(panel, patient=0, visit=2, eye=0)
    path = os.path.realpath(item.data(0, Qt.UserRole)[4])
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click(qtbot, panel.tree, item)
    assert w.prediction is not None and network_runs == [path]
    first = w.prediction
    _open_by_menu(qtbot, w, path, monkeypatch)  # File > Open of the same file
    assert network_runs == [path] and w.prediction.probability == first.probability
    _click(qtbot, panel.tree, panel.tree.topLevelItem(0).child(2))  # its visit: the OU view
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    ou = w.study.ou_view
    qtbot.waitUntil(lambda: ou.summary is not None, timeout=60000)
    _click(qtbot, panel.tree, panel.tree.topLevelItem(0).child(2).child(0))  # its eye: the trend view
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.trend_view.history is not None, timeout=60000)
    assert network_runs.count(path) == 1  # the OU and trend views ran the network on the others only
    assert len(network_runs) == len(set(network_runs)) > 1
    assert ou.summary.eyes["OD"].probability is not None


@pytest.fixture
def circle_window(qtbot, monkeypatch, tmp_path):
    """The window on a tiny random model that reads circle scans (the demo model reads cubes only)."""
    from corpus import tiny_semt_model

    model = tiny_semt_model(tmp_path / "circle.safetensors", scan_patterns=("volume", "circle"))
    yield from _window(qtbot, monkeypatch, tmp_path, model)


def test_switching_the_segmentation_measures_again_without_the_network(qtbot, circle_window, samples_dir,
                                                                       monkeypatch, network_runs):
    """View > Segmentation on a scan with its own lines (a Spectralis .vol) runs the gate and the
    measurement again; the network's output does not depend on the lines: it comes from the store."""
    w = circle_window
    path = os.path.realpath(samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol")
    _open_by_menu(qtbot, w, path, monkeypatch)
    vendor, first = w.state.structure, w.prediction
    assert vendor.source == "vendor" and vendor.quality.ok and first is not None and network_runs == [path]
    seen = []  # what a reader saw at each change during the switch (walk-through M2)

    def record(*_args):
        seen.append(dict(prediction=w.prediction, results=w.results.text(),
                         busy=w.progress.format() if w.progress.isVisible() else "",
                         cancel=w.cancel_button.isVisible(), measuring=w.state.measuring,
                         file_lines_hidden={"ILM", "RNFL", "BM"} <= w.bscan.hidden_layers))
    for event in (w.state.events.analysis, w.state.events.structure, w.state.events.busy):
        event.connect(record)
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["segmentation_own"].trigger()
    for event in (w.state.events.analysis, w.state.events.structure, w.state.events.busy):
        event.disconnect(record)
    assert seen and any(s["measuring"] for s in seen)  # the structure panel said "measuring"
    for s in seen:  # the network's result stayed on screen throughout; the B-scan never fell back to the file's lines
        assert s["prediction"] is not None and "analysing" not in s["results"] and "P(glaucoma)" in s["results"]
        assert "Analysing" not in s["busy"] and not s["cancel"]
        assert s["file_lines_hidden"]
    own = w.state.structure
    assert own.source == "own" and own is not vendor and w.structure_panel.report is own
    assert w.menu_actions["segmentation_own"].isChecked() and not w.menu_actions["segmentation_vendor"].isChecked()
    assert network_runs == [path]  # the network ran once in all
    assert w.prediction is not None and w.prediction.probability == first.probability
    assert "P(glaucoma)" in w.results.text()
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["segmentation_vendor"].trigger()
    assert w.state.structure.source == "vendor" and network_runs == [path]


def test_the_study_views_honour_the_quality_check_switch(qtbot, window, study, monkeypatch):
    """Analysis > Quality check applies to the OU view as it does to the viewer."""
    import octviewer.structure as structure

    judged, gate = [], structure.gate

    def recorded_gate(volume, *args, **kwargs):
        judged.append(volume.source)
        return gate(volume, *args, **kwargs)
    monkeypatch.setattr(structure, "gate", recorded_gate)
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    w.menu_actions["quality_gate"].trigger()  # off
    assert not w.state.options.gate
    _click(qtbot, panel.tree, panel.tree.topLevelItem(0).child(0))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=60000)
    assert judged == [] and w.study.ou_view.summary.eyes["OD"].probability is not None
    w.menu_actions["quality_gate"].trigger()  # on again
    ready = []
    w.study.ou_view.ready.connect(ready.append)
    _click(qtbot, panel.tree, panel.tree.topLevelItem(0).child(1))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: bool(ready), timeout=60000)
    assert len(judged) == 2  # both eyes of the visit passed the gate before the network


def test_forgetting_the_remembered_results_asks_first(qtbot, window, monkeypatch, network_runs):
    w = window
    _open_by_menu(qtbot, w, DEMO_SCAN, monkeypatch)
    assert len(w.tasks.store) == 1
    w.menu_actions["clear_results"].trigger()  # the fixture answers No
    assert len(w.tasks.store) == 1
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    w.menu_actions["clear_results"].trigger()
    assert len(w.tasks.store) == 0
    with qtbot.waitSignal(w.settled, timeout=60000):
        qtbot.keyClick(w, Qt.Key_F5)
    assert len(network_runs) == 2 and w.prediction is not None  # analysed afresh


def test_closing_the_window_while_indexing_is_stuck_neither_hangs_nor_aborts(qtbot, window, tmp_path, monkeypatch):
    """Indexing stuck in a read that ignores Cancel (a FIFO named *.dcm): the window still closes
    at once (a QThread destroyed while running aborted the process)."""
    import time

    import octviewer.gui.study.browser as browser

    stuck, release = threading.Event(), threading.Event()

    def blocked(*args, **kwargs):
        stuck.set()
        release.wait(60)
        raise RuntimeError("released")
    monkeypatch.setattr(browser, "index_folder", blocked)
    w = window
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    try:
        w.menu_actions["open_study_folder"].trigger()
        qtbot.waitUntil(stuck.is_set, timeout=10000)
        started = time.perf_counter()
        w.close()
        assert time.perf_counter() - started < 3
    finally:
        release.set()
