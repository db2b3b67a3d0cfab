"""Pseudonymous volume and patient keys for everything the trainer writes (reports, eval, surrogates).

File names often hold the patient ID and the scan date (``SYN003-0000_OD_20150426_0.dcm``), so
outputs name a volume by ``v`` + 12 hex digits of an HMAC (``octviewer.core.pseudonym.keyed_digest``,
keyed by this installation's secret salt) over the manifest's content hash and the volume's path as
written in the manifest, and a patient likewise by ``p`` + 12 hex digits. The manifest hash is
published in every model file, so a plain hash of it and a patient ID could be reversed by hashing
guessed IDs; the salt never leaves the installation, so the keys cannot. On one installation
``fit`` and ``evaluate`` give the same keys for the same manifest; elsewhere they differ, and the
manifest row number written alongside is what joins them (the clinic that owns the manifest can
look a volume up). ``--report-paths`` writes the paths instead (for one's own, non-shared analyses).
"""

from __future__ import annotations

from octviewer.core.pseudonym import keyed_digest

MAX_COHORT_KEYS = 100_000  # 15 bytes each in the model's JSON metadata


def volume_key(manifest_hash: str, record) -> str:
    return "v" + keyed_digest(f"volume\0{manifest_hash}\0{record.path_text or record.path.as_posix()}")[:12]


def volume_label(manifest_hash: str, record, report_paths: bool = False) -> str:
    return str(record.path) if report_paths else volume_key(manifest_hash, record)


def cohort_keys(patient_ids) -> list[str]:
    """Sorted keys of the patients a model was trained or recalibrated on, kept in its file so that a
    later cohort holding any of them is known for what it is whatever its manifest's bytes (line ends,
    order, one row fewer: attack run 10, A10-10). Not bound to a manifest, so two manifests' rows of
    one patient meet; keyed by this installation's salt, so the file names no one elsewhere. None for
    more than MAX_COHORT_KEYS patients (a model's metadata is bounded at 4 MB): the manifest hash alone then."""
    keys = sorted({keyed_digest(f"cohort\0{p}")[:12] for p in patient_ids})
    return keys if len(keys) <= MAX_COHORT_KEYS else None


MAX_VOLUME_DIGESTS = 50_000  # 19 bytes each in the model's JSON metadata, beside the patients' keys

#: (real path, inode, size, mtime) of a regular file -> its volume_digest, for this process: read_manifest's
#: duplicate check, check_volumes and fit's volume_digests decode each volume once between them.
_DIGEST_CACHE: dict[tuple, str | None] = {}


def volume_digest(path) -> str | None:
    """The content digest of one volume, whatever its format and encoding: the results store's scan digest
    (``pipeline.store.scan_digest``) of its DECODED voxels and geometry (shape, dtype, spacing, scan pattern),
    the header's laterality, device and notes and any layers left out. So one scan stored uncompressed, RLE or
    JPEG-LS lossless, as a DICOM, an .npz or a folder of B-scans, under any header fields, has one digest: the
    stored PixelData bytes were hashed, and the same scan re-encoded losslessly or converted to .npz was another
    scan, attached as "On independent data" and entered twice in one manifest (attack run 12, A12-3). None for
    a volume that does not open (``check_volumes`` names it). Costs one decoding of the volume (about as long
    as opening it), once per file and process."""
    import os

    from octviewer.io import load_volume
    from octviewer.pipeline.store import scan_digest

    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None
    except (OSError, ValueError):
        return None
    if key is not None and key in _DIGEST_CACHE:
        return _DIGEST_CACHE[key]
    try:
        volume = load_volume(path)
        digest = scan_digest(volume.replace(laterality=None, device="", notes=(), layers={}))
    except Exception:  # noqa: BLE001 - a volume that does not open has no digest; opening it names the problem
        digest = None
    if key is not None:
        _DIGEST_CACHE[key] = digest
    return digest


def volume_digests(paths, limit: int | None = MAX_VOLUME_DIGESTS) -> list[str] | None:
    """Sorted content digests (``volume_digest``, the first ``VOLUME_DIGEST_CHARS`` hex digits) of the volumes a
    model was trained or recalibrated on, kept in its file so that a later cohort holding the same scans under
    other patient IDs (the export pseudonymised again, another installation's salt), re-encoded or converted, is
    known for what it is: it was "On independent data" (attack run 11, A11-3; 12, A12-3). A volume that does not
    open has none. Plain digests, not keyed: they name no patient, and only someone holding the very scan can match
    it. None above ``limit`` volumes (the patients' keys and the manifest hash alone then).

    Models made before attack run 12 keep digests of the stored bytes (a DICOM's PixelData, a folder's files, a
    file's bytes): they still load and are still compared, but their digests will not match these, so for them
    the check by content finds nothing and the patients' keys and the manifest hash are what is compared; fit or
    recalibrate again for digests of this kind. The shipped demo model keeps none."""
    from octviewer.model.meta import VOLUME_DIGEST_CHARS  # 64 bits: no chance meeting among a million scans

    digests = {digest[:VOLUME_DIGEST_CHARS] for path in paths if (digest := volume_digest(path)) is not None}
    return sorted(digests) if limit is None or len(digests) <= limit else None


def patient_key(manifest_hash: str, patient_id: str) -> str:
    """Pseudonymous patient key (for the patient-cluster bootstrap of paired comparisons)."""
    return "p" + keyed_digest(f"patient\0{manifest_hash}\0{patient_id}")[:12]
