"""The en-face: the localizer when the file has one, else the depth projection drawn in
millimetres (a 6 x 6 mm cube looks square), with the en-face CAM and the current B-scan's line.
A click selects the nearest B-scan.

While a scan is still being decoded the projection fills in row by row (one row per B-scan, each
computed once when its B-scan lands); rows not decoded yet are transparent, never drawn as black
tissue."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from . import render
from .state import ViewerState

#: Fewer B-scans than this, without a localizer, give no en-face image: the projection has one row per
#: B-scan, and 4 rows drew a strip a few pixels high with the S/T/N/I labels piled on it (walk-through
#: H65, W32). A line or a handful of B-scans is no area of the fundus; a plain message says so instead.
MIN_ENFACE_BSCANS = 16


def too_few_for_enface(volume) -> bool:
    """Whether ``volume`` has no en-face image to show: no localizer and under MIN_ENFACE_BSCANS B-scans."""
    return volume.localizer is None and volume.shape[0] < MIN_ENFACE_BSCANS


#: Above everything drawn on the en-face (the CAM 5, the RNFL maps 6-7, the B-scan line 10, legends 40 sit outside)
ORIENTATION_Z = 20


def orientation_mark(letter: str) -> pg.TextItem:
    """One of the en-face's S/I/N/T marks: bold yellow with a black halo around each glyph, on a dark plate, over
    every map. On a dark plate alone, bare yellow letters vanished over a red CAM or a bright map; and at the
    default depth the RNFL thickness map (drawn at 75 % opacity) lay over them, so the orange S/T/N/I read as
    nothing on its teal (walk-through H82, W15)."""
    from PySide6.QtGui import QColor, QFont
    from PySide6.QtWidgets import QGraphicsDropShadowEffect

    mark = pg.TextItem(letter, color="#ffcc00", fill=pg.mkBrush(0, 0, 0, 200), border=pg.mkPen(0, 0, 0, 255))
    font = QFont()
    font.setBold(True)
    mark.setFont(font)
    halo = QGraphicsDropShadowEffect()  # no offset: a black glow round the glyph, whatever colour is under it
    halo.setOffset(0, 0)
    halo.setBlurRadius(6)
    halo.setColor(QColor(0, 0, 0))
    mark.textItem.setGraphicsEffect(halo)
    mark.setZValue(ORIENTATION_Z)
    return mark


class EnfaceView(pg.PlotWidget):
    def __init__(self, state: ViewerState):
        super().__init__()
        self.state = state
        self.setAspectLocked(True)
        self.invertY(True)
        self.hideAxis("left")
        self.hideAxis("bottom")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.cam = pg.ImageItem(axisOrder="row-major")
        self.cam.setLookupTable(render.cam_lut())
        self.cam.setZValue(5)
        self.addItem(self.image)
        self.addItem(self.cam)
        self.line = pg.PlotCurveItem(pen=pg.mkPen("#00e5ff", width=2))
        self.line.setZValue(10)
        self.addItem(self.line)
        self.orientation = [orientation_mark(t) for t in ("S", "I", "N", "T")]
        for t in self.orientation:
            self.addItem(t)
        self.message = pg.TextItem("", color="#cccccc", anchor=(0.5, 0.5))  # in place of a too-thin en-face
        self.message.hide()
        self.addItem(self.message)
        self.scale = (1.0, 1.0)  # scene units per en-face pixel (x, y)
        self._rows: np.ndarray | None = None  # (n, width) depth means of the decoded B-scans, NaN elsewhere
        self.scene().sigMouseClicked.connect(self._clicked)
        state.events.scan.connect(self.on_scan)
        state.events.index.connect(self.draw_line)
        state.events.analysis.connect(self.draw_cam)
        state.events.display.connect(self.draw_cam)
        state.events.structure.connect(self.draw_cam)  # an RNFL map shown takes the CAM's place
        state.events.frames.connect(self.on_frames)
        self.on_scan()

    # -- for overlays (the RNFL maps) ---------------------------------------------------------
    def image_rect(self):
        """Where the en-face image lies in the plot (a map over it is stretched to this)."""
        return self.image.mapRectToParent(self.image.boundingRect())

    def add_map(self, item, z: float) -> None:
        """An image drawn over the en-face (z 5 is the CAM's)."""
        item.setZValue(z)
        self.addItem(item)

    def add_legend(self, offset: tuple[float, float]) -> pg.LegendItem:
        legend = pg.LegendItem(offset=offset, labelTextColor="w", brush=pg.mkBrush(0, 0, 0, 170))
        legend.setParentItem(self.getPlotItem().getViewBox())
        legend.setZValue(40)
        return legend

    def on_scan(self):
        s = self.state
        self.cam.clear()
        self.cam.hide()
        self.message.hide()
        if s.volume is None:
            self.image.clear()
            self.line.setData([], [])
            for t in self.orientation:  # with no image they would pile up in the middle
                t.hide()
            return
        v = s.volume
        self._rows = None
        if too_few_for_enface(v):
            n = v.shape[0]
            self._show_message(f"No en-face image:\n{render.bscans_text(n)} {'is' if n == 1 else 'are'} too few\n"
                               f"({MIN_ENFACE_BSCANS} or more needed,\nor a fundus image)")
            return
        for t in self.orientation:
            t.show()
        if v.localizer is None and not s.complete:
            self._rows = np.full(s.display.shape[::2], np.nan, np.float32)
            self._add_rows(np.flatnonzero([s.is_loaded(i) for i in range(s.n_bscans)]))
            img = self._rows
        else:
            img = np.asarray(v.localizer.image if v.localizer is not None else render.enface_projection(s.display))
            if img.ndim != 2:
                raise ValueError(f"the en-face image has shape {img.shape}, expected (height, width)")
            self.image.setImage(np.ascontiguousarray(img), levels=(0, 255))
        sp = v.spacing
        physical = v.localizer is None and sp.ascan_mm and sp.bscan_mm
        self.scale = (sp.ascan_mm, sp.bscan_mm) if physical else (1.0, 1.0)
        h, w = img.shape[0] * self.scale[1], img.shape[1] * self.scale[0]
        self.image.setRect(0, 0, w, h)
        for t, (x, y) in zip(self.orientation, [(w / 2, 0), (w / 2, h * 0.94), (0, h / 2), (w * 0.95, h / 2)]):
            t.setPos(x, y)
        nasal_right = v.laterality == "OD"  # the right eye's nasal side is on the viewer's right
        known = v.laterality is not None
        self.orientation[2].setText(("T" if nasal_right else "N") if known else "")
        self.orientation[3].setText(("N" if nasal_right else "T") if known else "")
        self.draw_line()
        # fit the image, not every item: a B-scan line outside a small localizer shrank it to a dot
        self.plotItem.vb.setRange(rect=self.image.mapRectToParent(self.image.boundingRect()), padding=0.02)

    def _show_message(self, text: str) -> None:
        """``text`` alone in the en-face area: no image, labels, line or CAM."""
        self.image.clear()
        self.line.setData([], [])
        for t in self.orientation:
            t.hide()
        self.message.setText(text)
        self.message.setPos(0, 0)
        self.message.show()
        self.plotItem.vb.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def on_frames(self, indices):
        """B-scans were decoded: their rows of the projection appear (all at once when complete)."""
        s = self.state
        if self._rows is None or s.volume is None:
            return
        if indices is None:
            self._rows = None
            self.image.setImage(render.enface_projection(s.display), levels=(0, 255))
        else:
            self._add_rows(indices)

    def _add_rows(self, indices) -> None:
        s, rows = self.state, self._rows
        for i in indices:
            rows[i] = s.display[i].mean(axis=0, dtype=np.float32)
        ok = np.isfinite(rows[:, 0])
        if not ok.any():
            return
        lo, hi = float(rows[ok].min()), float(rows[ok].max())
        grey = np.nan_to_num((rows - lo) / max(hi - lo, 1e-6) * 255, nan=0.0).astype(np.uint8)
        rgba = np.empty((*rows.shape, 4), np.uint8)
        rgba[..., :3] = grey[..., None]
        rgba[..., 3] = np.where(ok, 255, 0)[:, None]  # not decoded yet: transparent
        self.image.setImage(rgba, levels=(0, 255))

    def draw_cam(self):
        s = self.state
        cam = None if s.volume is None or too_few_for_enface(s.volume) else render.enface_cam_map(s)
        if cam is None:
            self.cam.hide()
            return
        self.cam.setImage(np.ascontiguousarray(cam, np.float32), levels=render.CAM_LEVELS, autoLevels=False)
        self.cam.setRect(self.image.mapRectToParent(self.image.boundingRect()))
        self.cam.setOpacity(s.settings.cam_opacity)
        self.cam.show()

    def draw_line(self):
        s = self.state
        v = s.volume
        if v is None or too_few_for_enface(v):
            return
        if v.localizer is not None and v.bscan_positions:
            p = v.bscan_positions[s.index]
            if p.center is not None:
                t = np.linspace(0, 2 * np.pi, 100)
                self.line.setData(p.center[0] + p.radius * np.cos(t), p.center[1] + p.radius * np.sin(t))
            else:
                self.line.setData([p.start[0], p.end[0]], [p.start[1], p.end[1]])
        elif v.localizer is None:
            sx, sy = self.scale
            self.line.setData([0, v.shape[2] * sx], [(s.index + 0.5) * sy] * 2)
        else:
            self.line.setData([], [])

    def _clicked(self, event):
        s = self.state
        if s.volume is None or too_few_for_enface(s.volume):
            return
        point = self.plotItem.vb.mapSceneToView(event.scenePos())
        v = s.volume
        if v.localizer is None:  # projection: one row per B-scan
            s.set_index(int(point.y() / self.scale[1]))
        elif v.bscan_positions:  # localizer: the B-scan whose line passes closest to the click
            distances = []
            for p in v.bscan_positions:
                (x0, y0), (x1, y1) = p.start, p.end
                t = np.clip(((point.x() - x0) * (x1 - x0) + (point.y() - y0) * (y1 - y0))
                            / max((x1 - x0) ** 2 + (y1 - y0) ** 2, 1e-9), 0, 1)
                distances.append(np.hypot(point.x() - x0 - t * (x1 - x0), point.y() - y0 - t * (y1 - y0)))
            s.set_index(int(np.argmin(distances)))
