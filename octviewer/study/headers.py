"""What one file's header says, read without its pixels: an OCT scan, a measured VF, or why it is skipped.

DICOM is read with pydicom up to the pixel data and only for the tags we use; a Heidelberg ``.vol``
for its 2048-byte file header, parsed with eyepy's own format description. A perimeter's export
(DICOM OPV, or the Humphrey's CZM XML ``.xml``) is small and read whole for its global indices.
Each answer is a plain dict (JSON-able) so the study index can cache it per file.

pydicom logs problems with the file name in the message; file names often carry patient IDs, so
its records are dropped while a thread reads headers here.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pydicom
from pydicom.multival import MultiValue
from pydicom.uid import OphthalmicTomographyImageStorage, OphthalmicVisualFieldStaticPerimetryMeasurementsStorage

from ..core.person import Patient, hashed_traits
from ..core.text import patient_id_problem
from ..io import VolumeReadError, describe_failure
from ..io.dicom import cut_short, eye_of, laterality_fields, quiet_pydicom, scan_date
from ..io.heidelberg import ascii_vol_header, unreadable_vol_dates, vol_patient_id
from ..io.limits import check_deflated_dicom, check_dicom_start, date_problem, open_regular
from .hfa_xml import MAX_BYTES as HFA_MAX_BYTES
from .hfa_xml import NotAnHfaExport, parse_hfa_xml
from .vf import VfMeasurement, VfReadError, parse_date, vf_from_dataset
from .vf_values import vf_value_problem

_DICOM_TAGS = ["SOPClassUID", "SOPInstanceUID", "Modality", "PatientID", "ImageLaterality", "Laterality", "StudyDate",
               "ContentDate", "AcquisitionDateTime", "NumberOfFrames", "Manufacturer", "ImageComments",
               "SharedFunctionalGroupsSequence", "IssuerOfPatientID", "PatientName", "PatientBirthDate"]
_VOL_PATTERNS = {0: "volume", 1: "line", 2: "circle", 3: "volume", 4: "volume", 5: "radial"}
#: Kept in the record of every ``.xml`` file: a cached record without it was made before XML exports
#: were read (it says "other files") and is read again.
XML_READER = "hfa-xml-1"


def _skip(reason: str, problem: str = "") -> dict:
    """A file left out of the study: ``reason`` is the category counted, ``problem`` what is wrong with
    this file (shown beside its name)."""
    return {"kind": "skip", "reason": reason, "problem": problem}


def _frames(ds) -> int:
    value = ds.get("NumberOfFrames", 1)
    value = getattr(value, "value", value)
    if value in (None, ""):
        return 1
    try:
        frames = int(str(value).strip())
    except ValueError:
        raise _HeaderLie(f"the DICOM header's NumberOfFrames is {str(value)[:20]!r}, not a whole number") from None
    if frames < 1:
        raise _HeaderLie(f"the DICOM header's NumberOfFrames is {frames}; an OCT image has at least one B-scan")
    return frames


class _HeaderLie(ValueError):
    """A header field that cannot be what it says (the message names the field)."""


def _dicom_record(f) -> dict:
    try:
        check_dicom_start(f, getattr(f, "name", ""))  # a .dcm of zeros was parsed for minutes
        check_deflated_dicom(f, getattr(f, "name", ""), os.fstat(f.fileno()).st_size)
    except VolumeReadError as exc:
        return _skip("unreadable files", exc.problem)
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=_DICOM_TAGS, force=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises anything on a damaged file
        return _skip("unreadable files", describe_failure(exc))
    modality = str(ds.get("Modality", "") or "")
    if modality == "OPV" or ds.get("SOPClassUID") == OphthalmicVisualFieldStaticPerimetryMeasurementsStorage:
        # either one saying OPV: the VF reader, which refuses a file whose other field says OPT
        try:
            f.seek(0)
            m = vf_from_dataset(pydicom.dcmread(f, force=True), getattr(f, "name", ""))
        except VfReadError as exc:
            return _skip("unreadable visual-field files", exc.problem)
        except Exception as exc:  # noqa: BLE001
            return _skip("unreadable visual-field files", describe_failure(exc))
        if several := _several_values(ds):
            # counted as a field with a PatientID of several values is (``vf_from_dataset``), and refused as a
            # field when a manifest lists it as a scan (``index._header_checked``)
            return _skip("unreadable visual-field files", _no_one_person_text(several, "measured VF"))
        person = Patient.of(ds)  # whose field: compared with the patient's scans (attack run 15, A15-15)
        return {**_vf_record(m), "person": hashed_traits(person) if person is not None else {}}
    if ds.get("SOPClassUID") != OphthalmicTomographyImageStorage and modality != "OPT":
        return _skip("non-OCT DICOM files" if "SOPClassUID" in ds or modality else "other files")
    eye, problem = eye_of(laterality_fields(ds))  # the reader's rule: fields that disagree are refused
    if problem:
        return _skip("unreadable files", problem)
    laterality = eye or ""
    date, date_note = scan_date(ds)  # the viewer's rule: it read StudyDate before ContentDate (A14-15)
    frames = _frames(ds)
    if problem := patient_id_problem(ds.get("PatientID", "")):  # as the VF readers: never an invented patient
        return _skip(UNUSABLE_PATIENT_ID, problem)
    if several := _several_values(ds):
        return _skip(NO_ONE_PERSON, _no_one_person_text(several, "scan"))
    text = f"{ds.get('Manufacturer', '')} {ds.get('ImageComments', '')}"
    return {"kind": "scan", "patient_id": str(ds.get("PatientID", "") or ""), "eye": laterality,
            **_scan_date(date, date_note), "scan_pattern": "volume" if frames > 1 else "line",
            "n_bscans": frames, "synthetic": "SYNTHETIC" in text.upper(),
            "uid": str(ds.get("SOPInstanceUID", "") or "")[:64],  # one scan at two visits of a manifest (H43-3)
            # who under that ID (issuer, name, birth date) as keyed digests: two people under one ID (A14-19)
            "person": hashed_traits(patient) if (patient := Patient.of(ds)) is not None else {}}


#: the skip reason of a scan whose header names no one person (``_several_values``)
NO_ONE_PERSON = "scans whose header names no one person"
_IDENTITY = ("PatientID", "IssuerOfPatientID", "PatientName", "PatientBirthDate")


def _several_values(ds) -> list[str]:
    """The identity fields of a DICOM header that hold several values ("ZULU^ZED\\ZULU^Z"): such a header names no
    one person (``core.person.Patient.of`` gives None). Its record had no person at all, so a field's issuer and birth
    date, which named another person, were not compared and the field was shown as the patient's measured VF (attack
    run 17, A17-7). The standard gives each of these one value (VM 1); the readers refuse a PatientID of several
    values (``core.text.patient_id_problem``) and PACS refuses such a header as another person's: the study leaves
    the file out, naming it, rather than pick one of the values or compare half a person."""
    return [k for k in _IDENTITY if isinstance(ds.get(k, ""), MultiValue)]


def _no_one_person_text(fields: list[str], what: str) -> str:
    return (f"its header names no one person (several values) in {', '.join(fields)}: whose {what} it is cannot "
            "be told; it is not used")


def _scan_date(date, note: str = "") -> dict:
    """The record's ``date`` (ISO, or "" when unknown), and a ``date_note`` when the header's date is
    one no scan can have (``io.limits.date_problem``, the rule ``load_volume`` applies): a 1900 or 2999
    date made a visit of its own in the study without a word (attack run 5, F6), or ``note`` when the header
    gave none that can be taken (``io.dicom.scan_date``: a date field of several values). The scan is kept."""
    if note:
        return {"date": "", "date_note": note}
    if date is not None and (problem := date_problem(date)):
        return {"date": "", "date_note": f"the acquisition date in the header {problem}; the date is unknown"}
    return {"date": date.isoformat() if date else ""}


def _vf_record(m: VfMeasurement) -> dict:
    return {"kind": "vf", "patient_id": m.patient_id, "eye": m.eye,
            "date": m.date.isoformat() if m.date else "", "vfi": m.vfi, "md_db": m.md_db, "psd_db": m.psd_db}


def _hfa_xml_record(f, path: Path) -> dict:
    """The exams of an HFA CZM XML export: one VF record each, under ``exams`` (an export may hold
    several). XML that is no perimetry export is another file; a damaged export is named with its
    reason, like a damaged OPV file."""
    try:
        exams = parse_hfa_xml(f.read(HFA_MAX_BYTES + 1), path)
    except NotAnHfaExport:
        return {**_skip("other files"), "reader": XML_READER}
    except VfReadError as exc:
        return {**_skip("unreadable visual-field files", exc.problem), "reader": XML_READER}
    # each exam's person (name, birth date as digests), compared with the scans' as an OPV DICOM's is: another
    # person's export under the patient's ID was shown as their measured VF (attack run 16, A16-5)
    return {"kind": "vf", "reader": XML_READER,
            "exams": [{**_vf_record(exam.measurement), "person": hashed_traits(exam.person) if exam.person else {}}
                      for exam in exams]}


def _vol_header_format():
    import construct as cs
    from eyepy.io.he.vol_reader import vol_format

    names = [s.name for s in vol_format.subcons]
    return cs.Struct(*vol_format.subcons[:names.index("__empty")])


def _vol_record(f) -> dict:
    """The 2048-byte header, read the way the viewer reads it: the patient ID in the clinic's code
    page (Latin-1 where it is not UTF-8), the other text fields made ASCII for eyepy's parser."""
    head = f.read(2048)
    try:
        h = _vol_header_format().parse(bytes(ascii_vol_header(head)))
    except Exception as exc:  # noqa: BLE001 - construct raises many types on a short or damaged header
        return _skip("unreadable files", describe_failure(exc))
    pattern = _VOL_PATTERNS.get(int(h.scan_pattern), "volume")
    if pattern == "volume" and int(h.n_bscans) == 1:
        pattern = "line"
    eye = str(h.scan_position).strip("\x00 ").upper()
    when = parse_date(h.exam_time)  # eyepy gives an ISO string or a datetime
    if problem := patient_id_problem(vol_patient_id(head)):
        return _skip(UNUSABLE_PATIENT_ID, problem)
    # an exam time that is no date reads back zeroed (1601): said as the viewer says it, not "before 1991"
    dated = ({"date": "", "date_note": "the header's exam time is not a readable date; the date is unknown"}
             if "exam time" in unreadable_vol_dates(head) else _scan_date(when))
    born = parse_date(h.dob) if "birth date" not in unreadable_vol_dates(head) else None
    person = Patient(vol_patient_id(head), birth_date=born.strftime("%Y%m%d")) if born and born.year > 1900 else None
    return {"kind": "scan", "patient_id": vol_patient_id(head), "eye": eye if eye in ("OD", "OS") else "",
            **dated, "scan_pattern": pattern,
            "n_bscans": int(h.n_bscans), "synthetic": False,
            # its birth date, compared with a DICOM's under the same ID (attack run 15, A15-8); 1899/1900: none given
            "person": hashed_traits(person) if person is not None else {}}


