"""H99: walk-through H95's V10, V4, V6, V7 and V1 in the window (the "Open study" question's words, a refused scan's
Structure panel, the B-scan label after a missing file, the RNFL map's legend)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import open_study_folder  # noqa: E402

RESOURCES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H99_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


# ---------------------------------------------------------------- V10: "its results are lost" with P on screen

KEPT = ("the scan's glaucoma result is kept (remembered); its RNFL and disc measurement is stopped and runs again "
        "when you reopen the scan")


def _measurement_held(monkeypatch):
    """The RNFL and disc measurement waits until the returned event is set: the network's result is in (and shown),
    the structure still measuring, as in H95's timing of V10."""
    import threading

    import octviewer.structure as structure

    real, release = structure.measure, threading.Event()

    def held(*args, **kwargs):
        release.wait(60)
        return real(*args, **kwargs)
    monkeypatch.setattr(structure, "measure", held)
    return release


def _ask_open_study(qtbot, w, monkeypatch, demo) -> list[str]:
    """File > Open study folder… through its QAction, "Open a study anyway?" answered Yes; the questions asked."""
    from PySide6.QtWidgets import QMessageBox

    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(" ".join(a[2].split()))
                        or QMessageBox.Yes)
    open_study_folder(qtbot, w, monkeypatch, demo)
    return asked


def _open_demo_scan(w, monkeypatch, tmp_path, gate: bool = True):
    """As H95: the app's results store, the quality check on, a study open, then File > Open of a bundled demo scan
    not in it (never analysed in this store)."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.pipeline.store import ResultsStore

    w.tasks.store = ResultsStore(tmp_path / "store" / "results.sqlite")  # as the app runs (the fixture has none)
    if gate:
        w.menu_actions["quality_gate"].trigger()
        assert w.state.options.gate
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(RESOURCES / "demo_normal_OD.dcm"), ""))
    w.menu_actions["open"].trigger()


@pytest.mark.gui
def test_open_study_with_the_glaucoma_result_shown_and_the_structure_measuring_says_kept(qtbot, window, monkeypatch,
                                                                                        demo, tmp_path):
    """V10: P(glaucoma) on screen, the Structure panel still measuring: the question says the result is kept, which
    reopening the scan shows (remembered)."""
    w = window
    release = _measurement_held(monkeypatch)
    try:
        _open_demo_scan(w, monkeypatch, tmp_path)
        qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.measuring, timeout=120000)
        _grab(w, "v10_state.png")
        asked = _ask_open_study(qtbot, w, monkeypatch, demo)
    finally:
        release.set()
    assert len(asked) == 1 and KEPT in asked[0] and "lost" not in asked[0], asked
    assert "its glaucoma result was kept (remembered)" in w.statusBar().currentMessage()


@pytest.mark.gui
def test_open_study_before_the_glaucoma_result_is_in_does_not_say_lost(qtbot, window, monkeypatch, demo, tmp_path,
                                                                       held_analysis):
    """V10: asked a moment before the network's result came in, the question said "its results are lost"; the result
    came in while the question was up and was kept (reopening showed "remembered result"). Not in yet, the question
    says what stopping costs and that a result shown before the answer is kept."""
    w = window
    _open_demo_scan(w, monkeypatch, tmp_path)
    qtbot.waitUntil(lambda: w.controller.analysis_generation != -1 and w.state.complete, timeout=60000)
    assert w.state.prediction is None
    asked = _ask_open_study(qtbot, w, monkeypatch, demo)
    assert len(asked) == 1 and "lost" not in asked[0] and KEPT not in asked[0], asked
    assert ("the scan's analysis is stopped and runs again when you reopen the scan (a glaucoma result shown before "
            "you answer is kept, remembered)") in asked[0], asked


@pytest.mark.gui
def test_open_study_says_kept_only_of_what_the_store_really_kept(qtbot, window, monkeypatch, demo, tmp_path):
    """V10: the words were picked from the result on screen, not from the store: a store that did not write the
    network's output (locked by another process) was said to keep it."""
    from octviewer.pipeline.store import ResultsStore

    monkeypatch.setattr(ResultsStore, "put_prediction", lambda self, network, prediction: False)
    w = window
    release = _measurement_held(monkeypatch)
    try:
        _open_demo_scan(w, monkeypatch, tmp_path)
        qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.measuring, timeout=120000)
        asked = _ask_open_study(qtbot, w, monkeypatch, demo)
    finally:
        release.set()
    assert len(asked) == 1 and KEPT not in asked[0], asked
    assert "its glaucoma result was kept" not in w.statusBar().currentMessage()


# ---------------------------------------------------------------- V4: a refused scan's reason, once, not in red

