"""The main window: it builds the views and connects them. What is shown lives in the ViewerState
(viewer/state.py), the controller (viewer/controller.py) applies user intent and background
results to it, the views draw it, menus.py lists every menu entry and key. The parts with menus of
their own live beside it: model/controls.py (Model and Device), export/scan_exports.py (exports),
structure/ (the Structure panel and the lines and maps), study/ (the study browser, OU, trend);
settings.py is what the window remembers, keys.py who gets the arrow keys.

Adding a panel (structure, study browser…) takes one call::

    window.add_panel("Structure", StructurePanel(), shortcut="Ctrl+3")

which docks the widget on the right and adds a View > Panels toggle for it.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from octviewer import __version__

from .background import collect_garbage_on_gui_thread
from .dialogs import as_literal, text_dialog
from .export.scan_exports import ScanExports
from .keys import NavigationKeys
from .menus import build_menus, follow_state, shortcuts_text
from .model.controls import ModelControls
from .settings import WindowSettings
from .structure.overlay import StructureOverlay
from .structure.panel import StructurePanel
from .study.controller import StudyController
from .viewer.bscan_view import BscanView, CamLegend
from .viewer.controller import ViewerController
from .viewer.curve_view import CurveView
from .viewer.enface_view import EnfaceView
from .viewer.results_panel import DISCLAIMER, ResultsPanel, plain, scan_date
from .viewer.scan_tasks import ScanTasks
from .viewer.state import AXIAL_MODES, ViewerState

TITLE = "octviewer — research use only, not a medical device"
#: the Results and Structure docks' least width: room for the VF rows and the two RNFL wheels without
#: scrolling sideways, with the Study panel open in a 1024 px window (walk-through at 1024 x 700)
RIGHT_DOCK_WIDTH = 250
#: height left free for a window manager's title bar and borders when the window is fitted to a screen
FRAME_ROOM_PX = 56


def scan_title(volume, patient: str | None = None) -> str:
    """The window title for the scan on screen: its file name, eye and scan date, and the patient
    ID, so the clinician sees whose scan this is at all times (wrong-patient risk). ``patient`` is the
    study's identity of the scan (``StudyController.patient_line``: a manifest row's ID, with the header's
    beside it where they differ): the title printed the header's ID while the tree, OU view and Trend filed
    the scan under the row's (walk-through H65, W2); without it, the ID the file carries.
    On screen only: the app never writes it to a log (octviewer/core/pseudonym.py keeps outputs free
    of identifiers; the study browser shows the same IDs)."""
    if volume is None:
        return TITLE
    parts = [plain(Path(volume.source).name) if volume.source else "unnamed scan",
             volume.laterality or "eye unknown", scan_date(volume)]
    patient = patient or getattr(volume, "patient_id", None)
    if patient:
        parts.append(f"patient {plain(patient, 120)}")
    return "  ·  ".join(parts) + f" — {TITLE}"


def opened_where(path: str | None) -> str:
    """The first line of "Cannot open scan": the folder or file asked for, in full. The message names only its
    last part ("gap: the B-scan numbers jump ..."), which read as a bare tag, and opened from Open recent or after
    a few folders the user could not tell which folder it was (walk-through H91, W7)."""
    if not path:
        return ""
    return f"{'Folder' if os.path.isdir(path) else 'File'}: {path}\n\n"


def as_sentence(path: str | None, message: str) -> str:
    """The reader's message under ``opened_where``'s line as a sentence: it begins with the file's or folder's last
    part ("gap: the B-scan numbers jump ..."), which under "Folder: /tmp/folders/gap" read as a bare lowercase tag
    (walk-through H95, V6); "Cannot open gap: the B-scan numbers jump ..." says what the name is doing there."""
    if path and message.startswith((os.path.basename(os.path.normpath(path)) + ": ", path + ": ")):
        return "Cannot open " + message
    return message


class MainWindow(QMainWindow):
    #: emitted when nothing more will happen for the scan on screen: analysed and measured, refused,
    #: failed, cancelled (used by --screenshot and tests)
    settled = Signal()

    def __init__(self, predictor=None, model_error: str | None = None, store=None):
        """``store``: the results store (``octviewer.pipeline.store.ResultsStore``) or None."""
        super().__init__()
        self._collector = collect_garbage_on_gui_thread()  # Qt objects die on the GUI thread only
        self.setWindowTitle(TITLE)
        self.resize(1400, 850)
        self.settings = WindowSettings()
        self.state = ViewerState()
        self.tasks = ScanTasks(self, store=store)
        self.controller = ViewerController(self.state, self.tasks, predictor)
        self.tasks.connect(self.controller)
        #: headless (``octviewer --screenshot``): a file that cannot be opened is reported on stderr
        #: and kept in ``failures`` (the exit status), not in a dialog that nobody can close
        self.headless = False
        self.failures: list[str] = []
        self._opening: str | None = None  # the file asked for last: out of Recent files if it fails
        self.dialog: QDialog | None = None  # the last text window opened (about, shortcuts, model card)
        self._busy_text = ""  # the status line of the work in progress, cleared when it ends
        self.state.update_settings(**self.settings.display(AXIAL_MODES))
        self.models = ModelControls(self)
        self.exports = ScanExports(self)
        self._build()
        self.menu_actions = build_menus(self)
        self.models.tick_device()
        self.structure = StructureOverlay(self.state, self.bscan, self.enface)
        structure_dock = self.add_panel("Structure", self.structure_panel, shortcut="Ctrl+3",
                                        min_width=RIGHT_DOCK_WIDTH)
        # room for the estimates, their notes and the disclaimer without scrolling at the default size
        self.resizeDocks([self.results_dock, structure_dock], [470, 360], Qt.Vertical)
        # then, scan by scan, as tall as its content: its spare room to the Structure panel (walk-through H65, W19)
        self.results.fit_dock(self, self.results_dock, self.results_scroll, structure_dock)
        # a new scan's results and structure are read from the top (the study list keeps its place)
        self._per_scan_scrolls = (self.results_scroll, structure_dock.widget())
        self._fit_to_screen()
        self.study = StudyController(self)
        follow_state(self.menu_actions, self.state)
        self._fill_recent()
        events = self.state.events
        events.settled.connect(self.settled.emit)
        events.load_failed.connect(self._load_failed)
        events.busy.connect(self._busy)
        events.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        events.scan.connect(self._on_scan)
        self._focused_volume = None  # the scan the B-scan view last took the keyboard focus for
        events.scan.connect(self._focus_new_scan)
        events.index.connect(self._on_index)
        events.display.connect(self._save_display)
        events.analysis.connect(self.models.update_status)
        for event in (events.scan, events.display, events.analysis):
            event.connect(self._update_cam_legend)
        self.keys = NavigationKeys(self)
        self.installEventFilter(self.keys)
        self.setAcceptDrops(True)
        self.models.update_status()
        if model_error:
            self.models.status_model.setText(f"no model: {model_error}")

    def _update_cam_legend(self, *_args) -> None:
        """The CAM colour bar only while a CAM can be on screen (shown, and the scan has one); its
        space is kept so the B-scan does not jump."""
        s = self.state
        self.cam_legend.setVisible(bool(s.volume is not None and s.settings.show_cam and s.cams is not None))
        self.cam_legend.show_opacity(s.settings.cam_opacity)

    # -- layout -------------------------------------------------------------------------------
    def _build(self):
        self.enface = EnfaceView(self.state)
        # a study dock beside it would squeeze it to ~110 px; 170, not 200: the B-scan beside the 250 px
        # Results and Structure docks needs the room more in a 1024 px window
        self.enface.setMinimumWidth(170)
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
        for widget, stretch in ((self.bscan, 5), (self.cam_legend, 0), (self.slider, 0), (self.curve, 2)):
            v.addWidget(widget, stretch)
        split = QSplitter()
        split.addWidget(self.enface)
        split.addWidget(centre)
        split.setSizes([380, 900])
        self.setCentralWidget(split)
        self.results = ResultsPanel(self.state)
        dock = QDockWidget("Results")
        dock.setObjectName("results")
        # scrollable: wrapped notes under a short dock would squeeze the VF rows until they are cut off
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(self.results)
        scroll.setMinimumWidth(RIGHT_DOCK_WIDTH)
        self.results_scroll = scroll
        # the research-use / SYNTHETIC / not-verified warnings above the scroll area: always in sight
        holder = QWidget()
        column = QVBoxLayout(holder)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.results.trust.setContentsMargins(9, 4, 9, 4)
        column.addWidget(self.results.trust)
        column.addWidget(scroll, 1)
        dock.setWidget(holder)
        dock.setFeatures(QDockWidget.DockWidgetMovable)
        self.results_dock = dock
        self.addDockWidget(Qt.RightDockWidgetArea, dock)
        self.structure_panel = StructurePanel()
        self.structure_panel.follow(self.state)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.controller.cancel)  # the read of a file, else the analysis
        self.cancel_button.hide()
        for widget in (self.progress, self.cancel_button, self.models.status_model, self.models.status_device):
            self.statusBar().addPermanentWidget(widget)

    def add_panel(self, title: str, widget: QWidget, area=Qt.RightDockWidgetArea,
                  shortcut: str | None = None, min_width: int | None = None) -> QDockWidget:
        """Dock ``widget`` and add a View > Panels entry that shows or hides it. ``min_width``: the
        dock may be narrower than the widget's own minimum, which then scrolls (the window has to
        fit a 1024 px screen with the Study and Structure panels open)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(re.sub(r"\W+", "_", title.lower()))
        if min_width is not None:
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.NoFrame)
            scroll.setWidget(widget)
            scroll.setMinimumWidth(min_width)
            widget = scroll
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

    # -- state -> window ------------------------------------------------------------------------
    def _device_name(self) -> str | None:
        return (self.state.volume.device or "") if self.state.volume is not None else None

    def _on_scan(self):
        """Contrast is remembered per device: a Cirrus and a Spectralis need different windows."""
        self.refresh_title()
        # the last scan's position hid the new scan's probability, and, a scan closed, the Structure panel's
        # "No scan open" at its top: the panel read blank (ninth walk-through)
        for scroll in self._per_scan_scrolls:
            scroll.verticalScrollBar().setValue(0)
        if self.state.volume is None:  # no scan: the slider does not keep the last volume's position
            self.slider.blockSignals(True)
            self.slider.setRange(0, 0)
            self.slider.blockSignals(False)
            return
        self.state.update_settings(levels=self.settings.levels(self._device_name()))
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.state.n_bscans - 1)
        self.slider.setValue(self.state.index)
        self.slider.blockSignals(False)

    def _focus_new_scan(self) -> None:
        """A scan newly on screen, opened by any route (File > Open, Open recent, a drop, the Study tree, PACS), gives
        the B-scan view the keyboard focus: the B-scan keys (Up, Down, PgUp, PgDown, Home, End) go to the widget with
        the focus when it navigates with them (keys.py), so after a scan opened from File > Open recent with the Study
        tree focused they moved the tree, whose selection opens what it lands on: another patient's scan could
        replace the one on screen (walk-through H121, U4). A scan shown again (a failed open keeps the last one)
        moves nothing; in a window not active, the focus is the B-scan's once it is."""
        volume = self.state.volume
        if volume is not None and volume is not self._focused_volume:
            self.bscan.setFocus(Qt.OtherFocusReason)
        self._focused_volume = volume

    def refresh_title(self) -> None:
        """The title for the scan on screen, by the study's identity of it (a study opened or closed changes it)."""
        self.setWindowTitle(scan_title(self.state.volume, self.study.patient_line()))

    def _on_index(self):
        self.slider.blockSignals(True)
        self.slider.setValue(self.state.index)
        self.slider.blockSignals(False)

    def _save_display(self):
        self.settings.save_display(self.state.settings, self._device_name())

    def _busy(self, what, done, total):
        if what is None:
            self.progress.hide()
            self.cancel_button.hide()
            if self.statusBar().currentMessage() == self._busy_text:  # "Measuring…" once it is over
                self.statusBar().clearMessage()
        else:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{what} %v/%m")
            self.progress.show()
            # a read not yet shown (a huge file), the decoding of the scan on screen, the analysis
            self.cancel_button.setVisible(total > 0 and self.state.analysing or self.controller.reading
                                          or self.controller.decoding)
            if total == 0:
                self._busy_text = what
                self.statusBar().showMessage(what)
        self.models.update_status()

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
        for path in self.settings.recent():
            a = QAction(plain(path, 400).replace("&", "&&"), self)  # as the title shows names; & is no shortcut
            a.triggered.connect(lambda _=False, p=path: self.open_path(p))
            self.recent_menu.addAction(a)

    def dragEnterEvent(self, event):  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):  # noqa: N802 (Qt's name)
        """One local file or folder. A web link has no local path: it opened the working folder."""
        local = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile() and url.toLocalFile()]
        if not local:
            QMessageBox.information(self, "Open", "Only files and folders on this computer can be opened.")
            return
        event.acceptProposedAction()
        self.open_path(local[0])
        if len(local) > 1:  # one scan at a time; a study folder holds many (File > Open study folder)
            QMessageBox.information(self, "Open", as_literal(
                f"{len(local)} items dropped; the viewer shows one scan at a time: opening {Path(local[0]).name}. "
                "For many scans, open their folder with File > Open study folder."))  # a file name is no markup

    def open_path(self, path) -> int:
        self._opening = str(path)
        self.settings.opened(path)
        self._fill_recent()
        return self.controller.open_path(path)

    def _load_failed(self, message: str):
        """A file that could not be read or shown: a dialog; the previous scan stays open, the file
        leaves Recent files (it would fail again from there)."""
        self.statusBar().clearMessage()
        opening, self._opening = self._opening, None
        if opening is not None:
            self.settings.forget(opening)
            self._fill_recent()
        if self.headless:
            self.failures.append(message)
            print(f"error: {message}", file=sys.stderr)
            return
        QMessageBox.warning(self, "Cannot open scan", as_literal(opened_where(opening) + as_sentence(opening, message)))

    # -- help -------------------------------------------------------------------------------------
    def about(self):
        self.dialog = text_dialog(self, "About octviewer", (
            f"octviewer {__version__}\n\nGlaucoma screening on optic-disc OCT volumes: a viewer, the SEMT "
            "multi-task network and its trainer.\n\n" + DISCLAIMER + "\nOutputs are estimates from a deep network "
            "and must be read by a qualified clinician.\n\nLicence: MIT."))

    def show_shortcuts(self):
        self.dialog = text_dialog(self, "Keyboard shortcuts", shortcuts_text(self.menu_actions))

    def show_reading_guide(self):
        from .menus import reading_guide_text

        self.dialog = text_dialog(self, "Reading the results", reading_guide_text())

    def _free_area(self) -> QRect | None:
        """The screen's area free of panels and task bars; None on the offscreen platform (``--screenshot``,
        tests), which has no screen to fit and keeps the design size."""
        if QGuiApplication.platformName() == "offscreen":
            return None
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else None

    def _fit_to_screen(self) -> None:
        """Open at the size and place the user left the window at, else at 1400 x 850 cut to the screen's
        free area. A fixed 1400 x 850 put the Results panel, the SYNTHETIC banner and Cancel off a
        1280 x 800 or 1024 x 700 screen, and a manual resize was forgotten (walk-through)."""
        free = self._free_area()
        if free is None:
            return
        saved = self.settings.value("geometry")
        if isinstance(saved, QByteArray) and not saved.isEmpty() and self.restoreGeometry(saved):
            if self.width() <= free.width() and self.height() <= free.height():
                return  # (a geometry saved on a larger screen is cut to this one below)
        # the size set is the inside of the window: a window manager's title bar and borders come on top
        # (a 1264 x 784 window on an 800 px screen had its status bar cut off: fourth walk-through)
        self.resize(max(min(1400, free.width() - 16), self.minimumWidth()), min(850, free.height() - FRAME_ROOM_PX))
        self.move(free.x() + (free.width() - self.width()) // 2, free.y() + (free.height() - self.height()) // 2)

    def closeEvent(self, event):  # noqa: N802 (Qt's name)
        if self._free_area() is not None:
            self.settings.set("geometry", self.saveGeometry())
        self.controller.close()  # stops decoding the scan on screen
        self.study.shutdown()
        self.tasks.shutdown()
        getattr(self, "_pacs_actions", None) and self._pacs_actions.shutdown()  # a retrieve or send in flight
        super().closeEvent(event)