#: the skip reason of a scan whose header's PatientID cannot be taken (``core.text.patient_id_problem``)
UNUSABLE_PATIENT_ID = "files with an unusable patient ID"


def read_record(path: Path) -> dict:
    """What the header of one file says: a scan, a measured VF, or why it is skipped.

    The file is opened without blocking and checked with ``fstat`` (``open_regular``): a FIFO or a
    device, or a path swapped for one after the folder was listed, is skipped without being read.
    Whatever a header holds, the answer is a record, never an exception: one odd file must not
    refuse a whole study.
    """
    record = {**_record(path), "checks": RECORD_CHECKS}
    if record.get("kind") == "scan":
        record["cut"] = _cut(path)
    return record


def _cut(path: Path) -> str:
    """How a scan's file is cut short (``io.dicom.cut_short``), "" where it is whole or not DICOM: read with the
    header here, so the folder index names it when the study opens (a folder study with a cut-short scan opened
    with "nothing skipped", the cut found only when the visit was opened: walk-through H82, W19)."""
    try:
        return cut_short(path) or ""
    except Exception:  # noqa: BLE001 - unreadable here: opening the scan says why
        return ""


#: The header checks a cached record was made with: a record made before the patient ID, laterality
#: and pixel description checks (attack run 3), or before the date checks (attack run 5), is read again,
#: not served from the study's cache.
#: 5: a scan's record says whether its file is cut short ("cut", W19); 6: the viewer's date rule (A14-15); 7: who
#: under the PatientID ("person", hashed traits; A14-19, A15-4); 8: a scan's record may keep its content sample
#: ("sample", ``io.content.sample_key``) beside its content digest ("content"), filled in by the study index (A15-2);
#: 9: names folded before they are hashed (``core.person.fold_name``, A16-1), an HFA XML exam's "person" (A16-5);
#: 10: a name's words hashed one by one ("wordset", ``core.person.whole_name_differs``, A16-17); 11: a header whose
#: identity fields hold several values names no one person and is left out (``_several_values``, A17-7); 12: a
#: birth date kept at each precision it gives, the second given name, a name's words per script (``core.person``'s
#: table of name pairs, tests/test_person_table.py); 13: a word set per script, the suffix, the given initial, the
#: issuer's universal ID (attack run 18); 14: UE not folded to U, all given names joined, twins in kanji (run 19);
#: 15: a free-text name's words as a set ("allwords"), one-character Han names (run 20); 16: initials among them
#: (A21-1); 17: one letter as every word (X^X, UNKNOWN^X) is a placeholder (A21-3); 18: the middle-name component,
#: initials across scripts, letters, numbers, markers, Windows-1250 words, OIDs as issuers (attack run 22); 19: a
#: free-text name's long words and initials apart (a middle initial one side leaves out); 20: words joined in order,
#: not sorted letters (anagram twins), VAN / THI in free text; 21: NO NAME, an issuer in HL7's caret form; 22: a
#: given name's consonants across scripts (twins of one initial); 23: free text joined in order (twins JOSE MARIA /
#: MARIA JOSE), Roman numerals, more Arabic readings, urn:oid issuers (attack run 23); 24: free-text names' initials
#: and consonants across scripts, VAN / THI in the middle component; 25: placeholders in Cyrillic, Greek and Han;
#: 26: kana and Greek spellings, a given name's ending across scripts, free-text runs of words; 27: kana without a
#: separator read as hangul is
#: 28: a Latin X read as Х, placeholders folded (5a637de, which did not raise it: A24-3); the given name per script
#: (A24-1), consonants and endings dropped, Latin-1 symbols as a name not decoded (A24-5); 29: the initials of a
#: given name in another script beside a Latin group that gives the family name alone (KIM=김^민수); 30: a
#: patronymic aside and an initial compared in Cyrillic, Greek, Arabic and Hebrew, Greek vowel pairs' initials;
#: 31: names in those scripts compared as written again, a patronymic left out (A26-1, A26-2), the rare form's
#: free-text groups (A26-3, A26-4), longer kana family names (A26-5); 32: names in scripts with spaces sorted, their
#: first and second given words and the middle component, more patronymics, Urdu letters, a family name alone, the
#: rare form's short native words (attack run 27); 33: a patronymic kept to compare (walk-through H135, W10), the
#: forms a name in another script may be written in, its numbers and second initial, more placeholders (attack run 28);
#: 34: given words to the fourth, a patronymic's initial, free-text forms without initials, placeholders (run 29);
#: 35: the initial after the given name in free text too, I, V and X no numbers, Ø and Å, look-alike letters, Han
#: variants, the components swapped, free-text initials in order, a double family name alone, abbreviated forms
#: (attack runs 28-30)
RECORD_CHECKS = 35