def _red_pixels(widget) -> int:
    """Pixels of the "outside normal" red (``CLASS_COLOURS['outside']``, anti-aliased) in a grab of ``widget``."""
    import numpy as np
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format_RGB888)
    a = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    a = a[:, :image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)
    return int(((a[..., 0] > 140) & (a[..., 1] < 90) & (a[..., 2] < 90)).sum())


@pytest.mark.gui
def test_a_refused_scans_structure_panel_says_why_once_and_not_in_red(qtbot, window, monkeypatch, tmp_path):
    """V4: with the quality check on, a refused cube's Structure panel said "REFUSED; ...: <why>" in its header and
    then "Not analysed: <why>" again under it in red, the colour of "outside normal"; W14's fix did this for line
    scans only."""
    from PySide6.QtGui import QPainter
    from PySide6.QtWidgets import QFileDialog
    from test_h92 import _noise_scan

    w = window
    w.menu_actions["quality_gate"].trigger()  # on, as the app starts
    assert w.state.options.gate
    path = _noise_scan(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and w.controller.analysis_generation == -1, timeout=120000)
    report = w.state.structure
    assert not report.quality.ok and report.quality.reasons
    reason = report.quality.reasons[0]
    drawn, real = [], QPainter.drawText

    def spy(painter, *args):
        drawn.append(next((a for a in args if isinstance(a, str)), ""))
        return real(painter, *args)
    monkeypatch.setattr(QPainter, "drawText", spy)
    w.structure_panel.grab()
    monkeypatch.setattr(QPainter, "drawText", real)
    said = [t for t in drawn if reason in t]
    assert len(said) == 1 and "REFUSED" in said[0], said
    assert not [t for t in drawn if t.startswith("Not analysed")], drawn
    assert _red_pixels(w.structure_panel) == 0
    _grab(w.structure_panel, "v4_panel.png")


# ---------------------------------------------------------------- V6: the B-scan label past a missing file

@pytest.mark.gui
def test_the_bscan_label_names_the_file_past_a_missing_number(qtbot, window, monkeypatch, tmp_path):
    """V6: B001 .. B024 without B017: past the gap the label read "B-scan 22 of 23" for B023.png; only the Results
    panel, far from it, said that the count and the files' numbers part. It now names the file's number there."""
    from corpus import oct_like
    from PySide6.QtCore import Qt
    from test_folder_h74 import _open_bscan_folder, _write_pngs

    w = window
    names = [f"B{n:03d}.png" for n in range(1, 25) if n != 17]
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "missing", oct_like((23, 64, 48)), names))
    assert not w.warnings and w.state.volume.n_bscans == 23
    w.activateWindow()
    qtbot.keyClick(w, Qt.Key_Home)
    assert w.state.index == 0
    label = w.bscan.label.toPlainText
    assert label().startswith("B-scan 1 of 23") and "file" not in label()  # before the gap: the count is the number
    for _ in range(15):
        qtbot.keyClick(w, Qt.Key_Down)
    assert label().startswith("B-scan 16 of 23") and "file" not in label()
    qtbot.keyClick(w, Qt.Key_Down)
    assert label().startswith("B-scan 17 of 23 (file 18)"), label()
    qtbot.keyClick(w, Qt.Key_End)
    assert label().startswith("B-scan 23 of 23 (file 24)"), label()
    _grab(w.bscan, "v6_label.png")


@pytest.mark.gui
def test_cannot_open_a_folder_of_two_scans_says_why_in_a_sentence(qtbot, window, monkeypatch, tmp_path):
    """V6: under "Folder: <its path>" the reason began with the folder's last part, a bare lowercase tag ("gap: the
    B-scan numbers jump ...")."""
    import html

    from corpus import oct_like
    from test_folder_h74 import _open_bscan_folder, _write_pngs

    w = window
    names = [f"B{n:03d}.png" for n in [*range(1, 17), *range(101, 117)]]
    folder = _write_pngs(tmp_path / "gap", oct_like((32, 64, 48)), names)
    _open_bscan_folder(qtbot, w, monkeypatch, folder)
    assert w.state.volume is None and len(w.warnings) == 1
    assert html.unescape(w.warnings[0]).startswith(f"<p>Folder: {folder}<br><br>Cannot open gap: the B-scan numbers "
                                                   "jump from 16 to 101: B001.png .. B016.png"), w.warnings[0]


# ---------------------------------------------------------------- V7 / V1: the RNFL map's legend

def _legend_and_map(w):
    """The map legend's and the map's rectangles and the en-face pane's, in the pane's (ViewBox's) pixels."""
    vb = w.enface.getPlotItem().getViewBox()
    legend = w.structure.map_legend
    box = legend.mapRectToItem(vb, legend.boundingRect())
    rect = w.enface.image_rect()
    corners = [vb.mapFromView(p) for p in (rect.topLeft(), rect.bottomRight())]
    xs, ys = sorted(p.x() for p in corners), sorted(p.y() for p in corners)
    from PySide6.QtCore import QRectF

    return box, QRectF(xs[0], ys[0], xs[1] - xs[0], ys[1] - ys[0]), vb.boundingRect()


