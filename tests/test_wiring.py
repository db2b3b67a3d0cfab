"""Structure analysis and the study browser in the real main window, driven as a user drives them:
menu actions (QAction.trigger) with the file dialogs answered, clicks in the study tree and on
the panel's buttons (issues 14.6, 15)."""

import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from octviewer.gui.main_window import MainWindow  # noqa: E402
from octviewer.model import Predictor  # noqa: E402
from octviewer.resources import DEMO_MODEL  # noqa: E402
from octviewer.study import read_opv  # noqa: E402
from octviewer.study.demo import write_demo_study  # noqa: E402


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return write_demo_study(tmp_path_factory.mktemp("wire") / "study", patients=2, visits=3, preset="small", seed=7)


@pytest.fixture
def window(qtbot, monkeypatch):
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w = MainWindow(Predictor(str(DEMO_MODEL), device="cpu"))
    w.warnings = warnings
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def _open_by_menu(qtbot, w, path, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.menu_actions["open"].trigger()


def _click(qtbot, tree, item):
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.LeftButton, pos=tree.visualItemRect(item).center())


def _open_study(qtbot, w, study, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(study))
    panel = w.study.panel
    with qtbot.waitSignal(panel.index_ready, timeout=30000):
        w.menu_actions["open_study_folder"].trigger()
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
    assert w.structure.report is not None and not w.structure.report.quality.ok
    assert w.structure_panel.report is w.structure.report
    assert len(w.curve.plotted()[0]) == 0
    # Analysis > Quality check off (research on the gate): F5 analyses the same scan
    w.menu_actions["quality_gate"].trigger()
    with qtbot.waitSignal(w.settled, timeout=60000):
        qtbot.keyClick(w, Qt.Key_F5)
    assert w.prediction is not None and "P(glaucoma)" in w.results.text()


def test_structure_panel_and_lines_for_a_spectralis_circle(qtbot, window, samples_dir, monkeypatch):
    w = window
    _open_by_menu(qtbot, w, samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol", monkeypatch)
    qtbot.waitUntil(lambda: w.structure.report is not None, timeout=30000)
    report = w.structure.report
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
    with qtbot.waitSignal(w.structure.ready, timeout=30000):
        w.menu_actions["segmentation_own"].trigger()
    assert w.structure.report.source == "own"
    assert all(label.text.endswith("(octviewer)") for _, label in w.structure.legend.items)
    assert abs(w.structure.report.rnfl_global_um - report.rnfl_global_um) < 5


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
    # structure measured, en-face thickness map from the View menu
    qtbot.waitUntil(lambda: w.structure.report is not None, timeout=30000)
    assert w.structure.report.quality.ok and w.structure.report.thickness_map_um is not None
    w.menu_actions["rnfl_map"].trigger()
    assert w.structure.thickness_item.isVisible()
    w.menu_actions["rnfl_map"].trigger()
    assert not w.structure.thickness_item.isVisible()
    # File > Export PDF: the structure page and the measured VF are in the report
    out = tmp_path / "report.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    w.menu_actions["export_pdf"].trigger()
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 2
    from octviewer.gui.report import build_document

    doc = build_document(w.state, w.report_images(), w.report_meta(), None, w.report_sections(),
                         w.study.comparison_html())
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


def test_a_newer_scan_drops_the_older_structure_result(qtbot, window, study, monkeypatch):
    w = window
    panel = _open_study(qtbot, w, study, monkeypatch)
    first, second = _scan_item(panel, 0, 0, 0), _scan_item(panel, 0, 0, 1)
    _click(qtbot, panel.tree, first)
    with qtbot.waitSignal(w.settled, timeout=60000):
        _click(qtbot, panel.tree, second)
    qtbot.waitUntil(lambda: w.structure.report is not None, timeout=30000)
    qtbot.wait(200)
    assert w.structure.report.laterality == w.volume.laterality == "OS"
    assert w.structure_panel.report is w.structure.report


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
