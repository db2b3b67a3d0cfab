"""Reading and writing OCT volumes: one entry point, one error type.

``load_volume`` decides the format through the registry in ``formats`` (content first, suffix
second), calls the one reader for that format, and checks the result; ``limits`` holds what every
reader checks before decoding. Any failure inside a reader,
including exceptions raised by third-party libraries on corrupt input, leaves as a
``VolumeReadError`` naming the file, so the viewer can show it and carry on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..core import OctVolume
from .errors import VolumeReadError
from .formats import FORMATS, SUPPORTED_FORMATS, detect, dialog_filters, find_volumes, is_volume_file
from .limits import byte_budget, check_bscan_shape, check_dimensions


def validate_volume(path, volume: OctVolume) -> OctVolume:
    """The checks every reader's result passes, whatever the format."""
    data = volume.data
    if data.ndim != 3:
        raise VolumeReadError(path, f"expected a 3-D volume, got shape {data.shape}")
    check_bscan_shape(path, data.shape)
    if data.dtype.kind not in "uif":
        raise VolumeReadError(path, f"unsupported pixel type {data.dtype}")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise VolumeReadError(path, "the pixel data contains NaN or infinite values")
    return volume


#: Exceptions that, escaping a third-party reader, say "the structure is not what the format
#: promises" in the reader's own words (attribute and key names). The user gets the meaning.
_INTERNAL = (AttributeError, KeyError, TypeError, IndexError, NameError, AssertionError, RecursionError,
             UnicodeError, LookupError)


_QUOTED_BYTES = re.compile(r"b'(?:[^'\\]|\\.)*'" + r'|b"(?:[^"\\]|\\.)*"')


def describe_failure(exc: BaseException) -> str:
    """A plain-words reason for an exception a reader let escape; never empty, no Python internals."""
    if isinstance(exc, PermissionError):
        return "permission denied: you are not allowed to read this file"
    if isinstance(exc, MemoryError):
        return "the file declares more data than this computer can hold"
    if isinstance(exc, UnicodeError):
        return "the file is corrupt: a text field holds bytes that are not valid text"
    if isinstance(exc, _INTERNAL):
        return "the file is corrupt or incomplete: a field its format requires is missing or malformed"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read the file ({exc.strerror})"
    # bytes quoted from the file (a construct or codec error echoing a header field) may be a name
    reason = _QUOTED_BYTES.sub("<bytes>", " ".join(str(exc).split()))[:200]
    if not reason:
        reason = "the decoder gave no reason"
    return f"the file is corrupt or not a supported OCT file ({reason})"


def load_volume(path: str | os.PathLike, allow_pickle: bool = False) -> OctVolume:
    """Read any supported OCT file or folder into an OctVolume.

    Raises ``VolumeReadError`` and nothing else for anything wrong with the input; what is checked
    before decoding is listed in docs/bad_input.md. ``allow_pickle=True`` lets a trusted ``.npz``
    with Python-object fields load (it runs code).
    """
    path = Path(path)
    try:
        fmt = detect(path)
        volume = fmt.read(path, allow_pickle=allow_pickle)
        return validate_volume(path, volume.replace(source=str(path)))
    except VolumeReadError:
        raise
    except Exception as exc:  # third-party readers raise anything on corrupt input
        raise VolumeReadError(path, describe_failure(exc)) from exc


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
           "dialog_filters", "find_volumes", "is_volume_file", "load_volume", "open_volume_progressive",
           "save_volume"]


def __getattr__(name):
    # The progressive reader pulls in concurrency machinery; import it only when asked for.
    if name == "open_volume_progressive":
        from .progressive import open_volume_progressive
        return open_volume_progressive
    raise AttributeError(name)
