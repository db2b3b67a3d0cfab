"""File > Export PDF report and File > Export results as CSV for the scan on screen.

Both read the viewer state only (the scan, its result or reason, its structure report) plus the
model's metadata and, for a study scan, the measured visual field beside the estimate. Each asks
whether to identify the patient, and each says what really happened: "saved to" only when the
file is there, otherwise why not.
"""

from __future__ import annotations

import logging
import os
import traceback

from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..dialogs import as_literal, ask_or_cancel, qimage
from .targets import target_problem

log = logging.getLogger(__name__)

STILL_MEASURING = ("The structure measurement of this scan is still running (it follows the network's result). "
                   "Export again in a moment, so that the export includes it.")
NOTHING_YET = "Nothing to export yet: open a scan and wait for its analysis or its structure measurement."


def default_name(date, eye, kind: str) -> str:
    """The name an export dialog offers: visit date, eye and kind ("2024-04-02_OD_report.pdf"). Every export
    offered "report.pdf", so two eyes' reports overwrote each other (walk-through). Never the file's stem:
    clinic file names carry patients' names and IDs; a date or eye that is not known (or, on an anonymised
    export, not to be said: the caller passes None) is left out."""
    parts = [date.strftime("%Y-%m-%d")] if date is not None and hasattr(date, "strftime") else []
    parts += [eye] if eye in ("OD", "OS", "OU") else []
    return "_".join(parts + [kind])


def files_in_use(window) -> list[str]:
    """The files no export may replace: the scan on screen (a B-scan folder: each of its files) and, with a
    study open, its manifest or folder, the CSVs of the folder (its manifests and visual-field tables), its
    scans (with the copies it uses once, A10-19), its visual-field files and the files it lists as problems
    (damaged scans kept for a repair). The
    batch commands refuse an output that names an input; the window's Export CSV to the open scan's own name
    truncated the scan (A7-3), and a B-scan of the folder on screen, the study's manifest.csv and a damaged
    scan were still replaced (attack run 8, A8-1, A8-2)."""
    from octviewer.io.formats import walk_files

    volume, index = window.state.volume, window.study.index
    paths = [volume.source] if volume is not None and volume.source else []
    if paths and os.path.isdir(paths[0]):
        try:
            paths += [entry.path for entry in os.scandir(paths[0])]
        except OSError:  # no longer readable: nothing of it to protect beyond the folder itself
            pass
    if index is not None:
        paths += [index.root, *(s.path for s in index.scans), *index.copies, *(m.source for m in index.vf),
                  *(path for path, _ in index.problems)]
        if os.path.isdir(index.root):
            paths += [str(f) for f in walk_files(index.root, hidden=False)[0] if f.suffix.lower() == ".csv"]
    return paths


