"""OCT glaucoma viewer: read optic-disc OCT, estimate glaucoma and visual-field indices, show CAMs.

Research use only; not a medical device.
"""

from .core import OctVolume, Spacing
from .io import VolumeReadError, load_volume, save_volume

__version__ = "0.1.0"

__all__ = ["OctVolume", "Spacing", "VolumeReadError", "__version__", "load_volume", "save_volume"]
