"""Reading and writing OCT volumes: one entry point, one error type.

``load_volume`` decides the format from the file's content first (magic bytes) and its suffix
second, calls the one reader for that format, and checks the result. Any failure inside a reader,
including exceptions raised by third-party libraries on corrupt input, leaves as a
``VolumeReadError`` naming the file, so the viewer can show it and carry on.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core import OctVolume
from .errors import VolumeReadError

#: Largest volume we agree to allocate (voxels). A Cirrus cube is 41 M; a 512 x 1024 x 1024 scan
#: is 0.5 G. Anything beyond is a lying header, not a scan.
MAX_VOXELS = 1_200_000_000
MAX_AXIS = 16_384

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VENDOR_SUFFIXES = (".fds", ".fda", ".img", ".oct")

#: For file dialogs: (description, glob patterns).
SUPPORTED_FORMATS = (
    ("DICOM Ophthalmic Tomography", ("*.dcm", "*.dicom")),
    ("Heidelberg Spectralis", ("*.vol", "*.e2e", "*.sdb", "*.xml")),
    ("Topcon / Zeiss / Bioptigen / Optovue (OCT-Converter extra)", ("*.fds", "*.fda", "*.img", "*.oct", "*.OCT")),
    ("TIFF stack", ("*.tif", "*.tiff")),
    ("NumPy", ("*.npy", "*.npz")),
)


def check_dimensions(path, shape, what: str = "volume") -> None:
    """Refuse sizes no OCT device produces before anything is allocated for them."""
    if len(shape) == 0 or any(int(s) < 1 for s in shape):
        raise VolumeReadError(path, f"the {what} has an empty dimension {tuple(int(s) for s in shape)}")
    if any(int(s) > MAX_AXIS for s in shape) or int(np.prod([int(s) for s in shape], dtype=np.float64)) > MAX_VOXELS:
        raise VolumeReadError(path, f"the {what} declares an implausible size {tuple(int(s) for s in shape)}")


def _sniff(path: Path) -> str:
    if path.is_dir():
        if any(p.suffix.lower() == ".xml" for p in path.iterdir()):
            return "heyex_xml"
        return "image_folder"
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(132)
    if len(head) == 0:
        raise VolumeReadError(path, "the file is empty")
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"HSF-OCT") or (suffix == ".vol" and head.startswith(b"ep-v")):
        return "heidelberg_vol"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK\x03\x04") and suffix == ".npz":
        return "npz"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if suffix == ".xml":
        return "heyex_xml"
    if suffix in (".e2e", ".sdb"):
        return "heidelberg_e2e"
    if suffix in VENDOR_SUFFIXES:
        return "vendor"
    if suffix in (".dcm", ".dicom"):
        return "dicom"  # DICOM without the 128-byte preamble
    if suffix in IMAGE_SUFFIXES:
        raise VolumeReadError(path, "this is a single 2-D image, not an OCT volume; open the folder of B-scans instead")
    raise VolumeReadError(path, "unknown file format (not DICOM, Heidelberg, TIFF, NumPy or a vendor format we read)")


def _reader(kind: str):
    # Imported lazily so that a missing optional library only matters for its own format.
    if kind == "dicom":
        from .dicom import read_dicom
        return read_dicom
    if kind == "heidelberg_vol":
        from .heidelberg import read_vol
        return read_vol
    if kind in ("heyex_xml", "heidelberg_e2e"):
        from .heidelberg import read_with_eyepy
        return read_with_eyepy
    if kind == "vendor":
        from .vendor import read_vendor
        return read_vendor
    from . import stacks
    return {"npy": stacks.read_npy, "npz": stacks.read_npz, "tiff": stacks.read_tiff,
            "image_folder": stacks.read_image_folder}[kind]


def _validate(path, volume: OctVolume) -> OctVolume:
    data = volume.data
    check_dimensions(path, data.shape)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise VolumeReadError(path, "the pixel data contains NaN or infinite values")
    if data.dtype.kind not in "uif":
        raise VolumeReadError(path, f"unsupported pixel type {data.dtype}")
    if data.ndim != 3:
        raise VolumeReadError(path, f"expected a 3-D volume, got shape {data.shape}")
    return volume


def load_volume(path: str | os.PathLike, allow_pickle: bool = False) -> OctVolume:
    """Read any supported OCT file or folder into an OctVolume.

    Raises ``VolumeReadError`` and nothing else for anything wrong with the input.
    ``allow_pickle=True`` lets a trusted ``.npz`` with Python-object fields load (it runs code).
    """
    path = Path(path)
    try:
        if not path.exists():
            raise VolumeReadError(path, "no such file or folder")
        kind = _sniff(path)
        volume = _reader(kind)(path, allow_pickle=allow_pickle) if kind == "npz" else _reader(kind)(path)
        return _validate(path, volume.replace(source=str(path)))
    except VolumeReadError:
        raise
    except MemoryError:
        raise VolumeReadError(path, "the file declares more data than this computer can hold") from None
    except Exception as exc:  # third-party readers raise anything on corrupt input
        problem = f"the file is corrupt or not a supported OCT file ({type(exc).__name__}: {exc})"
        raise VolumeReadError(path, problem) from exc


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


__all__ = ["SUPPORTED_FORMATS", "VolumeReadError", "check_dimensions", "load_volume", "save_volume"]
