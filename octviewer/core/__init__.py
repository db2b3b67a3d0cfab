"""Plain data objects shared by every layer (no Qt, no torch)."""

from .lazy import lazy_getattr

# Imported when first used (PEP 562), as in the package above: ``core.stop`` and ``core.files`` load
# without numpy (attack run 11, A11-7).
_NAMES = {"Cancelled": "cancel",
          **dict.fromkeys(("VF_BASELINE_WORDS", "VF_INDICES", "BatchResult", "Prediction", "outside_normal",
                           "weak_vf_indices"), "prediction"),
          **dict.fromkeys(("INTENSITY_TRANSFORMS", "LATERALITIES", "SCAN_PATTERNS", "BscanPosition", "Localizer",
                           "OctVolume", "Spacing"), "volume")}

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


__getattr__ = lazy_getattr(__name__, _NAMES, globals())
