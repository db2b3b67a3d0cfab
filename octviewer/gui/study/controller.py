"""The study browser, OU view and trend view in the main window.

The widgets (browser.py, ou_view.py, trend_view.py) never build a predictor: the window injects
``analyse(volume) -> (Prediction | None, StructureReport | None)``, which is
``octviewer.pipeline.analyse_scan`` with the window's options (the user's quality gate switch and
segmentation source) and its results store: a scan the viewer has analysed, shown again in the OU
or trend view, is read from the store and the network does not run again. It runs in their
background tasks with its OWN Predictor, built from the window's loaded model
(``Predictor(model)`` copies the network, so the window's analysis is never disturbed) and rebuilt
when the user loads another model; one lock serialises it, because the OU and trend tasks may call
it at the same time.

Measured VF: when the scan on screen belongs to the indexed study, its measured VFI/MD/PSD are
shown beside the prediction with the difference (results panel and PDF report).
"""

from __future__ import annotations

import dataclasses
import html
import os
import threading

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QMessageBox, QScrollArea, QVBoxLayout

from octviewer.core import outside_normal
from octviewer.core.prediction import OUTSIDE_MARK
from octviewer.study import compare_vf
from octviewer.study import vf as study_vf
from octviewer.study.ou import patient_identity
from octviewer.study.vf import parse_date

from ..dialogs import as_literal, ask, ask_or_cancel
from ..export.scan_exports import default_name, save_path, write_export
from ..viewer.state import CANCELLED
from .browser import StudyPanel
from .checks import check_html, check_lines, checks_of_fields_shown, left_out_lines, people_lines
from .ou_view import OUView, shown_difference, vf_test_date
from .trend_view import TrendView

VF_LABELS = {"vfi": ("VFI", "%"), "md": ("MD", "dB"), "psd": ("PSD", "dB")}
#: the unit of a difference of two percentages (VFI): percentage points, not "%" (walk-through wording, H81)
PP = "pp"
PP_KEY = "pp = percentage points (predicted VFI % minus measured VFI %)"


def difference_unit(unit: str) -> str:
    """The unit of a predicted - measured difference: percentage points for an index in % ("+1.1 %" read as a
    relative change of 1.1 %), else the index's own unit."""
    return PP if unit == "%" else unit


def vf_days_from_scan(measured, scan_acquired) -> int | None:
    """Days from the scan to the measured field (negative: the field came first); None when either date is unknown."""
    return study_vf.vf_days_from_scan(getattr(measured, "date", None), scan_acquired)


def vf_compared(measured, scan_acquired) -> bool:
    """``study.vf.vf_compared`` for a measured field (None: nothing to compare, so nothing is refused)."""
    return measured is None or study_vf.vf_compared(measured.date, scan_acquired)


class StudyAnalyser:
    """The thread-safe ``analyse(path)`` the study views call."""

    def __init__(self, window):
        self.window = window
        self._lock = threading.Lock()
        self._predictor = None
        self._model = None

    def _predictor_for(self, model):
        if model is not self._model:
            from octviewer.model import Predictor

            device = self.window.predictor.choice if self.window.predictor is not None else "cpu"
            self._predictor = Predictor(model, device=device) if model is not None else None
            self._model = model
        return self._predictor

    def __call__(self, volume, cancel=None):
        from octviewer.pipeline import analyse_scan

        window = self.window
        window_predictor = window.controller.predictor
        model = window_predictor.model if window_predictor is not None else None
        options = dataclasses.replace(window.state.options, network=model is not None)
        with self._lock:
            predictor = self._predictor_for(model)
            result = analyse_scan(volume, predictor, options, store=window.tasks.store, cancel=cancel)
        return result.prediction, result.structure


def vf_comparison_rows(prediction, measured, compared: bool = True) -> list[tuple[str, str, str, str]]:
    """(index, predicted, measured, predicted - measured) as text, for rows with a measurement; the
    difference reads "not compared" for a field too far from the scan (``vf_compared``)."""
    rows = []
    for c in compare_vf(prediction.vf if prediction is not None else {}, measured):
        if c.measured is None:
            continue
        label, unit = VF_LABELS.get(c.name, (c.name, ""))
        difference = shown_difference(c.predicted, c.measured)
        mark = OUTSIDE_MARK if outside_normal(c.name, c.measured) else ""
        rows.append((label, "-" if c.predicted is None else f"{c.predicted:.1f} {unit}",
                     f"{c.measured:.1f} {unit}{mark}",
                     "not compared" if not compared else "-" if difference is None
                     else f"{difference:+.1f} {difference_unit(unit)}"))
    return rows


