"""CSV cells that a spreadsheet will not run: neutralising formula injection (CWE-1236).

Spreadsheets treat a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
as a formula; a crafted file name or DICOM field could then run a formula on the clinic's PC.
Such text cells get a leading apostrophe (shown as text, as OWASP advises). Numbers stay numbers:
``-3.50`` is written as is, so MD values remain numeric in any spreadsheet.
"""

from __future__ import annotations

import math
import re

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value) -> str:
    """One cell's text: numbers formatted plainly, text made safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    text = str(value)
    if _NUMBER.fullmatch(text):
        return text
    if text.startswith(_DANGEROUS):
        return "'" + text
    return text


def csv_row(row: dict, keep: tuple[str, ...] = ()) -> dict:
    """Every cell made safe, but those of the columns in ``keep`` (a manifest's ``path``, which must
    lead to the very file and is read by programs, not spreadsheets)."""
    return {k: v if k in keep else csv_cell(v) for k, v in row.items()}


RESEARCH_NOTICE = "research use only, not a medical device"


def notice(volume=None, synthetic_model: bool = False) -> str:
    """The ``notice`` cell every results CSV carries on every row: a row read alone (or pasted into
    another sheet) still says it is research output and whether SYNTHETIC data is behind it."""
    parts = [RESEARCH_NOTICE]
    if volume is not None and any("SYNTHETIC" in n for n in volume.notes):
        parts.append("SYNTHETIC scan")
    if synthetic_model:
        parts.append("model trained on SYNTHETIC data")
    return "; ".join(parts)
