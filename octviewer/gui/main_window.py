"""The main window: wiring only. The state (state.py) holds what is shown, the controller
(controller.py) applies intent and worker results, the views draw the state, actions.py lists the
menus. Dialogs and exports live here because they need a parent window.

Adding a panel (structure, study browser…) takes one call::

    window.add_panel("Structure", StructurePanel(), shortcut="Ctrl+3")

which docks the widget on the right and adds a View > Panels toggle for it.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from octviewer import __version__

from .export.results_csv import write_results_csv
from .menus import build_menus, shortcuts_text
from .model.card import meta_dict, model_card_text
from .viewer.bscan_view import BscanView, CamLegend
from .viewer.controller import ViewerController
from .viewer.curve_view import CurveView
from .viewer.enface_view import EnfaceView
from .viewer.results_panel import DISCLAIMER, ResultsPanel
from .viewer.scan_tasks import Workers
from .viewer.state import AXIAL_MODES, ViewerState


def text_dialog(parent, title: str, text: str) -> QDialog:
    """A non-modal window of plain, selectable, scrollable text (never cut off, never markup)."""
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    dialog.resize(560, 480)
    edit = QPlainTextEdit(text)
    edit.setReadOnly(True)
    edit.setObjectName("text")
    close = QPushButton("Close")
    close.clicked.connect(dialog.close)
    layout = QVBoxLayout(dialog)
    layout.addWidget(edit)
    layout.addWidget(close)
    dialog.show()
    return dialog


def as_literal(text: str) -> str:
    """Message-box text shown exactly as written: QMessageBox guesses rich text from the content,
    so text that may come from a file (a reader's error quoting a header) is escaped markup."""
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"


def qimage(rgb) -> QImage:
    return QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format_RGB888).copy()