def result_kept(window) -> bool:
    """The results store holds the network's output for the scan on screen (its glaucoma result), asked of the store
    itself at the moment of asking: the output is stored before it is shown (``pipeline.analyse_scan``), the RNFL and
    disc measurement comes after it. Closing the scan then stops the measurement only (walk-through H91, W10). The
    result on screen alone did not say it: a store that could not write it (locked by another process) keeps
    nothing, and a question asked a moment before the result came in said "lost" of what was then kept (H95, V10)."""
    store, state, predictor = getattr(window.tasks, "store", None), window.state, window.controller.predictor
    if store is None or state.volume is None or predictor is None:
        return False
    try:
        _key, network = store.keys(state.volume, predictor, state.options)
        return network is not None and store.get_prediction(network) is not None
    except Exception:  # a store that cannot answer keeps nothing we can promise
        return False


def stopping_words(kept: bool, remembered: bool = True) -> str:
    """What stopping the scan's running analysis costs, for the questions asked before: "its results are lost" was
    said of a glaucoma result the store had kept, and reopening the scan showed it remembered (W10). Not kept yet,
    it may come in while the question is up (it takes a second): kept then too, so the words say so, and "lost" only
    without a results store (``remembered`` False), where nothing is kept."""
    if kept:
        return ("the scan's glaucoma result is kept (remembered); its RNFL and disc measurement is stopped and runs "
                "again when you reopen the scan")
    if not remembered:
        return "the scan's analysis is stopped and its results are lost"
    return ("the scan's analysis is stopped and runs again when you reopen the scan (a glaucoma result shown before "
            "you answer is kept, remembered)")


def scan_analysis_fate(running: bool, asked_while_running: bool, kept: bool = False) -> str:
    """What became of the closed scan's analysis, for the status bar: stopped (its glaucoma result ``kept`` or
    not, ``result_kept``); finished while the user was asked about stopping it (it takes a second or two, so
    "nothing was running on it, nothing lost" followed "Still running … Open a study anyway? Yes", walk-through
    H82, W11); or nothing was running."""
    if running and kept:
        return ("its glaucoma result was kept (remembered); its RNFL and disc measurement was stopped and runs again "
                "when you reopen the scan")
    if running:
        return "its analysis was stopped"
    if asked_while_running:
        return "its analysis finished while you were asked, so nothing was stopped"
    return "nothing was running on it, nothing lost"


