"""OCT glaucoma viewer: read optic-disc OCT, estimate glaucoma and visual-field indices, show CAMs.

Research use only; not a medical device.
"""

from .core.lazy import lazy_getattr

__version__ = "0.1.0"

# Imported when first used (PEP 562), so that an entry point reaches its Ctrl-C/SIGTERM handlers
# (``core.stop``) before numpy and the readers load: a stop in that first 0.1 s was a traceback
# (attack run 11, A11-7).
_NAMES = {"OctVolume": "core", "Spacing": "core", "VolumeReadError": "io", "load_volume": "io", "save_volume": "io"}

__all__ = ["OctVolume", "Spacing", "VolumeReadError", "__version__", "load_volume", "save_volume"]


__getattr__ = lazy_getattr(__name__, _NAMES, globals())
