"""The main window: en-face on the left, the B-scan large with its CAM, the probability curve below,
results docked on the right. Widgets show state and forward intent; the work happens in workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core import VF_INDICES
from .workers import Workers

CAM_COLORMAP = "viridis"  # perceptually ordered


def _cam_to_bscan(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(cam.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


class BscanView(pg.GraphicsLayoutWidget):
    """B-scan with a CAM overlay; the wheel steps B-scans (the window handles it)."""

    def __init__(self, window):
        super().__init__()
        self.window = window
        self.view = self.addViewBox(lockAspect=True, invertY=True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.cam = pg.ImageItem(axisOrder="row-major")
        self.cam.setLookupTable(pg.colormap.get(CAM_COLORMAP).getLookupTable(nPts=256))
        self.cam.setOpacity(0.45)
        self.cam.setZValue(10)
        self.view.addItem(self.image)
        self.view.addItem(self.cam)
        self.label = pg.TextItem(color="w", anchor=(0, 0))
        self.view.addItem(self.label)
        # window/level: a histogram with draggable levels, grey-scale only (scans are never tinted)
        self.histogram = pg.HistogramLUTItem(image=self.image, gradientPosition="right")
        self.histogram.gradient.setEnabled(False)
        # the histogram is computed once per volume, not on every B-scan: scrolling stays fast
        self.image.sigImageChanged.disconnect(self.histogram.imageChanged)
        self.addItem(self.histogram)
        self.scale_bar = pg.ScaleBar(size=200, suffix="µm")
        self.scale_bar.setParentItem(self.view)
        self.scale_bar.anchor((1, 1), (1, 1), offset=(-20, -20))
        self.layer_curves: list[pg.PlotCurveItem] = []

    def wheelEvent(self, event):
        if event.modifiers() & Qt.ControlModifier:  # Ctrl+wheel zooms, the plain wheel scrolls B-scans
            self.view.scaleBy((0.87, 0.87) if event.angleDelta().y() > 0 else (1.15, 1.15))
        else:
            self.window.set_index(self.window.index + (-1 if event.angleDelta().y() > 0 else 1))
        event.accept()


class MainWindow(QMainWindow):
    #: emitted when nothing more will happen for the scan on screen: analysed, refused, failed,
    #: cancelled, or opened without a model (used by --screenshot and tests)
    settled = Signal()

    def __init__(self, predictor=None, model_error: str | None = None):
        super().__init__()
        self.setWindowTitle("octviewer — research use only, not a medical device")
        self.resize(1400, 850)
        self.predictor = predictor
        self.volume = None
        self.display = None
        self.prediction = None
        self.probs = None
        self.cams = None
        self.index = 0
        self.generation = 0
        self.show_cam = True
        self.analysing = False
        self.workers = Workers(self)
        s = self.workers.signals
        s.loaded.connect(self._on_loaded)
        s.batch.connect(self._on_batch)
        s.progress.connect(self._on_progress)
        s.finished.connect(self._on_finished)
        s.failed.connect(self._on_failed)
        s.cancelled.connect(self._on_cancelled)
        self.settings = QSettings("octviewer", "octviewer")
        self.retrain_dialog = None
        self._build()
        self._menus()
        self.setAcceptDrops(True)
        self.show_cam = self.settings.value("cam/visible", True, type=bool)
        self.set_colormap(self.settings.value("cam/colormap", CAM_COLORMAP, type=str))
        self.show_layers = True
        self.bscan.cam.setOpacity(self.settings.value("cam/opacity", 0.45, type=float))
        if model_error:
            self.status_model.setText(f"no model: {model_error}")

    # -- layout -------------------------------------------------------------------------------
    def _build(self):
        self.enface = pg.PlotWidget()
        self.enface.setAspectLocked(True)
        self.enface.invertY(True)
        self.enface.hideAxis("left")
        self.enface.hideAxis("bottom")
        self.enface_image = pg.ImageItem(axisOrder="row-major")
        self.enface_cam = pg.ImageItem(axisOrder="row-major")
        self.enface_cam.setLookupTable(pg.colormap.get(CAM_COLORMAP).getLookupTable(nPts=256))
        self.enface_cam.setOpacity(0.35)
        self.enface.addItem(self.enface_image)
        self.enface.addItem(self.enface_cam)
        self.enface_line = pg.PlotCurveItem(pen=pg.mkPen("#00e5ff", width=2))
        self.enface.addItem(self.enface_line)
        self.orientation = [pg.TextItem(t, color="#ffcc00") for t in ("S", "I", "N", "T")]
        for t in self.orientation:
            self.enface.addItem(t)
        self.enface.scene().sigMouseClicked.connect(self._enface_clicked)

        self.bscan = BscanView(self)
        self.curve = pg.PlotWidget()
        self.curve.setLabel("left", "P(glaucoma)")
        self.curve.setLabel("bottom", "B-scan")
        self.curve.setYRange(0, 1)
        self.curve.setMaximumHeight(170)
        self.curve_line = self.curve.plot(pen=pg.mkPen("#ff8a65", width=2), symbol="o", symbolSize=4)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#00e5ff"))
        self.curve.addItem(self.cursor)
        self.curve.scene().sigMouseClicked.connect(self._curve_clicked)

        self.slider = QSlider(Qt.Horizontal)
        self.slider.valueChanged.connect(self.set_index)
        centre = QWidget()
        v = QVBoxLayout(centre)
        v.addWidget(self.bscan, 5)
        v.addWidget(self.slider)
        v.addWidget(self.curve, 2)
        split = QSplitter()
        split.addWidget(self.enface)
        split.addWidget(centre)
        split.setSizes([380, 900])
        self.setCentralWidget(split)

        self.results = QLabel("Open a scan (Ctrl+O).")
        self.results.setWordWrap(True)
        self.results.setAlignment(Qt.AlignTop)
        self.results.setTextFormat(Qt.RichText)
        self.results.setMinimumWidth(280)
        dock = QDockWidget("Results")
        dock.setWidget(self.results)
        dock.setFeatures(QDockWidget.DockWidgetMovable)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_analysis)
        self.cancel_button.hide()
        self.status_device = QLabel()
        self.status_model = QLabel()
        bar = self.statusBar()
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.status_model)
        bar.addPermanentWidget(self.status_device)
        self._update_status()

    def _menus(self):
        def act(menu, text, slot, key=None):
            a = QAction(text, self)
            if key:
                a.setShortcut(QKeySequence(key))
            a.triggered.connect(slot)
            menu.addAction(a)
            return a
        m = self.menuBar()
        f = m.addMenu("&File")
        act(f, "&Open…", self.open_dialog, QKeySequence.Open)
        act(f, "Open &folder…", self.open_folder_dialog)
        self.recent_menu = f.addMenu("Open &recent")
        self._fill_recent()
        act(f, "Export &PDF report…", self.export_pdf, "Ctrl+P")
        act(f, "Export per-B-scan &CSV…", self.export_csv)
        act(f, "&Quit", self.close, QKeySequence.Quit)
        v = m.addMenu("&View")
        act(v, "Toggle &CAM", self.toggle_cam, "C")
        act(v, "Toggle &layer segmentation", self.toggle_layers, "L")
        act(v, "Reset &zoom", lambda: self.bscan.view.autoRange(padding=0), "Z")
        cmap_menu = v.addMenu("CAM colour&map")
        for name in ("viridis", "inferno", "magma", "cividis", "plasma"):
            act(cmap_menu, name, lambda _=False, n=name: self.set_colormap(n))
        act(v, "CAM more opaque", lambda: self.set_cam_opacity(self.bscan.cam.opacity() + 0.1), "]")
        act(v, "CAM more transparent", lambda: self.set_cam_opacity(self.bscan.cam.opacity() - 0.1), "[")
        act(v, "Next B-scan", lambda: self.set_index(self.index + 1), "Down")
        act(v, "Previous B-scan", lambda: self.set_index(self.index - 1), "Up")
        act(v, "Ten B-scans on", lambda: self.set_index(self.index + 10), "PgDown")
        act(v, "Ten B-scans back", lambda: self.set_index(self.index - 10), "PgUp")
        act(v, "First B-scan", lambda: self.set_index(0), "Home")
        act(v, "Last B-scan", lambda: self.set_index(10**9), "End")
        a = m.addMenu("&Analysis")
        act(a, "&Analyse", self.analyse, "F5")
        act(a, "&Cancel", self.cancel_analysis, "Esc")
        device_menu = a.addMenu("&Device")
        for name in ("auto", "cuda", "mps", "cpu"):
            act(device_menu, name, lambda _=False, n=name: self.set_device(n))
        mm = m.addMenu("&Model")
        act(mm, "&Load model…", self.load_model_dialog)
        act(mm, "&Retrain…", self.open_retrain)
        h = m.addMenu("&Help")
        act(h, "About &model", self.about_model)

    # -- opening -------------------------------------------------------------------------------
    def open_dialog(self):
        from ..io import SUPPORTED_FORMATS

        filters = ";;".join(f"{name} ({' '.join(patterns)})" for name, patterns in SUPPORTED_FORMATS)
        folder = self.settings.value("last_folder", "", type=str)
        path, _ = QFileDialog.getOpenFileName(self, "Open OCT scan", folder, f"All files (*);;{filters}")
        if path:
            self.open_path(path)

    def open_folder_dialog(self):
        path = QFileDialog.getExistingDirectory(self, "Open folder of B-scans")
        if path:
            self.open_path(path)

    def _fill_recent(self):
        self.recent_menu.clear()
        for path in self.settings.value("recent", [], type=list)[:10]:
            a = QAction(path, self)
            a.triggered.connect(lambda _=False, p=path: self.open_path(p))
            self.recent_menu.addAction(a)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        urls = event.mimeData().urls()
        if urls:
            self.open_path(urls[0].toLocalFile())

    def open_path(self, path):
        recent = [str(path)] + [p for p in self.settings.value("recent", [], type=list) if p != str(path)]
        self.settings.setValue("recent", recent[:10])
        self.settings.setValue("last_folder", str(Path(path).parent))
        self._fill_recent()
        self.generation += 1
        self.workers.cancel()
        self.statusBar().showMessage(f"Reading {Path(path).name}…")
        self.progress.setRange(0, 0)  # busy indicator until the file is read
        self.progress.show()
        self.workers.load(self.generation, str(path))

    def _on_loaded(self, generation, volume, display=None):
        if generation != self.generation:
            return
        self.progress.hide()
        self.volume = volume
        self.display = volume.display() if display is None else display
        self.prediction, self.cams = None, None
        self.probs = np.full(volume.n_bscans, np.nan, np.float32)
        self.slider.blockSignals(True)
        self.slider.setRange(0, volume.n_bscans - 1)
        self.slider.blockSignals(False)
        self._show_enface()
        for curve in self.bscan.layer_curves:
            self.bscan.view.removeItem(curve)
        colours = ["#ff5252", "#ffd740", "#69f0ae", "#40c4ff", "#e040fb", "#ffab40"]
        self.bscan.layer_curves = [pg.PlotCurveItem(pen=pg.mkPen(colours[k % len(colours)], width=1))
                                   for k in range(len(volume.layers))]
        for curve in self.bscan.layer_curves:
            curve.setZValue(20)
            curve.setVisible(self.show_layers)
            self.bscan.view.addItem(curve)
        self.bscan.histogram.setLevels(0, 255)
        self.curve.setXRange(0, max(volume.n_bscans - 1, 1))
        self.index = -1
        self.set_index(volume.n_bscans // 2)
        self.bscan.view.autoRange(padding=0)
        self.bscan.histogram.imageChanged(autoLevel=False)
        self.statusBar().showMessage(f"Opened {Path(volume.source).name}", 5000)
        self._update_results()
        if self.predictor is not None:
            self.analyse()
        else:
            self.settled.emit()

    def _on_failed(self, generation, message):
        if generation != self.generation:
            return
        if self.analysing:  # the scan stays on screen; the reason goes to the results panel
            self._analysis_done()
            self._update_results(reason=message)
            self.settled.emit()
            return
        # a file that could not be read: the previous scan stays open and current
        self.progress.hide()
        self.generation += 1
        self.statusBar().clearMessage()
        QMessageBox.warning(self, "Cannot open scan", message)
        self.settled.emit()

    # -- drawing -------------------------------------------------------------------------------
    def _show_enface(self):
        v = self.volume
        if v.localizer is not None:
            img = v.localizer.image
        else:
            img = self.display.mean(axis=1, dtype=np.float32)  # projection along depth
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6) * 255
        self.enface_image.setImage(np.ascontiguousarray(img), levels=(0, 255))
        self.enface_cam.clear()
        sp = v.spacing
        # the projection is drawn in millimetres so a 6 x 6 mm cube looks square
        physical = v.localizer is None and sp.ascan_mm and sp.bscan_mm
        self.enface_scale = (sp.ascan_mm, sp.bscan_mm) if physical else (1.0, 1.0)
        h, w = img.shape[0] * self.enface_scale[1], img.shape[1] * self.enface_scale[0]
        self.enface_image.setRect(0, 0, w, h)
        for t, (x, y) in zip(self.orientation, [(w / 2, 0), (w / 2, h * 0.94), (0, h / 2), (w * 0.95, h / 2)]):
            t.setPos(x, y)
        nasal_right = v.laterality != "OS"
        self.orientation[2].setText("N" if not nasal_right else "T")
        self.orientation[3].setText("T" if not nasal_right else "N")
        if v.laterality is None:
            self.orientation[2].setText("")
            self.orientation[3].setText("")

    def set_index(self, i):
        if self.volume is None:
            return
        i = int(np.clip(i, 0, self.volume.n_bscans - 1))
        if i == self.index:
            return
        self.index = i
        self.slider.blockSignals(True)
        self.slider.setValue(i)
        self.slider.blockSignals(False)
        bscan = self.display[i]
        self.bscan.image.setImage(bscan, autoLevels=False)
        sp = self.volume.spacing
        sx, sy = (sp.ascan_mm * 1000, sp.depth_mm * 1000) if sp.known else (1.0, 1.0)  # um per pixel
        self.bscan.image.setRect(0, 0, bscan.shape[1] * sx, bscan.shape[0] * sy)  # physical aspect ratio
        self.bscan.scale_bar.setVisible(sp.known)
        for curve, name in zip(self.bscan.layer_curves, self.volume.layers):
            heights = self.volume.layers[name][i]
            x = np.arange(len(heights)) * sx
            ok = np.isfinite(heights)
            curve.setData(x[ok], heights[ok] * sy)
        self._draw_cam()
        self.cursor.setPos(i)
        self._draw_enface_line()
        text = f"B-scan {i + 1}/{self.volume.n_bscans}"
        if sp.bscan_mm:  # distance from the first B-scan, as vendor viewers show it
            text += f"   {i * sp.bscan_mm:.2f} mm"
        if self.probs is not None and np.isfinite(self.probs[i]):
            text += f"   P={self.probs[i]:.2f}"
        self.bscan.label.setText(text)

    def _draw_cam(self):
        if self.cams is None or not self.show_cam or not np.isfinite(self.probs[self.index]):
            self.bscan.cam.hide()
            return
        cam = _cam_to_bscan(self.cams[self.index], self.display.shape[1:])
        self.bscan.cam.setImage(cam, levels=self.cam_levels)
        self.bscan.cam.setRect(self.bscan.image.mapRectToParent(self.bscan.image.boundingRect()))
        self.bscan.cam.show()

    def _draw_enface_line(self):
        v = self.volume
        if v.localizer is not None and v.bscan_positions:
            p = v.bscan_positions[self.index]
            if p.center is not None:
                t = np.linspace(0, 2 * np.pi, 100)
                self.enface_line.setData(p.center[0] + p.radius * np.cos(t), p.center[1] + p.radius * np.sin(t))
            else:
                self.enface_line.setData([p.start[0], p.end[0]], [p.start[1], p.end[1]])
        elif v.localizer is None:
            sx, sy = self.enface_scale
            self.enface_line.setData([0, v.shape[2] * sx], [(self.index + 0.5) * sy] * 2)
        else:
            self.enface_line.setData([], [])

    def _enface_clicked(self, event):
        if self.volume is None:
            return
        point = self.enface.plotItem.vb.mapSceneToView(event.scenePos())
        v = self.volume
        if v.localizer is None:  # projection: one row per B-scan
            self.set_index(int(point.y() / self.enface_scale[1]))
        elif v.bscan_positions:  # localizer: the B-scan whose line passes closest to the click
            distances = []
            for p in v.bscan_positions:
                (x0, y0), (x1, y1) = p.start, p.end
                t = np.clip(((point.x() - x0) * (x1 - x0) + (point.y() - y0) * (y1 - y0))
                            / max((x1 - x0) ** 2 + (y1 - y0) ** 2, 1e-9), 0, 1)
                distances.append(np.hypot(point.x() - x0 - t * (x1 - x0), point.y() - y0 - t * (y1 - y0)))
            self.set_index(int(np.argmin(distances)))

    def _curve_clicked(self, event):
        if self.volume is None:
            return
        x = self.curve.plotItem.vb.mapSceneToView(event.scenePos()).x()
        self.set_index(int(round(x)))

    def toggle_cam(self):
        self.show_cam = not self.show_cam
        self.settings.setValue("cam/visible", self.show_cam)
        self._draw_cam()

    def set_colormap(self, name: str):
        lut = pg.colormap.get(name).getLookupTable(nPts=256)
        self.bscan.cam.setLookupTable(lut)
        self.enface_cam.setLookupTable(lut)
        self.settings.setValue("cam/colormap", name)

    def set_device(self, name: str):
        """Move the model to another device; a failure (no CUDA here) keeps the current one."""
        from ..model import Predictor

        if self.predictor is None:
            return
        try:
            self.predictor = Predictor(self.predictor.model, device=name)
        except RuntimeError as exc:
            QMessageBox.warning(self, "Device", str(exc))
            return
        self.settings.setValue("device", name)
        self._update_status()

    def toggle_layers(self):
        self.show_layers = not self.show_layers
        for curve in self.bscan.layer_curves:
            curve.setVisible(self.show_layers)

    def set_cam_opacity(self, value):
        value = float(np.clip(value, 0.05, 1.0))
        self.bscan.cam.setOpacity(value)
        self.settings.setValue("cam/opacity", value)

    # -- analysis ------------------------------------------------------------------------------
    def analyse(self):
        if self.volume is None or self.predictor is None:
            return
        try:
            self.predictor.check(self.volume)
        except Exception as exc:
            self._update_results(reason=str(exc))
            self.settled.emit()
            return
        self.analysing = True
        self.probs = np.full(self.volume.n_bscans, np.nan, np.float32)
        self.cams = None
        self.progress.setRange(0, self.volume.n_bscans)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self._update_status()
        self.workers.analyse(self.generation, self.predictor, self.volume, self.index)

    def cancel_analysis(self):
        self.workers.cancel()

    def _on_batch(self, generation, batch):
        if generation != self.generation:
            return  # stale: from a scan no longer shown
        if self.cams is None:
            self.cams = np.zeros((self.volume.n_bscans, *batch.cam.shape[1:]), np.float32)
            self.cam_levels = (float(batch.cam.min()), float(batch.cam.max()) + 1e-6)
        self.cams[batch.indices] = batch.cam
        self.probs[batch.indices] = batch.probability
        lo = min(self.cam_levels[0], float(batch.cam.min()))
        hi = max(self.cam_levels[1], float(batch.cam.max()))
        self.cam_levels = (lo, hi)
        self._draw_curve()
        if self.index in batch.indices:
            self._draw_cam()

    def _on_progress(self, generation, done, total):
        if generation == self.generation:
            self.progress.setValue(done)

    def _on_finished(self, generation, prediction):
        if generation != self.generation:
            return
        self.prediction = prediction
        self.probs = prediction.bscan_probability.copy()
        self.cams = prediction.cam
        self.cam_levels = (float(self.cams.min()), float(self.cams.max()) + 1e-6)
        self._analysis_done()
        self._draw_curve()
        self._draw_cam()
        enface_cam = self.cams.mean(axis=1)  # (n, w_fm): where across the disc the network looked
        if self.volume.localizer is None:
            self.enface_cam.setImage(_cam_to_bscan(enface_cam, (self.volume.n_bscans, self.volume.shape[2])))
            self.enface_cam.setRect(self.enface_image.mapRectToParent(self.enface_image.boundingRect()))
            self.enface_cam.show()
        self._update_results()
        self.settled.emit()

    def _on_cancelled(self, generation):
        if generation == self.generation:
            self._analysis_done()
            self.statusBar().showMessage("Analysis cancelled", 5000)
            self._update_results(reason="Analysis cancelled.")
            self.settled.emit()

    def _analysis_done(self):
        self.analysing = False
        self.progress.hide()
        self.cancel_button.hide()
        self._update_status()

    def _draw_curve(self):
        x = np.flatnonzero(np.isfinite(self.probs))
        self.curve_line.setData(x, self.probs[x])
        self.curve.setXRange(0, max(self.volume.n_bscans - 1, 1))

    # -- results and status --------------------------------------------------------------------
    def _update_status(self):
        if self.predictor is not None:
            self.status_device.setText(f"device: {self.predictor.device}")
            synth = " (SYNTHETIC)" if self.predictor.model.meta.get("synthetic_data") else ""
            self.status_model.setText(f"model: {self.predictor.model.name}{synth}"
                                      + ("  — analysing…" if self.analysing else ""))
        else:
            self.status_device.setText("device: -")

    def _update_results(self, reason: str | None = None):
        v = self.volume
        if v is None:
            self.results.setText(f"<p>{reason or 'Open a scan (Ctrl+O).'}</p>")
            return
        date = v.acquired.strftime("%Y-%m-%d %H:%M" if hasattr(v.acquired, "hour") else "%Y-%m-%d") \
            if v.acquired else "date unknown"
        html = [f"<h2 style='margin:0'>{v.laterality or 'eye ?'} &nbsp; <small>{date}</small></h2>",
                f"<p>{v.scan_pattern} scan, {v.n_bscans} B-scan(s), {v.device or 'device unknown'}</p>"]
        for note in v.notes:
            html.append(f"<p style='color:#ffb74d'>{note}</p>")
        p = self.prediction
        if p is not None:
            colour = "#ef5350" if p.decision == "glaucoma" else "#66bb6a"
            html.append(f"<h3>P(glaucoma) = {p.probability:.2f}</h3>"
                        f"<p style='color:{colour}; font-size:16pt'><b>{p.decision}</b> "
                        f"(threshold {p.threshold:.2f})</p><table>")
            for name, value in p.vf.items():
                spec = VF_INDICES[name]
                lo, hi = spec["normal"]
                html.append(f"<tr><td><b>{spec['label']}</b></td><td>{value:.1f} {spec['unit']}</td>"
                            f"<td style='color:#aaa'>normal {lo:g} to {hi:g}</td></tr>")
            html.append("</table>")
            html.append(f"<p>model: {p.model_name}<br>{p.seconds:.1f} s on {p.device}</p>")
            for note in p.notes:
                html.append(f"<p style='color:#ffb74d'>{note}</p>")
        if reason:
            html.append(f"<p style='color:#ffb74d'>{reason}</p>")
        html.append("<p style='color:#888'><small>Research use only. Not a medical device.</small></p>")
        self.results.setText("".join(html))

    # -- model ---------------------------------------------------------------------------------
    def load_model_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "Model files (*.safetensors *.pt)")
        if path:
            self.load_model(path)

    def load_model(self, path):
        from ..model import ModelFileError, Predictor

        try:
            self.predictor = Predictor(str(path), device=self.predictor.device.type if self.predictor else "auto")
        except (ModelFileError, RuntimeError) as exc:
            QMessageBox.warning(self, "Cannot load model", str(exc))
            return
        self._update_status()
        if self.volume is not None:
            self.analyse()

    def about_model(self):
        import json

        if self.predictor is None:
            QMessageBox.information(self, "Model", "No model loaded.")
            return
        meta = self.predictor.model.meta
        prov = meta.get("provenance", {})
        text = (f"Name: {meta.get('name')}\nArchitecture: {meta['architecture']}\n"
                f"Synthetic training data: {meta.get('synthetic_data')}\nThreshold: {meta.get('threshold'):.3f}\n"
                f"Created: {prov.get('created')}\nSoftware: {json.dumps(prov.get('software'))}\n"
                f"Test metrics: {json.dumps(prov.get('test_metrics', {}).get('image_level', {}), default=str)[:600]}")
        QMessageBox.information(self, "About model", text)

    def open_retrain(self):
        from .retrain_dialog import RetrainDialog

        if self.retrain_dialog is None:
            self.retrain_dialog = RetrainDialog(self)
            self.retrain_dialog.model_ready.connect(self.load_model)
        self.retrain_dialog.show()
        self.retrain_dialog.raise_()

    def export_pdf(self, path: str | None = None, patient_id: str | None = None):
        """PDF report: images, predictions, model provenance and the research-use disclaimer.

        The patient ID is printed only when given explicitly (anonymised by default)."""
        from .report import write_report

        if self.prediction is None or self.volume is None:
            QMessageBox.information(self, "Export", "Analyse a scan first.")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export PDF report", "report.pdf", "PDF (*.pdf)")
            if not path:
                return None
            answer = QMessageBox.question(self, "Patient identifier", "Print the patient ID on the report?\n"
                                          "(No = anonymised report)")
            patient_id = self.volume.patient_id if answer == QMessageBox.Yes else None
        return write_report(self, path, patient_id)

    def export_csv(self):
        import csv

        if self.prediction is None:
            QMessageBox.information(self, "Export", "Analyse a scan first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export per-B-scan results", "results.csv", "CSV (*.csv)")
        if not path:
            return
        p = self.prediction
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["# research use only, not a medical device" +
                        ("; model trained on SYNTHETIC data" if p.synthetic_model else "")])
            w.writerow(["bscan", "probability", *p.bscan_vf])
            for i in range(p.n_bscans):
                w.writerow([i, f"{p.bscan_probability[i]:.4f}", *[f"{v[i]:.2f}" for v in p.bscan_vf.values()]])

    def closeEvent(self, event):
        self.workers.shutdown()
        super().closeEvent(event)
