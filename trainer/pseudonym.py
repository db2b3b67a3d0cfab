"""Pseudonymous volume keys for everything the trainer writes (reports, eval, surrogates).

File names often hold the patient ID and the scan date (``SYN003-0000_OD_20150426_0.dcm``), so
outputs name a volume by ``v`` + 12 hex digits of SHA-256 over the manifest's content hash and the
volume's path as written in the manifest. Without the manifest the key cannot be reversed or
guessed from a name; with the same manifest, ``fit`` and ``evaluate`` give the same keys. The
manifest row number is written alongside, so the clinic that owns the manifest can look a volume
up. ``--report-paths`` writes the paths instead (for one's own, non-shared analyses).
"""

from __future__ import annotations

import hashlib


def volume_key(manifest_hash: str, record) -> str:
    text = f"{manifest_hash}\0{record.path_text or record.path.as_posix()}".encode()
    return "v" + hashlib.sha256(text).hexdigest()[:12]


def volume_label(manifest_hash: str, record, report_paths: bool = False) -> str:
    return str(record.path) if report_paths else volume_key(manifest_hash, record)


def patient_key(manifest_hash: str, patient_id: str) -> str:
    """Pseudonymous patient key (for the patient-cluster bootstrap of paired comparisons)."""
    return "p" + hashlib.sha256(f"{manifest_hash}\0{patient_id}".encode()).hexdigest()[:12]
