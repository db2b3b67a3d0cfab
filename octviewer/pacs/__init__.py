"""The clinic's archive: query and retrieve scans over DICOM, send results back as DICOM SR and PDF.

Qt-free (the dialogs live in ``octviewer/gui/pacs``). Beside ``pipeline`` and ``study`` in the
layers: it imports core, io, structure, pipeline and study, never torch or Qt.
"""

from .config import PacsConfigError, PacsSettings, data_folder, load_settings, save_settings, settings_path
from .net import (
    MODALITIES,
    PacsError,
    PacsRefused,
    PacsRejected,
    PacsTimeout,
    PacsTlsFailed,
    PacsUnreachable,
    Retrieved,
    SeriesHit,
    StudyHit,
    echo,
    find_series,
    find_studies,
    retrieve,
    retrieved_folder,
    store,
)
from .outbox import Outbox, SendOutcome
from .results import model_identity, results_datasets, scan_files, source_dataset
from .sr import SrError, build_sr, encapsulated_pdf, sr_values

__all__ = ["MODALITIES", "Outbox", "PacsConfigError", "PacsError", "PacsRefused", "PacsRejected", "PacsSettings",
           "PacsTimeout", "PacsTlsFailed", "PacsUnreachable", "Retrieved", "SendOutcome", "SeriesHit", "SrError",
           "StudyHit", "build_sr", "data_folder", "echo", "encapsulated_pdf", "find_series", "find_studies",
           "load_settings", "model_identity", "results_datasets", "retrieve", "retrieved_folder", "save_settings",
           "scan_files", "settings_path", "source_dataset", "sr_values", "store"]
