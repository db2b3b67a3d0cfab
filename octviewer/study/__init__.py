"""Studies: many scans of many patients, indexed by patient, eye and visit, with measured VF and trends.

No Qt and no torch here: the GUI widgets in ``octviewer/gui/study_panel.py``, ``ou_view.py`` and
``trend_view.py`` draw what this package computes.
"""

from .index import IndexCancelled, ScanEntry, StudyIndex, Visit, index_folder, index_manifest
from .trend import MIN_VISITS, WORSENING_PER_YEAR, Trend, trend
from .vf import VF_MATCH_DAYS, VfComparison, VfMeasurement, VfReadError, compare_vf, read_opv, read_vf_table, write_opv

__all__ = ["IndexCancelled", "MIN_VISITS", "ScanEntry", "StudyIndex", "Trend", "VF_MATCH_DAYS", "VfComparison",
           "VfMeasurement", "VfReadError", "Visit", "WORSENING_PER_YEAR", "compare_vf", "index_folder",
           "index_manifest", "read_opv", "read_vf_table", "trend", "write_opv"]
