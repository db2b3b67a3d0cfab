"""A measured visual field and the checks every reader of one applies.

Kept apart from ``vf`` (the OPV and CSV readers and the dispatch over all formats) so that the
perimeter-export readers (``hfa_xml``) build on it without importing the dispatch that imports them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from ..core import VF_INDICES
from ..core.text import text_problem as _text_problem
from ..io.limits import FIRST_VF, date_problem


class VfReadError(ValueError):
    """A visual-field file that cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path, self.problem = str(path), problem


@dataclass(frozen=True)
class VfMeasurement:
    """One measured visual field (24-2 global indices); None where the source did not give it."""

    patient_id: str
    eye: str  # OD / OS
    date: dt.date | None
    vfi: float | None = None  # %
    md_db: float | None = None
    psd_db: float | None = None
    source: str = ""  # file the values came from
    visit: str = ""  # the visit label of the source row, when it had one

    def as_dict(self) -> dict[str, float]:
        """In the Prediction's naming (vfi, md, psd), only the measured indices."""
        values = {"vfi": self.vfi, "md": self.md_db, "psd": self.psd_db}
        return {k: v for k, v in values.items() if v is not None}


#: A date as the whole field: ISO (2019-03-04) or DICOM (20190304), then perhaps a time after "T" or a space.
_DATE_TEXT = re.compile(r"(?P<date>\d{4}(?P<sep>[-/])\d{1,2}(?P=sep)\d{1,2}|\d{8})(?:[T ](?P<time>.+))?", re.ASCII)


def parse_date(text) -> dt.date | None:
    """ISO (2019-03-04), DICOM (20190304) or None; anything else is a visit label, not a date.

    The whole field is read: ``2020-01-319`` (31 or 19?), ``202001319``, ``2020-01-31 garbage`` and
    ``20200131T25:99`` (no such time) were cut to their first 10 or 8 characters and kept as
    2020-01-31 (attack run 3, F16). A time after the date must be a time (``2020-01-31T09:30:00``, as
    perimetry exports and eyepy write them)."""
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    match = _DATE_TEXT.fullmatch(str(text or "").strip())
    if match is None:
        return None
    try:
        if match["time"] is not None:
            dt.time.fromisoformat(match["time"])
        # the year first with slashes too (2019/03/04, Japanese, Chinese and Korean Excel's default: A31-23)
        fmt = f"%Y{match['sep']}%m{match['sep']}%d" if match["sep"] else "%Y%m%d"
        return dt.datetime.strptime(match["date"], fmt).date()
    except ValueError:
        return None


def vf_date_problem(field: str, when) -> str:
    """Why the date ``when`` in ``field`` cannot be when a visual field was measured, or "": before
    1970 or after today (``io.limits.date_problem``, the scans' rule with perimetry's own start). A
    perimeter whose clock was reset wrote 1900-01-01, and that one point hid a progression in the
    trend without a word (attack run 5, F6). Every reader of measured VF calls this one function."""
    if when is None:
        return ""
    problem = date_problem(when, FIRST_VF)
    return f"{field} {problem}" if problem else ""


#: What tables write in a cell for a value not measured: R's NA, Excel's #N/A, a dash (attack run 31, A31-23): read
#: as blank, where the row's other values were lost with it.
NOT_MEASURED = frozenset({"NA", "N/A", "#N/A", "-", "--", "NULL", "NONE"})
#: Field names as messages give them, per index.
_FIELD = {"vfi": "VFI", "md": "MD", "psd": "PSD"}
#: A number as perimeters and tables write one: ASCII digits, an optional sign, point and exponent.
#: Python's float() also takes "1_0" (as 10), Arabic-Indic digits, "nan" and "inf", none of which
#: a perimeter writes: read by float() alone, a typing error became a measurement.
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def parse_decimal(text) -> float | None:
    """The finite number ``text`` writes as a plain decimal, or None when it writes none."""
    text = str(text).strip()
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def measured_value(name: str, text, decimal_comma: bool = False) -> float | None:
    """Index ``name`` (vfi, md, psd) read from ``text``: None when blank, ValueError naming the index
    when the text is no plain decimal or the value is outside what a perimeter reports.

    ``decimal_comma``: a table separated by ';' or tabs, as a German or French Excel saves one, writes
    -0,49 for -0.49; one comma and no point is then the decimal mark (attack run 9, A9-6)."""
    text = str(text if text is not None else "").strip()
    if not text or text.upper() in NOT_MEASURED:
        return None
    comma = decimal_comma and text.count(",") == 1 and "." not in text
    value = parse_decimal(text.replace(",", ".") if comma else text)
    if value is None:
        raise ValueError(f"{_FIELD.get(name, name)} is {text[:20]!r}, not a number")
    if problem := vf_value_problem(name, value):
        raise ValueError(problem)
    return value


def text_problem(field: str, text: str) -> str:
    """Why an identifying text (a patient ID, an eye, a date) cannot be taken as it is, or "": the
    check every reader shares (``octviewer.core.text``), for OCT headers as for VF files."""
    return _text_problem(field, text)


def vf_value_problem(name: str, value) -> str:
    """Why a measured index cannot be what a perimeter reports, or "" when it can.

    The limits are the indices' physical ranges (``VF_INDICES``: VFI 0-100 %, MD -35 to +5 dB in
    the Humphrey sign convention, PSD 0-20 dB). A value outside them is a typing or export error
    (a VFI of 250 %, an MD of -500 dB), never a measurement, and shown beside an estimate or in a
    trend it would mislead. Every reader of measured VF (DICOM OPV, CSV, perimeter exports) calls
    this one function.
    """
    label = _FIELD.get(name, name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{label} is {value!r:.20}, not a finite number"
    lo, hi = VF_INDICES[name]["range"]
    unit = VF_INDICES[name]["unit"]
    if not lo <= value <= hi:
        return f"{label} is {value:g} {unit}, outside the {lo:g} to {hi:g} {unit} a perimeter reports"
    return ""


def checked_vf(path, vfi=None, md_db=None, psd_db=None, where: str = "") -> tuple:
    """(vfi, md_db, psd_db) as given, or VfReadError naming the file and every impossible field."""
    problems = [p for name, v in (("vfi", vfi), ("md", md_db), ("psd", psd_db)) if (p := vf_value_problem(name, v))]
    if problems:
        raise VfReadError(path, (f"{where}: " if where else "") + "; ".join(problems))
    return vfi, md_db, psd_db
