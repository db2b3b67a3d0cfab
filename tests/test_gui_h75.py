"""Walk-through H65 findings in the single-scan viewer and its PDF (H75): the B-scan's line legend stays in one
place (W29), the P(glaucoma) strip without a network result (W31), orientation labels on the B-scan and the circle
scan's SLO in its PDF (W14). Driven as a user drives the window. OCTVIEWER_WALK_GRABS=folder saves grabs."""

import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")



pytestmark = pytest.mark.gui


def _grab(widget, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, name))


def _open_demo(qtbot, w, monkeypatch):
    """File > Open the bundled demo scan, and wait for its result and structure."""
    from PySide6.QtWidgets import QFileDialog

    from octviewer.resources import DEMO_SCAN

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(DEMO_SCAN), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.prediction is not None and not w.state.measuring and w.state.structure is not None,
                    timeout=120000)


def test_the_line_legend_stays_in_one_place_from_one_bscan_to_the_next(qtbot, window, monkeypatch):
    """W29: stepping through the demo cube, the ILM / RNFL / BM legend sat top left on B-scan 1 and bottom left on
    B-scan 21 (it was placed afresh on each B-scan, where that B-scan's retina left room)."""
    w = window
    w.resize(1600, 975)
    _open_demo(qtbot, w, monkeypatch)
    legend = w.structure.legend
    assert legend.isVisible()
    places = {}
    for k in range(0, w.state.n_bscans, 4):
        w.slider.setValue(k)  # the B-scan slider under the view
        qtbot.wait(10)
        assert w.state.index == k
        places.setdefault(tuple(legend.opts["offset"]), k)
        if k in (0, 20):
            _grab(w.bscan, f"h75_legend_{k + 1}.png")
    assert len(places) == 1, places


@pytest.mark.samples
def test_the_probability_strip_says_there_is_no_network_result_for_a_circle_or_line_scan(qtbot, window, monkeypatch):
    """W31: for the Spectralis circle and line scans (shown, not analysed) the P(glaucoma) strip stood empty with a
    lone "1" on its axis. It says "no network result" now, and says nothing once a scan with a result is open."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _spectralis_circle

    from octviewer.gui.viewer.curve_view import NO_RESULT

    w = window
    for name in ("Willis_B_716_2.vol", "Willis_B_716_0.vol"):
        _open_by_menu(qtbot, w, os.path.join(os.path.dirname(_spectralis_circle()), name), monkeypatch)
        assert w.prediction is None and w.state.reason and w.state.volume.scan_pattern in ("circle", "line")
        assert w.curve.no_result.isVisible() and w.curve.no_result.textItem.toPlainText() == NO_RESULT
        (x0, x1), (y0, y1) = w.curve.plotItem.vb.viewRange()
        x, y = w.curve.no_result.pos().x(), w.curve.no_result.pos().y()
        assert x0 < x < x1 and y0 < y < y1  # in the strip, not off its edge
        _grab(w.curve, f"h75_strip_{w.state.volume.scan_pattern}.png")
    _open_demo(qtbot, w, monkeypatch)
    assert not w.curve.no_result.isVisible() and len(w.curve.plotted()[0]) == w.state.n_bscans


def _cyan_share(image) -> float:
    """Share of a QImage's pixels in the viewer's cyan (0, 229, 255): the B-scan's place drawn on an en-face."""
    import numpy as np

    rgb = image.convertToFormat(image.Format.Format_RGB888)
    a = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())[:, :rgb.width() * 3]
    a = a.reshape(rgb.height(), rgb.width(), 3).astype(int)
    return float(((a[..., 0] < 60) & (a[..., 1] > 190) & (a[..., 2] > 220)).mean())