@pytest.mark.gui
@pytest.mark.parametrize("size", [(1600, 1000), (1280, 800)])
def test_the_thickness_maps_legend_fits_the_pane_beside_the_map_with_the_study_panel_open(qtbot, window, monkeypatch,
                                                                                         demo, size):
    """V7: with the Study panel open the legend's grey entry was cut at the en-face pane's edge ("grey: disc + 250 µm
    margin, not me"); V1: the legend sat at the pane's top, ~120 px above the map it explains."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from octviewer.gui.structure.page import map_blank_text

    w = window
    w.resize(*size)
    open_study_folder(qtbot, w, monkeypatch, demo)
    assert w.study.dock.isVisible()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(RESOURCES / "demo_normal_OD.dcm"), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and w.controller.analysis_generation == -1, timeout=120000)
    qtbot.keyClick(w, Qt.Key_T)
    qtbot.waitUntil(lambda: w.state.map_shown == "thickness" and w.structure.map_legend.isVisible(), timeout=10000)
    qtbot.wait(100)
    texts = [label.text for _sample, label in w.structure.map_legend.items]
    assert " ".join(t.replace("<br>", " ") for t in texts).count(map_blank_text()) == 1, texts  # whole, wrapped
    legend, image, pane = _legend_and_map(w)
    assert pane.contains(legend), (legend, pane, w.enface.width())  # nothing cut off at the pane's edge
    gap = max(legend.top() - image.bottom(), image.top() - legend.bottom(), legend.left() - image.right(), 0)
    assert gap <= 10, (legend, image)  # next to the map, not ~120 px above it
    _grab(w, f"v7_{size[0]}.png")


@pytest.mark.gui
def test_a_thickest_patch_at_the_grey_or_the_cubes_edge_is_not_painted_as_thick_tissue(qtbot, window, monkeypatch,
                                                                                       tmp_path):
    """V1: the advanced-glaucoma demo's map painted one B-scan's 309 µm (between neighbours of ~41 µm) at the cube's
    corner in the thickest yellow, and a yellow rim hugged the grey band in the normal eyes: segmentation running
    off at an edge, drawn as the eye's thickest tissue. The map now paints such patches dark grey and says so; the
    measured values (and the CSV's figures made from them) are unchanged."""
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog

    from octviewer.gui.structure.page import MAP_EDGE_RGB, MAP_EDGE_RUN_UM, map_edge_text

    w = window
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(RESOURCES / "demo_advanced_glaucoma_OD.dcm"), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.structure is not None and w.controller.analysis_generation == -1, timeout=120000)
    t = w.state.structure.thickness_map_um
    corner = np.zeros(t.shape, bool)
    corner[-4:, :16] = True  # the streak of one B-scan at the cube's bottom left (H95's 02c.png)
    streak = corner & (t >= 250)
    assert streak.sum() >= 5, "the demo no longer has the streak this test is about"
    before = t.copy()
    qtbot.keyClick(w, Qt.Key_T)
    qtbot.waitUntil(lambda: w.state.map_shown == "thickness" and w.structure.thickness_item.isVisible(), timeout=10000)
    shown = w.structure.thickness_item.image
    assert (shown[streak][:, :3] == MAP_EDGE_RGB).all()  # not the scale's yellow
    lone = np.isfinite(t) & (t >= 250) & ~(shown[..., :3] == MAP_EDGE_RGB).all(-1)
    assert not lone.any(), np.argwhere(lone)  # every such patch of this eye touches an edge
    inside = np.isfinite(t) & (t < MAP_EDGE_RUN_UM)  # the near-yellow run on greyed too since H112 (X1)
    assert not (shown[inside][:, :3] == MAP_EDGE_RGB).all(-1).any()  # the rest of the map as before
    texts = [label.text for _sample, label in w.structure.map_legend.items]
    assert texts[-2] == map_edge_text(), texts  # above the grey's (the last)
    np.testing.assert_array_equal(w.state.structure.thickness_map_um, before)  # the measurement untouched
    qtbot.wait(100)
    _grab(w.enface, "v1_map.png")
    from test_h92 import PDFTOTEXT, _export_pdf_text

    if not PDFTOTEXT.args[0]:  # the PDF's map is painted the same, and its caption says what dark grey is (lead)
        import unicodedata

        text = _export_pdf_text(w, monkeypatch, tmp_path / "map.pdf")
        assert " ".join(unicodedata.normalize("NFKC", map_edge_text()).split()) in text
