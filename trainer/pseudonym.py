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


def volume_key(manifest_hash: str, record) -> str:
    return "v" + keyed_digest(f"volume\0{manifest_hash}\0{record.path_text or record.path.as_posix()}")[:12]


def volume_label(manifest_hash: str, record, report_paths: bool = False) -> str:
    return str(record.path) if report_paths else volume_key(manifest_hash, record)


def patient_key(manifest_hash: str, patient_id: str) -> str:
    """Pseudonymous patient key (for the patient-cluster bootstrap of paired comparisons)."""
    return "p" + keyed_digest(f"patient\0{manifest_hash}\0{patient_id}")[:12]
