"""Structure analysis: layer segmentation, peripapillary RNFL, normative comparison, disc measures.

numpy/scipy/OpenCV only (no Qt, no torch), so the viewer's workers, ``octviewer-measure`` and
``octviewer-predict`` on a GPU server all run the same code.
"""

from .analysis import StructureReport, measure
from .columns import COLUMNS, report_columns, structure_columns
from .quality import Quality, assess_quality, gate
from .segmentation import Segmentation, segment

__all__ = ["COLUMNS", "Quality", "Segmentation", "StructureReport", "assess_quality", "gate", "measure",
           "report_columns", "segment", "structure_columns"]
