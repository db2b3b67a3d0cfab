"""One content digest of a scan file, whatever its format, encoding and header fields.

The study index (copies of one scan at a visit) and the trainer (the same scan twice in a manifest, a
model's training scans in a later cohort) compare scans by it. Both had compared stored bytes, so a scan
re-encoded losslessly (RLE, JPEG-LS) or converted to .npz was another scan (attack run 12, A12-3); the
trainer moved to decoded voxels first and the study index kept the bytes (H79's recheck): one function now.
"""

from __future__ import annotations

import os

#: (real path, inode, size, mtime) of a regular file -> its digest, for this process: each file is decoded once
#: however many checks compare it (the trainer's duplicate check, check_volumes, fit's digests; a study's copies).
_CACHE: dict[tuple, str | None] = {}


def volume_digest(path) -> str | None:
    """The results store's scan digest (``pipeline.store.scan_digest``) of the DECODED voxels and geometry
    (shape, dtype, spacing, scan pattern) of the volume at ``path``, the header's laterality, device and notes
    and any layers left out: one scan stored uncompressed, RLE or JPEG-LS lossless, as a DICOM, an .npz or a
    folder of B-scans, under any header fields, has one digest. None for a volume that does not open (opening
    it names the problem). Costs one decoding of the volume (about as long as opening it), once per file and
    process."""
    from octviewer.io import load_volume
    from octviewer.pipeline.store import scan_digest

    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None
    except (OSError, ValueError):
        return None
    if key is not None and key in _CACHE:
        return _CACHE[key]
    try:
        volume = load_volume(path)
        digest = scan_digest(volume.replace(laterality=None, device="", notes=(), layers={}))
    except Exception:  # noqa: BLE001 - a volume that does not open has no digest; opening it names the problem
        digest = None
    if key is not None:
        _CACHE[key] = digest
    return digest
