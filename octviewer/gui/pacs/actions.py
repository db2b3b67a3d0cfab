"""What the PACS menu entries do: open the dialogs, and send the scan's results (SR + PDF) with progress
and a clear outcome. A send that fails is kept in the outbox and goes with the next one."""

from __future__ import annotations

import os
import tempfile

from PySide6.QtWidgets import QMessageBox, QProgressDialog

from ..dialogs import as_literal
from .work import Failure, PacsWork

NOTHING_TO_SEND = "Nothing to send yet: open a scan and wait for its analysis and structure measurement."
STILL_MEASURING = "The structure measurement is still running; send when it is done, so the report includes it."


class PacsActions:
    def __init__(self, window, settings_path=None):
        self.window = window
        self.settings_path = settings_path  # None: the user's data folder
        self.dialog = None  # the dialog open now (tests reach it here)
        self.progress = None
        self.work = PacsWork(window)
        self.work.finished.connect(self._sent)
        self.work.slot.progress.connect(self._progress)

    def settings(self):
        from octviewer.pacs import load_settings

        return load_settings(self.settings_path)

    # -- dialogs ----------------------------------------------------------------------------------
    def open_dialog(self):
        from .open_dialog import OpenFromPacsDialog

        self.dialog = OpenFromPacsDialog(self.window, self.settings)
        self.dialog.opened.connect(self.window.open_path)
        self.dialog.study_opened.connect(lambda folder: self.window.study.open_folder(folder))
        self.dialog.show()
        return self.dialog

    def preferences(self):
        from .prefs_dialog import PacsPreferencesDialog

        self.dialog = PacsPreferencesDialog(self.window, self.settings_path)
        self.dialog.show()
        return self.dialog

    # -- send -------------------------------------------------------------------------------------
    def _report_pdf(self) -> bytes:
        """The scan's PDF report, written by the window's own report writer (on the GUI thread: Qt's
        PDF writer), identified: it is filed with the patient's record."""
        from ..export.scan_pdf import write_report

        exports, state = self.window.exports, self.window.state
        fd, path = tempfile.mkstemp(suffix=".pdf")
        os.close(fd)
        try:
            write_report(path, state, exports.report_images(), self.window.models.model_meta(),
                         state.volume.patient_id or None, sections=exports.report_sections(),
                         measured=self.window.study.comparison_html(), checks=self.window.study.checks_html())
            with open(path, "rb") as f:
                return f.read()
        finally:
            os.unlink(path)

    def send(self) -> None:
        from octviewer.pacs import PacsConfigError, model_identity
        from octviewer.pacs.results import model_trust, source_dataset
        from octviewer.pacs.sr import SrError
        from octviewer.pipeline import ScanResult

        w, s = self.window, self.window.state
        if self.work.busy():
            return
        if s.measuring:
            QMessageBox.information(w, "Send results to PACS", STILL_MEASURING)
            return
        if s.volume is None or (s.prediction is None and s.structure is None):
            QMessageBox.information(w, "Send results to PACS", NOTHING_TO_SEND)
            return
        try:
            settings = self.settings()
        except PacsConfigError as exc:
            QMessageBox.warning(w, "Send results to PACS", as_literal(f"PACS settings: {exc}"))
            return
        predictor = w.controller.predictor
        name, version = model_identity(predictor.model) if predictor is not None else ("", "")
        trust = model_trust(predictor.model) if predictor is not None else ""  # in the SR too (A12-10)
        result = ScanResult(quality=s.structure.quality if s.structure is not None else None,
                            prediction=s.prediction, structure=s.structure,
                            reasons=(s.reason,) if s.reason and s.prediction is None else (),
                            settings=s.made_with)  # the SR names them, and a check that was off (A14-10)
        source = s.volume.source
        try:  # the send's own rule, before anything is packed: a scan without a usable PatientID (A12-9)
            if source is None:
                raise SrError("the scan did not come from a DICOM file, so its results cannot be filed with it")
            source_dataset(source)
        except SrError as exc:
            QMessageBox.warning(w, "Send results to PACS", as_literal(f"Nothing was sent: {exc}"))
            return
        try:
            pdf = self._report_pdf()
        except OSError as exc:
            QMessageBox.warning(w, "Send results to PACS", as_literal(f"The PDF report could not be written: {exc}"))
            return

        def run(progress, cancel):
            from octviewer.pacs import Outbox, results_datasets

            datasets = results_datasets(source, result, name, version, pdf=pdf, trust=trust)
            return Outbox().send(settings, datasets, progress=progress)

        self.progress = QProgressDialog("Sending the structured report and the PDF report…", "", 0, 0, w)
        self.progress.setWindowTitle("Send results to PACS")
        self.progress.setCancelButton(None)  # a send is short; stopping half way would only leave it queued
        self.progress.show()
        self.work.start(run, "pacs-send")

    def _progress(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)

    def _sent(self, outcome) -> None:
        if self.progress is not None:
            self.progress.close()
            self.progress = None
        w = self.window
        if isinstance(outcome, Failure):
            w.statusBar().showMessage("Results not sent", 10000)
            QMessageBox.warning(w, "Send results to PACS", as_literal(f"Nothing was sent: {outcome.message}"))
        elif outcome.error:
            w.statusBar().showMessage("Results kept in the outbox", 10000)
            QMessageBox.warning(w, "Send results to PACS", as_literal(outcome.message))
        else:
            w.statusBar().showMessage(outcome.message, 10000)
            QMessageBox.information(w, "Send results to PACS", as_literal(outcome.message))
        self.last_outcome = outcome

    def shutdown(self) -> None:
        self.work.shutdown()
