"""Checks on identifying text read from files (patient IDs, eyes, dates), shared by every reader.

Why in core: the scan readers (``octviewer.io``) and the visual-field readers (``octviewer.study``)
must refuse the same characters, or one scan and its field would be filed under different patients.
"""

import unicodedata

# Cc: control characters (NUL, newline, tab, ESC); Cf: invisible format characters (the bidi
# overrides U+202E/U+202D, zero-width spaces); Zl/Zp: line and paragraph separators.
_HIDDEN = ("Cc", "Cf", "Zl", "Zp")


def text_problem(field: str, text: str) -> str:
    """Why an identifying text cannot be taken as it is, or "". A NUL or another control character is
    damage or a trick (it cut the ID short in a C-string reader, a newline split one ID into two lines);
    a right-to-left override shows ``PAT<U+202E>1234`` as ``PAT4321``, so two patients look alike.
    None is ever part of a clinic's ID. The message names the character, never the text."""
    bad = next((c for c in text if unicodedata.category(c) in _HIDDEN), None)
    if bad is None:
        return ""
    if unicodedata.category(bad) == "Cc":
        return f"{field} holds the control character {bad!r}"
    return f"{field} holds the invisible character U+{ord(bad):04X} ({unicodedata.name(bad, 'unnamed').lower()})"


def one_value_problem(field: str, value) -> str:
    """Why a DICOM value meant to be given once (a patient ID) is not, or "": ``A\\B`` is two values
    (VM 2), which ``str()`` turned into the invented patient ``['A', 'B']``. The values are not shown."""
    from collections.abc import Sequence

    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and len(value) > 1:
        return f"{field} holds {len(value)} values: one scan belongs to one patient"
    return ""


def patient_id_problem(value) -> str:
    """Why a patient ID read from a scan header cannot be taken, or "" (the ID itself is not shown)."""
    if problem := one_value_problem("PatientID", value):
        return problem
    return text_problem("PatientID", "" if value is None else str(value))
