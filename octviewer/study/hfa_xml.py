"""The Humphrey Field Analyzer's CZM XML export (HFA II-i / HFA3, and Zeiss FORUM's export of it).

Layout, as the HFA writes it (one exam per file as a rule; several are read when present)::

    <HFA_EXPORT> (any root)
      <PATIENT> PATIENT_ID, LAST_NAME, GIVEN_NAME, BIRTH_DATE ...
        <STUDY> VISIT_DATE
          <SERIES> SERIES_DATE_TIME, MODALITY, SITE, DISPLAY_NAME ("SS-24-2 Thr") ...
            <FIELD_EXAM> EXAM_TIME, PUPIL_DIAMETER ...
              <STATIC_TEST> TEST_PATTERN, TEST_STRATEGY, FALSE_NEGATIVE_PERCENT, FALSE_POSITIVE_PERCENT,
                            FIXATION_CHECK/TRIALS, FIXATION_CHECK/ERRORS ...
                <THRESHOLD_TEST>
                  <STATPAC> GHT, GLOBAL_INDICES/MD, MD_PROBABILITY, PSD, PSD_PROBABILITY, VFI

What is read: MD, PSD, VFI (through the same range check as every VF reader,
``vf.checked_vf``), the GHT, the test pattern, the date, the eye and the reliability indices
(fixation losses as errors/trials, false positives and negatives in %). Codes this reader does
not know, and fields that contradict each other (a TEST_PATTERN code and a DISPLAY_NAME naming
different patterns, a VISIT_DATE and SERIES_DATE_TIME on different days, more fixation errors than
trials, a field given twice with different values) raise ``VfReadError`` naming the file and the
field: a perimeter's result shown beside an estimate must be the one the perimeter measured.

Codes: SITE 1 = right eye (OD), 0 = left (OS) (text R/L/OD/OS is read too); TEST_PATTERN 25 =
24-2, and otherwise the pattern named in DISPLAY_NAME ("24-2", "30-2", "10-2", "24-2C", "60-4");
a numeric GHT is kept as its code ("GHT code 2"), since Zeiss does not publish the table, and the
five GHT phrases of the printout are read as words. The patient's name and birth date (LAST_NAME, GIVEN_NAME,
BIRTH_DATE) are kept only as the exam's ``person`` (``core.person.Patient``), which the study compares with the
scans' under the ID as it does an OPV DICOM's (attack run 16, A16-5), exam by exam: each exam carries its own PATIENT
element's person, and an export holding two people's exams under one ID was judged by the last one's for both
(attack run 17, A17-4); never in a message.
A file that declares a document type is refused (an HFA export has none, and entities live there),
so a crafted file cannot expand itself into the patient ID. The parser itself refuses it
(``_NoDocumentType``), after decoding, so no encoding (UTF-16 with or without a byte-order mark)
hides the declaration from the check, as it did from a search of the raw bytes.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..core.person import Patient
from ..io.errors import VolumeReadError
from ..io.limits import open_regular
from .vf_values import (
    VfMeasurement,
    VfReadError,
    checked_vf,
    parse_date,
    parse_decimal,
    text_problem,
    vf_date_problem,
)

MAX_BYTES = 20 << 20  # an exam's export is a few hundred kB
SITES = {"1": "OD", "0": "OS", "R": "OD", "L": "OS", "OD": "OD", "OS": "OS", "RIGHT": "OD", "LEFT": "OS"}
PATTERN_CODES = {"25": "24-2"}
PATTERNS = ("24-2C", "24-2", "30-2", "10-2", "60-4")
GHT_WORDS = ("Within Normal Limits", "Outside Normal Limits", "Borderline", "General Reduction of Sensitivity",
             "Abnormally High Sensitivity")
STRATEGY_PREFIXES = {"SS": "SITA Standard", "SF": "SITA Fast", "SFR": "SITA Faster", "FT": "Full Threshold"}


#: The PATIENT fields that name the patient: read for ``HfaExam.person``, never shown.
_IDENTIFYING = ("PATIENT_ID", "LAST_NAME", "GIVEN_NAME", "BIRTH_DATE")


class NotAnHfaExport(VfReadError):
    """Well-formed XML that is no perimetry export (another device's XML): a study folder counts it among
    the other files instead of listing it as a damaged export."""


@dataclass(frozen=True)
class HfaExam:
    """One HFA exam: the global indices (as every VF reader gives them) and what qualifies them."""

    measurement: VfMeasurement
    test_pattern: str  # "24-2", ...
    strategy: str  # "SITA Standard", ... ("" when the file does not say)
    ght: str  # one of GHT_WORDS, "GHT code N", or ""
    fixation_errors: int | None = None
    fixation_trials: int | None = None
    false_positive_pct: float | None = None
    false_negative_pct: float | None = None
    md_probability: str = ""  # as printed, e.g. "<2%" ("" when not given)
    psd_probability: str = ""
    person: Patient | None = None  # whose exam: PATIENT_ID, LAST_NAME^GIVEN_NAME, BIRTH_DATE (A16-5)

    @property
    def fixation_losses(self) -> str:
        if self.fixation_trials is None:
            return ""
        return f"{self.fixation_errors}/{self.fixation_trials}"


def _text(parent, path: str, file: Path) -> str:
    """The one value of ``path`` under ``parent`` ("" when absent); a field given twice must agree."""
    values = {(e.text or "").strip() for e in parent.findall(path)}
    values.discard("")
    if len(values) > 1:
        # IDs, names and birth dates never go to a message
        shown = "" if path in _IDENTIFYING else f" ({', '.join(sorted(values))[:80]})"
        raise VfReadError(file, f"{path} is given {len(values)} times with different values{shown}: the export "
                                "contradicts itself")
    return values.pop() if values else ""


def _number(text: str, field: str, file: Path) -> float | None:
    """A plain decimal (``parse_decimal``: no ``1_0``, no non-ASCII digits, finite), or None when blank."""
    if not text:
        return None
    value = parse_decimal(text)
    if value is None:
        raise VfReadError(file, f"{field} is {text[:20]!r}, not a number")
    return value


def _percent(text: str, field: str, file: Path) -> float | None:
    value = _number(text, field, file)
    if value is not None and not 0 <= value <= 100:
        raise VfReadError(file, f"{field} is {value:g} %, outside 0-100 %")
    return value


def _count(text: str, field: str, file: Path) -> int | None:
    value = _number(text, field, file)
    if value is None:
        return None
    if value < 0 or value != int(value):
        raise VfReadError(file, f"{field} is {text!r}, not a count")
    return int(value)


def _pattern(code: str, display: str, file: Path) -> str:
    named = next((p for p in PATTERNS if re.search(rf"(?<!\d){re.escape(p)}(?![\d])", display)), "")
    if code and code in PATTERN_CODES:
        if named and named != PATTERN_CODES[code]:
            raise VfReadError(file, f"TEST_PATTERN {code} is {PATTERN_CODES[code]}, but DISPLAY_NAME "
                                    f"{display!r} says {named}: the export contradicts itself")
        return PATTERN_CODES[code]
    if named:
        return named
    if code:
        raise VfReadError(file, f"TEST_PATTERN {code!r} is not a pattern this reader knows, and DISPLAY_NAME "
                                f"{display!r} names none")
    raise VfReadError(file, "the export names no test pattern (TEST_PATTERN and DISPLAY_NAME are missing)")


def _ght(text: str, file: Path) -> str:
    if not text:
        return ""
    if re.fullmatch(r"\d+(\.0+)?", text):
        return f"GHT code {int(float(text))}"
    for words in GHT_WORDS:
        if text.strip().lower() == words.lower():
            return words
    raise VfReadError(file, f"GHT is {text[:40]!r}, not one of the Glaucoma Hemifield Test's results "
                            f"({', '.join(GHT_WORDS)})")


def _exam(patient_id: str, study, series, file: Path) -> HfaExam:
    site = _text(series, "SITE", file).upper()
    if site not in SITES:
        raise VfReadError(file, f"SITE is {site!r}: the eye is not known" if site else
                          "SITE is missing: the export does not say which eye")
    visit = parse_date(_text(study, "VISIT_DATE", file))
    series_time = _text(series, "SERIES_DATE_TIME", file)
    when = parse_date(series_time)
    if visit and when and visit != when:
        raise VfReadError(file, f"VISIT_DATE {visit} and SERIES_DATE_TIME {series_time} are different days")
    when = when or visit
    if when is None:
        raise VfReadError(file, "the export gives no date (VISIT_DATE and SERIES_DATE_TIME are missing)")
    if problem := vf_date_problem("the exam's date (VISIT_DATE, SERIES_DATE_TIME)", when):
        raise VfReadError(file, problem)
    static = series.find("FIELD_EXAM/STATIC_TEST")
    if static is None:
        raise VfReadError(file, "no FIELD_EXAM/STATIC_TEST: not a static threshold perimetry exam")
    display = _text(series, "DISPLAY_NAME", file)
    pattern = _pattern(_text(static, "TEST_PATTERN", file), display, file)
    prefix = display.split("-", 1)[0].strip().upper() if "-" in display else ""
    strategy = STRATEGY_PREFIXES.get(prefix, "")
    statpac = static.find("THRESHOLD_TEST/STATPAC")
    if statpac is None:
        raise VfReadError(file, "no THRESHOLD_TEST/STATPAC: the exam has no global indices (a screening test?)")
    indices = "GLOBAL_INDICES"
    md = _number(_text(statpac, f"{indices}/MD", file), "MD", file)
    psd = _number(_text(statpac, f"{indices}/PSD", file), "PSD", file)
    vfi = _number(_text(statpac, f"{indices}/VFI", file), "VFI", file)
    if md is None and psd is None and vfi is None:
        raise VfReadError(file, "GLOBAL_INDICES gives none of MD, PSD and VFI")
    checked_vf(file, vfi, md, psd)
    errors = _count(_text(static, "FIXATION_CHECK/ERRORS", file), "FIXATION_CHECK/ERRORS", file)
    trials = _count(_text(static, "FIXATION_CHECK/TRIALS", file), "FIXATION_CHECK/TRIALS", file)
    if errors is not None and trials is not None and errors > trials:
        raise VfReadError(file, f"FIXATION_CHECK has {errors} errors in {trials} trials: more losses than checks")
    measurement = VfMeasurement(patient_id, SITES[site], when, vfi, md, psd, source=str(file))
    return HfaExam(measurement, pattern, strategy, _ght(_text(statpac, "GHT", file), file), errors, trials,
                   _percent(_text(static, "FALSE_POSITIVE_PERCENT", file), "FALSE_POSITIVE_PERCENT", file),
                   _percent(_text(static, "FALSE_NEGATIVE_PERCENT", file), "FALSE_NEGATIVE_PERCENT", file),
                   _text(statpac, f"{indices}/MD_PROBABILITY", file),
                   _text(statpac, f"{indices}/PSD_PROBABILITY", file))


def _person(patient_id: str, patient, file: Path) -> Patient:
    """Who the PATIENT element names: the ID, LAST_NAME^GIVEN_NAME as a DICOM name, and BIRTH_DATE as its digits
    where it is a date (ISO or DICOM; anything else is none given, so a format of its own is no other person).
    Another person's export under the patient's ID was shown as their measured VF (attack run 16, A16-5)."""
    last, given = _text(patient, "LAST_NAME", file), _text(patient, "GIVEN_NAME", file)
    born = parse_date(_text(patient, "BIRTH_DATE", file))
    return Patient(patient_id, name=f"{last}^{given}" if last or given else "",
                   birth_date=born.strftime("%Y%m%d") if born else "")


class _DocumentType(Exception):
    """Raised by the tree builder at a document type declaration, before any entity is declared."""


class _NoDocumentType(ET.TreeBuilder):
    """ElementTree's tree builder, stopping the parse at a DOCTYPE: expat calls ``doctype`` when it
    meets the declaration in the decoded text, whatever the file's encoding."""

    def doctype(self, name, pubid, system):
        raise _DocumentType


def read_hfa_xml(path) -> list[HfaExam]:
    """Every exam of one CZM XML export (VfReadError naming the file and the field otherwise).

    The file is opened without blocking (``open_regular``): a named pipe or device given an ``.xml``
    name is refused instead of hanging the reader or the study index."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            data = f.read(MAX_BYTES + 1)
    except VolumeReadError as exc:
        raise VfReadError(path, exc.problem) from None
    except OSError as exc:
        raise VfReadError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    return parse_hfa_xml(data, path)


def parse_hfa_xml(data: bytes, path) -> list[HfaExam]:
    """The exams of an export already read (``path`` names the file in messages)."""
    path = Path(path)
    if len(data) > MAX_BYTES:
        raise VfReadError(path, f"larger than {MAX_BYTES >> 20} MB: not an HFA export")
    parser = ET.XMLParser(target=_NoDocumentType())
    try:
        parser.feed(data)
        root = parser.close()
    except _DocumentType:
        raise VfReadError(path, "the XML declares a document type or entities, which an HFA export never does") \
            from None
    except ET.ParseError as exc:
        raise VfReadError(path, f"not well-formed XML ({exc})") from None
    except (LookupError, ValueError) as exc:  # a declared encoding expat cannot take (Shift_JIS, UTF-7, "zlib")
        raise VfReadError(path, f"the XML declares an encoding this reader cannot decode ({str(exc)[:80]})") from None
    patients = [root] if root.tag == "PATIENT" else root.findall(".//PATIENT")
    if not patients:
        raise NotAnHfaExport(path, "no PATIENT element: not an HFA (CZM XML) perimetry export")
    exams = []
    for patient in patients:
        patient_id = _text(patient, "PATIENT_ID", path)
        if problem := text_problem("PATIENT_ID", patient_id):  # a character reference (&#10;) puts one there
            raise VfReadError(path, problem)
        person = _person(patient_id, patient, path)
        for study in patient.findall("STUDY"):
            for series in study.findall("SERIES"):
                exams.append(dataclasses.replace(_exam(patient_id, study, series, path), person=person))
    if not exams:
        raise VfReadError(path, "no STUDY/SERIES exam in the export")
    return exams
