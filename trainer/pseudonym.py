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
from octviewer.io.content import volume_digest

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


def volume_digests(paths, limit: int | None = MAX_VOLUME_DIGESTS) -> list[str] | None:
    """Sorted content digests (``volume_digest``, the first ``VOLUME_DIGEST_CHARS`` hex digits) of the volumes a
    model was trained or recalibrated on, kept in its file so that a later cohort holding the same scans under
    other patient IDs (the export pseudonymised again, another installation's salt), re-encoded or converted, is
    known for what it is: it was "On independent data" (attack run 11, A11-3; 12, A12-3). A volume that does not
    open has none. Plain digests, not keyed: they name no patient, and only someone holding the very scan can match
    it. None above ``limit`` volumes (the patients' keys and the manifest hash alone then).

    Models made before attack run 12 keep digests of the stored bytes (a DICOM's PixelData, a folder's files, a
    file's bytes), and those made before run 14 digests that included the spacing and dtype: they still load and
    are still compared, but their digests will not match these, so for them the check by content finds nothing
    and the patients' keys and the manifest hash are what is compared; fit or recalibrate again for digests of
    this kind. The shipped demo model keeps none."""
    from octviewer.model.meta import VOLUME_DIGEST_CHARS  # 64 bits: no chance meeting among a million scans

    digests = {digest[:VOLUME_DIGEST_CHARS] for path in paths if (digest := volume_digest(path)) is not None}
    return sorted(digests) if limit is None or len(digests) <= limit else None


def patient_key(manifest_hash: str, patient_id: str) -> str:
    """Pseudonymous patient key (for the patient-cluster bootstrap of paired comparisons)."""
    return "p" + keyed_digest(f"patient\0{manifest_hash}\0{patient_id}")[:12]
