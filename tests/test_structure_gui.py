"""The structure panel, painted the way a reader sees it."""

import numpy as np
import pytest

pytest.importorskip("pytestqt")


def _colour_share(image, rgb, tol=30):
    from PySide6.QtGui import QImage

    img = image.convertToFormat(QImage.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    arr = arr.reshape(img.height(), img.width(), 3).astype(int)
    return float((np.abs(arr - np.array(rgb)).max(axis=2) < tol).mean())


def test_structure_panel_paints_report_and_empty_state(qtbot, samples_dir):
    from octviewer.gui.structure.panel import StructurePanel
    from octviewer.io import load_volume
    from octviewer.structure import measure

    panel = StructurePanel()
    qtbot.addWidget(panel)
    panel.resize(800, 600)
    panel.show()
    panel.show_report(None)
    empty = panel.grab().toImage()
    assert _colour_share(empty, (40, 160, 60)) == 0.0
    report = measure(load_volume(samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol"), source="own")
    panel.show_report(report)
    assert panel.report is report
    shown = panel.grab().toImage()
    assert _colour_share(shown, (40, 160, 60)) > 0.05  # the normal-class sectors are green


def test_report_page_draws_refusal_reasons(qtbot):
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QImage, QPainter

    from octviewer.core import OctVolume, Spacing
    from octviewer.gui.structure.page import draw_structure_page, structure_page_image
    from octviewer.structure import measure

    noise = OctVolume(np.random.default_rng(1).integers(0, 256, (32, 256, 96), dtype=np.uint8),
                      Spacing(6 / 32, 2 / 256, 6 / 96), "OD")
    report = measure(noise)
    drawn = []

    class Recording(QPainter):
        def drawText(self, *args):  # noqa: N802 (Qt's name)
            drawn.append(str(args[-1]))
            super().drawText(*args)
    image = QImage(600, 400, QImage.Format_RGB888)
    image.fill(QColor(255, 255, 255))
    painter = Recording(image)
    draw_structure_page(painter, QRectF(0, 0, 600, 400), report)
    painter.end()
    # the reasons, once (in the header), not again in red, the colour of "outside normal" (H95, V4)
    assert report.quality.reasons and sum(report.quality.reasons[0] in t for t in drawn) == 1, drawn
    assert _colour_share(image, (205, 30, 30), tol=60) == 0.0
    assert _colour_share(image, (40, 160, 60)) == 0.0  # no classes drawn for a refused scan
    page = structure_page_image(report, 620, 420)
    assert page.width() == 620 and _colour_share(page, (205, 30, 30), tol=60) == 0.0


def test_enface_layers_for_a_synthetic_cube():
    import inspect

    from octviewer.gui.structure.page import MAP_BLANK_RGB, enface_layers
    from octviewer.structure import measure
    from octviewer.synth import synth_scan
    from octviewer.synth.demo import DEMO_EYES

    clean = {}
    if "acquisition" in inspect.signature(synth_scan).parameters:  # v2 generator: no random artefacts
        from octviewer.synth import Acquisition

        clean["acquisition"] = Acquisition()
    report = measure(synth_scan(DEMO_EYES["demo_early_glaucoma_OS"], "small", seed=9, **clean).volume, source="own")
    thickness, deviation = enface_layers(report)
    shape = report.thickness_map_um.shape
    assert thickness.shape == shape + (4,) and deviation.shape == shape + (4,)
    # the disc grey, "not measured" (its legend says so), not transparent: the en-face's bright disc read as pallor
    # (walk-through H91, W13)
    assert (thickness[report.segmentation.disc_mask][:, :3] == MAP_BLANK_RGB).all()
    assert (deviation[..., 3] > 0).any()  # the inferotemporal wedge shows on the deviation map
    assert enface_layers(None) is None


def test_a_boundary_keeps_its_colour_on_every_scan(qtbot, monkeypatch, samples_dir):
    """Walk-through: the ILM was red on a circle scan (octviewer's lines) and cyan on a line scan (the
    file's own lines, coloured by their order in the file), where cyan meant Bruch's membrane before."""
    from conftest import open_window
    from PySide6.QtWidgets import QFileDialog

    from octviewer.gui.structure.overlay import SEGMENTATION_LINES
    from octviewer.resources import DEMO_MODEL

    ours = {label.split()[0].upper() if key != "bm" else "BM": colour for key, label, colour in SEGMENTATION_LINES}
    for w in open_window(qtbot, monkeypatch, DEMO_MODEL):
        monkeypatch.setattr(QFileDialog, "getOpenFileName",
                            lambda *a, **k: (str(samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol"), ""))
        with qtbot.waitSignal(w.settled, timeout=60000):
            w.menu_actions["open"].trigger()
        assert w.volume.scan_pattern == "line"
        drawn = {name.upper(): curve.opts["pen"].color().name()
                 for name, curve in zip(w.volume.layers, w.bscan.layer_curves)}
        assert {"ILM", "BM"} <= set(drawn)
        for name in ("ILM", "RNFL", "BM"):
            if name in drawn:
                assert drawn[name] == ours[name].lower(), (name, drawn[name], ours[name])


def test_the_narrow_panel_writes_at_the_apps_font_and_grows_to_show_it_all(qtbot, monkeypatch):
    """In its 250 px dock the panel fitted the page to its size: text ~7 px, the last lines cut off
    (fourth walk-through). Every text is now at least the application's font, and the panel is as
    tall as the page it draws (its dock scrolls)."""
    from PySide6.QtGui import QFontInfo, QPainter
    from PySide6.QtWidgets import QScrollArea

    from octviewer.gui.structure import panel as panel_module
    from octviewer.io import load_volume
    from octviewer.resources import DEMO_SAMPLES
    from octviewer.structure import measure

    report = measure(load_volume(DEMO_SAMPLES / "demo_normal_OD.dcm"))
    sizes, needed = [], []
    real_text, real_page = QPainter.drawText, panel_module.draw_structure_page

    def text(painter, *args):
        sizes.append(QFontInfo(painter.font()).pixelSize())
        return real_text(painter, *args)

    def page(*args, **kwargs):
        needed.append(real_page(*args, **kwargs))
        return needed[-1]

    monkeypatch.setattr(QPainter, "drawText", text)
    monkeypatch.setattr(panel_module, "draw_structure_page", page)
    panel = panel_module.StructurePanel()
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    qtbot.addWidget(scroll)
    scroll.resize(250, 334)
    scroll.show()
    panel.show_report(report)
    qtbot.waitUntil(lambda: panel.minimumHeight() > 340, timeout=2000)
    sizes.clear()
    panel.repaint()
    app_px = QFontInfo(panel.font()).pixelSize()
    assert sizes and min(sizes) >= app_px - 1, (min(sizes), app_px)
    assert panel.height() >= needed[-1] + 8  # nothing drawn below the panel's edge
