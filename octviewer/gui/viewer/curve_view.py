"""Per-B-scan probability along the volume, numbered from 1 as the B-scan label is; a click
selects that B-scan. Cleared with every new scan, so no previous eye's curve survives, and its axes
reset: the last volume's B-scan range stayed up after a study was opened (walk-through). The model's
decision threshold is drawn dashed, as in the report (the screen had none: a reader could not tell
which B-scans lie above it). A scan with no network result (a circle or line scan, refused, cancelled, failed)
says so in the strip: empty, it showed a lone "1" on its axis (walk-through H65, W31)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from .render import bscan_ticks, threshold_label_best
from .state import ViewerState

#: what the strip says for a scan the network gave (or will give) no result for; the Results panel says why
NO_RESULT = "no network result (why: see Results)"
#: under the threshold's label where every place it may take covers some of the curve: the curve, drawn through
#: "threshold 0.32", made "0.32" unreadable at 1024 x 700 (walk-through H121, U8); the report's label has a white one
LABEL_PLATE = pg.mkBrush(0, 0, 0, 210)
NO_PLATE = pg.mkBrush(None)


class CurveView(pg.PlotWidget):
    def __init__(self, state: ViewerState):
        super().__init__()
        self.state = state
        self.setLabel("left", "P(glaucoma)")
        self.setLabel("bottom", "B-scan")
        self.setYRange(0, 1)
        self.setXRange(1, 2)
        self.getAxis("bottom").enableAutoSIPrefix(False)  # empty, it read "-400...400, B-scan (x0.001)"
        self.getAxis("bottom").setTicks([[]])
        self.setMaximumHeight(170)
        self.line = self.plot(pen=pg.mkPen("#ff8a65", width=2), symbol="o", symbolSize=4)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#00e5ff"))
        self.addItem(self.cursor)
        self.cursor.hide()
        self.threshold = pg.InfiniteLine(angle=0, movable=False, pen=pg.mkPen("#e57373", width=1, style=Qt.DashLine),
                                         label="threshold {value:.2f}",
                                         labelOpts={"position": 0.08, "color": "#e57373", "anchors": [(0, 1), (0, 1)]})
        self.threshold.setZValue(5)  # its label (and plate) over the curve
        self.addItem(self.threshold)
        self.threshold.hide()
        self.no_result = pg.TextItem(NO_RESULT, color="#ffb74d", anchor=(0.5, 0.5))
        self.addItem(self.no_result, ignoreBounds=True)
        self.no_result.hide()
        self.scene().sigMouseClicked.connect(self._clicked)
        # placed again at every size: the label's extent in B-scans grows as the strip narrows (a window made smaller
        # kept the place chosen at its former width, over the curve)
        self.plotItem.vb.sigResized.connect(self._replace_threshold_label)
        state.events.scan.connect(self.on_scan)
        state.events.index.connect(self.draw_cursor)
        state.events.analysis.connect(self.draw)

    def on_scan(self):
        """A new scan, or none: the axes start afresh (a zoom or the last volume's B-scans do not stay)."""
        self.setYRange(0, 1)
        if self.state.volume is None:
            self.setXRange(1, 2)
            self.getAxis("bottom").setTicks([[]])
        self.draw()
        self.draw_cursor()

    def draw(self):
        s = self.state
        if s.volume is not None:  # the axis is the scan's B-scans even before (or without) a result
            self.setXRange(1, max(s.n_bscans, 2))
            # whole B-scan numbers only: a one- or few-B-scan scan showed 1.2, 1.4, ...
            self.getAxis("bottom").setTicks([[(float(i), str(i)) for i in bscan_ticks(s.n_bscans)]])
        self.threshold.setVisible(s.volume is not None and s.prediction is not None)
        self._say_no_result()
        if s.prediction is not None:
            self.threshold.setPos(s.prediction.threshold)
        if s.volume is None or s.probs is None or not np.isfinite(s.probs).any():
            self.line.setData([], [])
            return
        # NaN (not analysed yet) breaks the line: no segment is drawn across B-scans still to come
        self.line.setData(np.arange(1, s.n_bscans + 1), s.probs, connect="finite")
        if s.prediction is not None:
            self._place_threshold_label()

    def _say_no_result(self) -> None:
        """"no network result" across the strip when the scan on screen has none and none is coming (the state's
        reason is set: not analysed, refused, cancelled, failed); an empty strip read as a result still to come."""
        s = self.state
        none = s.volume is not None and s.prediction is None and bool(s.reason)
        if none:
            (x0, x1), (y0, y1) = self.plotItem.vb.viewRange()
            self.no_result.setPos((x0 + x1) / 2, (y0 + y1) / 2)
        self.no_result.setVisible(none)

    def _replace_threshold_label(self, *_args) -> None:
        if self.state.volume is not None and self.state.prediction is not None:
            self._place_threshold_label()

    def _place_threshold_label(self) -> None:
        """The threshold's label where it covers the least of the curve, by the report's rule
        (``render.threshold_label_place``): always at the left above it, it sat on the curve of B-scans near the
        threshold and hid them (seventh walk-through); placed by the points alone, on a segment (ninth)."""
        label, view = self.threshold.label, self.plotItem.vb
        (x0, x1), (y0, y1) = view.viewRange()
        size = view.size()
        # the label's extent in data units; ~90 x 15 px before the view has a size
        width = label.boundingRect().width() / size.width() * (x1 - x0) if size.width() > 0 else 0.25 * (x1 - x0)
        height = label.boundingRect().height() / size.height() * (y1 - y0) if size.height() > 0 else 0.15
        # 3 px, as on the report's curve
        shown = size.width() > 0 and size.height() > 0
        pad = (3 / size.width() * (x1 - x0), 3 / size.height() * (y1 - y0)) if shown else (0.0, 0.02)
        x, y = self.line.getData()
        x, y = (np.array([]), np.array([])) if x is None else (x, y)
        covered, left, above = threshold_label_best(x, y, self.threshold.value(), (x0, x1), (y0, y1), (width, height),
                                                    pad)
        anchor = (0, 1) if above else (0, 0)
        label.anchors = [anchor, anchor]
        label.setPosition((left - x0) / (x1 - x0))
        label.fill = LABEL_PLATE if covered else NO_PLATE  # readable where no place is free of the curve
        label.update()

    def draw_cursor(self):
        self.cursor.setVisible(self.state.volume is not None)
        if self.state.volume is not None:
            self.cursor.setPos(self.state.index + 1)

    def plotted(self) -> tuple[np.ndarray, np.ndarray]:
        """What the curve shows now (1-based B-scan numbers, probabilities)."""
        x, y = self.line.getData()
        if x is None:
            return np.array([]), np.array([])
        ok = np.isfinite(y)
        return x[ok], y[ok]

    def _clicked(self, event):
        if self.state.volume is None:
            return
        x = self.plotItem.vb.mapSceneToView(event.scenePos()).x()
        self.state.set_index(int(round(x)) - 1)
