"""Generic stacks: NumPy ``.npy``/``.npz``, multi-page TIFF, and folders of B-scan images.

These formats carry no physical spacing (except our own ``.npz``, which stores it), and the
volume says so in its ``notes`` rather than inventing a scale. NumPy files are opened without
pickle: an object array would execute code on load, so it is refused unless the caller says the
file is trusted.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from ..core import Localizer, OctVolume, Spacing
from . import IMAGE_SUFFIXES, check_dimensions
from .errors import VolumeReadError

NO_SPACING = "the file carries no physical spacing: distances and the scale bar are unavailable"

#: Maetschke et al. (2019) Zenodo optic-disc cubes: ``POAG-000123-2012-01-31-OS.npy``
ZENODO_NAME = re.compile(r"^(?P<label>Normal|POAG)-(?P<patient>[^-]+)-(?P<date>\d{4}-\d{2}-\d{2})-(?P<eye>OD|OS)$")


def parse_zenodo_name(stem: str) -> dict | None:
    """Label, patient, visit date and eye from a Zenodo cube's file name; None if it does not match."""
    m = ZENODO_NAME.match(stem)
    if not m:
        return None
    try:
        date = dt.date.fromisoformat(m["date"])
    except ValueError:
        return None
    return {"label": "glaucoma" if m["label"] == "POAG" else "normal", "patient_id": m["patient"],
            "visit": date, "eye": m["eye"]}


def _npy_header(path, fileobj, available: int, field: str | None, allow_pickle: bool):
    """Read and check an .npy header: no object dtype unless trusted, sizes that fit the file."""
    version = np.lib.format.read_magic(fileobj)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = reader(fileobj)
    name = f"field '{field}'" if field else "the array"
    if dtype.hasobject and not allow_pickle:
        raise VolumeReadError(
            path, f"{name} holds Python objects, which would run code when loaded; "
                  "open it with allow_pickle=True (--allow-pickle on the command line) only if you trust the file")
    if not dtype.hasobject:
        if len(shape):
            check_dimensions(path, shape, what=name)
        if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > available:
            raise VolumeReadError(path, f"the file is truncated: {name} declares shape {shape} "
                                        f"but only {available} bytes are stored")
    return shape, dtype


def _as_volume_array(path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        raise VolumeReadError(path, f"this is a single 2-D image {array.shape}, not an OCT volume")
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise VolumeReadError(path, f"expected a 3-D volume (B-scans, depth, width), got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return array


def read_npy(path: Path) -> OctVolume:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(0)
        _npy_header(path, f, size, None, allow_pickle=False)
    data = _as_volume_array(path, np.load(path, allow_pickle=False))
    zenodo = parse_zenodo_name(path.stem)
    notes = [NO_SPACING]
    if zenodo:
        notes.append("Zenodo optic-disc cube (Maetschke et al. 2019): eye and date from the file name")
    return OctVolume(data=np.ascontiguousarray(data), laterality=zenodo["eye"] if zenodo else None,
                     acquired=zenodo["visit"] if zenodo else None, notes=tuple(notes))


def read_npz(path: Path, allow_pickle: bool = False) -> OctVolume:
    with zipfile.ZipFile(path) as archive:
        fields = {}
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with archive.open(info) as member:
                fields[name] = _npy_header(path, member, info.file_size, name, allow_pickle)
    with np.load(path, allow_pickle=allow_pickle) as npz:
        if "volume" in fields:  # written by write_npz
            meta = json.loads(str(npz["meta_json"])) if "meta_json" in fields else {}
            localizer = Localizer(npz["localizer"], tuple(meta.get("localizer_spacing_mm", (None, None)))) \
                if "localizer" in fields else None
            acquired = meta.get("acquired")
            return OctVolume(
                data=_as_volume_array(path, npz["volume"]),
                spacing=Spacing(*meta.get("spacing_mm", (None, None, None))),
                laterality=meta.get("laterality"),
                scan_pattern=meta.get("scan_pattern", "volume"),
                device=meta.get("device", ""),
                acquired=dt.date.fromisoformat(acquired[:10]) if acquired else None,
                localizer=localizer,
                intensity_transform=meta.get("intensity_transform", "identity"),
                notes=() if meta.get("spacing_mm") else (NO_SPACING,),
            )
        if "oct_bscans" in fields:  # Harvard-GF / FairVision layout
            localizer = Localizer(np.asarray(npz["slo_fundus"]).astype(np.uint8)) if "slo_fundus" in fields else None
            return OctVolume(data=_as_volume_array(path, npz["oct_bscans"]), localizer=localizer,
                             notes=(NO_SPACING, "Harvard-GF / FairVision layout: laterality not recorded"))
        candidates = [k for k, (shape, _) in fields.items() if len(shape) == 3]
        if len(candidates) != 1:
            raise VolumeReadError(path, f"cannot tell which array is the volume (3-D arrays: {candidates or 'none'})")
        return OctVolume(data=_as_volume_array(path, npz[candidates[0]]), notes=(NO_SPACING,))


def write_npz(volume: OctVolume, path: Path) -> None:
    """Our own lossless round-trip format: pixels, localizer and metadata as plain JSON (no pickle)."""
    meta = {
        "spacing_mm": list(volume.spacing.as_tuple()),
        "laterality": volume.laterality,
        "scan_pattern": volume.scan_pattern,
        "device": volume.device,
        "acquired": volume.acquired.isoformat() if volume.acquired else None,
        "intensity_transform": volume.intensity_transform,
    }
    arrays = {"volume": volume.data, "meta_json": np.array(json.dumps(meta))}
    if volume.localizer is not None:
        arrays["localizer"] = volume.localizer.image
        meta["localizer_spacing_mm"] = list(volume.localizer.spacing_mm)
        arrays["meta_json"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def read_tiff(path: Path) -> OctVolume:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise VolumeReadError(path, "the TIFF file holds no images")
        series = tif.series[0]
        shape = tuple(int(s) for s in series.shape)
        if len(shape) == 2:
            raise VolumeReadError(path, f"this TIFF is a single 2-D image {shape}, not an OCT volume")
        check_dimensions(path, shape)
        data = series.asarray()
    return OctVolume(data=_as_volume_array(path, data), notes=(NO_SPACING,))


def read_image_folder(path: Path) -> OctVolume:
    """A folder of B-scan images, in natural order (``B2`` before ``B10``)."""
    import cv2
    from natsort import natsorted

    files = natsorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)
    if not files:
        raise VolumeReadError(path, "the folder holds no B-scan images (PNG, JPEG, BMP or TIFF)")
    bscans = []
    for f in files:
        image = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
        if image is None:
            raise VolumeReadError(f, "this image cannot be decoded")
        if bscans and image.shape != bscans[0].shape:
            raise VolumeReadError(f, f"B-scan size {image.shape} differs from the first B-scan's {bscans[0].shape}")
        bscans.append(image)
    check_dimensions(path, (len(bscans), *bscans[0].shape))
    return OctVolume(data=np.stack(bscans), notes=(NO_SPACING,))
