"""Who a scan or an archive's study belongs to: a PatientID, and what tells two people under one ID apart.

A PatientID is unique only within its issuer: a regional or merged archive, or a study folder filled from one,
holds several hospitals' ID ranges. PACS retrieves and screens (``pacs.net``) and the study index compare people by
this one rule (attack run 14, A14-19). Nothing here is logged or printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue


@dataclass(frozen=True)
class Patient:
    """Who a retrieve or a screen is for: the PatientID, and what tells two people under one ID apart (the
    issuer of the ID, the name, the birth date; "" where the archive or the header gives none). Never logged
    or printed (``repr`` shows nothing)."""

    patient_id: str = field(repr=False)
    issuer: str = field(default="", repr=False)
    name: str = field(default="", repr=False)
    birth_date: str = field(default="", repr=False)

    @classmethod
    def of(cls, ds: Dataset) -> Patient | None:
        """The patient an instance's (or a C-FIND answer's) header names; None when a field holds several values
        (no one person: the readers' rule, ``core.text.patient_id_problem``)."""
        values = [ds.get(k, "") for k in ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate")]
        if any(isinstance(v, MultiValue) for v in values):
            return None
        return cls(*(str(v or "") for v in values))

    def others(self, other: Patient | None) -> bool:
        """``other`` is another person: another PatientID, or under the same ID another issuer, name or birth
        date where both give one. A PatientID is unique only within its issuer: a regional or merged archive
        holds several hospitals' ID ranges, and ``screen --patient-id P`` screened another person's study
        filed under P (attack run 14, A14-19). A field one of them leaves empty contradicts nothing."""
        if other is None or other.patient_id.strip() != self.patient_id.strip():
            return True
        return other_traits(self.traits(), other.traits())

    def merged(self, other: Patient) -> Patient:
        """The same person (``not self.others(other)``) with what either of them says."""
        return Patient(self.patient_id, self.issuer or other.issuer, self.name or other.name,
                       self.birth_date or other.birth_date)

    def traits(self) -> dict[str, str]:
        """What tells this person apart under their ID, where given: issuer of the ID, family name, first given
        name, birth date (each compared only where both give it). The name as the first word of letters of its
        family and given components (of its first two words where it has no ``^``), upper case: one person's
        exports from two devices write it ``DOE^JOHN``, ``Doe^John^A``, ``DOE JOHN``, ``DOE, JOHN`` or ``DOE``,
        which must not make two people of one (a study then hides the patient's scans); a family name, first
        name or birth date differing does."""
        name = self.name.split("=")[0].upper()  # the alphabetic form; ideographic and phonetic ones after "="
        parts = [_first_word(p) for p in name.split("^")[:2]] if "^" in name else re.findall(r"[^\W\d_]+", name)[:2]
        parts += [""] * (2 - len(parts))
        given = parts[1]
        birth = re.sub(r"\D", "", self.birth_date)  # 1950-01-01 as 19500101 (attack run 15, A15-1)
        known = {"issuer": self.issuer.strip(), "family": parts[0], "given": given, "birth": birth}
        return {k: v for k, v in known.items() if v}


def one_person(patients: Iterable[Patient]) -> Patient | None:
    """The one person ``patients`` all are (merged), or None when they are several (``Patient.others``)."""
    person = None
    for patient in patients:
        if person is not None and person.others(patient):
            return None
        person = patient if person is None else person.merged(patient)
    return person


def other_traits(mine: dict[str, str], theirs: dict[str, str]) -> bool:
    """Two people, by their traits (``Patient.traits``, or ``keyed_traits`` of them): a trait both give differs.
    A trait one of them leaves empty contradicts nothing."""
    return any(mine[k] != theirs[k] for k in mine.keys() & theirs.keys())


def hashed_traits(patient: Patient) -> dict[str, str]:
    """``patient``'s traits as short digests (8 hex digits), compared as the traits are and kept in the study's
    header cache instead of names and birth dates. Not keyed with the installation's salt: the cache does not
    record the salt, and after a salt change one person's old and new digests differed, "two people" that stayed
    (attack run 15, A15-12); the cache holds the PatientID itself in plain text anyway."""
    import hashlib

    return {k: hashlib.blake2b(f"person\0{k}\0{v}".encode(), digest_size=4).hexdigest()
            for k, v in patient.traits().items()}


def one_set_of_traits(all_traits: Iterable[dict[str, str]]) -> bool:
    """Whether these traits (one per scan under one PatientID) can all be one person's (``other_traits``)."""
    merged: dict[str, str] = {}
    for traits in all_traits:
        if other_traits(merged, traits):
            return False
        merged = {**traits, **merged}
    return True


def _first_word(text: str) -> str:
    words = re.findall(r"[^\W\d_]+", text)
    return words[0] if words else ""
