"""Generators of small files in each format we read, and of the damaged variants the tests need.

Everything is written from scratch (no shared samples), so the hardening and fuzz tests run
anywhere in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import numpy as np

from octviewer import OctVolume, Spacing, save_volume


def oct_like(shape=(6, 40, 32), dtype=np.uint8, seed=0) -> np.ndarray:
    """Speckle over a bright band: compresses like OCT (not like zeros), and is not constant."""
    rng = np.random.default_rng(seed)
    n, depth, width = shape
    band = np.exp(-((np.arange(depth) - depth / 3) / (depth / 8)) ** 2)[None, :, None]
    info = np.iinfo(dtype)
    data = (band * 0.7 + 0.3 * rng.random(shape)) * info.max
    return data.astype(dtype)


def small_volume(shape=(6, 40, 32), dtype=np.uint8) -> OctVolume:
    return OctVolume(oct_like(shape, dtype), Spacing(0.1, 0.004, 0.02), laterality="OD",
                     patient_id="PAT-SECRET")


def write_vol(path: Path, data: np.ndarray | None = None, patient_id: bytes = b"PAT-SECRET",
              spacing=(0.0118, 0.0039, 0.12), localizer: tuple[int, int] = (20, 20)) -> Path:
    """A Heidelberg .vol volume scan, laid out as eyepy's ``vol_format`` describes it.

    ``patient_id`` goes into the header as raw bytes (a Latin-1 name is what Heyex writes in
    Europe); ``spacing`` is (A-scan, depth, B-scan) in mm.
    """
    data = oct_like((3, 32, 24), np.uint8) if data is None else data
    n, depth, width = data.shape
    ascan, depth_mm, bscan = spacing
    slo_y, slo_x = localizer
    exam = int((dt.datetime(2020, 5, 17) - dt.datetime(1601, 1, 1)).total_seconds() * 10**7)
    header = bytearray(2048)
    struct.pack_into("<12s3I3d2I2dId4sQiI16s16sI", header, 0, b"HSF-OCT-103", width, n, depth, ascan, bscan,
                     depth_mm, slo_x, slo_y, 0.03, 0.03, 30, 0.0, b"OD", exam, 3, 256, b"1", b"1", 1)
    header[140:164] = patient_id[:23].ljust(24, b"\x00")
    parts = [bytes(header), bytes(slo_x * slo_y)]
    for i in range(n):
        bscan_header = bytearray(256)
        struct.pack_into("<12sI4d2IfI", bscan_header, 0, b"HSF-BS-103", 256, 0.0, 0.1 * i, 6.0, 0.1 * i,
                         0, 256, 1.0, 0)
        parts += [bytes(bscan_header), ((data[i].astype(np.float32) / 255.0) ** 4).astype("<f4").tobytes()]
    path.write_bytes(b"".join(parts))
    return path


def _chunk(name: bytes, payload: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack("<I", len(payload)) + payload


def write_topcon(path: Path, data: np.ndarray, compressed: bool = False, eye: int = 1,
                 spacing=(6.0, 6.0, 2.6), when=(2019, 3, 4, 10, 11, 12), patient_id=b"PAT-SECRET") -> Path:
    """A Topcon .fds (raw @IMG_SCAN_03) or .fda (@IMG_JPEG, JPEG 2000 per B-scan) file.

    ``spacing`` is the scan's (x_mm, y_mm, z_um) as Topcon stores it in @PARAM_SCAN_04.
    """
    n, height, width = data.shape
    if compressed:
        from openjpeg import encode

        payload = struct.pack("<BIIIIII", 2, 0, 0, width, height, n, 0)
        for bscan in data:
            code = bytes(encode(np.ascontiguousarray(bscan), codec_format=0))
            payload += struct.pack("<I", len(code)) + code
        image = _chunk(b"@IMG_JPEG", payload)
    else:
        pixels = np.ascontiguousarray(data, dtype="<u2").tobytes()
        image = _chunk(b"@IMG_SCAN_03", struct.pack("<BIIIIBI", 2, width, height, 16, n, 0, len(pixels)) + pixels)
    params = struct.pack("<3I3d2dBB", 0, 0, 0, *spacing, 0.0, 0.0, 0, 0)
    capture = struct.pack("<BBI100s6H", eye, 2, 1, b"", *when)
    patient = patient_id.ljust(32, b"\x00") + bytes(200)
    raw = (struct.pack("<4s3sII", b"FOCT", b"FDA" if compressed else b"FDS", 8, 0)
           + _chunk(b"@PATIENT_INFO_02", patient) + _chunk(b"@CAPTURE_INFO_02", capture)
           + _chunk(b"@PARAM_SCAN_04", params) + image + b"\x00")
    path.write_bytes(raw)
    return path


def seed_files(root: Path) -> dict[str, Path]:
    """One small valid file per file format (and per DICOM transfer syntax), for the fuzz runs."""
    import tifffile

    root.mkdir(parents=True, exist_ok=True)
    v = small_volume((6, 40, 32))
    files = {
        "dicom": save_volume(v, root / "v.dcm"),
        "dicom_rle": save_volume(v, root / "r.dcm", compression="rle"),
        "dicom_j2k": save_volume(v, root / "j.dcm", compression="jpeg2000"),
        "npz": save_volume(v, root / "v.npz"),
        "vol": write_vol(root / "v.vol"),
        "fds": write_topcon(root / "v.fds", oct_like((4, 24, 20), np.uint16)),
        "fda": write_topcon(root / "v.fda", oct_like((3, 40, 32), np.uint16), compressed=True),
    }
    np.save(root / "v.npy", v.data)
    files["npy"] = root / "v.npy"
    tifffile.imwrite(root / "v.tif", v.data)
    files["tiff"] = root / "v.tif"
    return files


def tiny_semt_model(path: Path, scan_patterns: tuple[str, ...] = ("volume",)) -> Path:
    """A random SEMT network at 32 px with 8-channel VF modules, saved as a model file: the
    smallest model every batch-command test can run in a second. ``scan_patterns``: what its
    metadata says it reads (("volume", "circle") for a window test on a circle scan)."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model

    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    meta["scan_patterns"] = list(scan_patterns)
    return save_model(path, build_network("semt", init="random", reg_channels=8).eval(), meta)