class StudyController(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.analyse = StudyAnalyser(window)
        self.panel = StudyPanel()
        self.panel.settings = window.settings  # where its open dialogs start (H82, W12)
        self.dock = window.add_panel("Study", self.panel, area=Qt.LeftDockWidgetArea, shortcut="Ctrl+4", min_width=180)
        self.dock.hide()  # shown when a study is opened
        self.ou_view: OUView | None = None
        self.trend_view: TrendView | None = None
        self._ou_index = self._trend_index = None  # the study index each view was last shown from
        self._ou_patient = self._trend_patient = None  # the patient each view shows (_close_other_patients)
        self.ou_dialog: QDialog | None = None
        self.trend_dialog: QDialog | None = None
        self.panel.open_requested.connect(self._open_scan)
        self.panel.ou_requested.connect(self.show_ou)
        self.panel.trend_requested.connect(self.show_trend)
        self.panel.index_ready.connect(self._study_opened)
        self.panel.may_open = self._may_open_study
        self.panel.open_dropped = self._open_dropped
        self._stop_confirmed = False  # the user agreed to stop running work for the study being opened
        self._scan_was_running = False  # the scan's analysis ran when the user was asked (``_may_open_study``)
        self._asked_about: list[str] = []  # what ran when the user was asked (``running_work``'s words)
        window.state.events.scan.connect(self._scan_changed)
        window.state.events.scan.connect(self._close_other_patients)
        window.state.events.scan.connect(self.refresh_measured)
        window.state.events.analysis.connect(self.refresh_measured)
        window.state.events.load_failed.connect(self._load_failed)
        self.update_ou_export()

    @property
    def index(self):
        return self.panel.index

    # -- menu ----------------------------------------------------------------------------------
    def open_folder(self, path: str | None = None) -> None:
        self._show_dock()
        self.panel.open_folder(path)

    def open_manifest(self, path: str | None = None) -> None:
        self._show_dock()
        self.panel.open_manifest(path)

    def _show_dock(self) -> None:
        """On a narrow window the study list opens at its minimum width: at 1024 px its natural 264 px
        left the B-scan ~170 px wide under a window manager (third walk-through)."""
        if not self.dock.isVisible():
            self.dock.show()
            if self.window.width() < 1280:
                self.window.resizeDocks([self.dock], [180], Qt.Horizontal)
        self.dock.raise_()

    def running_work(self) -> list[str]:
        """What opening a study would stop and lose: the analysis of the scan on screen (closed unless it is one
        of the study's scans) and the OU and Trend windows' analyses (those windows close). Exports are written
        while the window waits, so none is running when a menu is used."""
        work = ["the analysis of the scan on screen"] if self.window.controller.analysis_generation != -1 else []
        for view, what in ((self.ou_view, "the OU view's analysis"), (self.trend_view, "the Trend's analysis")):
            if view is not None and view.tasks.busy():
                work.append(what)
        return work

    def _may_open_study(self) -> bool:
        """Asked before a study folder or manifest is chosen: opening one closed the scan on screen and its
        running analysis without a word (H56 walk-through). Nothing running: no question. No (the default)
        opens nothing and stops nothing."""
        work = self.running_work()
        # whether the scan's own analysis was running when asked: it may finish while the question is up
        self._scan_was_running = "the analysis of the scan on screen" in work
        self._asked_about = work
        windows = [w for w in work if w != "the analysis of the scan on screen"]
        scan = stopping_words(result_kept(self.window), self._remembers()) if self._scan_was_running else ""
        lost = "; ".join(filter(None, [scan, "the OU and Trend windows' results are lost" if windows else ""]))
        self._stop_confirmed = bool(work) and ask(
            self.window, "Open study",
            f"Still running: {', '.join(work)}.\n\nOpening a study closes the scan on screen unless it is one of "
            f"the study's scans, and the OU and Trend windows; what runs there is stopped: {lost}."
            "\n\nOpen a study anyway?")
        return not work or self._stop_confirmed

    def _remembers(self) -> bool:
        """The window keeps results in a results store (the app's; none when its data folder is not writable)."""
        return getattr(self.window.tasks, "store", None) is not None

    def _open_dropped(self) -> None:
        """The folder (or manifest) dialog was cancelled after "Open a study anyway? Yes": the status bar says that
        nothing was stopped (the question had just said it would be lost), and the agreement is forgotten, so a
        study opened later without the question (from PACS) does not stop anything on it (walk-through H91, W16)."""
        if self._stop_confirmed:
            work = self.running_work()
            self.window.statusBar().showMessage(
                "No study opened, nothing was stopped" + (f"; still running: {', '.join(work)}" if work else ""),
                15000)
        self._stop_confirmed = self._scan_was_running = False
        self._asked_about = []

    def _close_study_windows(self, confirmed: bool) -> list[str]:
        """Close the OU and Trend windows (they show the last study's patient; their analyses stop) and say, for the
        status bar, which were on screen and what became of their analyses: they closed without a word after "Open
        a study anyway? Yes" (walk-through H91, W16)."""
        said = []
        for view, dialog, what in ((self.ou_view, self.ou_dialog, "OU view"), (self.trend_view, self.trend_dialog,
                                                                              "Trend")):
            if view is None:
                continue
            running, shown = view.tasks.busy(), dialog.isVisible()
            view.tasks.cancel()
            dialog.hide()
            if not shown:
                continue
            asked = confirmed and f"the {what}'s analysis" in self._asked_about
            said.append(f"the {what} was closed" + (" and its analysis stopped" if running else
                                                      ": its analysis finished while you were asked, so nothing "
                                                      "was stopped" if asked else ""))
        return said

    def _study_opened(self, index) -> None:
        """A scan on screen that is not part of the study just opened is closed: left there, it
        would pass for one of the new study's patients (walk-through 37). Its analysis is stopped only
        as the user agreed (``_may_open_study``, or asked now for one started while the study was read); the
        status bar says what happened to the scan either way."""
        volume = self.window.state.volume
        confirmed, self._stop_confirmed = self._stop_confirmed, False
        was_running, self._scan_was_running = self._scan_was_running, False
        # the OU and Trend windows show the last study's patient: closed, not left beside the new one, and their
        # analyses (of the last study) stopped; the status bar says so after what became of the scan
        windows = "".join(f"; {said}" for said in self._close_study_windows(confirmed))
        self._asked_about = []
        if volume is not None and (not volume.source or index.scan_at(volume.source) is None):
            running, kept = self.window.controller.analysis_generation != -1, result_kept(self.window)
            if running and not confirmed and not ask(
                    self.window, "Study opened",
                    "The study is open. The scan on screen is not one of its scans and is still being "
                    f"analysed.\n\nClose it and stop its analysis? ({stopping_words(kept, self._remembers())})"):
                self.window.statusBar().showMessage("Study opened: the scan on screen is not part of it; it stays "
                                                    "open while its analysis runs" + windows)
            else:
                self.window.controller.close_scan(
                    "Study opened: the scan on screen is not part of it and was closed; "
                    + scan_analysis_fate(running, was_running and confirmed, kept) + windows)
        elif windows:
            self.window.statusBar().showMessage("Study opened" + windows.replace(";", ":", 1), 15000)
        self.update_ou_export()
        self.refresh_measured()
        self.window.refresh_title()  # the scan kept on screen is now named by this study's identity

    def _open_scan(self, path: str) -> None:
        self.window.open_path(path)

    def _load_failed(self, _message: str = "") -> None:
        """A scan failed to open, the last one stays on screen: the tree's selection goes back to that scan (or
        none, when it is not one of the study's), as it follows the scan on screen (walk-through H65, W9)."""
        if self.index is None:
            return
        volume = self.window.state.volume
        entry = self.index.scan_at(volume.source) if volume is not None and volume.source else None
        self.panel.show_scan(entry.path if entry is not None else None)

    def _scan_changed(self) -> None:
        """A scan on screen that is not the one selected in the study clears the selection, which
        disables OU view and Trend: File > Open of another patient's file left the study scan
        highlighted, and OU view put the study patient's visit beside that file (walk-through).
        Selecting a study scan again enables them."""
        volume = self.window.state.volume
        data = self.panel.selected()
        if self.index is None or volume is None or data is None:
            return
        entry = self.index.scan_at(volume.source) if volume.source else None
        if entry is None or (data[0] == "scan" and os.path.realpath(data[4]) != os.path.realpath(entry.path)):
            self.panel.clear_selection()

    # -- OU and trend --------------------------------------------------------------------------
    def screen_patient(self) -> str | None:
        """The patient of the scan on screen as the OU view and Trend file patients: the study's ID of a study scan,
        else the file's own header ID; None with no scan, or a file naming no patient."""
        volume = self.window.state.volume
        if volume is None:
            return None
        entry = self.index.scan_at(volume.source) if self.index is not None and volume.source else None
        return (entry.patient_id if entry is not None else None) or getattr(volume, "patient_id", None) or None

    def _close_other_patients(self) -> None:
        """A scan opened in the main window: ``_one_patient_on_screen`` with its patient. Closing the scan leaves
        the OU view and Trend open (nothing contradicts them)."""
        if self.window.state.volume is not None:
            self._one_patient_on_screen(self.screen_patient(), "scan")

    def _one_patient_on_screen(self, patient: str | None, opened: str) -> None:
        """One patient on screen: what was opened last (``opened``: "scan" in the main window, "OU view" or
        "Trend" from the Study panel, showing ``patient``) closes the others that show another patient, analyses
        stopped, and the status bar says so. One patient's OU window stayed open on top of another's scan and
        results, the window title naming the one behind it, and File > Export OU report… would export the one in
        front (walk-through H82, W10); the same two patients stayed on screen when the OU view or Trend was opened
        over the other patient's scan (attack run 14, A14-6). Closed rather than re-titled: a window left open
        still showed two patients' results at once and kept its exports enabled; the study tree (or File > Open)
        opens it again in one click. A file naming no patient counts as another patient (nothing shows it is the
        same one)."""
        closed = []
        for view, dialog, shown, what in ((self.ou_view, self.ou_dialog, self._ou_patient, "OU view"),
                                          (self.trend_view, self.trend_dialog, self._trend_patient, "Trend")):
            if what != opened and view is not None and dialog.isVisible() and shown != patient:
                view.tasks.cancel()
                dialog.hide()
                closed.append(what)
        scan = opened != "scan" and self.window.state.volume is not None and self.screen_patient() != patient
        if scan:
            closed.insert(0, "the scan on screen")
        if not closed:
            return
        self.update_ou_export()
        subject = "the scan on screen" if opened == "scan" else f"the {opened} just opened"
        said = " and ".join(closed)
        message = f"{said[0].upper()}{said[1:]} closed: {'they show' if len(closed) > 1 else 'it shows'} another " \
                  f"patient than {subject}"
        if scan:
            running = self.window.controller.analysis_generation != -1
            self.window.controller.close_scan(f"{message}; "
                                              f"{scan_analysis_fate(running, False, result_kept(self.window))}")
        else:
            self.window.statusBar().showMessage(f"{message} (open again from the Study panel)", 15000)

    def _dialog(self, title: str, widget) -> QDialog:
        """A dialog no larger than the screen, its content scrolling where the screen is smaller still
        (a 1024 x 700 screen could not show the OU view's 895 px, walk-through)."""
        dialog = QDialog(self.window)
        dialog.setWindowTitle(title)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(widget)
        layout = QVBoxLayout(dialog)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        screen = (self.window.screen() or QGuiApplication.primaryScreen()).availableGeometry()
        dialog.resize(min(980, screen.width()), min(860, screen.height() - 40))  # 40: the title bar
        return dialog

    def show_ou(self, patient_id: str, visit: str) -> OUView:
        if self.ou_view is None:
            self.ou_view = OUView()
            self.ou_dialog = self._dialog("OU view: both eyes of a visit", self.ou_view)
            self.ou_dialog.finished.connect(self.update_ou_export)  # closed (X, Esc): nothing left to export
            self.ou_view.ready.connect(self._analysed_elsewhere)
        self.ou_view.show_visit(self.index, patient_id, visit, self.analyse)
        self._ou_index = self.index  # the study it shows (export_ou_report)
        self._ou_patient = patient_id
        self._one_patient_on_screen(patient_id, "OU view")  # before it shows: the other patient's scan closed (A14-6)
        self.ou_dialog.show()
        self.ou_dialog.raise_()
        self.update_ou_export()
        return self.ou_view

    def _analysed_elsewhere(self, *_args) -> None:
        """The OU view or Trend analysed the scan on screen, whose own analysis Esc had cancelled: the Results
        panel kept "Analysis cancelled" beside an OU view showing its result (walk-through H131, W7). Its result is
        in the results store now, so analysing it again shows it at once."""
        state = self.window.state
        if state.volume is not None and state.reason == CANCELLED and not state.analysing and result_kept(self.window):
            self.window.controller.analyse()

    def ou_open(self) -> bool:
        """An OU view is on screen: the only time File > Export OU report has something to export."""
        return self.ou_dialog is not None and self.ou_dialog.isVisible()

    def update_ou_export(self, *_args) -> None:
        """File > Export OU report only while an OU view is open: closed, it still wrote the last OU view, another
        patient's, while a different scan was on screen, and it was enabled with no study at all (walk-through
        H65, W6)."""
        action = self.window.menu_actions.get("export_ou")
        if action is not None:
            action.setEnabled(self.ou_open())

    def show_trend(self, patient_id: str, eye: str) -> TrendView:
        if self.trend_view is None:
            self.trend_view = TrendView()
            self.trend_dialog = self._dialog("Trend: one eye over its visits", self.trend_view)
            self.trend_view.ready.connect(self._analysed_elsewhere)
        self.trend_view.show_eye(self.index, patient_id, eye, self.analyse)
        self._trend_index = self.index
        self._trend_patient = patient_id
        self._one_patient_on_screen(patient_id, "Trend")
        self.trend_dialog.show()
        self.trend_dialog.raise_()
        return self.trend_view

    def export_ou_report(self, path: str | None = None, patient_id: str | None = None) -> str | None:
        """The OU page of the visit in the OU view (and the trend shown), anonymised unless asked."""
        from ..export.ou_pdf import write_ou_report

        # Only views of the study open now, and a trend only of the OU page's patient: after another study
        # was opened, the last OU view (another patient's eyes) and the new study's trend were printed on
        # one anonymised report, where nothing showed the mix-up (sixth walk-through)
        if self.ou_view is None or self.ou_view.summary is None or self._ou_index is not self.index:
            QMessageBox.information(self.window, "Export", "Open the OU view of a visit of this study first "
                                                           "(Study panel, OU view).")
            return None
        if path is None:
            # asked first: the offered name carries the visit date only on an identified report
            # the question names whose visit is exported: nothing said which, and another patient's scan may be on
            # screen (W6); as_literal: an ID from a file is no markup
            summary = self.ou_view.summary
            identify = ask_or_cancel(self.window, "Patient identifier", as_literal(
                f"OU report of patient {summary.patient_id}, visit {summary.visit} (the OU view open now).\n\n"
                "Print the patient ID, the visit dates and the report date on the report?\n"
                "(No = anonymised report: none of them)"))
            if identify is None:  # Cancel or Esc: no report (Esc went on to the save dialog as if No)
                return None
            visit = parse_date(self.ou_view.summary.visit) if identify else None  # a date, not a label
            name = default_name(visit, "OU", "report.pdf")
            # in the folder of the last export, as Export PDF / results start (it started in the working folder:
            # attack run 13, A13-7)
            path = save_path(self.window, "Export OU report", name, "PDF (*.pdf)")
            if not path:
                return None
            patient_id = self.ou_view.summary.patient_id if identify else None
        history = self.trend_view.history if self.trend_view is not None else None
        same = (history is not None and self._trend_index is self.index
                and history.patient_id == self.ou_view.summary.patient_id)
        trend = self.trend_view if same else None
        return write_export(self.window, "OU report", path,
                            lambda: write_ou_report(path, self.ou_view, trend, patient_id), "pdf")

    # -- the patient of the scan on screen ------------------------------------------------------
    def patient_line(self) -> str | None:
        """Who the scan on screen belongs to, one identity everywhere: the study's (a manifest row's ID, "used as
        listed": clinics map study codes to MRNs), which the tree, OU view and Trend file it under, with the
        scan's own header ID beside it where that differs ("P7 (the scan's header: P0)"). The window title and
        the identified PDF printed the header's ID alone (walk-through H65, W2). Not in a study: the file's ID."""
        volume = self.window.state.volume
        if volume is None:
            return None
        header = getattr(volume, "patient_id", None) or None
        entry = self.index.scan_at(volume.source) if self.index is not None and volume.source else None
        if entry is None or not entry.patient_id:
            return header
        return patient_identity(entry.patient_id, [header])

    # -- measured VF beside the prediction -----------------------------------------------------
    def measured_vf(self):
        """The measured VF of the scan on screen, when it belongs to the indexed study."""
        volume = self.window.state.volume
        if self.index is None or volume is None or not volume.source:
            return None
        return self.index.measured_vf_for_scan(volume.source)

    def comparison_rows(self) -> list[tuple[str, str, str, str]]:
        measured = self.measured_vf()
        volume = self.window.state.volume
        compared = vf_compared(measured, volume.acquired if volume is not None else None)
        return vf_comparison_rows(self.window.state.prediction, measured, compared) if measured is not None else []

    def test_date(self, dated: bool = True) -> str:
        measured = self.measured_vf()
        volume = self.window.state.volume
        return vf_test_date(measured, volume.acquired if volume is not None else None, dated) if measured else ""

    def scan_checks(self) -> list[str]:
        """What the study's manifest and the open scan's own header disagree about (``StudyIndex.warnings_for``):
        the Results panel and the PDF said nothing of a row that filed the scan under another patient and date,
        while the tree and the OU view used the row's (H51 walk-through, item 6)."""
        volume = self.window.state.volume
        if self.index is None or volume is None or not volume.source:
            return []
        # a misspelt field's check only where that field is the one shown beside the scan (walk-through H107, Y3)
        return checks_of_fields_shown(self.index.warnings_for([volume.source]), self.index, [volume.source])

    def fields_left_out(self) -> list[str]:
        """The line for the open scan's eye's measured fields left out as another person's (``checks.left_out_lines``):
        the Study panel alone said it (walk-through H107, Y8)."""
        volume = self.window.state.volume
        scan = self.index.scan_at(volume.source) if self.index is not None and volume is not None and volume.source \
            else None
        return left_out_lines(self.index, scan.patient_id, [scan.eye]) if scan is not None and scan.eye else []

    def people_split(self) -> list[str]:
        """Under a "people" check of the open scan: which visits name which person (``checks.people_lines``; dated,
        for the window and an identified report only: walk-through H107, Y6)."""
        volume = self.window.state.volume
        scan = self.index.scan_at(volume.source) if self.index is not None and volume is not None and volume.source \
            else None
        return people_lines(self.index, scan.patient_id, self.scan_checks()) if scan is not None else []

    def checks_text(self) -> str:
        """The scan's study checks for the Results panel, under the verdict: named by the check that fired (a copy
        is no manifest's); which visits are whose; the eye's fields left out."""
        return "\n".join(check_lines(self.scan_checks()) + self.people_split() + self.fields_left_out())

    def comparison_text(self) -> str:
        """The study's lines under the estimates: the scan's measured VF beside the estimate."""
        lines = []
        rows = self.comparison_rows()
        if rows:
            lines.append(f"Measured visual field (study; {self.test_date()}) vs predicted:")
            lines += [f"{label}: predicted {p}, measured {m}, difference {d.replace(PP, 'percentage points')}"
                      for label, p, m, d in rows]
        return "\n".join(lines)  # the ● key: the Results panel's own line under it (ResultsPanel._show_key)

    def report_checks(self, dated: bool) -> list[str]:
        """The open scan's study check lines for a report, the scan PDF's and the window CSV's one list: its checks
        (``dated`` False: by kind and count), which visits are whose (dated only) and its eye's fields left out as
        another person's. The CSV took the checks alone, and its blank measured columns read as no perimetry
        (walk-through H115, Z5)."""
        return check_lines(self.scan_checks(), dated) + (self.people_split() if dated else []) + self.fields_left_out()

    def checks_html(self, dated: bool = False) -> str:
        """The scan's study checks for the PDF report, under its decision; ``dated`` False (anonymised) prints them
        (they quote patient IDs and dates) by their kind and count only (``checks.check_lines``)."""
        return "".join(check_html(line) for line in self.report_checks(dated))

    def comparison_html(self, dated: bool = False) -> str:
        """The measured VF table of the PDF report, under the estimates; ``dated`` False (anonymised) prints no
        test date."""
        rows = self.comparison_rows()
        if not rows:
            return ""
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        key = (f"<p>{OUTSIDE_MARK.strip()} outside the normal range</p>"
               if any(OUTSIDE_MARK in m for _, _, m, _ in rows) else "")
        key += f"<p>{html.escape(PP_KEY)}</p>" if any(d.endswith(PP) for *_, d in rows) else ""
        return (f"<p><b>Measured visual field (from the study) beside the estimate</b>; "
                f"{html.escape(self.test_date(dated))}</p>"
                "<table border='1' cellpadding='3'><tr><th>index</th><th>predicted</th><th>measured</th>"
                f"<th>predicted − measured</th></tr>{cells}</table>{key}")

    def refresh_measured(self) -> None:
        self.window.results.set_extra(self.comparison_text(), self.checks_text())

    def shutdown(self) -> None:
        for widget in (self.panel, self.ou_view, self.trend_view):
            if widget is not None:
                widget.tasks.shutdown()
