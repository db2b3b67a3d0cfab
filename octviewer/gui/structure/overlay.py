"""The structure measurement drawn over the viewer: the ILM / RNFL / Bruch's membrane lines on the
B-scan (with a legend saying whose segmentation they are) and the RNFL thickness or deviation map
on the en-face (with its colour scale).

It draws the state and nothing else: the report is ``state.structure`` (the pipeline measured it),
the map chosen is ``state.settings.enface_map`` and the map drawn is ``state.map_shown``. It uses
the views' public overlay calls (``add_overlay``, ``add_legend``, ``hide_file_layers``, ``scale``,
``add_map``, ``image_rect``), never their fields.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg

from ..viewer.bscan_view import BOUNDARY_COLOURS, BOUNDARY_NAMES
from ..viewer.render import segmentation_line
from . import page
from .page import CLASS_COLOURS, MAP_BLANK_RGB, THICKNESS_RANGE_UM, enface_layers, map_blank_text

#: ILM, RNFL outer boundary, Bruch's membrane: colours of the lines and the legend on the B-scan
SEGMENTATION_LINES = tuple((key.lower(), BOUNDARY_NAMES[key], BOUNDARY_COLOURS[key]) for key in ("ILM", "RNFL", "BM"))
LEGEND_MARGIN_PX = 5  # the map legend's distance from the map and the pane's edges
LEGEND_SWATCH_PX = 50  # the map legend's colour swatch, its spacing, the label's and the box's padding
TOP_OFFSET = 30  # the line legend's place from the view's top left, under the B-scan's label
NARROW_VIEW_PX = 450  # a B-scan view narrower than this gets the legend's short names
NO_MAP = ("The RNFL maps need a measured optic-disc cube; this scan has none (a circle or line scan, or not "
          "measured).")


def no_map_reason(state) -> str:
    """Why the RNFL map ticked in the View menu is not drawn on the scan on screen, in a few words for the en-face's
    legend, in short lines (the en-face pane is narrow). The status bar's NO_MAP said it once, for 8 s, and named
    every case at once; the en-face then showed the plain image under a ticked menu entry with nothing saying why
    (walk-through H91, W18)."""
    report, volume = state.structure, state.volume
    if report is None:
        return "not measured\n(see Structure)"
    if report.scan_pattern in ("line", "circle"):
        return f"a {report.scan_pattern} scan: the maps\nneed an optic-disc cube"
    if not report.quality.ok:  # its measurement fails the check, whether the check was on or off (H95, V2)
        return "the scan fails the\nquality check: not measured"
    if volume is not None and volume.localizer is not None:
        return "the en-face is the device's\nfundus image, not the cube's"
    return "none measured on this scan\n(see Structure)"


class StructureOverlay:
    def __init__(self, state, bscan, enface):
        self.state, self.bscan, self.enface = state, bscan, enface
        self.lines = {}
        self.legend = bscan.add_legend((10, TOP_OFFSET))
        for key, label, colour in SEGMENTATION_LINES:
            curve = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1.5))
            bscan.add_overlay(curve, 21)
            self.lines[key] = curve
            self.legend.addItem(curve, label)
        self.thickness_item = pg.ImageItem(axisOrder="row-major")
        self.deviation_item = pg.ImageItem(axisOrder="row-major")
        enface.add_map(self.thickness_item, 6)  # over the CAM (5): the user asked for this map
        enface.add_map(self.deviation_item, 7)
        self.thickness_item.hide()
        self.deviation_item.hide()
        self.map_legend = enface.add_legend((5, 5))
        self._map_entries: list[tuple] = []  # (brush or None, text) of the map legend, wrapped to the pane's width
        self._map_width = 0  # the width the legend's words were wrapped to
        enface.getPlotItem().getViewBox().sigResized.connect(self._fit_map_legend)
        enface.getPlotItem().getViewBox().sigRangeChanged.connect(self._place_map_legend)
        self._told = None  # (volume, map) the user was last told has no map
        self._whose = None
        self._short = False  # the legend names the lines by their abbreviations (a narrow B-scan view)
        bscan.view.sigResized.connect(self._fit_legend)
        bscan.view.sigRangeChanged.connect(self._place_legend)
        self._cached = None  # (report, its map images)
        events = state.events
        for event in (events.scan, events.structure):
            event.connect(self.draw)
        events.display.connect(self.draw)
        events.index.connect(self.draw_lines)
        self.draw()

    @property
    def report(self):
        return self.state.structure

    def draw(self) -> None:
        report = self.state.structure
        seg = None if report is None else report.segmentation
        # the file's own ILM/RNFL/BM lines are drawn here (with a legend), not twice; while octviewer's
        # own lines are being measured, the file's are not drawn either (they are not the ones chosen)
        own_coming = self.state.measuring and self.state.options.segmentation == "own"
        self.bscan.hide_file_layers({"ILM", "RNFL", "BM"} if seg is not None or own_coming else ())
        whose = None if seg is None else " (file's own)" if seg.source == "vendor" else " (octviewer)"
        if whose is not None and whose != self._whose:  # the legend says whose lines these are
            self._whose = whose
            self._label_legend()
        self._whose = whose
        self.draw_lines()
        self.draw_maps()

    def _label_legend(self) -> None:
        self.legend.clear()
        for key, label, _ in SEGMENTATION_LINES:
            # short: whose lines they are is left to the Structure panel's header ("segmentation: ...")
            self.legend.addItem(self.lines[key], key.upper() if self._short else label + (self._whose or ""))
        self._place_legend()

    def _fit_legend(self, *_args) -> None:
        """Abbreviations (ILM, RNFL, BM) alone in a narrow B-scan view: in a 1024 px window with the Study
        panel open the full names covered a third of the B-scan and ran past its edge (walk-through)."""
        short = self.bscan.view.width() < NARROW_VIEW_PX
        if short != self._short:
            self._short = short
            if self._whose is not None:
                self._label_legend()
        self._place_legend()

    def _lines_in_view(self, key: str, width: float) -> np.ndarray:
        """Depths in the view box's pixels of a line on EVERY B-scan of the scan, in the columns of the view's left
        ``width`` pixels (where the legend sits). The legend is placed in pixels (it keeps its size on screen while
        the B-scan zooms), so whether it would cover the retina is asked there, not in B-scan rows."""
        seg = None if self.state.structure is None else self.state.structure.segmentation
        if seg is None:
            return np.array([])
        depth = np.asarray(getattr(seg, key), np.float64)
        sx, sy = self.bscan.scale
        t = self.bscan.view.childTransform()  # (a view box scales and shifts; it never rotates)
        x = t.m11() * np.arange(depth.shape[-1]) * sx + t.dx()
        y = t.m22() * depth[..., (x >= 0) & (x <= width)] * sy + t.dy()
        return y[np.isfinite(y)]

    def _place_legend(self, *_args) -> None:
        """The line legend goes where it covers no retina on any B-scan of the scan: top left, in the vitreous,
        when the ILM lies below it; else bottom left, under Bruch's membrane; else top left, where the B-scan's
        label already is. Always top left, it covered the retina on the left of a B-scan in a 1024 x 700 window
        (walk-through); placed for the B-scan on screen, it jumped between top left and bottom left from one
        B-scan to the next (walk-through H65, W29). Asked again on a zoom or resize, not on a step."""
        if not self.legend.isVisible():
            return
        box = self.legend.boundingRect()
        w, h, height = box.width(), box.height(), self.bscan.view.height()
        ilm = self._lines_in_view("ilm", 10 + w + 10)
        bm = self._lines_in_view("bm", 10 + w + 10)
        if not len(ilm) or ilm.min() > TOP_OFFSET + h + 4:
            offset = (10, TOP_OFFSET)
        elif len(bm) and bm.max() < height - 10 - h - 4:
            offset = (10, -10)
        else:  # a retina filling the view's height: top left, where the B-scan's label already is
            offset = (10, TOP_OFFSET)
        if tuple(self.legend.opts["offset"]) != offset:
            self.legend.setOffset(offset)

    def draw_lines(self) -> None:
        s = self.state
        seg = None if s.structure is None else s.structure.segmentation
        # a scan the quality check refused is not measured: lines over its noise looked like a measurement
        visible = seg is not None and not s.refused and s.volume is not None and s.settings.show_layers
        self.legend.setVisible(visible)
        for key, curve in self.lines.items():
            if not visible or s.index >= seg.ilm.shape[0]:
                curve.setData([], [])
                curve.hide()
                continue
            sx, sy = self.bscan.scale
            depth = segmentation_line(seg, key, s.index)  # the RNFL line stops at the BMO (render's rule, W22)
            x = np.arange(depth.size) * sx
            # a gap stays a gap (connect="finite"): with the gaps dropped, the RNFL line stopped at the disc was drawn
            # straight across the cup from one side of the BMO to the other
            curve.setData(x, depth * sy, connect="finite")
            curve.show()
        self._place_legend()

    def draw_maps(self) -> None:
        """One en-face map at a time: the thickness scale's yellow and the deviation map's
        "borderline" yellow meant two things when both were on (as on Cirrus, one shows at a time)."""
        s = self.state
        shown = s.map_shown
        layers = self._layers(s.structure) if shown else None
        if layers is None:
            self.thickness_item.hide()
            self.deviation_item.hide()
            self._map_legend("")
            wanted = (s.volume, s.settings.enface_map)
            if s.settings.enface_map and s.volume is not None and s.complete and not s.measuring:
                # the volume by identity: ``!=`` on two volumes compared their pixel arrays, and raised
                # (ambiguous truth value, or shapes that do not broadcast) for every scan without a map opened
                # while the map was ticked, so the note below never came (walk-through H91, W18)
                told = self._told is not None and self._told[0] is wanted[0] and self._told[1] == wanted[1]
                if not told:  # the menu item is checked: say why nothing is drawn
                    s.events.message.emit(NO_MAP)
                self._told = wanted
                self._map_note(f"No RNFL map: {no_map_reason(s)}")  # and on the en-face, while it holds
            return
        self._told = None
        self._map_legend(shown)
        rect = self.enface.image_rect()
        for item, rgba, name in ((self.thickness_item, layers[0], "thickness"),
                                 (self.deviation_item, layers[1], "deviation")):
            item.setImage(np.ascontiguousarray(rgba), levels=(0, 255))
            item.setRect(rect)
            item.setOpacity(0.75)
            item.setVisible(shown == name)

    def _layers(self, report):
        """The map images of ``report``, made once per report (display changes redraw often)."""
        if self._cached is None or self._cached[0] is not report:
            self._cached = (report, enface_layers(report))
        return self._cached[1]

    def _map_note(self, text: str) -> None:
        """Words in the map legend's place, where the map would be explained (no colour swatch); a line each."""
        self._show_map_legend([(None, html.escape(text).replace("\n", "<br>"))])

    def _map_legend(self, shown: str) -> None:
        """What the en-face map colours mean (the thickness scale in um, the deviation classes)."""
        self.map_legend.clear()
        entries = []
        if shown == "thickness":
            lo, hi = THICKNESS_RANGE_UM
            lut = pg.colormap.get("viridis").getLookupTable(nPts=256)
            for value in (hi, (lo + hi) / 2, lo):
                rgb = lut[int(round((value - lo) / (hi - lo) * 255))]
                entries.append((pg.mkBrush(*rgb[:3]), f"RNFL {value:.0f} µm" + (" or more" if value == hi else "")))
            report = self.state.structure
            if report is not None and report.thickness_map_um is not None and \
                    page.edge_artefacts(report.thickness_map_um).any():  # said where the map has such a patch (V1)
                entries.append((pg.mkBrush(*page.MAP_EDGE_RGB), page.map_edge_text()))
            entries.append((pg.mkBrush(*MAP_BLANK_RGB), map_blank_text()))  # the grey hole (W3, W13)
        elif shown == "deviation":
            for name, text in (("borderline", "borderline (1st-5th percentile)"),
                               ("outside", "outside (below the 1st)")):
                c = CLASS_COLOURS[name]
                entries.append((pg.mkBrush(c.red(), c.green(), c.blue()), text))
        self._show_map_legend(entries)

    def _show_map_legend(self, entries: list[tuple]) -> None:
        """The map legend's entries (a colour swatch's brush, or None for words alone, and the text), wrapped to
        the en-face pane and placed beside the map (``_place_map_legend``)."""
        self._map_entries = entries
        self._map_width = 0
        self._fit_map_legend()

    def _fit_map_legend(self, *_args) -> None:
        """Wrap the legend's words to the en-face pane's width (Qt breaks the lines; the texts stay as written): with
        the Study panel open the pane is ~210 px wide and "grey: disc + 250 µm margin, not measured" lost its last
        words at the pane's edge (H95, V7)."""
        width = int(self.enface.getPlotItem().getViewBox().width()) - 2 * LEGEND_MARGIN_PX - LEGEND_SWATCH_PX
        if self._map_width != width:
            self._map_width = width
            self.map_legend.clear()
            for brush, text in self._map_entries:
                self.map_legend.addItem(pg.ScatterPlotItem(symbol="s", size=10, brush=brush, pen=None), text)
            for _sample, label in self.map_legend.items:
                label.item.setTextWidth(-1)  # its natural width, wrapped only where the pane is narrower
                if label.item.boundingRect().width() > width > 0:
                    label.item.setTextWidth(width)
                label.updateMin()
                label.resize(label.minimumWidth(), label.minimumHeight())
            self.map_legend.setGeometry(0, 0, 0, 0)  # else the layout stretches the labels to the last box's width
            self.map_legend.layout.invalidate()
            self.map_legend.layout.activate()  # the labels' new sizes before the box is sized to them
            self.map_legend.updateSize()
            self.map_legend.setVisible(bool(self._map_entries))
        self._place_map_legend()

    def _place_map_legend(self, *_args) -> None:
        """Under the map where the pane has room below it, else beside it, else over its top left: at the pane's
        top it sat ~120 px above a map centred in a tall pane, far from what it explains (H95, V1)."""
        if not self.map_legend.isVisible():
            return
        vb = self.enface.getPlotItem().getViewBox()
        rect = self.enface.image_rect()
        corners = [vb.mapFromView(p) for p in (rect.topLeft(), rect.bottomRight())]
        left, right = sorted(p.x() for p in corners)
        top, bottom = sorted(p.y() for p in corners)
        box = self.map_legend.boundingRect()
        x = min(max(left, LEGEND_MARGIN_PX), max(vb.width() - box.width() - LEGEND_MARGIN_PX, 0))
        if vb.height() - bottom - LEGEND_MARGIN_PX >= box.height():
            offset = (x, bottom + LEGEND_MARGIN_PX)
        elif vb.width() - right - LEGEND_MARGIN_PX >= box.width():
            offset = (right + LEGEND_MARGIN_PX, max(top, LEGEND_MARGIN_PX))
        elif top - LEGEND_MARGIN_PX >= box.height():
            offset = (x, top - LEGEND_MARGIN_PX - box.height())
        else:
            offset = (LEGEND_MARGIN_PX, LEGEND_MARGIN_PX)
        if tuple(self.map_legend.opts["offset"]) != offset:
            self.map_legend.setOffset(offset)