def well_formed(record) -> bool:
    """Whether a record read back from the study's cache has the shape and values ``read_record`` gives.

    The cache is a file on disk: a row damaged by a disk error, edited by hand or written by another
    version held valid JSON of another shape (a number, a list, a scan without a date, a patient ID
    that is a list), and indexing then raised TypeError or KeyError for the whole study (attack run
    4, F5). Such a row is not used; the file's header is read again.
    """
    if not isinstance(record, dict) or record.get("checks") != RECORD_CHECKS:
        return False
    kind = record.get("kind")
    if kind == "skip":
        return isinstance(record.get("reason"), str) and isinstance(record.get("problem", ""), str)
    if kind == "scan":
        n = record.get("n_bscans")
        return (_usable_id(record.get("patient_id")) and record.get("eye") in ("OD", "OS", "")
                and _date_text(record.get("date")) and isinstance(record.get("scan_pattern"), str)
                and type(n) is int and 0 <= n < 2**31 and isinstance(record.get("synthetic"), bool)
                and isinstance(record.get("cut", ""), str) and isinstance(record.get("content", ""), str)
                and isinstance(record.get("sample", ""), str)
                and _traits(record.get("person", {})))
    if kind == "vf":
        exams = record.get("exams", [record])
        return (isinstance(exams, list) and all(_vf_well_formed(m) and _traits(m.get("person", {})) for m in exams)
                and _traits(record.get("person", {})))
    return False


