"""Plain data objects shared by every layer (no Qt, no torch)."""

from .cancel import Cancelled
from .prediction import VF_INDICES, BatchResult, Prediction, outside_normal
from .volume import INTENSITY_TRANSFORMS, LATERALITIES, SCAN_PATTERNS, BscanPosition, Localizer, OctVolume, Spacing

__all__ = [
    "Cancelled",
    "VF_INDICES",
    "BatchResult",
    "Prediction",
    "outside_normal",
    "INTENSITY_TRANSFORMS",
    "LATERALITIES",
    "SCAN_PATTERNS",
    "BscanPosition",
    "Localizer",
    "OctVolume",
    "Spacing",
]
