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


def printable(text: str) -> str:
    """``text`` with every hidden character but the newline, tab and carriage return written as an escape
    (``\\x1b``, ``\\u202e``). Why: file names come from folders nobody here named; a name holding
    ``ESC ] 0 ; ... BEL`` or ``ESC [ 2 J``, printed raw, retitles or clears the user's terminal, and a
    right-to-left override shows one name as another (attack run 3, F18)."""
    if all(c in "\n\r\t" or unicodedata.category(c) not in _HIDDEN for c in text):
        return text
    return "".join(c if c in "\n\r\t" or unicodedata.category(c) not in _HIDDEN else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in text)


def one_line(text: str) -> str:
    """``printable`` for a value printed on one line: newlines and carriage returns escaped too. An
    archive's patient name holding a newline printed a forged line of its own (attack run 8, A8-7)."""
    return printable(text).replace("\r", "\\r").replace("\n", "\\n")


class _PrintableStream:
    """A text stream that writes through ``printable``; everything else is the wrapped stream's (tqdm
    asks it for ``isatty`` and ``encoding``)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def printable_stderr(main):
    """Run a command's ``main`` with every line it prints on stderr passed through ``printable``: the
    names of skipped and failed scans, the errors that quote them, argparse's own complaints. One place
    for every message, so a new message cannot forget it."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        stream = sys.stderr
        sys.stderr = _PrintableStream(stream)
        try:
            return main(*args, **kwargs)
        finally:
            sys.stderr = stream

    return wrapped
