"""Studies: many scans of many patients, indexed by patient, eye and visit, with measured VF and trends.

No Qt and no torch here: the GUI widgets in ``octviewer/gui/study_panel.py``, ``ou_view.py`` and
``trend_view.py`` draw what this package computes.

Names are imported lazily (PEP 562): ``python -m octviewer.study.vf`` runs a module that this
package would otherwise have imported already, and runpy warned ("found in sys.modules after import
of package 'octviewer.study', but prior to execution") before running a second copy of it.
"""

from ..core.lazy import lazy_getattr

# Imported at once, unlike the rest: the function ``trend`` shares its name with its module, and the
# module, imported later by anyone, would otherwise become the package's ``trend``.
from .trend import MIN_VISITS, WORSENING_PER_YEAR, Trend, trend

_NAMES = {
    "IndexCancelled": "index", "ScanEntry": "index", "StudyIndex": "index", "Visit": "index",
    "index_folder": "index", "index_manifest": "index",
    "VF_MATCH_DAYS": "vf", "VfComparison": "vf", "VfMeasurement": "vf", "VfReadError": "vf", "compare_vf": "vf",
    "read_opv": "vf", "read_vf_table": "vf", "write_opv": "vf",
}

__all__ = ["IndexCancelled", "MIN_VISITS", "ScanEntry", "StudyIndex", "Trend", "VF_MATCH_DAYS", "VfComparison",
           "VfMeasurement", "VfReadError", "Visit", "WORSENING_PER_YEAR", "compare_vf", "index_folder",
           "index_manifest", "read_opv", "read_vf_table", "trend", "write_opv"]


__getattr__ = lazy_getattr(__name__, _NAMES, globals())