class MainWindow(QMainWindow):
    #: emitted when nothing more will happen for the scan on screen: analysed, refused, failed,
    #: cancelled, or opened without a model (used by --screenshot and tests)
    settled = Signal()

    def __init__(self, predictor=None, model_error: str | None = None):
        super().__init__()
        self.setWindowTitle("octviewer — research use only, not a medical device")
        self.resize(1400, 850)
        self.settings = QSettings("octviewer", "octviewer")
        self.state = ViewerState()
        self.workers = Workers(self)
        self.controller = ViewerController(self.state, self.workers, predictor)
        self.workers.connect(self.controller)
        self.retrain_dialog = None
        #: headless (``octviewer --screenshot``): a file that cannot be opened is reported on stderr
        #: and kept in ``failures`` (the exit status), not in a dialog that nobody can close
        self.headless = False
        self.failures: list[str] = []
        self._opening: str | None = None  # the file asked for last: out of Recent files if it fails
        self.dialog: QDialog | None = None  # the last text window opened (about, shortcuts, model card)
        self._restore_settings()
        self._build()
        self.menu_actions = build_menus(self)
        self._tick_device()
        self._wire_structure_and_study()
        self.menu_actions[f"axial_{self.state.settings.axial_mode}"].setChecked(True)
        self._fill_recent()
        events = self.state.events
        events.settled.connect(self.settled.emit)
        events.load_failed.connect(self._load_failed)
        events.busy.connect(self._busy)
        events.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        events.scan.connect(self._on_scan)
        events.index.connect(self._on_index)
        events.display.connect(self._save_display)
        events.analysis.connect(self._update_status)
        for event in (events.scan, events.display, events.analysis):
            event.connect(self._update_cam_legend)
        self.setAcceptDrops(True)
        self._update_status()
        if model_error:
            self.status_model.setText(f"no model: {model_error}")

    def _update_cam_legend(self, *_args) -> None:
        """The CAM colour bar only while a CAM can be on screen (shown, and the scan has one); its
        space is kept so the B-scan does not jump."""
        s = self.state
        self.cam_legend.setVisible(bool(s.volume is not None and s.settings.show_cam and s.cams is not None))

    # -- layout -------------------------------------------------------------------------------
    def _build(self):
        self.enface = EnfaceView(self.state)
        self.enface.setMinimumWidth(200)  # a study dock beside it squeezed it to ~110 px (walk-through)
        self.bscan = BscanView(self.state)
        self.curve = CurveView(self.state)
        self.cam_legend = CamLegend()
        policy = self.cam_legend.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.cam_legend.setSizePolicy(policy)
        self.cam_legend.hide()
        self.slider = QSlider(Qt.Horizontal)
        self.slider.valueChanged.connect(self.state.set_index)
        centre = QWidget()
        v = QVBoxLayout(centre)
        v.addWidget(self.bscan, 5)
        v.addWidget(self.cam_legend)
        v.addWidget(self.slider)
        v.addWidget(self.curve, 2)
        split = QSplitter()
        split.addWidget(self.enface)
        split.addWidget(centre)
        split.setSizes([380, 900])
        self.setCentralWidget(split)
        self.results = ResultsPanel(self.state)
        dock = QDockWidget("Results")
        dock.setObjectName("results")
        # scrollable: wrapped notes under a short dock squeezed the VF rows until they were cut off
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.results)
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetMovable)
        self.results_dock = dock
        self.addDockWidget(Qt.RightDockWidgetArea, dock)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.controller.cancel_analysis)
        self.cancel_button.hide()
        from PySide6.QtWidgets import QLabel

        self.status_device = QLabel()
        self.status_model = QLabel()
        self.status_model.setTextFormat(Qt.PlainText)
        bar = self.statusBar()
        for widget in (self.progress, self.cancel_button, self.status_model, self.status_device):
            bar.addPermanentWidget(widget)

    def _wire_structure_and_study(self):
        """Structure panel + quality gate (structure/controller.py) and the study browser (study/controller.py)."""
        from .structure.controller import GatedWorkers, StructureController
        from .structure.panel import StructurePanel
        from .study.controller import StudyController

        self.structure_panel = StructurePanel()
        self.structure = StructureController(self, self.structure_panel)
        structure_dock = self.add_panel("Structure", self.structure_panel, shortcut="Ctrl+3")
        # room for the estimates, their notes and the disclaimer without scrolling at the default size
        self.resizeDocks([self.results_dock, structure_dock], [430, 400], Qt.Vertical)
        self.controller.workers = GatedWorkers(self.workers, self.structure)  # every analysis passes the gate
        self.study = StudyController(self)

    def add_panel(self, title: str, widget: QWidget, area=Qt.RightDockWidgetArea,
                  shortcut: str | None = None) -> QDockWidget:
        """Dock ``widget`` and add a View > Panels entry that shows or hides it."""
        dock = QDockWidget(title, self)
        dock.setObjectName(re.sub(r"\W+", "_", title.lower()))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        dock.show()  # also when added to a window already on screen
        toggle = dock.toggleViewAction()
        if shortcut:
            toggle.setShortcut(QKeySequence(shortcut))
        self.panels_menu.addAction(toggle)
        self.menu_actions[f"panel_{dock.objectName()}"] = toggle
        return dock

    # -- convenience read access (tests, report, benchmarks) -----------------------------------
    predictor = property(lambda self: self.controller.predictor)
    volume = property(lambda self: self.state.volume)
    prediction = property(lambda self: self.state.prediction)
    index = property(lambda self: self.state.index)
    display = property(lambda self: self.state.display)
    probs = property(lambda self: self.state.probs)

    # -- settings -------------------------------------------------------------------------------
    def _restore_settings(self):
        mode = self.settings.value("display/axial_mode", "fit", type=str)
        self.state.update_settings(
            show_cam=self.settings.value("cam/visible", True, type=bool),
            cam_opacity=self.settings.value("cam/opacity", 0.5, type=float),
            axial_mode=mode if mode in AXIAL_MODES else "fit")

    def _levels_key(self) -> str:
        device = (self.state.volume.device if self.state.volume is not None else "") or "unknown device"
        return "display/levels/" + re.sub(r"[^\w .-]+", "_", device)[:60]

    def _on_scan(self):
        """Contrast is remembered per device: a Cirrus and a Spectralis need different windows."""
        if self.state.volume is None:
            return
        saved = self.settings.value(self._levels_key(), None)
        try:
            levels = (float(saved[0]), float(saved[1])) if saved else (0.0, 255.0)
        except (TypeError, ValueError, IndexError):
            levels = (0.0, 255.0)
        self.state.update_settings(levels=levels)
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.state.n_bscans - 1)
        self.slider.setValue(self.state.index)
        self.slider.blockSignals(False)

    def _on_index(self):
        self.slider.blockSignals(True)
        self.slider.setValue(self.state.index)
        self.slider.blockSignals(False)

    def _save_display(self):
        d = self.state.settings
        self.settings.setValue("cam/visible", d.show_cam)
        self.settings.setValue("cam/opacity", d.cam_opacity)
        self.settings.setValue("display/axial_mode", d.axial_mode)
        if self.state.volume is not None:
            self.settings.setValue(self._levels_key(), list(d.levels))
        key = f"axial_{d.axial_mode}"
        if key in getattr(self, "menu_actions", {}):
            self.menu_actions[key].setChecked(True)

    # -- opening -------------------------------------------------------------------------------
    def open_dialog(self):
        from octviewer.io import dialog_filters

        folder = self.settings.value("last_folder", "", type=str)
        path, _ = QFileDialog.getOpenFileName(self, "Open OCT scan", folder, dialog_filters())
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

    #: keys the B-scan shortcuts use that lists, tables, spin boxes and combo boxes need themselves
    NAVIGATION_KEYS = frozenset({Qt.Key_Up, Qt.Key_Down, Qt.Key_PageUp, Qt.Key_PageDown, Qt.Key_Home, Qt.Key_End})

    def event(self, event):
        """The B-scan shortcuts (Up, Down, PgUp, ...) are window-wide, so without this they took the
        arrow keys from the Study tree: its selection could not be moved from the keyboard. A
        shortcut override no child accepted reaches the window; accepting it here, when the focus is
        in a widget that navigates with the key, hands the key press to that widget."""
        if event.type() == QEvent.ShortcutOverride and event.key() in self.NAVIGATION_KEYS and isinstance(
                QApplication.focusWidget(), (QAbstractItemView, QAbstractSpinBox, QComboBox)):
            event.accept()
            return True
        return super().event(event)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        """One local file or folder. A web link has no local path: it opened the working folder."""
        local = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile() and url.toLocalFile()]
        if not local:
            QMessageBox.information(self, "Open", "Only files and folders on this computer can be opened.")
            return
        event.acceptProposedAction()
        self.open_path(local[0])
        if len(local) > 1:  # one scan at a time; a study folder holds many (File > Open study folder)
            QMessageBox.information(self, "Open", f"{len(local)} items dropped; the viewer shows one scan at a "
                                    f"time: opening {Path(local[0]).name}. For many scans, open their folder with "
                                    "File > Open study folder.")

    def open_path(self, path) -> int:
        self._opening = str(path)
        recent = [str(path)] + [p for p in self.settings.value("recent", [], type=list) if p != str(path)]
        self.settings.setValue("recent", recent[:10])
        self.settings.setValue("last_folder", str(Path(path).parent))
        self._fill_recent()
        return self.controller.open_path(path)

    def _load_failed(self, message: str):
        """A file that could not be read or shown: a dialog; the previous scan stays open, the file
        leaves Recent files (it would fail again from there)."""
        self.statusBar().clearMessage()
        if self._opening is not None:
            recent = self.settings.value("recent", [], type=list)
            self.settings.setValue("recent", [p for p in recent if p != self._opening])
            self._opening = None
            self._fill_recent()
        if self.headless:
            self.failures.append(message)
            print(f"error: {message}", file=sys.stderr)
            return
        QMessageBox.warning(self, "Cannot open scan", as_literal(message))

    def _busy(self, what, done, total):
        if what is None:
            self.progress.hide()
            self.cancel_button.hide()
        else:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{what} %v/%m")
            self.progress.show()
            self.cancel_button.setVisible(total > 0 and self.state.analysing)  # decoding stops by opening another
            if total == 0:
                self.statusBar().showMessage(what)
        self._update_status()

    # -- analysis and model ----------------------------------------------------------------------
    def analyse(self):
        self.controller.analyse()

    def cancel_analysis(self):
        self.controller.cancel_analysis()

    def set_device(self, name: str):
        """A failure (no CUDA here) keeps the current device and says why."""
        try:
            self.controller.set_device(name)
        except RuntimeError as exc:
            self._tick_device()  # the tick goes back to the device in force
            QMessageBox.warning(self, "Device", as_literal(str(exc)))
            return
        self.settings.setValue("device", name)
        self._update_status()

    def _tick_device(self) -> None:
        """Tick the Device menu entry of the saved choice ("auto" when it is not offered here)."""
        chosen = self.menu_actions.get(f"device_{self.settings.value('device', 'auto', type=str)}")
        (chosen or self.menu_actions["device_auto"]).setChecked(True)

    def _update_status(self):
        p = self.predictor
        if p is not None:
            self.status_device.setText(f"device: {p.device}")
            synth = " (SYNTHETIC)" if meta_dict(p.model.meta).get("synthetic_data") else ""
            self.status_model.setText(f"model: {p.model.name}{synth}"
                                      + ("  — analysing…" if self.state.analysing else ""))
        else:
            self.status_device.setText("device: -")

    def load_model_dialog(self):
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "Model files (*.safetensors *.pt)")
        if path:
            self.load_model(path)

    def load_model(self, path) -> bool:
        """Replace the model in use; a file that cannot be loaded leaves the current one in place."""
        from octviewer.model import Predictor

        device = self.predictor.device.type if self.predictor else "auto"
        try:
            predictor = Predictor(str(path), device=device)
        except Exception as exc:  # ModelFileError and anything a tampered file provokes
            text = str(exc) if Path(path).name in str(exc) else f"{Path(path).name}: {exc}"
            QMessageBox.warning(self, "Cannot load model", as_literal(text))
            return False
        self.controller.set_predictor(predictor)
        self._update_status()
        return True

    def about_model(self):
        if self.predictor is None:
            self.dialog = text_dialog(self, "Model card", "No model loaded.")
        else:
            self.dialog = text_dialog(self, "Model card", model_card_text(self.predictor.model.meta))

    def about(self):
        self.dialog = text_dialog(self, "About octviewer", (
            f"octviewer {__version__}\n\nGlaucoma screening on optic-disc OCT volumes: a viewer, the SEMT "
            "multi-task network and its trainer.\n\n" + DISCLAIMER + "\nOutputs are estimates from a deep network "
            "and must be read by a qualified clinician.\n\nLicence: MIT."))

    def show_shortcuts(self):
        self.dialog = text_dialog(self, "Keyboard shortcuts", shortcuts_text(self.menu_actions))

    def open_retrain(self):
        from .model.retrain_dialog import RetrainDialog

        if self.retrain_dialog is None:
            self.retrain_dialog = RetrainDialog(self)
            self.retrain_dialog.model_ready.connect(self.load_model)
        self.retrain_dialog.show()
        self.retrain_dialog.raise_()

    # -- exports --------------------------------------------------------------------------------
    def export_pdf(self, path: str | None = None, patient_id: str | None = None) -> str | None:
        """PDF report of the scan on screen. Anonymised unless the user asks for the patient ID:
        then neither the ID nor the scan date is printed."""
        from .export.scan_pdf import write_report

        if not self._exportable():
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export PDF report", "report.pdf", "PDF (*.pdf)")
            if not path:
                return None
            answer = QMessageBox.question(self, "Patient identifier", "Print the patient ID and scan date on the "
                                          "report?\n(No = anonymised report)")
            patient_id = self.volume.patient_id if answer == QMessageBox.Yes else None
        try:
            write_report(path, self.state, self.report_images(), self.report_meta(), patient_id,
                         sections=self.report_sections(), measured=self.study.comparison_html())
        except OSError as exc:
            self.statusBar().clearMessage()  # not an earlier export's "saved to"
            QMessageBox.warning(self, "Export", as_literal(f"Cannot write {path}: {exc}"))
            return None
        self.statusBar().showMessage(f"Report saved to {path}", 10000)
        return path

    def _exportable(self) -> bool:
        """A network result, or at least the structure measurement (a circle scan, which the network
        does not read, or a scan the quality gate refused, is exported with its measurement and the
        reason it has no probability). Not while the scan's structure measurement is still running:
        it follows the network's result by a few seconds, and the export would lack it."""
        if self.volume is not None and self.structure.measuring():
            QMessageBox.information(self, "Export", "The structure measurement of this scan is still running (it "
                                                    "follows the network's result). Export again in a moment, "
                                                    "so that the export includes it.")
            return False
        if self.prediction is not None or (self.volume is not None and self.structure.report_for_screen() is not None):
            return True
        QMessageBox.information(self, "Export", "Nothing to export yet: open a scan and wait for its analysis "
                                                "or its structure measurement.")
        return False

    def report_images(self) -> dict[str, QImage]:
        """The report's figures, rendered from the state (never grabbed from the screen)."""
        from .structure.page import structure_page_image
        from .viewer import render

        images = {"bscan": qimage(render.bscan_image(self.state)), "enface": qimage(render.enface_image(self.state)),
                  "curve": qimage(render.curve_image(self.state)), "legend": qimage(render.legend_image())}
        if self.structure.report_for_screen() is not None:
            images["structure"] = structure_page_image(self.structure.report_for_screen(), 1240, 900)
        return images

    def report_sections(self) -> list[str]:
        """Extra report sections (HTML) after the images: the structure page, when measured. (The
        measured VF of a study scan goes under the estimates: ``self.study.comparison_html()``.)"""
        from .export.scan_pdf import STRUCTURE_SECTION

        return [STRUCTURE_SECTION] if self.structure.report_for_screen() is not None else []

    def report_meta(self) -> dict:
        return meta_dict(self.predictor.model.meta) if self.predictor else {}

    def export_csv(self, path: str | None = None) -> str | None:
        """The volume's result, then one row per B-scan (numbered from 1), with file, eye and date."""
        if not self._exportable():
            return None
        identify = True
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export results", "results.csv", "CSV (*.csv)")
            if not path:
                return None
            answer = QMessageBox.question(self, "Patient identifier", "Write the file name and scan date into "
                                          "the CSV?\n(No = anonymised: both withheld; file names often carry the "
                                          "patient's name)")
            identify = answer == QMessageBox.Yes
        try:
            model = self.predictor.model if self.predictor else None
            write_results_csv(path, self.volume, self.prediction, self.structure.report_for_screen(),
                              reason=self.state.reason or "", model_name=model.name if model else "",
                              vf_names=model.vf_names if model else (), identify=identify)
        except OSError as exc:
            self.statusBar().clearMessage()  # not an earlier export's "saved to"
            QMessageBox.warning(self, "Export", as_literal(f"Cannot write {path}: {exc}"))
            return None
        self.statusBar().showMessage(f"Results saved to {path}", 10000)
        return path

    def closeEvent(self, event):
        self.controller.close()  # stops decoding the scan on screen
        self.structure.shutdown()
        self.study.shutdown()
        self.workers.shutdown()
        super().closeEvent(event)
