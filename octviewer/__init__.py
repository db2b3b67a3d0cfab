"""OCT glaucoma viewer: read optic-disc OCT, estimate glaucoma and visual-field indices, show CAMs.

Research use only; not a medical device.
"""

from importlib import import_module

__version__ = "0.1.0"

# Imported when first used (PEP 562), so that an entry point reaches its Ctrl-C/SIGTERM handlers
# (``core.stop``) before numpy and the readers load: a stop in that first 0.1 s was a traceback
# (attack run 11, A11-7).
_NAMES = {"OctVolume": "core", "Spacing": "core", "VolumeReadError": "io", "load_volume": "io", "save_volume": "io"}

__all__ = ["OctVolume", "Spacing", "VolumeReadError", "__version__", "load_volume", "save_volume"]


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value
