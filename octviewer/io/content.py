"""One content digest of a scan file, whatever its format, encoding, header fields and stated spacing.

The study index (copies of one scan at a visit) and the trainer (the same scan twice in a manifest, a
model's training scans in a later cohort) compare scans by it. Both had compared stored bytes, so a scan
re-encoded losslessly (RLE, JPEG-LS) or converted to .npz was another scan (attack run 12, A12-3); then
the digest of the decoded voxels still hashed the spacing and the dtype, so the same scan exported as a
folder of PNG B-scans, a TIFF stack or a .npy (no spacing in those formats) was another scan again, and a
patient's DICOM could sit in the train split with its PNG export in the test split (attack run 14, A14-1).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

#: The kind of digest ``volume_digest`` gives, kept beside a model's ``volume_digests`` (``digest_kind``): 1 hashed
#: stored bytes (before attack run 12), 2 decoded voxels with spacing and dtype (before run 14), 3 this. A model
#: whose digests are of another kind cannot be compared by content, and says so (attack run 15, A15-6).
CONTENT_DIGEST_KIND = 3

#: (real path, inode, size, mtime) of a regular file -> its digest, for this process: each file is decoded once
#: however many checks compare it (the trainer's duplicate check, check_volumes, fit's digests; a study's copies).
_CACHE: dict[tuple, str | None] = {}


def canonical_voxels(data: np.ndarray) -> np.ndarray:
    """The voxels in one dtype per set of values: integers (and floats that are all whole numbers) in the
    narrowest of uint8, uint16, int32 that holds them, other floats as float64. An 8-bit DICOM, its 16-bit
    TIFF and its float32 .npy export then hash alike; values are never rounded, so two different scans don't."""
    if data.dtype.kind == "f":
        if not (np.isfinite(data).all() and np.array_equal(data, np.floor(data))):
            return np.ascontiguousarray(data, dtype=np.float64)
    elif data.dtype.kind not in "iub":
        return np.ascontiguousarray(data, dtype=np.float64)
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    for dtype in (np.uint8, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.ascontiguousarray(data, dtype=dtype)
    return np.ascontiguousarray(data, dtype=np.float64)


def content_digest(volume) -> str:
    """A hash of a volume's voxel values (``canonical_voxels``), shape and scan pattern only: not its spacing,
    dtype, laterality, device, notes or layers, which a conversion or a header edit changes."""
    h = hashlib.blake2b(digest_size=20)
    voxels = canonical_voxels(volume.data)
    h.update(repr((voxels.shape, voxels.dtype.str, volume.scan_pattern)).encode())
    h.update(memoryview(voxels).cast("B"))
    return h.hexdigest()


def volume_digest(path) -> str | None:
    """``content_digest`` of the volume at ``path``: one scan stored uncompressed, RLE or JPEG-LS lossless, as a
    DICOM, an .npz, a .npy, a TIFF stack or a folder of B-scan images, under any header fields, has one digest.
    None for a volume that does not open (opening it names the problem). Costs one decoding of the volume (about
    as long as opening it), once per file and process."""
    from octviewer.io import load_volume

    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None
    except (OSError, ValueError):
        return None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    try:
        digest = content_digest(load_volume(path))
    except Exception:  # noqa: BLE001 - a volume that does not open has no digest; opening it names the problem
        digest = None
    if key is not None:
        _CACHE[key] = digest
    return digest
