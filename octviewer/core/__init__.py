"""Plain data objects shared by every layer (no Qt, no torch)."""

from importlib import import_module

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


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value
