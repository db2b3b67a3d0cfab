"""File > Open from PACS…: search the archive, pick a series, retrieve it (progress, Cancel) and open it.

The list shows studies (date, modalities, description, and the patient ID and name the user searched
for: this is the clinician's own screen); a study's series are fetched when it is expanded. A
retrieved OCT series opens in the window and is analysed like any file; a retrieved visual field
(OPV) is read and its indices are shown here. A whole study (a study selected, not a series) is
retrieved into its own folder and opened in the study browser beside the study folders, where its
scans are listed by eye and visit with their measured visual fields.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from .work import Failure, PacsWork

STUDY, SERIES = Qt.UserRole, Qt.UserRole + 1


def _date(text: str, what: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a date: write it as YYYY-MM-DD") from None


class OpenFromPacsDialog(QDialog):
    opened = Signal(str)  # the retrieved scan's path, handed to the window
    study_opened = Signal(str)  # the retrieved study's folder, for the study browser

    def __init__(self, parent, settings_source):
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.settings_source = settings_source  # callable: the current PacsSettings (may raise PacsConfigError)
        self.resize(760, 520)
        self.patient_id, self.name = QLineEdit(), QLineEdit()
        self.date_from, self.date_to = QLineEdit(), QLineEdit()
        for edit, hint in ((self.patient_id, "patient ID"), (self.name, "FAMILY^GIVEN, * and ? as wildcards"),
                           (self.date_from, "YYYY-MM-DD"), (self.date_to, "YYYY-MM-DD")):
            edit.setPlaceholderText(hint)
        self.opt, self.opv = QCheckBox("OCT (OPT)"), QCheckBox("Visual field (OPV)")
        self.opt.setChecked(True)
        self.opv.setChecked(True)
        form = QFormLayout()
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Name", self.name)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow("Study date", dates)
        kinds = QHBoxLayout()
        kinds.addWidget(self.opt)
        kinds.addWidget(self.opv)
        kinds.addStretch(1)
        form.addRow("Modality", kinds)
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        self.results = QTreeWidget()
        self.results.setHeaderLabels(["Date", "Kind", "Eye", "Description", "Patient"])
        self.results.setColumnWidth(0, 180)
        self.results.itemExpanded.connect(self._expanded)
        self.results.itemSelectionChanged.connect(self._selection)
        self.retrieve_button = QPushButton("Retrieve and open")
        self.retrieve_button.setEnabled(False)
        self.retrieve_button.clicked.connect(self.retrieve)
        self.status = QLabel("Search by patient ID, name or date; then choose a series.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.PlainText)
        self.work = PacsWork(self)
        self.work.finished.connect(self._finished)
        self.work.stopped.connect(lambda: self._say("Stopped: nothing was kept of the unfinished retrieve."))
        self.work.slot.progress.connect(self._progress)
        buttons = QHBoxLayout()
        buttons.addWidget(self.search_button)
        buttons.addStretch(1)
        buttons.addWidget(self.work.slot.bar)
        buttons.addWidget(self.work.slot.cancel_button)
        buttons.addWidget(self.retrieve_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._pending = None  # what the running request is: ("studies",), ("series", item), ("retrieve", hit)

    # -- helpers ----------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _settings(self):
        from octviewer.pacs import PacsConfigError

        try:
            return self.settings_source()
        except PacsConfigError as exc:
            self._say(f"PACS settings: {exc} (File > PACS settings…)")
            return None

    def _modalities(self) -> tuple[str, ...]:
        return tuple(m for m, box in (("OPT", self.opt), ("OPV", self.opv)) if box.isChecked())

    def _start(self, what, fn, name: str) -> None:
        self._pending = what
        self.search_button.setEnabled(False)
        self.retrieve_button.setEnabled(False)
        self.work.start(fn, name)

    # -- search -----------------------------------------------------------------------------------
    def search(self) -> None:
        from octviewer.pacs import find_studies

        settings = self._settings()
        if settings is None or self.work.busy():
            return
        try:
            date_from = _date(self.date_from.text(), "The first date")
            date_to = _date(self.date_to.text(), "The last date")
        except ValueError as exc:
            self._say(str(exc))
            return
        patient_id, name, modalities = self.patient_id.text().strip(), self.name.text().strip(), self._modalities()
        self.results.clear()
        self._say("Searching…")
        self._start(("studies",), lambda progress, cancel: find_studies(
            settings, patient_id, name, date_from, date_to, modalities), "pacs-find")

    def _show_studies(self, hits) -> None:
        for hit in hits:
            item = QTreeWidgetItem([str(hit.study_date or "no date"), "/".join(hit.modalities) or "study",
                                    "", hit.description, f"{hit.patient_id}  {hit.patient_name}".strip()])
            item.setData(0, STUDY, hit)
            item.setChildIndicatorPolicy(QTreeWidgetItem.ShowIndicator)
            self.results.addTopLevelItem(item)
        self._say(f"{len(hits)} stud{'y' if len(hits) == 1 else 'ies'} found" +
                  ("; expand one to see its series." if hits else "."))

    def _expanded(self, item) -> None:
        from octviewer.pacs import find_series

        hit = item.data(0, STUDY)
        if hit is None or item.childCount() or self.work.busy():
            return
        settings = self._settings()
        if settings is None:
            return
        modalities = self._modalities()
        self._say("Listing the study's series…")
        self._start(("series", item), lambda progress, cancel: find_series(settings, hit.study_uid, modalities),
                    "pacs-series")

    def _show_series(self, item, hits) -> None:
        for hit in hits:
            label = f"series {hit.series_number}" if hit.series_number is not None else "series"
            child = QTreeWidgetItem([f"{hit.series_date or ''} {label}".strip(), hit.modality, hit.laterality,
                                     f"{hit.description} ({hit.n_instances or '?'} instance(s))".strip(), ""])
            child.setData(0, SERIES, hit)
            item.addChild(child)
        self._say(f"{len(hits)} series; choose one and Retrieve." if hits else "No series of these kinds.")

    def _selection(self) -> None:
        item = self.results.currentItem()
        study = item is not None and item.data(0, STUDY) is not None
        self.retrieve_button.setText("Retrieve study into the study browser" if study else "Retrieve and open")
        self.retrieve_button.setEnabled(item is not None and not self.work.busy())

    # -- retrieve ---------------------------------------------------------------------------------
    def retrieve(self) -> None:
        from octviewer.pacs import retrieve, scan_files

        item = self.results.currentItem()
        hit = None if item is None else item.data(0, SERIES) or item.data(0, STUDY)
        settings = self._settings()
        if hit is None or settings is None or self.work.busy():
            return
        series_uid = getattr(hit, "series_uid", None)  # None: the whole study
        study = hit if series_uid is None else item.parent().data(0, STUDY)
        patient_id = study.patient  # only the chosen patient's instances are kept (A14-2, A14-19)

        def run(progress, cancel):
            got = retrieve(settings, hit.study_uid, series_uid,
                           progress=lambda done, total: progress(done, total or 0), cancel=cancel,
                           patient_id=patient_id)
            return got, scan_files(got.files)

        self._say("Retrieving…")
        self._start(("retrieve", hit), run, "pacs-retrieve")

    def _progress(self, done: int, total: int) -> None:
        if self._pending and self._pending[0] == "retrieve":
            self._say(f"Retrieving: {done} of {total or '?'} instance(s)")

    def _show_retrieved(self, hit, got, scans) -> None:
        if not hasattr(hit, "series_uid"):
            self._say(f"{got.message}; opening the study in the study browser.")
            self.study_opened.emit(str(got.folder))
            self.accept()
            return
        if scans:
            self._say(f"{got.message}; opening the scan.")
            self.opened.emit(str(scans[0]))
            self.accept()
            return
        if hit.modality == "OPV":
            from octviewer.study import read_opv

            values = []
            for path in got.files:
                vf = read_opv(path)
                parts = [f"{k.upper()} {v:.1f}" for k, v in vf.as_dict().items()]
                values.append(f"{vf.eye} {vf.date or ''}: {', '.join(parts) or 'no indices'}")
            self._say(f"{got.message}: visual field {'; '.join(values)}. Saved in {got.folder} "
                      "(File > Open study folder shows it beside the scans).")
            return
        self._say(f"{got.message} to {got.folder}, but none is an OCT scan the viewer opens.")

    def _finished(self, result) -> None:
        what, self._pending = self._pending, None
        self.search_button.setEnabled(True)
        self._selection()
        if isinstance(result, Failure):
            self._say(result.message)
            return
        if what[0] == "studies":
            self._show_studies(result)
        elif what[0] == "series":
            self._show_series(what[1], result)
        elif what[0] == "retrieve":
            try:
                self._show_retrieved(what[1], *result)
            except Exception as exc:  # a retrieved VF that does not read: its reader's message
                self._say(str(exc))

    def done(self, code: int) -> None:  # noqa: D401 (Qt's name) closing stops the request
        self.work.slot.cancel()
        super().done(code)
