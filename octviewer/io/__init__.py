"""Reading and writing OCT volumes: one entry point, one error type.

``load_volume`` decides the format through the registry in ``formats`` (content first, suffix
second), calls the one reader for that format, and checks the result; ``limits`` holds what every
reader checks before decoding. Any failure inside a reader,
including exceptions raised by third-party libraries on corrupt input, leaves as a
``VolumeReadError`` naming the file, so the viewer can show it and carry on.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core import OctVolume
from .errors import VolumeReadError
from .formats import FORMATS, SUPPORTED_FORMATS, detect, dialog_filters, find_volumes, is_volume_file
from .limits import byte_budget, check_dimensions
from .loading import describe_failure, load_volume, validate_volume


def save_volume(volume: OctVolume, path: str | os.PathLike, **options) -> Path:
    """Write a volume as DICOM OPT (``.dcm``) or NumPy (``.npz``), chosen by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".dcm", ".dicom"):
        from .dicom import write_dicom
        write_dicom(volume, path, **options)
    elif suffix == ".npz":
        from .stacks import write_npz
        write_npz(volume, path)
    else:
        raise ValueError(f"cannot write {path.name}: use .dcm (DICOM OPT) or .npz")
    return path


__all__ = ["FORMATS", "SUPPORTED_FORMATS", "VolumeReadError", "byte_budget", "check_dimensions", "describe_failure",
           "detect", "dialog_filters", "find_volumes", "is_volume_file", "load_volume", "open_volume_progressive",
           "save_volume", "validate_volume"]


def __getattr__(name):
    # The progressive reader pulls in concurrency machinery; import it only when asked for.
    if name == "open_volume_progressive":
        from .progressive import open_volume_progressive
        return open_volume_progressive
    raise AttributeError(name)
