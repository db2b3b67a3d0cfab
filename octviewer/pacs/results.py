"""From an analysed scan to the objects that go back to the archive, and what to open after a retrieve."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from .sr import SrError, build_sr, encapsulated_pdf


def model_identity(model) -> tuple[str, str]:
    """(name, version) of a loaded model (``Predictor.model`` or ``LoadedModel``) for the report's
    algorithm identification: the version is the file's creation time and format, which change
    with every retraining even when the name is kept."""
    meta = getattr(model, "meta", None) or {}
    provenance = meta.get("provenance", {}) or {}
    created = str(provenance.get("created", "") or "")
    version = f"{created or 'creation time not recorded'}; model format {meta.get('format_version', '?')}"
    return str(getattr(model, "name", "") or meta.get("name", "") or "unnamed model"), version


def source_dataset(path) -> Dataset:
    """The scan's DICOM headers (no pixels), for the report's patient, study and references."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        raise SrError(f"{Path(path).name}: the scan is not a DICOM file, so its results cannot be filed in the "
                      "archive with it (open the scan from the PACS or from its DICOM export)") from None


def results_datasets(source_path, result, model_name: str, model_version: str,
                     pdf: bytes | None = None) -> list[Dataset]:
    """The SR (always) and the Encapsulated PDF (when a PDF is given), in the scan's study."""
    source = source_dataset(source_path)
    out = [build_sr(source, result, model_name, model_version)]
    if pdf is not None:
        out.append(encapsulated_pdf(source, pdf))
    return out


def scan_files(files) -> list[Path]:
    """The OCT scans among retrieved files (OPV, SR and PDF objects are not scans), in order."""
    scans = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
        except Exception:
            continue
        if str(ds.get("Modality", "")) == "OPT":
            scans.append(Path(path))
    return sorted(scans)
