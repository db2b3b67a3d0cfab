"""The B-scan with its CAM, layer lines, scale bar and grey-level histogram; it draws the state and
writes user intent (wheel, histogram drag) back to it. A B-scan not decoded yet (the scan is
still arriving) is never drawn: the view shows a "decoding…" placeholder in its place ("not loaded"
once the decoding was cancelled)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QWidget

from . import render

# the boundary colours and names are render's, so the report draws the lines as the screen does
from .render import BOUNDARY_COLOURS, BOUNDARY_NAMES, LAYER_COLOURS, layer_colour, layer_name  # noqa: F401
from .state import ViewerState

#: a B-scan view narrower than this shows the window/level histogram as a narrow strip (its level handles
#: and grey bar kept, the counts and their axis left out): at 1024 x 700 with the Study panel open the
#: full histogram took a third of the view and left the B-scan image ~240 px wide (fourth walk-through)
COMPACT_HISTOGRAM_BELOW_PX = 560
#: the box under text and legends drawn over the B-scan: readable over bright speckle, the image still seen
TEXT_BOX = pg.mkBrush(0, 0, 0, 180)
#: a dark edge under every line drawn on the B-scan: the red ILM line faded to pink on the red CAM (walk-through
#: H65, W21); the printed B-scan's lines have the same edge (render.bscan_image)
LINE_SHADOW = pg.mkPen(0, 0, 0, 200, width=3.5)


def folder_numbers(volume) -> list[str] | None:
    """The running numbers of the files of a folder of B-scans, in the volume's order (``io.stacks``' rules); None for
    a scan file, or when the folder no longer holds the volume's B-scans."""
    import os
    from pathlib import Path

    from octviewer.io.stacks import image_folder_files, running_numbers

    if volume is None or not volume.source or not os.path.isdir(volume.source):
        return None
    try:
        names = [f.name for f in image_folder_files(Path(volume.source))]
    except OSError:
        return None
    return running_numbers(names) if len(names) == volume.n_bscans else None


def position_words(i: int, bscan_mm: float) -> str:
    """Where B-scan ``i`` (0-based) lies in the cube, said as what it is: a bare "3.00 mm" beside "B-scan 33 of 64"
    read as the B-scan's width or depth (cube scans are commonly 6 mm wide; walk-through H121, U6)."""
    return f"{i * bscan_mm:.2f} mm from B-scan 1"


