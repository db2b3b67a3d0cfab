"""Topcon ``.fds`` / ``.fda``: a reader of our own for the few chunks a volume needs.

OCT-Converter 0.7 cannot read these files on NumPy 2 (its chunk parser calls ``np.fromstring``
in binary mode, which NumPy 2 removed), and it reads every chunk, patient names included. The
format is simple (after the uocte project's description, which OCT-Converter follows too):

    header   "FOCT" + 3-byte type ("FDA"/"FDS"/"FAA") + major, minor (uint32)
    chunks   name length (uint8), name ("@IMG_SCAN_03", ...), size (uint32), payload
             a zero name length or the end of the file ends the list

The volume is ``@IMG_SCAN_03`` or ``@IMG_MOT_COMP_03`` (22-byte header, then uint16 pixels with
the A-scan index fastest, then depth, then B-scan) or ``@IMG_JPEG`` (25-byte header, then per
B-scan a uint32 size and a JPEG 2000 codestream). Spacing comes from ``@PARAM_SCAN_04``/``_02``,
laterality and date from ``@CAPTURE_INFO_02``/``@CAPTURE_INFO``. Every size is checked against
the chunk and file sizes before anything is allocated.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import numpy as np

from ..core import OctVolume, Spacing
from .errors import VolumeReadError
from .limits import check_bscan_shape, check_budget, check_dimensions, open_regular, plausible_mm, require_readable

_HEADER = struct.Struct("<4s3sII")
_RAW_HEADER = struct.Struct("<BIIIIBI")  # scan mode, width, height, bits, B-scans, format, size
_JPEG_HEADER = struct.Struct("<BIIIIII")  # scan mode, ?, ?, width, height, B-scans, ?
#: More chunks than this is no Topcon file (real ones have a few dozen).
MAX_CHUNKS = 4096


def read_chunks(path: Path, raw: bytes) -> dict[bytes, memoryview]:
    """Chunk name -> payload; the first chunk of each name wins."""
    if len(raw) < _HEADER.size:
        raise VolumeReadError(path, "the file is truncated: shorter than the 15-byte Topcon header")
    magic, kind, _major, _minor = _HEADER.unpack_from(raw)
    if magic != b"FOCT":
        raise VolumeReadError(path, "not a Topcon file (the header does not start with FOCT)")
    chunks: dict[bytes, memoryview] = {}
    view, pos = memoryview(raw), _HEADER.size
    while pos < len(raw) and len(chunks) < MAX_CHUNKS:
        name_len = raw[pos]
        if name_len == 0:
            break
        if pos + 1 + name_len + 4 > len(raw):
            raise VolumeReadError(path, "the file is truncated inside its chunk list")
        name = bytes(raw[pos + 1:pos + 1 + name_len])
        (size,) = struct.unpack_from("<I", raw, pos + 1 + name_len)
        start = pos + 1 + name_len + 4
        if start + size > len(raw):
            raise VolumeReadError(path, f"the file is truncated: chunk {name.decode('latin-1')!r} declares "
                                        f"{size} bytes, {len(raw) - start} remain")
        chunks.setdefault(name, view[start:start + size])
        pos = start + size
    return chunks


def _raw_volume(path, payload: memoryview, file_size: int) -> np.ndarray:
    if len(payload) < _RAW_HEADER.size:
        raise VolumeReadError(path, "the OCT image chunk is truncated")
    _mode, width, height, _bits, n, _fmt, _size = _RAW_HEADER.unpack_from(payload)
    check_dimensions(path, (n, height, width))
    check_bscan_shape(path, (n, height, width))
    check_budget(path, 2.0 * n * height * width, file_size)
    need = 2 * n * height * width
    pixels = payload[_RAW_HEADER.size:]
    if len(pixels) < need:
        raise VolumeReadError(path, f"the file is truncated: {n} B-scans of {height} x {width} need {need} bytes "
                                    f"of pixels, the chunk holds {len(pixels)}")
    return np.frombuffer(pixels, dtype="<u2", count=n * height * width).reshape(n, height, width).astype(np.uint16)


def _jpeg_volume(path, payload: memoryview, file_size: int) -> np.ndarray:
    from .dicom import decode_jpeg2000

    if len(payload) < _JPEG_HEADER.size:
        raise VolumeReadError(path, "the OCT image chunk is truncated")
    _mode, _a, _b, width, height, n, _c = _JPEG_HEADER.unpack_from(payload)
    check_dimensions(path, (n, height, width))
    check_bscan_shape(path, (n, height, width))
    check_budget(path, 2.0 * n * height * width, file_size)
    pos, data = _JPEG_HEADER.size, None
    for i in range(n):
        if pos + 4 > len(payload):
            raise VolumeReadError(path, f"the file is truncated: B-scan {i + 1} of {n} is missing")
        (size,) = struct.unpack_from("<I", payload, pos)
        if pos + 4 + size > len(payload):
            raise VolumeReadError(path, f"the file is truncated inside B-scan {i + 1} of {n}")
        frame = decode_jpeg2000(path, i, bytes(payload[pos + 4:pos + 4 + size]), width * height,
                                f"{height} x {width}")
        if frame.ndim != 2 or frame.size != width * height:
            raise VolumeReadError(path, f"B-scan {i + 1} decodes to {frame.shape}, the header declares "
                                        f"{height} x {width}")
        if data is None:
            data = np.empty((n, *frame.shape), np.uint16)
        elif frame.shape != data.shape[1:]:
            raise VolumeReadError(path, f"B-scan {i + 1} has size {frame.shape}, the first one {data.shape[1:]}")
        data[i] = frame
        pos += 4 + size
    return data


def _spacing(chunks, n: int, width: int) -> Spacing:
    if b"@PARAM_SCAN_04" in chunks and len(chunks[b"@PARAM_SCAN_04"]) >= 36:
        x_mm, y_mm, z_um = struct.unpack_from("<3d", chunks[b"@PARAM_SCAN_04"], 12)
    elif b"@PARAM_SCAN_02" in chunks and len(chunks[b"@PARAM_SCAN_02"]) >= 45:
        x_mm, y_mm, z_um = struct.unpack_from("<3d", chunks[b"@PARAM_SCAN_02"], 21)
    else:
        return Spacing(bscan_mm=0.0 if n == 1 else None)
    ascan = plausible_mm(x_mm / width) if plausible_mm(x_mm) else None
    bscan = (plausible_mm(y_mm / n) if plausible_mm(y_mm) else None) if n > 1 else 0.0
    depth = plausible_mm(z_um / 1000.0) if plausible_mm(z_um) else None
    return Spacing(bscan_mm=bscan, depth_mm=depth, ascan_mm=ascan)


def _capture(chunks) -> tuple[str | None, dt.datetime | None]:
    if b"@CAPTURE_INFO_02" in chunks and len(chunks[b"@CAPTURE_INFO_02"]) >= 118:
        info, date_at = chunks[b"@CAPTURE_INFO_02"], 106
    elif b"@CAPTURE_INFO" in chunks and len(chunks[b"@CAPTURE_INFO"]) >= 13:
        info, date_at = chunks[b"@CAPTURE_INFO"], 1
    else:
        return None, None
    eye = {0: "OD", 1: "OS"}.get(info[0])
    try:
        when = dt.datetime(*struct.unpack_from("<6H", info, date_at))
    except ValueError:
        when = None
    return eye, when


def _patient_id(chunks) -> str | None:
    info = chunks.get(b"@PATIENT_INFO_02")
    if info is None or len(info) < 32:
        return None
    text = bytes(info[:32]).split(b"\x00", 1)[0]
    return text.decode("latin-1").strip() or None


def read_topcon(path: Path) -> OctVolume:
    size = require_readable(path, folder_ok=False).st_size
    with open_regular(path) as f:
        raw = f.read()
    chunks = read_chunks(path, raw)
    for name, decode in ((b"@IMG_SCAN_03", _raw_volume), (b"@IMG_MOT_COMP_03", _raw_volume),
                         (b"@IMG_JPEG", _jpeg_volume)):
        if name in chunks:
            data = decode(path, chunks[name], size)
            break
    else:
        raise VolumeReadError(path, "the file holds no OCT volume we can read (no @IMG_SCAN_03, "
                                    "@IMG_MOT_COMP_03 or @IMG_JPEG chunk)")
    n, _, width = data.shape
    laterality, acquired = _capture(chunks)
    spacing = _spacing(chunks, n, width)
    return OctVolume(
        data=data,
        spacing=spacing,
        laterality=laterality,
        scan_pattern="volume" if n > 1 else "line",
        device="Topcon",
        acquired=acquired,
        patient_id=_patient_id(chunks),
        notes=() if spacing.known else ("the file states no physical spacing",),
    )