@pytest.mark.samples
def test_the_bscan_names_its_sides_and_the_circle_report_prints_the_slo_with_the_circle(qtbot, window, monkeypatch,
                                                                                         tmp_path):
    """W14: the circle B-scan had no T/S/N/I marks along its length (the TSNIT order had to be inferred), cube
    B-scans had no T/N at their ends, and the circle scan's PDF had no SLO image with the circle's position (the
    cube's report has its en-face). Now the letters stand under the B-scan on screen and on the printed B-scan, and
    the circle report prints the localizer with the circle drawn on it."""
    import shutil
    import subprocess

    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf, _spectralis_circle

    w = window
    w.resize(1600, 975)
    _open_by_menu(qtbot, w, _spectralis_circle(), monkeypatch)
    v = w.state.volume
    assert v.scan_pattern == "circle" and v.localizer is not None
    width = v.shape[2] * w.bscan.scale[0]
    shown = w.bscan.sides_shown()
    assert [letter for _, letter in shown] == ["T", "S", "N", "I", "T"]
    # the end letters 1.5 % inside the ends, so they are not cut at the view's edge (H82, W6)
    assert [round(x / width, 3) for x, _ in shown] == [0.015, 0.25, 0.5, 0.75, 0.985]
    assert w.bscan.sides.isVisible() and w.bscan.sides.height() > 10
    qtbot.wait(50)
    _grab(w.bscan, "h75_circle_bscan.png")
    captured = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)
    text = captured["doc"].toPlainText()
    assert "localizer image of the scan (cyan: where the report's B-scan lies)" in text
    assert _cyan_share(captured["images"]["enface"]) > 0.002  # the circle drawn on the SLO
    _grab_image = os.environ.get("OCTVIEWER_WALK_GRABS")
    if _grab_image:
        captured["images"]["enface"].save(os.path.join(_grab_image, "h75_circle_pdf_slo.png"))
        captured["images"]["bscan"].save(os.path.join(_grab_image, "h75_circle_pdf_bscan.png"))
        shutil.copy(tmp_path / "report.pdf", os.path.join(_grab_image, "h75_circle.pdf"))
    if shutil.which("pdfimages"):  # the PDF itself holds the SLO: two images (B-scan, SLO) besides the structure
        listed = subprocess.run(["pdfimages", "-list", str(tmp_path / "report.pdf")], capture_output=True, text=True,
                                check=True).stdout.splitlines()[2:]
        assert len(listed) >= 3, listed

    _open_demo(qtbot, w, monkeypatch)  # a right eye's cube: temporal on the left, as the en-face shows it
    assert w.state.volume.laterality == "OD"
    assert [letter for _, letter in w.bscan.sides_shown()] == ["T", "N"]
    assert 0 < w.bscan.sides_shown()[0][0] < 0.02 * w.state.volume.shape[2] * w.bscan.scale[0]
    _grab(w.bscan, "h75_cube_bscan.png")


def _structure_dock(w):
    from PySide6.QtWidgets import QDockWidget

    [dock] = [d for d in w.findChildren(QDockWidget) if d.windowTitle() == "Structure"]
    return dock


def test_the_results_panel_gives_its_spare_room_to_the_structure_panel(qtbot, window, monkeypatch):
    """W19: at 1600 x 975 the Results dock kept ~150-200 px blank under the demo's result while the Structure panel
    under it needed 15+ wheel steps for its sectors and disc figures. The Results dock is now as tall as what it
    shows, everything of it still in sight, and the Structure panel has the rest."""
    w = window
    w.resize(1600, 975)
    _open_demo(qtbot, w, monkeypatch)
    qtbot.wait(200)
    viewport = w.results_scroll.viewport()
    blank = viewport.height() - w.results.heightForWidth(viewport.width())
    _grab(w, "h75_docks_1600.png")
    assert w.results_scroll.verticalScrollBar().maximum() == 0  # all of the Results panel in sight
    assert 0 <= blank < 40, blank
    assert _structure_dock(w).height() > 0.5 * (w.results_dock.height() + _structure_dock(w).height())


