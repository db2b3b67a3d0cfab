"""Heidelberg Spectralis: raw ``.vol`` exports, ``.e2e`` and HEYEX XML, through eyepy.

For ``.vol`` we use eyepy's format description (``vol_format``) rather than its ``EyeVolume``
import, because ``EyeVolume`` refuses circle and radial scans and the peripapillary circle scan is
the one glaucoma specialists read. The declared sizes are checked against the file size first, so
a lying header cannot make us allocate gigabytes.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import numpy as np

from ..core import BscanPosition, Localizer, OctVolume, Spacing
from . import check_dimensions
from .errors import VolumeReadError

_VOL_HEADER = 2048
_PATTERNS = {0: "volume", 1: "line", 2: "circle", 3: "volume", 4: "volume", 5: "radial"}
_NO_DATA = 3.0e38  # the format's "invalid" marker, in pixels and in layer heights
# eyepy's names for the segmentation rows of a .vol B-scan header
_LAYER_NAMES = ("ILM", "BM", "RNFL", "GCL", "IPL", "INL", "OPL", "ONL", "ELM", "IOS", "OPT", "CHO",
                "VIT", "ANT", "PR1", "PR2", "RPE", "IPL+", "IPL-")


def _check_vol_sizes(path: Path, raw: bytes) -> None:
    if len(raw) < _VOL_HEADER:
        raise VolumeReadError(path, f"the file is truncated: {len(raw)} bytes, shorter than the 2048-byte header")
    size_x, n_bscans, size_y = struct.unpack_from("<3I", raw, 12)
    slo_x, slo_y = struct.unpack_from("<2I", raw, 48)
    check_dimensions(path, (n_bscans, size_y, size_x))
    check_dimensions(path, (slo_y, slo_x), what="localizer image")
    # Each B-scan states its own header size (eyepy's writer differs from the file header's),
    # so check the smallest the format allows: 256 bytes per B-scan header.
    need = _VOL_HEADER + slo_x * slo_y + n_bscans * (256 + 4 * size_x * size_y)
    if need > len(raw):
        raise VolumeReadError(path, f"the file is truncated: its header declares {need} bytes, the file has {len(raw)}")


def _exam_time(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def read_vol(path: Path) -> OctVolume:
    from eyepy.io.he.vol_reader import vol_format

    raw = path.read_bytes()
    _check_vol_sizes(path, raw)
    parsed = vol_format.parse(raw)
    pattern = _PATTERNS.get(int(parsed.scan_pattern))
    if pattern is None:
        raise VolumeReadError(path, f"unknown Heidelberg scan pattern {parsed.scan_pattern}")
    if pattern == "volume" and parsed.n_bscans == 1:
        pattern = "line"
    data = np.stack([b.data for b in parsed.bscans]).astype(np.float32)
    invalid = ~np.isfinite(data) | (data > _NO_DATA)
    if invalid.any():
        data[invalid] = 0.0
    # Spectralis reflectivity lies in [0, 1] and is shown through a fourth root; eyepy's own
    # writer stores 8-bit grey values as floats, which must be shown as they are.
    transform = "heidelberg_vol" if data.max(initial=0.0) <= 1.0 else "identity"

    slo_scale = (float(parsed.scale_y_slo) or None, float(parsed.scale_x_slo) or None)
    localizer = Localizer(np.asarray(parsed.localizer, dtype=np.uint8), slo_scale) \
        if parsed.size_x_slo and parsed.size_y_slo else None
    positions = None
    if localizer is not None and slo_scale[0] and slo_scale[1]:
        def px(x_mm, y_mm):
            return (float(x_mm) / slo_scale[1], float(y_mm) / slo_scale[0])
        positions = []
        for b in parsed.bscans:
            if pattern == "circle":  # end point holds the circle's centre
                start, center = px(b.start_x, b.start_y), px(b.end_x, b.end_y)
                radius = float(np.hypot(start[0] - center[0], start[1] - center[1]))
                positions.append(BscanPosition(start, start, center=center, radius=radius))
            else:
                positions.append(BscanPosition(px(b.start_x, b.start_y), px(b.end_x, b.end_y)))
        positions = tuple(positions)

    layers = {}
    n_seg = min((int(b.num_seg) for b in parsed.bscans), default=0)
    for i in range(min(n_seg, len(_LAYER_NAMES))):
        heights = np.stack([np.asarray(b.layer_segmentations[i], dtype=np.float32) for b in parsed.bscans])
        heights[~np.isfinite(heights) | (heights > _NO_DATA)] = np.nan
        layers[_LAYER_NAMES[i]] = heights

    laterality = str(parsed.scan_position).strip("\x00 ").upper()
    return OctVolume(
        data=data,
        spacing=Spacing(bscan_mm=float(parsed.distance) if parsed.n_bscans > 1 else 0.0,
                        depth_mm=float(parsed.scale_y) or None, ascan_mm=float(parsed.scale_x) or None),
        laterality=laterality if laterality in ("OD", "OS") else None,
        scan_pattern=pattern,
        device="Heidelberg Spectralis",
        acquired=_exam_time(parsed.exam_time),
        patient_id=str(parsed.patient_id).strip("\x00 ") or None,
        localizer=localizer,
        bscan_positions=positions,
        layers=layers,
        intensity_transform=transform,
    )


def read_with_eyepy(path: Path) -> OctVolume:
    """HEYEX XML exports (a folder or its .xml) and .e2e files, through eyepy's importers."""
    import eyepy

    if path.suffix.lower() in (".e2e", ".sdb"):
        ev = eyepy.import_heyex_e2e(path)
    else:
        ev = eyepy.import_heyex_xml(path if path.is_dir() else path.parent)
    meta = ev.meta
    data = np.asarray(ev.data)
    localizer = Localizer(np.asarray(ev.localizer.data, dtype=np.uint8),
                          (ev.localizer.meta["scale_y"], ev.localizer.meta["scale_x"]))
    layers = {name: np.asarray(layer.data, dtype=np.float32) for name, layer in ev.layers.items()}
    laterality = str(meta.get("laterality") or "").upper()
    acquired = meta.get("exam_time") or meta.get("visit_date")
    if isinstance(acquired, str):
        try:
            acquired = dt.datetime.fromisoformat(acquired)
        except ValueError:
            acquired = None
    return OctVolume(
        data=data,
        spacing=Spacing(bscan_mm=float(meta["scale_z"]) if data.shape[0] > 1 else 0.0,
                        depth_mm=float(meta["scale_y"]), ascan_mm=float(meta["scale_x"])),
        laterality=laterality if laterality in ("OD", "OS") else None,
        scan_pattern="volume" if data.shape[0] > 1 else "line",
        device="Heidelberg Spectralis",
        acquired=acquired,
        patient_id=(meta.get("patient") or {}).get("patient_id"),
        localizer=localizer,
        layers=layers,
        intensity_transform="identity" if data.dtype == np.uint8 else "heidelberg_vol",
    )