def _vf_well_formed(m) -> bool:
    return (isinstance(m, dict) and _usable_id(m.get("patient_id")) and m.get("eye") in ("OD", "OS")
            and _date_text(m.get("date"))
            and not any(vf_value_problem(name, m.get(key))
                        for name, key in (("vfi", "vfi"), ("md", "md_db"), ("psd", "psd_db"))))


def _traits(value) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _usable_id(value) -> bool:
    # isprintable() (fast, in C) is False for every character patient_id_problem refuses
    return isinstance(value, str) and (value.isprintable() or not patient_id_problem(value))


def _date_text(value) -> bool:
    """"" or the ISO date ``read_record`` writes (``date.isoformat()``)."""
    if not isinstance(value, str) or value == "":
        return value == ""
    try:
        return len(value) == 10 and dt.date.fromisoformat(value) is not None
    except ValueError:
        return False


def _record(path: Path) -> dict:
    with quiet_pydicom():  # pydicom's records name files (and so patients)
        try:
            with open_regular(path) as f:
                return _read_record(path, f)
        except VolumeReadError as exc:
            special = "not a file" in exc.problem
            return _skip("special files" if special else "unreadable files",
                         "not a regular file: " + exc.problem if special else exc.problem)
        except _HeaderLie as exc:
            return _skip("unreadable files", str(exc))
        except Exception as exc:  # noqa: BLE001 - a header library's own exception on a damaged file
            return _skip("unreadable files", describe_failure(exc))


def _read_record(path: Path, f) -> dict:
    suffix = path.suffix.lower()
    head = f.read(132)
    f.seek(0)
    # an empty or cut scan file is listed with the reason load_volume gives (attack run 2 M10): an
    # empty .dcm was "not a DICOM file" here, an empty or 1-byte .vol was passed over without a word
    if not head and suffix in (".dcm", ".dicom", ".vol"):
        return _skip("unreadable files", "the file is empty")
    if suffix == ".vol" and (size := os.fstat(f.fileno()).st_size) < 2048:
        return _skip("unreadable files", f"the file is truncated: {size} bytes, shorter than the 2048-byte header")
    if head[128:132] == b"DICM" or suffix in (".dcm", ".dicom"):
        return _dicom_record(f)
    if head.startswith(b"HSF-OCT") or (suffix == ".vol" and head.startswith(b"ep-v")):
        return _vol_record(f)
    if suffix == ".xml":
        return _hfa_xml_record(f, path)
    return _skip("other files")
