"""Plain data objects shared by every layer (no Qt, no torch)."""

from .cancel import Cancelled
from .prediction import VF_BASELINE_WORDS, VF_INDICES, BatchResult, Prediction, outside_normal, weak_vf_indices
from .volume import INTENSITY_TRANSFORMS, LATERALITIES, SCAN_PATTERNS, BscanPosition, Localizer, OctVolume, Spacing

__all__ = [
    "Cancelled",
    "VF_INDICES",
    "BatchResult",
    "Prediction",
    "outside_normal",
    "weak_vf_indices",
    "VF_BASELINE_WORDS",
    "INTENSITY_TRANSFORMS",
    "LATERALITIES",
    "SCAN_PATTERNS",
    "BscanPosition",
    "Localizer",
    "OctVolume",
    "Spacing",
]
