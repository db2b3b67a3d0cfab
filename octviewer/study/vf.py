"""Measured visual fields: from a manifest or a CSV next to the scans, DICOM OPV files and HFA XML exports.

A clinic's perimeter (Humphrey, Octopus) exports each test as a DICOM "Ophthalmic Visual Field
Static Perimetry Measurements" object (Modality OPV). The global indices live in standard
attributes: MD in Global Deviation From Normal (0024,0066), PSD in Localized Deviation From Normal
(0024,0068), and VFI as a numeric observation coded DCM 111852 "Visual Field Index" inside the
Visual Field Global Results Index Sequence (0024,0320). We read exactly those, so a Humphrey
export and our own test files are read by the same code.

``python -m octviewer.study.vf FILE...`` prints what the viewer reads from each file (eye, date, MD,
PSD, VFI, and for an HFA export its pattern, strategy, GHT and reliability), after the same checks,
so a clinic can see whether its perimeter's exports are read before opening a study.

A measurement belongs to one eye on one date. OCT and perimetry are often done on different days
of the same visit, so a VF is matched to the OCT visit nearest in time within ``VF_MATCH_DAYS``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (attack run 11, A11-7); and the
    from octviewer.core.stop import run_module  # package's module runs, whose VfReadError is the one raised

    run_module("octviewer.study.vf")

import csv
import datetime as dt
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import OphthalmicVisualFieldStaticPerimetryMeasurementsStorage, generate_uid
from pydicom.valuerep import DSfloat

from ..core.cancel import Cancelled
from ..core.files import table_encoding
from ..io.dicom import new_dataset
from ..io.errors import VolumeReadError
from ..io.limits import check_deflated_dicom, open_regular
from .vf_values import (  # noqa: F401 - checked_vf, vf_value_problem: the readers' checks, re-exported
    VfMeasurement,
    VfReadError,
    checked_vf,
    measured_value,
    parse_date,
    parse_decimal,
    text_problem,
    vf_date_problem,
    vf_value_problem,
)

#: A VF done within this many days of an OCT visit is read as part of that visit.
VF_MATCH_DAYS = 45
#: A measured VF further than this many days from the scan is shown but not compared with the estimate
#: from that scan. Glaucoma VF tests are typically repeated every 6 to 12 months (EGS guidelines; Chauhan
#: et al., Br J Ophthalmol 2008, who ask for about three a year early on), so structure and function more
#: than about six months apart may have changed in between: a field 277 days before the scan was set
#: against the estimate as "difference +2.1 %" with no word (eighth walk-through, item 4).
VF_COMPARE_MAX_DAYS = 180


def vf_days_from_scan(vf_date, scan) -> int | None:
    """Days from the scan to the measured field (negative: the field came first); None when either date is
    unknown. ``scan``: a date or a datetime (a volume's acquisition time)."""
    scan = scan.date() if isinstance(scan, dt.datetime) else scan
    if not isinstance(vf_date, dt.date) or not isinstance(scan, dt.date):
        return None
    return (vf_date - scan).days


def vf_not_compared(vf_date, scan) -> str:
    """Why a measured field is not set against the scan's estimate, in the words the window and the reports
    print after "not compared: "; "" when it is compared. Not when it lies more than ``VF_COMPARE_MAX_DAYS``
    from the scan (the reason is with the constant), nor when either date is unknown: such a field cannot be
    shown to lie within them, and a manifest row's field with no date was compared as if current (H56)."""
    if not isinstance(vf_date, dt.date):
        return "the VF test date is unknown"
    days = vf_days_from_scan(vf_date, scan)
    if days is None:
        return "the scan's date is unknown"
    return f"more than {VF_COMPARE_MAX_DAYS} days apart" if abs(days) > VF_COMPARE_MAX_DAYS else ""


def vf_compared(vf_date, scan) -> bool:
    """Whether a measured field is set against the scan's estimate (``vf_not_compared`` gives no reason)."""
    return not vf_not_compared(vf_date, scan)


#: DICOM code of the VFI observation (CID 4250, "Visual Field Global Index Name").
VFI_CODE = ("111852", "DCM", "Visual Field Index")
_LATERALITY = {"R": "OD", "L": "OS", "OD": "OD", "OS": "OS"}


class NotAVfTable(VfReadError):
    """A CSV without the columns of a VF table (a manifest without VF, another program's table): a
    study folder counts it among the other files instead of listing it as a damaged table."""


#: Rows read between two looks at the cancel signal (about 20 ms of reading).
CANCEL_EVERY = 500

#: A cell this long is no VF table's. ``csv``'s own field limit is process-wide and another reader
#: (the trainer's manifest) raises it, so the table checks its cells itself.
_CELL_LIMIT = 128 << 10


#: What a table's cells may be separated by: Excel saves ';' where the decimal mark is a comma (German,
#: French: "CSV (Trennzeichen-getrennt)") and tabs as "Text (Tab delimited)".
DELIMITERS = (",", ";", "\t")
#: The column names of VF tables and manifests: the separator is the one that splits the header into them.
_COLUMNS = frozenset({"path", "patient_id", "eye", "date", "visit", "vfi", "md", "psd"})


#: Columns every results CSV of octviewer has (the window's export, octviewer-predict's): such a file holds the
#: network's ESTIMATES of VFI, MD and PSD, and one saved in a study folder was read as a table of measured fields,
#: the estimate then shown "measured" beside itself, difference +0.0 (attack run 13, A13-15).
OWN_RESULTS_COLUMNS = frozenset({"probability", "decision", "notice"})


def _names_vf_columns(text: str) -> bool:
    """Whether header text (its first 128 KiB) holds the words patient_id and one of vfi, md, psd: a header
    naming VF columns that no separator splits. By the set of its words, in one pass: a regex looking for one
    word after the other backtracked from every 'md' to the line's end, and a 64 KiB header of 'md md ...'
    held indexing for 15 s (attack run 10, A10-22)."""
    words = set(re.findall(r"\w+", text[:_CELL_LIMIT].lower()))
    return "patient_id" in words and bool(words & {"vfi", "md", "psd"})


def names_vf_columns(path) -> bool:
    """Whether one of the first two lines of the file ``path`` names VF columns, whatever its encoding: a table saved
    by Excel as "Text (Tab delimited)" on Windows is Windows-1252, not UTF-8, and as a .txt it was counted as "1
    other file", its fields lost without a word (attack run 30, A30-10)."""
    try:
        with open_regular(Path(path)) as raw:
            encoding = table_encoding(raw)
            head = raw.read(_CELL_LIMIT)
    except (VolumeReadError, OSError):
        return False
    # in its encoding, any byte that is not one replaced: UTF-16's header was not found in its bytes (A31-29)
    lines = head.decode(encoding, errors="replace").splitlines()[:2]
    return any(_names_vf_columns(line) for line in lines)


def table_delimiter(f) -> str:
    """The separator of the CSV text file ``f`` (at its start, and left there): of ``DELIMITERS``, the one
    that splits the header line into the most known column names, a comma on a tie. A study folder's
    visual_fields.csv saved by a German Excel (';', -0,49) was counted as "1 other file" without a word
    and its fields were lost (attack run 9, A9-6)."""
    header = f.readline(_CELL_LIMIT)
    f.seek(0)

    def known(delimiter: str) -> int:
        try:
            cells = next(csv.reader([header], delimiter=delimiter), [])
        except csv.Error:
            return 0
        return len({column_name(c) for c in cells} & _COLUMNS)

    return max(DELIMITERS, key=known)


def column_name(cell: str) -> str:
    """A header cell as the column name it means: without the blanks around it, in lower case. A table saved
    with ", " between its names (``patient_id, eye, vfi``) had its columns " eye" and " vfi": counted as "1 other
    file", and a manifest's scans filed under no patient, without a word (attack run 10, A10-6); one headed
    ``PATIENT_ID;EYE;VFI`` was refused as a header whose names no separator splits (A10-8)."""
    name = re.sub(r"\s*[(\[][^()\[\]]*[)\]]\s*$", "", str(cell).strip().lower())  # MD (dB), VFI (%)
    joined = re.sub(r"[\s\-]+", "_", name)  # Patient ID, patient-id: patient_id (attack run 31, A31-21)
    return joined if joined in _COLUMNS else name


def table_reader(f) -> csv.DictReader:
    """A csv.DictReader over the VF table or manifest ``f``: its separator (``table_delimiter``) and its column
    names (``column_name``), the one reading of a header for both. Excel's separator line above the header
    (``sep=;``) gives the separator: the table was "1 other file", its rows lost unsaid (attack run 31, A31-21).
    ``first_row``: the line number of the first row, for messages."""
    hint = re.fullmatch(r'"?sep=(.)"?\r?\n?', f.readline(_CELL_LIMIT), re.IGNORECASE)
    if hint:
        reader = csv.DictReader(f, delimiter=hint.group(1))
    else:
        f.seek(0)
        reader = csv.DictReader(f, delimiter=table_delimiter(f))
    reader.first_row = 3 if hint else 2
    if reader.fieldnames is not None:
        reader.fieldnames = [column_name(c) for c in reader.fieldnames]
    return reader


def read_vf_table(path) -> list[VfMeasurement]:
    """Measured VF rows from a manifest or a VF CSV.

    Columns: ``patient_id``, ``eye``, a date in ``date`` or ``visit``, and any of ``vfi``, ``md``,
    ``psd`` (blank = not measured). Rows without any VF value are left out. Every bad row is
    reported at once, with its row number.
    """
    out, problems = read_vf_rows(path)
    if problems:
        raise VfReadError(path, "; ".join(problems))
    return out


def read_vf_rows(path, cancel=None, encoding: str | None = None) -> tuple[list[VfMeasurement], list[str]]:
    """The good rows of a VF table and a message per bad row (the study index keeps the good rows and
    lists the bad ones); NotAVfTable when the file is no VF table at all.

    ``cancel`` (a threading.Event or a callable) is checked every ``CANCEL_EVERY`` rows and raises
    ``octviewer.core.cancel.Cancelled``: a 300,000-row table kept the study index busy for 20 s after
    Cancel, which then returned as if complete (attack run 3, F29).

    A bad row is one whose values cannot be taken: a number that is no plain decimal (``1_0``, which
    float() reads as 10, Arabic-Indic digits, ``nan``) or lies outside the index's range, an unknown
    eye, a control character (a NUL byte) in the patient ID or date. A table whose rows cannot be
    told apart is refused whole (VfReadError naming the line): a cell over several lines (a quote
    left open takes the rows below it into one cell) or longer than the csv module's 128 KiB limit;
    keeping the rows around such damage would keep rows that may not be the ones written.

    Rows of one patient's eye on one date must agree (a manifest repeats a visit's VF on each of its
    volumes): rows that give different values contradict each other, and neither is taken; the first
    one was kept without a word, whichever the perimeter gave (attack run L4)."""
    path = Path(path)
    try:
        raw = open_regular(path)
    except VolumeReadError as exc:
        raise VfReadError(path, exc.problem) from None
    if raw.peek(4)[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0"):  # a workbook saved with a table's name (H141, W10)
        raw.close()
        raise VfReadError(path, "an Excel workbook, not a text table: save it as CSV UTF-8; the table is not read")
    with raw, io.TextIOWrapper(raw, encoding=encoding or table_encoding(raw), newline="") as f:
        reader = csv.DictReader(f)  # for the csv.Error message below, should the header not be read
        try:
            reader = table_reader(f)
            delimiter = reader.reader.dialect.delimiter
            names = list(reader.fieldnames or ())
            twice = sorted({c for c in ("patient_id", "eye", "date", "visit", "vfi", "md", "psd")
                            if names.count(c) > 1})
            if twice:  # csv.DictReader kept the last of the two cells: the header says two things
                raise VfReadError(path, f"the column(s) {', '.join(twice)[:80]} are given twice in the header; "
                                        "the table is not read")
            columns = set(reader.fieldnames or ())
            if OWN_RESULTS_COLUMNS <= columns:
                raise NotAVfTable(path, "octviewer's own results (estimates, not measured visual fields)")
            missing = {"patient_id", "eye"} - columns
            if missing or not ({"vfi", "md", "psd"} & columns):
                if "patient_id" not in columns and _names_vf_columns(",".join(names)):  # named, not told apart
                    raise VfReadError(path, "the header names VF columns, but they are not separated by commas, "
                                            "semicolons or tabs; save the table as CSV (comma-separated)")
                if _names_vf_columns(f.readline(_CELL_LIMIT)):  # a title line above the column names (A31-21)
                    raise VfReadError(path, f"line {reader.first_row} names the VF columns, the line above it does "
                                            "not: delete the lines above the column names; the table is not read")
                raise NotAVfTable(path, "a VF table needs the columns patient_id, eye and at least one of vfi, md, "
                                        "psd")
            out, problems = [], []
            seen, conflicts = {}, {}
            stop = getattr(cancel, "is_set", cancel)
            rows = []
            for n, row in enumerate(reader, start=reader.first_row):
                if stop is not None and n % CANCEL_EVERY == 0 and stop():
                    raise Cancelled()
                rows.append((n, row))
            # a delimiter closing every row is an empty last cell past the header's, not more cells (A29-8); only
            # where every row has it: a row alone with one, as MD -4,05 beside a blank PSD writes (91,-4,05,), was
            # read MD -4 and PSD 5 (A30-5)
            # one blank cell past the header in most rows: a row with another number of cells past it is A28-5's
            # decimal comma, blank or not (91,-4,05,, beside rows closed by one: A31-20)
            closed = [len(row.get(None) or ()) == 1 and not row[None][0].strip() for _, row in rows]
            closing = sum(closed) > len(rows) / 2
            # the header's last name blank: a delimiter closing it, not R's row-name column, which comes first
            closed_header = names[-1:] == [""] and names.count("") == 1
            for k, (n, row) in enumerate(rows):
                if stop is not None and n % CANCEL_EVERY == 0 and stop():
                    raise Cancelled()
                cells = [v for v in row.values() if isinstance(v, str)]
                cells += [v for v in row.get(None) or () if isinstance(v, str)]
                if any(len(v) > _CELL_LIMIT for v in cells):
                    raise csv.Error("field larger than field limit")  # as csv says at its default limit
                if any("\n" in v or "\r" in v for v in cells):
                    raise VfReadError(path, f"row {n} runs over several lines (to line {reader.line_num}): a quote "
                                            "left open takes the rows below into one cell; the table is not read")
                # MD -4,05 in a comma-separated table read -4 and 05 into PSD (A28-5)
                # a header closed by a delimiter names its last column "": a value there is a cell past the columns
                # (MD -4,05 read MD -4, PSD 5 under "...,md,psd,": A31-19)
                if row.get(None) and not (closing and closed[k]) or closed_header and str(row.get("") or "").strip():
                    hint = " (a decimal comma in a comma-separated table?)" if delimiter == "," else ""
                    problems.append(f"row {n}: more cells than the header has columns{hint}; the row is not used")
                    continue
                if delimiter == "," and any(re.match(r"\s*[+-]?0\d", str(row.get(c) or ""))
                                            for c in ("vfi", "md", "psd")):
                    # 05 after -4: no perimeter writes a leading zero; a decimal comma split -4,05 in a comma-separated
                    # table whose cell count still fits the header (a blank last cell left out: A31-22)
                    problems.append(f"row {n}: a value with a leading zero (a decimal comma in a comma-separated "
                                    "table?); the row is not used")
                    continue
                try:
                    values = [measured_value(c, row.get(c), decimal_comma=delimiter != ",")
                              for c in ("vfi", "md", "psd")]
                except ValueError as exc:
                    problems.append(f"row {n}: {exc}")
                    continue
                if all(v is None for v in values):
                    if problem := _unsplit_row(row, n, delimiter):
                        problems.append(problem)
                    continue
                if problem := _row_problem(row, n):
                    problems.append(problem)
                    continue
                eye = _eye(row)
                visit = str(row.get("date") or row.get("visit") or "").strip()
                key = (str(row["patient_id"]).strip(), eye, parse_date(visit) or visit)  # 20190304 = 2019-03-04
                if key in seen:  # a manifest repeats the visit's VF on each of its volumes: the same values
                    if values != seen[key][1]:
                        conflicts.setdefault(key, [seen[key]]).append((n, values))
                    continue
                seen[key] = (n, values)
                out.append(VfMeasurement(key[0], eye, parse_date(visit), *values, source=str(path), visit=visit))
            for key, rows in conflicts.items():  # neither row can be taken: which one did the perimeter give?
                out = [m for m in out if (m.patient_id, m.eye, m.date or m.visit) != key]
                problems.append(_conflict(rows))
        except csv.Error as exc:
            too_long = "field limit" in str(exc)
            raise VfReadError(path, f"line {reader.reader.line_num}: " + (
                f"a cell is longer than {_CELL_LIMIT >> 10} KiB" if too_long else f"not a readable CSV ({exc})")
                + "; the table is not read") from None
        except UnicodeDecodeError:
            if encoding is None and f.encoding == "utf-8-sig":
                retry = True  # Excel's "CSV" on Windows is Windows-1252: one Müller refused every row (A31-24)
            else:
                raise VfReadError(path, "neither UTF-8 nor Windows-1252 text; save it as CSV UTF-8; the table is not "
                                        "read") from None
        except OSError as exc:
            raise VfReadError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        else:
            retry = False
    return read_vf_rows(path, cancel, encoding="cp1252") if retry else (out, problems)


def _unsplit_row(row: dict, n: int, delimiter: str) -> str:
    """Why a row without VF values is not read when the header's separator did not split it (fewer cells than
    the header, one holding another separator), or "": rows separated by ',' under a header separated by ';'
    were one cell each, all left out as rows "without any VF value", in silence (attack run 10, A10-7)."""
    cells = [v for k, v in row.items() if k is not None and v is not None]
    if len(cells) == len(row) - (None in row) or not any(d in c for c in cells for d in DELIMITERS if d != delimiter):
        return ""
    separator = {",": "commas", ";": "semicolons", "\t": "tabs"}[delimiter]
    return (f"row {n} has {len(cells)} cell(s), the header {len(row) - (None in row)}: its cells are not separated "
            f"by {separator}, as the header's are; the row is not read")


def _conflict(rows: list[tuple[int, list]]) -> str:
    """The message for rows of one eye and date whose values differ (no patient ID: it goes to logs)."""
    def values(vals) -> str:
        shown = [f"{name.upper()} {'blank' if v is None else f'{v:g}'}" for name, v in zip(("vfi", "md", "psd"), vals)]
        return ", ".join(shown)
    head = f"rows {', '.join(str(n) for n, _ in rows)}"
    return (f"{head}: the same eye on the same date with different values ("
            + "; ".join(f"row {n}: {values(v)}" for n, v in rows) + "); neither is used")


#: The eye as tables write it besides OD / OS (attack run 31, A31-23).
_EYES = {"R": "OD", "RE": "OD", "RIGHT": "OD", "L": "OS", "LE": "OS", "LEFT": "OS"}


def _eye(row: dict) -> str:
    """A VF table row's eye as OD or OS where it writes one (R, RE, RIGHT, L, LE, LEFT too), else as written."""
    eye = str(row.get("eye") or "").strip().upper()
    return _EYES.get(eye, eye)


def _row_problem(row: dict, n: int) -> str:
    """Why a VF table row's eye, patient ID or date cannot be taken, or ""."""
    for column in ("patient_id", "date", "visit"):
        if problem := text_problem(column, str(row.get(column) or "")):
            return f"row {n}: {problem}"
    eye = _eye(row)
    if eye not in ("OD", "OS"):
        return f"row {n}: eye is {eye[:10]!r}, expected OD or OS"
    for column in ("date", "visit"):
        if problem := _date_problem(column, str(row.get(column) or "").strip()):
            return f"row {n}: {problem}"
    return ""


#: Text written like a date: digits in three groups (31/31/2020, 2020-13-45, 04.03.2019) or 8 digits.
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\d{8}")


def _date_problem(column: str, text: str) -> str:
    """Why a ``date`` cell (or a ``visit`` written like a date) is no date the table can use, or "".

    A ``visit`` may be a label (``1``, ``v2``, ``baseline``), but one written like a date must be one:
    '31/31/2020' was kept as a label without a word, so the VF matched no OCT visit by date (attack run 2
    L8). Dates are ISO (2020-01-31) or DICOM (20200131); a day-first or month-first date is refused,
    since 04/03/2019 is a different day in each reading."""
    if not text:
        return ""
    if (when := parse_date(text)) is not None:
        return vf_date_problem(column, when)
    if column == "date" or _DATE_LIKE.fullmatch(text):
        return f"{column} is {text[:20]!r}, not a date (write it as YYYY-MM-DD)"
    return ""


def _code_value(item) -> tuple[str, str] | None:
    codes = getattr(item, "ConceptNameCodeSequence", None)
    if not codes:
        return None
    return str(getattr(codes[0], "CodeValue", "")), str(getattr(codes[0], "CodingSchemeDesignator", ""))


def _one(value, field: str, path):
    """A DICOM value given once: a second value (``A\\B``, VM 2) is a file that contradicts itself."""
    if isinstance(value, (list, tuple, MultiValue)):
        if len(value) > 1:
            shown = "\\".join(str(v) for v in value)[:40]
            raise VfReadError(path, f"{field} holds {len(value)} values ({shown!r}): one field, one value")
        value = value[0] if value else None
    return value


def _real(value, field: str, path) -> float | None:
    """An FL (binary) or DS (text) value as a finite number; DS text must be a plain decimal."""
    value = _one(value, field, path)
    if value in (None, ""):
        return None
    number = float(value) if isinstance(value, float) and not isinstance(value, DSfloat) else parse_decimal(value)
    if number is None or not math.isfinite(number):
        raise VfReadError(path, f"{field} is {str(value)[:20]!r}, not a number")
    return number


def _vfi(ds: Dataset, path) -> float | None:
    """The VFI observation (DCM 111852), given once, in % (UCUM ``%``) where the file names a unit."""
    field = "VFI (Visual Field Index)"
    found = []
    for result in getattr(ds, "VisualFieldGlobalResultsIndexSequence", None) or []:
        for obs in getattr(result, "DataObservationSequence", None) or []:
            if _code_value(obs) != VFI_CODE[:2] or "NumericValue" not in obs:
                continue
            units = getattr(obs, "MeasurementUnitsCodeSequence", None) or []
            unit = str(getattr(units[0], "CodeValue", "") or "") if units else "%"
            if unit != "%":
                raise VfReadError(path, f"{field} is given in {unit[:20]!r} (MeasurementUnitsCodeSequence); "
                                        "the VFI is a percentage")
            found.append(_real(obs.NumericValue, field, path))
    values = {v for v in found if v is not None}
    if len(values) > 1:
        shown = ", ".join(f"{v:g}" for v in sorted(values))
        raise VfReadError(path, f"{field} is given {len(found)} times with different values ({shown}): "
                                "the file contradicts itself")
    return values.pop() if values else None


def vf_from_dataset(ds: Dataset, path) -> VfMeasurement:
    """The global indices of an OPV dataset already read (the indexer reads each file once).

    The SOP class and the Modality must both say OPV: one that says OPT (or anything else) is a file
    that contradicts itself, never read as a field. Every value must be given once (a PatientID
    ``A\\B`` names two patients; two different VFI observations are two results), and the VFI in %."""
    modality = str(_one(ds.get("Modality", ""), "Modality", path) or "")
    sop_class = ds.get("SOPClassUID")
    says_opv = (sop_class == OphthalmicVisualFieldStaticPerimetryMeasurementsStorage, modality == "OPV")
    if not any(says_opv):
        raise VfReadError(path, "not a DICOM visual-field (OPV) file")
    if not all(says_opv):
        sop_name = getattr(sop_class, "name", "") or str(sop_class or "missing")
        raise VfReadError(path, f"the SOP class is {sop_name[:60]!r} but the Modality is {modality or 'missing'!r}: "
                                "the file contradicts itself about being a visual field (OPV)")
    laterality = str(_one(getattr(ds, "Laterality", "") or getattr(ds, "ImageLaterality", ""), "Laterality", path)
                     or "").upper()
    if laterality not in _LATERALITY:
        raise VfReadError(path, "the visual field does not say which eye (Laterality is missing)")
    patient_id = str(_one(ds.get("PatientID", ""), "PatientID", path) or "")
    if problem := text_problem("PatientID", patient_id):
        raise VfReadError(path, problem)
    vfi = _vfi(ds, path)
    md = _real(getattr(ds, "GlobalDeviationFromNormal", None), "MD (Global Deviation From Normal)", path)
    psd = _real(getattr(ds, "LocalizedDeviationFromNormal", None), "PSD (Localized Deviation From Normal)", path)
    checked_vf(path, vfi, md, psd)
    when = parse_date(getattr(ds, "StudyDate", "") or getattr(ds, "ContentDate", "") or "")
    if problem := vf_date_problem("the StudyDate (or ContentDate)", when):
        raise VfReadError(path, problem)
    return VfMeasurement(patient_id, _LATERALITY[laterality], when, vfi, md, psd, source=str(path))


def read_opv(path) -> VfMeasurement:
    """MD, PSD and VFI of one DICOM OPV file."""
    try:
        with open_regular(path) as f:
            check_deflated_dicom(f, path, os.fstat(f.fileno()).st_size)
            return vf_from_dataset(pydicom.dcmread(f), path)  # pydicom decodes a value when it is read
    except VolumeReadError as exc:
        raise VfReadError(path, exc.problem) from None
    except VfReadError:
        raise
    except Exception as exc:  # a value pydicom cannot decode (an FL of 6 bytes) raised from vf_from_dataset
        raise VfReadError(path, f"not a readable DICOM file ({type(exc).__name__})") from exc


#: the names a table (a VF table or a manifest) may have: Excel's "Unicode Text" saves a table as .txt, which a study
#: folder skipped as an "other file", its fields simply absent (walk-through H135, W7)
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")


def read_vf_file(path) -> list[VfMeasurement]:
    """The measured VF in one file, whichever reader it needs: a VF table (``TABLE_SUFFIXES``), the HFA's CZM XML
    export (``.xml``, ``octviewer.study.hfa_xml``) or a DICOM OPV object (anything else)."""
    suffix = Path(path).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return read_vf_table(path)
    if suffix == ".xml":
        from .hfa_xml import read_hfa_xml  # it builds on this module's VfMeasurement and checks

        return [exam.measurement for exam in read_hfa_xml(path)]
    return [read_opv(path)]


def write_opv(path, patient_id: str, eye: str, date: dt.date, md_db: float | None = None,
              psd_db: float | None = None, vfi: float | None = None, synthetic: bool = True) -> Path:
    """A minimal, valid OPV object with the global indices (test fixtures and the synthetic demo).

    It carries no test points: the viewer reads only the global indices.
    """
    path = Path(path)
    ds = new_dataset(OphthalmicVisualFieldStaticPerimetryMeasurementsStorage)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "OPV"
    ds.Manufacturer = "octviewer SYNTHETIC" if synthetic else "octviewer"
    ds.PatientID, ds.PatientName = patient_id, ""
    ds.StudyDate = ds.ContentDate = date.strftime("%Y%m%d")
    ds.Laterality = {"OD": "R", "OS": "L"}[eye]
    if md_db is not None:
        ds.GlobalDeviationFromNormal = float(md_db)
    if psd_db is not None:
        ds.LocalizedDeviationFromNormal = float(psd_db)
    if vfi is not None:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = VFI_CODE
        unit = Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "%", "UCUM", "%"
        obs = Dataset()
        obs.ValueType = "NUMERIC"
        obs.ConceptNameCodeSequence = Sequence([code])
        obs.NumericValue = f"{float(vfi):.4g}"
        obs.MeasurementUnitsCodeSequence = Sequence([unit])
        result = Dataset()
        result.DataObservationSequence = Sequence([obs])
        ds.VisualFieldGlobalResultsIndexSequence = Sequence([result])
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@dataclass(frozen=True)
class VfComparison:
    """One VF index, predicted beside measured; the results panel, OU view and reports show these."""

    name: str  # vfi / md / psd, as in Prediction.vf
    predicted: float | None
    measured: float | None

    @property
    def difference(self) -> float | None:
        """Predicted minus measured."""
        return None if self.predicted is None or self.measured is None else self.predicted - self.measured


def compare_vf(predicted, measured: VfMeasurement | None) -> list[VfComparison]:
    """VFI, MD and PSD rows for a prediction's ``vf`` dict and a measurement (either may be missing)."""
    values = measured.as_dict() if measured is not None else {}
    predicted = predicted or {}
    return [VfComparison(k, float(predicted[k]) if k in predicted else None, values.get(k))
            for k in ("vfi", "md", "psd")]


def nearest_vf(measurements, eye: str, date: dt.date | None, visit: str = "",
               max_days: int = VF_MATCH_DAYS) -> VfMeasurement | None:
    """The patient's measurement for this eye and visit: same visit label, else nearest date in range."""
    same_eye = [m for m in measurements if m.eye == eye]
    for m in same_eye:
        if visit and m.visit == visit:
            return m
    if date is None:
        return None
    dated = [(abs((m.date - date).days), m) for m in same_eye if m.date is not None]
    dated = [(d, m) for d, m in dated if d <= max_days]
    return min(dated, key=lambda x: x[0])[1] if dated else None


def _describe(path) -> tuple[list[str], list[str]]:
    """One line per measurement in ``path`` (no patient ID: the user's terminal may be logged), and one per
    refused row of a VF table: a table is read as the study reads it, its good rows kept beside its bad ones
    (refusing the whole file for one bad row hid every good measurement in it). VFI keeps its decimal: a
    table may hold 97.5 %, an HFA whole percent (88, not 88.0)."""
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    problems: list[str] = []
    suffix = Path(path).suffix.lower()
    if suffix == ".xml":
        from .hfa_xml import read_hfa_xml

        exams = [(e.measurement, e) for e in read_hfa_xml(path)]
    elif suffix in TABLE_SUFFIXES:
        rows, problems = read_vf_rows(path)
        exams = [(m, None) for m in rows]
    else:
        exams = [(read_opv(path), None)]
    lines = []
    for m, exam in exams:
        line = (f"{path}: {m.eye} {m.date or m.visit or 'no date'}  MD {fmt(m.md_db, '.2f')} dB  "
                f"PSD {fmt(m.psd_db, '.2f')} dB  VFI {fmt(m.vfi, '.4g')} %")
        if exam is not None:
            extra = [exam.test_pattern, exam.strategy, exam.ght and f"GHT: {exam.ght}",
                     exam.fixation_losses and f"fixation losses {exam.fixation_losses}",
                     exam.false_positive_pct is not None and f"false pos. {exam.false_positive_pct:g} %",
                     exam.false_negative_pct is not None and f"false neg. {exam.false_negative_pct:g} %"]
            line += "  (" + ", ".join(x for x in extra if x) + ")"
        lines.append(line)
    return lines, [f"{path}: {problem}" for problem in problems]


def main(argv=None) -> int:
    """Print the measured VF of each file; 1 when any file or table row is refused (its message on stderr)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m octviewer.study.vf",
        description="Read measured visual fields (DICOM OPV, HFA CZM XML export, VF CSV) as the viewer does and "
                    "print the checked global indices. Research use only.")
    parser.add_argument("files", nargs="+", help="perimetry files: .dcm (OPV), .xml (HFA export) or .csv")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            lines, refused = _describe(path)
        except VfReadError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            status = 1
            continue
        for line in lines:
            print(line)
        for problem in refused:
            print(f"refused row: {problem}", file=sys.stderr)
            status = 1
    return status