class BscanView(pg.GraphicsLayoutWidget):
    """The wheel steps B-scans, Ctrl+wheel zooms."""

    histogram = None  # (resize events come before __init__ has made it)
    _compact_histogram = False
    _numbers_of = _numbers = None  # the volume whose folder's file numbers ``_numbers`` are (``_file_number``)

    def __init__(self, state: ViewerState):
        super().__init__()
        self.state = state
        self.view = self.addViewBox(lockAspect=False, invertY=True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.cam = pg.ImageItem(axisOrder="row-major")
        self.cam.setLookupTable(render.cam_lut())
        self.cam.setZValue(10)
        self.view.addItem(self.image)
        self.view.addItem(self.cam)
        # text over the image sits on a semi-opaque box: over speckle it was unreadable (fourth walk-through)
        self.label = pg.TextItem(color="w", anchor=(0, 0), fill=TEXT_BOX)
        self.label.setZValue(30)
        # on the view box, not in the image's coordinates: zoomed in, the label would leave the screen
        # and the reader would lose which B-scan and where
        self.label.setParentItem(self.view)
        self.label.setPos(4, 4)
        self._label_lines: list[str] | None = None  # the label's parts, laid out by ``_fit_label``
        self.view.sigResized.connect(self._fit_label)
        self.placeholder = pg.TextItem("decoding…", color="#ffcc00", anchor=(0.5, 0.5), fill=TEXT_BOX)
        self.placeholder.setZValue(30)
        self.placeholder.hide()
        self.view.addItem(self.placeholder)
        # window/level: a histogram with draggable levels, grey-scale only (scans are never tinted)
        self.histogram = pg.HistogramLUTItem(image=self.image, gradientPosition="right")
        self.histogram.gradient.setEnabled(False)
        # the histogram is computed once per volume, not on every B-scan: scrolling stays fast
        self.image.sigImageChanged.disconnect(self.histogram.imageChanged)
        self.histogram.sigLevelsChanged.connect(self._levels_dragged)
        self.addItem(self.histogram)
        # the B-scan's sides under it (T S N I T along a circle, T and N at a cube B-scan's ends): an axis linked to
        # the view, so the letters follow a zoom and never sit on the image, its label, legends or scale bar
        self.sides = pg.AxisItem("bottom", linkView=self.view)
        self.sides.setTickPen(pg.mkPen("#ffcc00"))
        self.sides.setTextPen(pg.mkPen("#ffcc00"))
        font = self.sides.font()
        font.setBold(True)
        # the T at either end of a circle or cube B-scan sits on the axis's edge: hidden as overlapping by default
        self.sides.setStyle(hideOverlappingLabels=False, tickFont=font)
        self.addItem(self.sides, row=1, col=0)
        self._show_sides(())
        self.ci.layout.setContentsMargins(2, 2, 2, 2)  # (9 px a side by default: room the B-scan needs more)
        self.ci.layout.setHorizontalSpacing(2)
        self.scale_bar = pg.ScaleBar(size=200, suffix="µm")
        self.scale_bar.setParentItem(self.view)
        self.scale_bar.anchor((1, 1), (1, 1), offset=(-20, -20))
        self.scale_bar.text.fill = TEXT_BOX  # (pyqtgraph's ScaleBar takes no fill of its own)
        self.scale_bar.hide()  # shown with a scan of known spacing
        self.layer_curves: list[pg.PlotCurveItem] = []
        self.hidden_layers: set[str] = set()  # file layers another overlay draws instead (``hide_file_layers``)
        # names the file's own lines that are drawn (bottom left; the structure overlay's is top left)
        self.layer_legend = pg.LegendItem(offset=(10, -10), labelTextColor="w", brush=TEXT_BOX)
        self.layer_legend.setParentItem(self.view)
        self.layer_legend.setZValue(40)
        self.layer_legend.hide()  # shown with a scan's lines: empty, it is a black square
        self._legend_names: tuple = ()
        self._scale = (1.0, 1.0)  # scene units per B-scan pixel (lateral, axial)
        state.events.scan.connect(self.on_scan)
        state.events.index.connect(self.draw)
        state.events.analysis.connect(self.draw)  # the CAM and the label's P= of the B-scan on screen
        state.events.structure.connect(self.draw)  # a refusal takes the file's own lines off
        state.events.display.connect(self.on_display)
        state.events.frames.connect(self.on_frames)

    # -- for overlays (the structure lines) -------------------------------------------------
    @property
    def scale(self) -> tuple[float, float]:
        """Scene units per B-scan pixel (lateral, axial): where an overlay draws pixel (x, depth)."""
        return self._scale

    def add_overlay(self, item, z: float) -> None:
        """An item drawn over the B-scan in its scene units, above the CAM (z 10) and file lines (z 20)."""
        item.setZValue(z)
        if isinstance(item, pg.PlotCurveItem):
            item.setShadowPen(LINE_SHADOW)
        self.view.addItem(item)

    def add_legend(self, offset: tuple[float, float]) -> pg.LegendItem:
        """A legend on the view box (it stays in place when the B-scan is zoomed)."""
        legend = pg.LegendItem(offset=offset, labelTextColor="w", brush=TEXT_BOX)
        legend.setParentItem(self.view)
        legend.setZValue(40)
        return legend

    def hide_file_layers(self, names) -> None:
        """The file's own lines of these layers are not drawn (an overlay draws them, never twice)."""
        if set(names) != self.hidden_layers:
            self.hidden_layers = set(names)
            self.draw()

    # -- state -> screen --------------------------------------------------------------------
    def on_scan(self):
        s = self.state
        for curve in self.layer_curves:
            self.view.removeItem(curve)
        self.layer_curves = []
        self._legend_names = None  # rebuilt for the new scan's curves
        self.cam.hide()
        if s.volume is None:
            self.image.clear()
            self.histogram.plot.setData([], [])  # the closed scan's grey levels are not left beside an empty view
            self._label_lines = None
            self.label.setText("")
            self.placeholder.hide()
            self.scale_bar.hide()  # over an empty view it drew a white bar across it
            self._show_sides(())
            self._update_layer_legend()
            return
        for k, name in enumerate(s.volume.layers):
            boundary = str(name).upper() in BOUNDARY_COLOURS  # as thick as the structure overlay's lines
            curve = pg.PlotCurveItem(pen=pg.mkPen(layer_colour(name, k), width=1.5 if boundary else 1),
                                     shadowPen=LINE_SHADOW)
            curve.setZValue(20)
            self.view.addItem(curve)
            self.layer_curves.append(curve)
        self._set_geometry()
        self.draw()
        self.histogram.imageChanged(autoLevel=False)
        self.on_display()
        self.fit_view()

    def _update_layer_legend(self):
        s = self.state
        # a layer the file declares but leaves empty draws nothing, so it is not named either
        layers = s.volume.layers if s.volume is not None else {}
        names = tuple(n for n, a in layers.items()
                      if self._layers_shown() and n not in self.hidden_layers and np.isfinite(a).any())
        if names != self._legend_names:
            self.layer_legend.clear()
            # named and ordered as the cube's and circle's legend (ILM, RNFL outer boundary, Bruch's
            # membrane): a line scan said "ILM, BM, RNFL" in the file's order and words (walk-through)
            order = list(BOUNDARY_NAMES)
            entries = sorted((order.index(str(n).upper()) if str(n).upper() in order else len(order), k, curve, n)
                             for k, (curve, n) in enumerate(zip(self.layer_curves, layers)) if n in names)
            for _, _, curve, name in entries:
                self.layer_legend.addItem(curve, f"{layer_name(name)} (file's own)")
            self._legend_names = names
        self.layer_legend.setVisible(bool(names))

    def _layers_shown(self) -> bool:
        """The file's own lines are drawn when the user wants lines and the scan was not refused."""
        return self.state.settings.show_layers and not self.state.refused

    def resizeEvent(self, event):  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_histogram()

    def _fit_histogram(self) -> None:
        """The full histogram where there is room, a strip where the view is narrow."""
        compact = self.width() < COMPACT_HISTOGRAM_BELOW_PX
        if self.histogram is None or compact == self._compact_histogram:
            return
        self._compact_histogram = compact
        h = self.histogram
        h.vb.setMinimumWidth(10 if compact else 45)
        h.vb.setMaximumWidth(10 if compact else 152)
        h.axis.setVisible(not compact)
        h.axis.setWidth(0 if compact else None)

    def fit_view(self):
        """The B-scan fills the view. Ranged on the image alone: the layer and segmentation lines of
        the scan before may still be in the view, and a circle scan's ~11 mm put a 6 mm B-scan
        opened after it into half the view."""
        self.view.autoRange(padding=0, items=[self.image])

    def _set_geometry(self):
        """Scene units per pixel for the axial stretch mode; the lateral axis is in µm when known."""
        s = self.state
        sp = s.volume.spacing
        sx = sp.ascan_mm * 1000 if sp.known else 1.0
        mode = s.settings.axial_mode
        sy = sp.depth_mm * 1000 if (mode == "physical" and sp.known) else sx
        self._scale = (sx, sy)
        self.view.setAspectLocked(mode != "fit")
        self.scale_bar.setVisible(sp.known)
        width = s.volume.shape[2] * sx
        # the end letters a little inside the ends: centred on the very edge, the left one was cut in half (H82, W6)
        self._show_sides([(min(max(fraction, 0.015), 0.985) * width, letter)
                          for fraction, letter in render.bscan_sides(s.volume)])

    def _show_sides(self, ticks) -> None:
        """The orientation letters under the B-scan (``render.bscan_sides``) at their places in scene units; no
        strip at all for a scan without (a line of unknown direction or not near-horizontal, an eye not known). The
        B-scan had no orientation: a circle's TSNIT order had to be inferred, a cube B-scan's temporal side read off
        the en-face (walk-through H65, W14)."""
        self.sides.setTicks([list(ticks), []])
        self.sides.setVisible(bool(ticks))
        self.sides.setMaximumHeight(30 if ticks else 0)

    def sides_shown(self) -> list[tuple[float, str]]:
        """The orientation letters under the B-scan, as (place in scene units, letter); [] when none is shown."""
        return list(self.sides._tickLevels[0]) if self.sides.isVisible() and self.sides._tickLevels else []

    def on_frames(self, indices):
        """B-scans were decoded: redraw if the one on screen is among them."""
        if indices is None or self.state.index in indices:
            self.draw()

    def draw(self):
        s = self.state
        if s.volume is None:
            return
        i = s.index
        sx, sy = self._scale
        if not s.is_loaded(i):  # its pixels are not there yet: say so, never draw the empty row
            depth, width = s.display.shape[1:]
            self.image.hide()
            for curve in self.layer_curves:
                curve.hide()
            self.cam.hide()
            # after a cancel the B-scan will never come: "decoding…" promised it would (walk-through)
            state = "not loaded (decoding cancelled)" if s.loading_stopped else "decoding…"
            self.placeholder.setText(f"B-scan {i + 1}: {state}")
            self.placeholder.setPos(width * sx / 2, depth * sy / 2)
            self.placeholder.show()
            self._label_lines = None
            self.label.setText(f"B-scan {i + 1} of {s.n_bscans}{self._file_number(i)}   {state} "
                               f"({s.loaded_count} of {s.n_bscans} {'loaded' if s.loading_stopped else 'ready'})")
            return
        self.placeholder.hide()
        self.image.show()
        bscan = s.display[i]
        self.image.setImage(bscan, autoLevels=False, levels=s.settings.levels)
        self.image.setRect(0, 0, bscan.shape[1] * sx, bscan.shape[0] * sy)
        for curve, name in zip(self.layer_curves, s.volume.layers):
            heights = s.volume.layers[name][i]
            x = np.arange(len(heights)) * sx
            ok = np.isfinite(heights)
            curve.setData(x[ok], heights[ok] * sy)
            curve.setVisible(self._layers_shown() and name not in self.hidden_layers)
        self._update_layer_legend()
        self.draw_cam()
        text = f"B-scan {i + 1} of {s.n_bscans}" + self._file_number(i)
        sp = s.volume.spacing
        if sp.bscan_mm:  # distance from the first B-scan, as vendor viewers show it
            text += f"   {position_words(i, sp.bscan_mm)}"
        lines = [text]
        if s.probs is not None and np.isfinite(s.probs[i]):
            # this B-scan's, said so: a bare "P=0.02" on the image beside the panel's "P(glaucoma) = 0.18"
            # read as the eye's probability (fifth walk-through)
            lines.append(f"this B-scan: P={s.probs[i]:.2f}")
        self._label_lines = lines
        self._fit_label()

    def _fit_label(self) -> None:
        """The label on one line, or on two where one would run past the view's right edge (a 1024 px window with the
        Study panel open, since the position says "from B-scan 1")."""
        lines = self._label_lines
        if not lines:
            return
        self.label.setText("   ".join(lines))
        if len(lines) > 1 and self.label.sceneBoundingRect().right() > self.view.sceneBoundingRect().right() - 4:
            self.label.setText("\n".join(lines))

    def _file_number(self, i: int) -> str:
        """" (file 23)" where B-scan ``i`` of a folder of B-scans is a file whose number is not its count: past a
        missing B023.png's neighbour the label read "B-scan 22 of 63" for B023.png, and only the Results panel,
        far from it, said that the count and the files' numbers part (H95, V6). The folder is listed once a scan."""
        volume = self.state.volume
        if self._numbers_of is not volume:
            self._numbers_of, self._numbers = volume, folder_numbers(volume)
        if self._numbers is None or i >= len(self._numbers) or int(self._numbers[i]) == i + 1:
            return ""
        return f" (file {int(self._numbers[i])})"

    def draw_cam(self):
        s = self.state
        cam = None if s.volume is None or not s.is_loaded(s.index) else render.bscan_cam(s, s.index)
        if cam is None:
            self.cam.hide()
            return
        self.cam.setImage(cam, levels=render.CAM_LEVELS, autoLevels=False)
        self.cam.setRect(self.image.mapRectToParent(self.image.boundingRect()))
        self.cam.setOpacity(s.settings.cam_opacity)
        self.cam.show()

    def on_display(self):
        s = self.state
        if s.volume is None:
            return
        before = (self._scale, self.view.state["aspectLocked"])
        self._set_geometry()
        self.histogram.blockSignals(True)
        self.histogram.setLevels(*s.settings.levels)
        self.histogram.blockSignals(False)
        self.draw()
        if before != (self._scale, self.view.state["aspectLocked"]):
            self.fit_view()  # the new stretch fills the view

    # -- screen -> state --------------------------------------------------------------------
    def _levels_dragged(self):
        self.state.update_settings(levels=tuple(float(x) for x in self.histogram.getLevels()))

    def wheelEvent(self, event):
        if event.modifiers() & Qt.ControlModifier:
            self.view.scaleBy((0.87, 0.87) if event.angleDelta().y() > 0 else (1.15, 1.15))
        else:
            self.state.set_index(self.state.index + (-1 if event.angleDelta().y() > 0 else 1))
        event.accept()


class CamLegend(QWidget):
    """The CAM colour bar with its fixed scale: what blue and red mean, in logit units, and the CAM's opacity."""

    def __init__(self):
        super().__init__()
        bar = render.legend_image(240, 12)
        image = QImage(bar.data, bar.shape[1], bar.shape[0], bar.strides[0], QImage.Format_RGB888).copy()
        picture = QLabel()
        picture.setPixmap(QPixmap.fromImage(image))
        # the bar shrinks (down to 45 px) with the window: at its full 240 px it held the window
        # at 1209 px or wider, too wide for a 1024 px screen
        picture.setScaledContents(True)
        picture.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        picture.setMinimumWidth(45)
        picture.setMaximumWidth(bar.shape[1])
        h = QHBoxLayout(self)
        h.setContentsMargins(4, 0, 4, 0)
        h.setSpacing(4)
        # the opacity ``[`` and ``]`` set, as "CAM 50%": faded to its least the overlay could not be seen while View >
        # Show CAM stayed ticked and this bar shown, and nothing said how faded it was (walk-through H121, U5). Its
        # room came from the bar's least width and the spacing: the legend still fits a 1024 px window
        self.opacity = QLabel()
        # short words, the full ones in the tooltip: "(towards normal)" and "(towards glaucoma)" held the
        # centre so wide that the Results and Structure docks of a 1024 px window scrolled sideways
        lo = QLabel(f" −{render.CAM_LIMIT:g} normal")
        hi = QLabel(f"+{render.CAM_LIMIT:g} glaucoma")
        # where the colours turn: the PDF's caption said white was the decision threshold, the screen
        # did not (fifth walk-through); "white: threshold" still fits a 1024 px window with the Study panel
        middle = QLabel("white: threshold")
        tip = (f"class activation map, fixed scale: −{render.CAM_LIMIT:g} evidence towards normal, "
               f"+{render.CAM_LIMIT:g} towards glaucoma (logit); 0 (white) is the decision threshold. "
               "The map is coarse (a few cells per B-scan, drawn smoothly): it shows which part of the "
               "scan weighed, not which layer")
        for w in (lo, picture, hi, middle):
            w.setToolTip(tip)
        self.opacity.setToolTip(f"CAM opacity over the B-scan and en-face: [ more transparent, ] more opaque.\n{tip}")
        for w in (self.opacity, lo, hi, middle):
            w.setTextFormat(Qt.PlainText)
        for w in (self.opacity, lo, picture, hi, middle):
            h.addWidget(w)
        h.addStretch(1)
        self.show_opacity(0.5)

    def show_opacity(self, opacity: float) -> None:
        """"CAM 50%": the CAM's opacity (0-1) as a percentage."""
        self.opacity.setText(f"CAM {round(opacity * 100)}%")