def log_internal_error(what: str, exc: Exception) -> None:
    """Log an export's unexpected error for a bug report: its type and where it was raised, not its message nor the
    path, which may name the patient (clinic file names carry names and birth dates; the dialog shows them). An
    OU report that failed so left no file, no dialog, a traceback on stderr only (walk-through H82, W18)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = "; ".join(f"{os.path.basename(f.filename)}:{f.lineno} in {f.name}" for f in frames[-3:])
    log.error("%s export failed: internal error %s (at %s)", what, type(exc).__name__, where or "unknown")


def write_export(window, what: str, path: str, write, kind: str) -> str | None:
    """Run ``write`` (which writes ``path``) unless ``targets.target_problem`` refuses the path; say the
    outcome: "saved to" in the status bar only when the file is there, else a dialog naming the file and
    the reason (and no earlier export's "saved to" left standing)."""
    predictor = window.controller.predictor
    problem = target_problem(path, files_in_use(window), predictor.model.path if predictor else None, kind)
    reason = f"it {problem}" if problem else ""
    if not reason:
        try:
            write()
        except (OSError, UnicodeError) as exc:  # UnicodeError: a text no encoder here takes; the old file stays
            reason = str(exc)
        except Exception as exc:  # a bug or the unforeseen: said and logged, never silent (walk-through H82, W18)
            log_internal_error(what, exc)
            reason = f"an internal error: {type(exc).__name__}: {exc}"
    if reason:
        window.statusBar().clearMessage()  # not an earlier export's "saved to"
        QMessageBox.warning(window, "Export", as_literal(f"Cannot write {path}: {reason}"))
        return None
    window.statusBar().showMessage(f"{what} saved to {path}", 10000)
    window.settings.exported(path)
    return path


def save_path(window, title: str, name: str, kind: str) -> str | None:
    """The file a save dialog gives for an export offered as ``name``, the dialog started in the folder of the
    last export (``WindowSettings.export_folder``); None when called off."""
    folder = window.settings.export_folder()
    path, _ = QFileDialog.getSaveFileName(window, title, os.path.join(folder, name) if folder else name, kind)
    return path or None


class ScanExports:
    def __init__(self, window):
        self.window = window
        self.state = window.state

    def exportable(self) -> bool:
        """A network result, or at least the structure measurement (a circle scan, which the network
        does not read, or a scan the quality gate refused, is exported with its measurement and the
        reason it has no probability). Not while the measurement is on its way: the export would lack it."""
        s = self.state
        if s.measuring:
            QMessageBox.information(self.window, "Export", STILL_MEASURING)
            return False
        if s.prediction is not None or (s.volume is not None and s.structure is not None):
            return True
        QMessageBox.information(self.window, "Export", NOTHING_YET)
        return False

    def _target(self, title: str, name: str, kind: str, question: str) -> tuple[str | None, bool]:
        """(path chosen or None, whether the user wants the patient identified). The question comes
        first: the offered file name carries the visit date only on an identified export (a date is an
        identifier, and an anonymised report's name said it while its body withheld it)."""
        identify = ask_or_cancel(self.window, "Patient identifier", question)
        if identify is None:  # Cancel or Esc: the export is called off, not made anonymised
            return None, False
        v = self.state.volume
        offered = default_name(v.acquired if identify else None, v.laterality, name)
        return save_path(self.window, title, offered, kind), identify

    def pdf(self, path: str | None = None, patient_id: str | None = None) -> str | None:
        """PDF report of the scan on screen. Anonymised unless the user asks for the patient ID:
        then neither the ID nor the scan date is printed."""
        from .scan_pdf import write_report

        if not self.exportable():
            return None
        if path is None:
            path, identify = self._target("Export PDF report", "report.pdf",
                                          "PDF (*.pdf)",
                                          "Print the patient ID and scan date on the report?\n(No = anonymised report)")
            if path is None:
                return None
            patient_id = self.window.study.patient_line() if identify else None  # the study's identity (W2)
        w = self.window
        return write_export(w, "Report", path, lambda: write_report(
            path, self.state, self.report_images(), w.models.model_meta(), patient_id,
            sections=self.report_sections(), measured=w.study.comparison_html(dated=patient_id is not None),
            checks=w.study.checks_html(dated=patient_id is not None)), "pdf")

    def csv(self, path: str | None = None) -> str | None:
        """The volume's result, then one row per B-scan (numbered from 1), with file, eye and date."""
        from .results_csv import write_results_csv

        if not self.exportable():
            return None
        identify = True
        if path is None:
            path, identify = self._target("Export results", "results.csv",
                                          "CSV (*.csv)",
                                          "Write the file name and scan date into the CSV?\n(No = anonymised: both "
                                          "withheld; file names often carry the patient's name)")
            if path is None:
                return None
        s = self.state
        predictor = self.window.controller.predictor
        model = predictor.model if predictor else None
        return write_export(self.window, "Results", path, lambda: write_results_csv(
            path, s.volume, s.prediction, s.structure, reason=s.reason or "", model_name=model.name if model else "",
            vf_names=model.vf_names if model else (), identify=identify,
            model_digest=model.short_digest if model else "", model_signature=model.trust.text() if model else "",
            synthetic_model=bool(model and model.meta.synthetic_data),
            patient_id=self.window.study.patient_line() if identify else None,
            measured_vf=self.window.study.measured_vf(), made_with=getattr(s, "made_with", None),
            study_checks=self.window.study.report_checks(identify)), "csv")

    def report_images(self) -> dict[str, QImage]:
        """The report's figures, rendered from the state (never grabbed from the screen)."""
        from ..structure.page import enface_layers, structure_page_image
        from ..viewer import render

        s = self.state
        shown = render.enface_content(s)  # the RNFL map on the en-face, as on screen (the caption names it)
        layers = enface_layers(s.structure) if shown in ("thickness", "deviation") else None
        rnfl_map = None if layers is None else layers[0 if shown == "thickness" else 1]
        images = {"bscan": qimage(render.bscan_image(s)), "enface": qimage(render.enface_image(s, map_rgba=rnfl_map)),
                  "curve": qimage(render.curve_image(s)), "legend": qimage(render.legend_image())}
        if s.structure is not None:
            images["structure"] = structure_page_image(s.structure, 1240, 900, text=False)  # text: report_sections
        return images

    def report_sections(self) -> list[str]:
        """Extra report sections (HTML) after the images: the structure page, when measured. (The
        measured VF of a study scan goes under the estimates: ``window.study.comparison_html()``.)"""
        from .scan_pdf import structure_section

        return [structure_section(self.state.structure)] if self.state.structure is not None else []
