"""The clinic's archive: query and retrieve scans over DICOM, send results back as DICOM SR and PDF.

Qt-free (the dialogs live in ``octviewer/gui/pacs``). Beside ``pipeline`` and ``study`` in the
layers: it imports core, io, structure, pipeline and study, never torch or Qt.
"""

from .config import PacsConfigError, PacsSettings, data_folder, load_settings, save_settings, settings_path
from .net import (
    MODALITIES,
    PacsError,
    PacsRejected,
    PacsTimeout,
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

__all__ = ["MODALITIES", "PacsConfigError", "PacsError", "PacsRejected", "PacsSettings", "PacsTimeout",
           "PacsUnreachable", "Retrieved", "SeriesHit", "StudyHit", "data_folder", "echo", "find_series",
           "find_studies", "load_settings", "retrieve", "retrieved_folder", "save_settings", "settings_path",
           "store"]
