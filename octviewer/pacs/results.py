"""From an analysed scan to the objects that go back to the archive, and what to open after a retrieve."""

from __future__ import annotations

import os
from pathlib import Path

import pydicom
from pydicom import valuerep
from pydicom.dataset import Dataset

from .sr import PATIENT_STUDY, TYPE2, SrError, build_sr, encapsulated_pdf


def model_identity(model) -> tuple[str, str]:
    """(name, version) of a loaded model (``Predictor.model`` or ``LoadedModel``) for the report's
    algorithm identification: the version is the file's creation time and format, which change
    with every retraining even when the name is kept."""
    meta = getattr(model, "meta", None) or {}
    provenance = meta.get("provenance", {}) or {}
    created = str(provenance.get("created", "") or "")
    version = f"{created or 'creation time not recorded'}; model format {meta.get('format_version', '?')}"
    return str(getattr(model, "name", "") or meta.get("name", "") or "unnamed model"), version


def model_trust(model) -> str:
    """What the model file's signature says, for the report: the warning every result of an untrusted
    model carries ("model file not verified: ..."), or who signed a trusted one; "" when unknown."""
    trust = getattr(model, "trust", None)
    if trust is None:
        return ""
    return trust.warning or trust.text()


def source_dataset(path) -> Dataset:
    """The scan's DICOM headers (no pixels), for the report's patient, study and references.

    The dates and times the report copies are checked here, naming the file and the field: a
    PatientBirthDate of 19501399 ended ``send`` after the whole analysis with only pydicom's
    "ValueError: month must be in 1..12" (attack run 3, F23). The value is not shown (a birth date
    identifies a patient)."""
    from ..io.errors import VolumeReadError

    try:
        source = dicom_headers(path)
    except VolumeReadError as exc:  # a FIFO, a deflate bomb, a header of millions of elements
        raise SrError(str(exc)) from None
    except Exception:
        raise SrError(f"{Path(path).name}: the scan is not a DICOM file, so its results cannot be filed in the "
                      "archive with it (open the scan from the PACS or from its DICOM export)") from None
    kinds = {"DA": ("a date", valuerep.DA), "DT": ("a date and time", valuerep.DT), "TM": ("a time", valuerep.TM)}
    for keyword in dict.fromkeys(PATIENT_STUDY + TYPE2):
        element = source.data_element(keyword) if keyword in source else None
        if element is None or element.VR not in kinds or element.value in (None, ""):
            continue
        what, parse = kinds[element.VR]
        try:
            for value in (element.value if element.VM > 1 else [element.value]):
                parse(str(value))
        except (ValueError, TypeError, OverflowError):
            raise SrError(f"{Path(path).name}: {keyword} is not {what}, so the report cannot be filed "
                          "(correct the header at the archive)") from None
    if problem := patient_header_problem(source):
        raise SrError(f"{Path(path).name}: the scan's {problem}, so its results cannot be filed under a patient "
                      "(correct the header at the archive)")
    return source


def patient_header_problem(source: Dataset) -> str:
    """Why the scan's PatientID or PatientName cannot head a report filed in the archive, or "" (the
    value not shown): the readers' rule (``io.loading.patient_problem``). ``send`` copied the patient
    module as it was, so an ID of two values (``MRN1\\MRN2``) filed the SR under two patients, one of
    them another's (attack run 11, A11-14), as did an ID holding a newline or a right-to-left override.
    A header without a PatientID (absent, empty or blanks) is refused too: the window filed an anonymised
    report and an SR under the archive's empty ID, the "patient" of every ID-less object (attack run 12, A12-9)."""
    from ..core.text import text_problem
    from ..io.loading import patient_problem

    if str(source.get("PatientID", "") or "").strip() == "":
        return "header has no PatientID"
    if problem := patient_problem(source.PatientID):
        return problem
    name = source.get("PatientName")
    if name not in (None, ""):
        if source.data_element("PatientName").VM > 1:
            return f"PatientName holds {source.data_element('PatientName').VM} values"
        return text_problem("PatientName", str(name))
    return ""


#: How an identified report names the scan it was made of, in its PDF metadata (CreatorTool): ``send --pdf``
#: files a PDF only beside the scan it names (attack run 11, A11-13).
REPORT_OF_SCAN = "octviewer report of scan sha256:"
#: ... and the model file that made it (its digest, ``LoadedModel.short_digest``): ``send --pdf`` files a PDF
#: only beside an SR of the same model (attack run 12, A12-13).
REPORT_BY_MODEL = "octviewer report by model sha256:"
#: ... and the analysis settings that decide its figures (``report_settings``), in brackets: ``send --pdf``
#: files a PDF only beside an SR analysed alike (attack run 13, A13-11).
REPORT_SETTINGS = "octviewer report settings ["


def report_reference(scan_path, model_digest: str = "", settings: str = "") -> str:
    """The PDF creator text naming ``scan_path`` (the first 16 hex digits of its bytes' SHA-256) and, when
    given, the model (``model_digest``: "sha256:<hex>", as ``short_digest`` and the card's ``file_digest``
    say it) and the analysis ``settings`` (``report_settings``), or "" where the scan is no single readable
    file (a folder of B-scans; such scans are not sent)."""
    from ..core.files import file_sha256

    try:
        scan = REPORT_OF_SCAN + file_sha256(scan_path)[:16] if Path(scan_path).is_file() else ""
    except OSError:
        return ""
    model = str(model_digest or "").removeprefix("sha256:")[:16]
    text = f"{scan} {REPORT_BY_MODEL}{model}" if scan and len(model) == 16 else scan
    return f"{text} {REPORT_SETTINGS}{settings}]" if text and settings else text