def test_the_cam_leaves_the_vitreous_and_the_lines_keep_a_dark_edge_over_it(qtbot, window, monkeypatch, tmp_path):
    """W21: View > Show CAM turned the whole demo B-scan red, the vitreous above the retina included, and the red
    ILM line faded to pink on it. The CAM now stops just above the ILM (on screen and in the PDF), and every line
    drawn on the B-scan has a dark edge."""
    import numpy as np
    from test_gui_walkthrough_h2 import _export_pdf

    w = window
    w.resize(1600, 975)
    _open_demo(qtbot, w, monkeypatch)
    if not w.state.settings.show_cam:
        w.menu_actions["toggle_cam"].trigger()
    qtbot.waitUntil(lambda: w.bscan.cam.isVisible(), timeout=5000)
    cam = w.bscan.cam.image
    ilm = w.state.structure.segmentation.ilm[w.state.index]
    x = int(np.flatnonzero(np.isfinite(ilm) & (ilm > 20))[0])
    assert np.isnan(cam[: int(ilm[x]) - 5, x]).all()  # the vitreous above the ILM: no CAM
    assert np.isfinite(cam[int(ilm[x]) + 5:, x]).all()  # the retina under it: the CAM
    _grab(w.bscan, "h75_cam_on.png")
    assert all(curve.opts["shadowPen"] is not None for curve in w.structure.lines.values())
    captured = _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)  # the printed B-scan: as on screen
    image = captured["images"]["bscan"].convertToFormat(captured["images"]["bscan"].Format.Format_RGB888)
    a = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    top = a[: image.height() // 8, : image.width() * 3].reshape(-1, 3).astype(int)
    assert (np.abs(top[:, 0] - top[:, 2]) < 8).mean() > 0.95  # the vitreous at the top stays grey in print
    if os.environ.get("OCTVIEWER_WALK_GRABS"):
        captured["images"]["bscan"].save(os.path.join(os.environ["OCTVIEWER_WALK_GRABS"], "h75_cam_pdf_bscan.png"))


def test_the_rnfl_line_stops_at_the_disc(qtbot, window, monkeypatch):
    """W22: on the demo's B-scans through the disc the yellow RNFL outer boundary ran inside the cup, below Bruch's
    membrane. It stops at Bruch's membrane opening now, on screen and on the report's B-scan."""
    import numpy as np

    from octviewer.gui.viewer import render

    w = window
    w.resize(1600, 975)
    _open_demo(qtbot, w, monkeypatch)
    seg = w.state.structure.segmentation
    assert seg.disc_mask is not None and seg.disc_mask.any()
    k = int(np.argmax(seg.disc_mask.sum(axis=1)))  # the B-scan through the widest part of the disc
    w.slider.setValue(k)
    assert w.state.index == k
    _grab(w.bscan, "h75_rnfl_at_disc.png")
    sx, sy = w.bscan.scale
    x, y = w.structure.lines["rnfl"].getData()
    x, y = x[np.isfinite(y)], y[np.isfinite(y)]
    assert w.structure.lines["rnfl"].opts["connect"] == "finite"  # no segment drawn across the gap
    columns = np.round(x / sx).astype(int)
    bm = seg.bm[k][columns] * sy
    assert len(columns) and not seg.disc_mask[k][columns].any()  # none inside the disc
    assert (y < bm).all()  # none at or below Bruch's membrane
    assert len(columns) > 0.3 * seg.rnfl.shape[1]  # and still drawn around it
    [printed] = [depth for name, _, depth in render.bscan_lines(w.state) if name.startswith("RNFL")]
    assert np.isnan(printed[seg.disc_mask[k]]).all()


def test_the_divider_the_user_dragged_stays_where_they_put_it(qtbot, window, monkeypatch):
    """W19's fit ran each time a scan's results came in, so a divider the user had dragged between the Results and
    Structure panels jumped back with the next scan (H75's note)."""
    from PySide6.QtCore import QPoint, Qt

    w = window
    w.resize(1600, 975)
    _open_demo(qtbot, w, monkeypatch)
    qtbot.wait(200)
    below = _structure_dock(w)
    total = w.results_dock.height() + below.height()
    divider = w.results_dock.geometry().bottomLeft() + QPoint(20, 2)
    assert w.childAt(divider) is None  # the window's own area: the divider between the two docks
    qtbot.mousePress(w, Qt.LeftButton, pos=divider)
    w.resizeDocks([w.results_dock, below], [total - 320, 320], Qt.Vertical)  # as the user's drag does
    qtbot.mouseRelease(w, Qt.LeftButton, pos=divider)
    qtbot.wait(50)
    dragged = w.results_dock.height()
    _open_demo(qtbot, w, monkeypatch)  # the next scan's results
    qtbot.wait(200)
    assert abs(w.results_dock.height() - dragged) <= 2
