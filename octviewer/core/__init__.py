"""Plain data objects shared by every layer (no Qt, no torch)."""

from .volume import INTENSITY_TRANSFORMS, LATERALITIES, SCAN_PATTERNS, BscanPosition, Localizer, OctVolume, Spacing

__all__ = [
    "INTENSITY_TRANSFORMS",
    "LATERALITIES",
    "SCAN_PATTERNS",
    "BscanPosition",
    "Localizer",
    "OctVolume",
    "Spacing",
]