def report_settings(options) -> str:
    """The analysis settings a report names (``options``: a ``pipeline.ScanOptions``): the quality gate and
    the segmentation source, in the words of the batch CSV's ``settings`` column (``scan.analysis_settings``)."""
    from ..pipeline.scan import analysis_settings

    return ", ".join(analysis_settings(options))


def pdf_settings_problem(pdf: bytes, options) -> str:
    """Why the PDF ``pdf`` was not made with the analysis settings ``options`` (the send's), or "", naming
    what differs. The window's report made with the quality check off ("normal, 0.00") was filed beside
    the send's SR of the same scan refused by the check (attack run 13, A13-11)."""
    import re

    found = re.findall(re.escape(REPORT_SETTINGS.encode()) + rb"([^\]<>]{1,300})\]", pdf)
    if not found:
        return ("the report does not name the analysis settings it was made with (a report exported before "
                "reports named them): export it again from the window, or send without --pdf")
    made = found[0].decode("utf-8", "replace").split(", ")
    wanted = report_settings(options).split(", ")
    gate = next((p for p in made if p.startswith("quality gate ")), "")
    differs = []
    if gate != wanted[0]:
        differs.append(f"made with the quality check {gate.removeprefix('quality gate ') or 'not named'}; send "
                       f"analyses with it {'on' if options.gate else 'off'}")
    segmentation = next((p for p in made if p.endswith("segmentation") or "segmentation where" in p), "")
    if segmentation != wanted[1]:
        differs.append(f"made with {segmentation or 'no segmentation named'}; send analyses with {wanted[1]}")
    if differs:
        return ("; ".join(differs) + ": export the report again from the window with those settings (Analysis > "
                "Quality check, the segmentation source), or send without --pdf")
    return ""


def pdf_model_problem(pdf: bytes, model) -> str:
    """Why the PDF ``pdf`` was not made with ``model`` (a loaded model), or "". ``send --pdf`` filed the
    window's report of one model beside the SR of another (the command's default): the record read
    "normal" in the PDF and "Glaucoma" in the SR (attack run 12, A12-13)."""
    import re

    found = {m.decode() for m in re.findall(re.escape(REPORT_BY_MODEL.encode()) + rb"([0-9a-f]{16})", pdf)}
    if not found:
        return ("the report does not name the model that made it (a report exported before reports named their "
                "model, or made without one): export it again from the window, or send without --pdf")
    if model.short_digest.removeprefix("sha256:") not in found:
        return (f"made with another model (sha256:{sorted(found)[0]}) than this send's {model.name} "
                f"({model.short_digest}); give --model the file the report was made with, or send without --pdf")
    return ""


def pdf_problem(pdf: bytes, scan_path) -> str:
    """Why the PDF ``pdf`` is not the identified report octviewer made of ``scan_path``, or "". Any PDF
    was filed in the scan's patient record: another patient's report read "glaucoma" beside this
    patient's SR (attack run 11, A11-13). The reference sits in the PDF's XMP metadata, which Qt writes
    uncompressed; an anonymised report carries none (the archive's copy must name the patient)."""
    import re

    found = set(re.findall(re.escape(REPORT_OF_SCAN.encode()) + rb"([0-9a-f]{16})", pdf))
    if not found:
        return ("not an identified report made by octviewer (export the scan's PDF with its patient ID from "
                "the window, or send without --pdf)")
    if report_reference(scan_path).encode()[len(REPORT_OF_SCAN):] not in found:
        return "the report of another scan, not of this one"
    return ""


def dicom_headers(path, **options) -> Dataset:
    """A DICOM file's headers (no pixels), read as the scan readers read a file: opened with
    ``open_regular`` and checked with ``check_deflated_dicom`` before pydicom sees a byte.

    ``send`` read the scan's headers with ``pydicom.dcmread(path)`` before the reader's checks ran:
    a FIFO as the scan blocked it for good (attack run 11, A11-5), and a deflated data set of 0.5 MB
    was inflated whole to 500 MB, 1.7 GB at its peak (A11-6). VolumeReadError naming the file."""
    from ..io.limits import check_deflated_dicom, open_regular

    with open_regular(path) as f:
        check_deflated_dicom(f, path, os.fstat(f.fileno()).st_size)
        return pydicom.dcmread(f, stop_before_pixels=True, **options)


def results_datasets(source_path, result, model_name: str, model_version: str,
                     pdf: bytes | None = None, trust: str = "") -> list[Dataset]:
    """The SR (always; ``trust``: ``model_trust`` of the model) and the Encapsulated PDF (when a PDF is
    given), in the scan's study."""
    source = source_dataset(source_path)
    out = [build_sr(source, result, model_name, model_version, trust=trust)]
    if pdf is not None:
        out.append(encapsulated_pdf(source, pdf))
    return out


def scan_files(files) -> list[Path]:
    """The OCT scans among retrieved files (OPV, SR and PDF objects are not scans), in order."""
    scans = []
    for path in files:
        try:
            ds = dicom_headers(path, specific_tags=["Modality"])
        except Exception:
            continue
        if str(ds.get("Modality", "")) == "OPT":
            scans.append(Path(path))
    return sorted(scans)
