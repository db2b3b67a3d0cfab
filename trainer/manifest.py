"""Dataset intake: read and validate a manifest before any work, and split it by patient.

Manifest CSV, one row per volume: ``path, patient_id, eye (OD/OS), visit, label
(glaucoma/normal), vfi, md, psd`` (blank = not measured), optional ``split`` (train/val/test) and
any extra columns (carried along, e.g. demographics). Every problem is collected and reported at
once with its row number, so a clinic fixes its file in one pass.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from octviewer.core import VF_INDICES
from octviewer.core.files import file_sha256
from octviewer.core.text import text_problem
from octviewer.study.vf_values import parse_decimal

from . import stop

REQUIRED = ("path", "patient_id", "eye", "visit", "label")
SPLITS = ("train", "val", "test")
MAX_FIELD = 4096  # characters; no path, identifier or value needs more
MAX_MANIFEST_BYTES = 1 << 30
SHOWN_PROBLEMS = 30  # the message lists the first ones and counts the rest; .problems keeps them all
SYSTEM_DIRS = ("/dev", "/proc", "/sys", "/etc", "/bin", "/sbin", "/boot", "/usr", "/lib", "/lib64", "/run", "/var/run")
_SYSTEM_PREFIXES = tuple(d + "/" for d in SYSTEM_DIRS)
_VISIT = re.compile(r"^(\d{4}-\d{2}-\d{2}|[vV]?\d{1,4})$")


class ManifestError(Exception):
    def __init__(self, path, problems: list[str]):
        self.problems = problems
        head = f"{Path(path).name}: {len(problems)} problem(s) in the manifest"
        shown = [f"  - {p}" for p in problems[:SHOWN_PROBLEMS]]
        if len(problems) > SHOWN_PROBLEMS:
            shown.append(f"  ... and {len(problems) - SHOWN_PROBLEMS} more")
        super().__init__(head + "\n" + "\n".join(shown))


@dataclass
class Record:
    row: int  # 1-based line number in the CSV (header is line 1)
    path: Path
    patient_id: str = field(repr=False)
    eye: str
    visit: str
    label: int  # 1 = glaucoma
    vf: dict[str, float | None]
    split: str = ""
    extra: dict = field(default_factory=dict, repr=False)
    path_text: str = field(default="", repr=False)  # the path as written in the manifest
    header_patient: str | None = field(default=None, repr=False, compare=False)  # its DICOM's PatientID, once read
    # who under that ID (issuer, name, birth date) as the header cache's digests (core.person.hashed_traits)
    header_person: dict | None = field(default=None, repr=False, compare=False)
    header_date: str | None = field(default=None, repr=False, compare=False)  # its header's date (ISO, "" for none)
    person: str = field(default="", repr=False, compare=False)  # its split_groups group, set by assign_splits

    @property
    def case(self) -> tuple[str, str, str]:
        """The paper's "case": one eye at one visit. A visit number is one visit however written ('V2', 'v2',
        '2', '02' all pass ``_VISIT``): compared as text, validate's label-conflict check missed one eye
        labelled both at 'V2' and 'v2' (attack run 10, A10-11), and the case-level figures split it in two."""
        visit = self.visit
        if visit[:1] in ("v", "V") or visit.isdecimal():
            digits = visit.lstrip("vV")
            visit = str(int(digits)) if digits.isascii() and digits.isdecimal() else visit
        return (self.patient_id, self.eye, visit)


def _visit_problem(text: str) -> str | None:
    if not text:
        return None  # not recorded (public datasets)
    if not _VISIT.match(text):
        return f"visit must be a date (YYYY-MM-DD) or a visit number (1, v2), got {text[:40]!r}"
    if "-" in text:
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return f"visit {text!r} is not a valid date"
        # No plausibility rule here (the viewer's study manifests have one, io.limits.date_problem): training
        # only orders and groups visits, and de-identified research sets shift dates by years, before 1991
        # or after today; refusing them row by row (attack run 5, F6's first fix) refused whole datasets.
    return None


def _in_system_dir(path: str) -> bool:
    return path.startswith(_SYSTEM_PREFIXES) or path in SYSTEM_DIRS


def _file_problem(text: str, file: str) -> tuple[str | None, str, os.stat_result | None]:
    """(problem or None, resolved path, stat). Only regular files (or folders, for folder formats)
    pass. The path is resolved (symlinks, ``..``) only when it exists: most of the cost of a large
    manifest is here."""
    if "\0" in text:  # os.stat raised a raw ValueError ("embedded null byte"), a traceback from validate
        return "the path holds a NUL byte", file, None
    if os.path.isabs(text) and _in_system_dir(text):
        return f"path points into a system folder: {text[:200]}", file, None
    try:
        st = os.stat(file)
    except (OSError, ValueError):
        return f"file not found: {text[:200]}", os.path.normpath(file), None
    real = os.path.realpath(file)
    if _in_system_dir(real):
        return f"path resolves into a system folder: {text[:200]}", real, None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return f"not a regular file (device, FIFO or socket): {text[:200]}", real, None
    return None, real, st


#: Bytes read from each end of a file for its sample hash (two scans of one geometry differ in their
#: UIDs near the start and in their pixels near the end).
SAMPLE_BYTES = 1 << 16


def _sample_hash(path: str, size: int) -> str:
    h = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        h.update(f.read(SAMPLE_BYTES))
        if size > 2 * SAMPLE_BYTES:
            f.seek(size - SAMPLE_BYTES)
            h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()


class _SameContent:
    """Finds volumes that are one scan under several names: hard links (same device and inode) at no
    cost, byte-for-byte copies by content (only files sharing a size are read: first a sample hash of both
    ends, and a full SHA-256 only where the samples agree), and any other copy by its decoded voxels
    (``io.content.volume_digest``: another header, encoding or format of the same scan), which decodes every
    volume once (``check_volumes`` then reuses it)."""

    def __init__(self):
        self.by_inode: dict[tuple[int, int], int] = {}
        self.by_size: dict[int, list[tuple[str, int]]] = defaultdict(list)
        self.samples: dict[str, str] = {}
        self.full: dict[str, str] = {}
        self.by_voxels: dict[str, int] = {}

    def _sample(self, path: str, size: int) -> str:
        if path not in self.samples:
            self.samples[path] = _sample_hash(path, size)
        return self.samples[path]

    def _whole(self, path: str) -> str:
        if path not in self.full:
            self.full[path] = file_sha256(path)
        return self.full[path]

    def first_row(self, path: str, st: os.stat_result, row: int) -> tuple[int, str] | None:
        """(earlier row, how) when this file is the same scan as an earlier row's, else None."""
        inode = (st.st_dev, st.st_ino)
        if inode in self.by_inode:
            return self.by_inode[inode], "a hard link to the same file"
        self.by_inode[inode] = row
        if stat.S_ISREG(st.st_mode):
            try:
                for other, other_row in self.by_size[st.st_size]:
                    if self._sample(other, st.st_size) == self._sample(path, st.st_size) \
                            and self._whole(other) == self._whole(path):
                        return other_row, "a byte-for-byte copy"
            except OSError:
                return None  # unreadable: the volume check names it
            self.by_size[st.st_size].append((path, row))
        return self._same_voxels(path, row)

    def _same_voxels(self, path: str, row: int) -> tuple[int, str] | None:
        """A scan re-saved with another PatientID (12 such copies of one scan passed validate as 12 patients
        across all three splits: attack run 3, F17), re-encoded losslessly (RLE) or converted to .npz is the
        same scan with other bytes (attack run 12, A12-3): compared by its decoded voxels and geometry."""
        from octviewer.io.content import volume_digest

        if (digest := volume_digest(path)) is None:
            return None
        if digest in self.by_voxels:
            return self.by_voxels[digest], "the same pixel data under other header fields, encoding or format"
        self.by_voxels[digest] = row
        return None


def _rows(path: Path):
    """(line number, fields) per CSV row, or raise ManifestError for an unreadable file."""
    from octviewer.core.files import FileRefused, read_small_file

    try:  # a FIFO or a link to /dev/zero was "manifest not found"; one swapped in after the look blocked
        raw = read_small_file(path, MAX_MANIFEST_BYTES)
    except FileRefused as exc:
        raise ManifestError(path, [f"the manifest cannot be read: {exc}"]) from None
    except OSError as exc:
        raise ManifestError(path, [f"the manifest cannot be read ({exc.strerror or type(exc).__name__})"]) from None
    try:
        raw.decode("utf-8-sig")  # checked whole, for the line of a bad byte; the text is not kept
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ManifestError(path, [f"line {line}: the file is not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as "
                                   "UTF-8 (in Excel: 'CSV UTF-8')"]) from None
    # decoded piece by piece as the rows are read: a StringIO made from the whole text holds it at 4 bytes
    # a character, and a 183 MB manifest took 2 GB to validate (attack run 2 L7)
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline=""))
    while True:
        # An over-long cell is a row problem ("longer than 4096 characters"), so the csv limit is raised, but
        # only while this reader reads a row: it is process-wide, and left raised it let every other CSV
        # reader of the process (VF tables) take cells of any length.
        previous = csv.field_size_limit(max(MAX_MANIFEST_BYTES, 1 << 20))
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ManifestError(path, [f"line {reader.line_num}: not valid CSV: {exc}"]) from None
        finally:
            csv.field_size_limit(previous)
        yield reader.line_num, fields


def read_manifest(path: str | Path, skip_bad: bool = False,
                  check_files: bool = True) -> tuple[list[Record], list[str]]:
    """Parse and validate; returns (records, skipped-row messages). Raises ManifestError unless
    ``skip_bad``, in which case bad rows are left out and listed.

    Paths are compared after resolving ``..``, symlinks and relative-vs-absolute spellings, and files
    by content (hard links, byte-for-byte copies: ``_SameContent``), so one volume cannot enter twice,
    let alone pass as many patients. Only regular files and folders are accepted (never a device such as
    /dev/zero, a FIFO or a socket, which would hang or never end when read).
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(path, [f"manifest not found: {path}"])
    rows = _rows(path)
    try:
        _, columns = next(rows)
    except StopIteration:
        raise ManifestError(path, ["the manifest is empty"]) from None
    columns = [c.strip() for c in columns]
    twice = sorted({c for c in columns if c and columns.count(c) > 1})
    if twice:  # a row's dict kept the last of the two cells: the header says two things
        raise ManifestError(path, [f"column(s) given twice in the header: {', '.join(twice)[:200]}"])
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ManifestError(path, [f"missing column(s): {', '.join(missing)} (found: {', '.join(columns)[:500]})"])
    root = str(path.parent)
    records, problems, bad_rows = [], [], set()
    seen_paths = {}
    same_content = _SameContent()
    n_rows = 0
    for i, fields in rows:
        if stop.requested():  # the trainer's commands turn Ctrl-C/SIGTERM into this flag (attack run 7, A7-22)
            raise stop.Stopped(f"stopped while reading {path.name}")
        if not fields:
            continue  # a blank line
        n_rows += 1
        row_problems = []
        if len(fields) != len(columns):
            row_problems.append(f"has {len(fields)} field(s), the header has {len(columns)}")
            fields = (fields + [""] * len(columns))[:len(columns)]
        if max(map(len, fields)) > MAX_FIELD:
            long = [c for c, v in zip(columns, fields) if len(v) > MAX_FIELD]
            row_problems.append(f"field(s) longer than {MAX_FIELD} characters: {', '.join(long)[:200]}")
            fields = [v[:MAX_FIELD] for v in fields]
        r = dict(zip(columns, fields))
        text = r["path"].strip()
        file = text if os.path.isabs(text) else os.path.join(root, text)
        resolved = file if check_files else os.path.normpath(file)
        if not text:
            row_problems.append("empty path")
        elif check_files:
            problem, resolved, st = _file_problem(text, file)
            if problem:
                row_problems.append(problem)
        if text:
            if resolved in seen_paths:
                row_problems.append(f"duplicate path (also row {seen_paths[resolved]})")
            elif check_files and st is not None and (same := same_content.first_row(resolved, st, i)):
                row_problems.append(f"duplicate scan: the same content as row {same[0]} ({same[1]})")
            seen_paths.setdefault(resolved, i)
        label = r["label"].strip().lower()
        if label not in ("glaucoma", "normal", "1", "0"):
            row_problems.append(f"unknown label {r['label'][:40]!r} (glaucoma or normal)")
        eye = r["eye"].strip().upper()
        if eye not in ("OD", "OS", ""):  # blank: not recorded (public datasets)
            row_problems.append(f"eye must be OD or OS (or blank if unknown), got {r['eye'][:40]!r}")
        if not r["patient_id"].strip():
            row_problems.append("empty patient_id")
        elif problem := text_problem("patient_id", r["patient_id"]):  # the headers' rule (attack run 5, F17)
            row_problems.append(problem)
        visit = r["visit"].strip()
        problem = _visit_problem(visit)
        if problem:
            row_problems.append(problem)
        vf = {}
        for name, spec in VF_INDICES.items():
            value_text = (r.get(name) or "").strip()
            if not value_text:
                vf[name] = None
                continue
            value = parse_decimal(value_text)  # the study readers' number rule: float() took "9_9" as 99 (A11-9)
            if value is None:
                row_problems.append(f"{name} is not a number: {value_text[:40]!r}")
                continue
            lo, hi = spec["range"]
            if not lo <= value <= hi:
                row_problems.append(f"{name} {value} outside the plausible range {lo}..{hi} {spec['unit']}")
            vf[name] = value
        split = (r.get("split") or "").strip().lower()
        if split and split not in SPLITS:
            row_problems.append(f"split must be train, val or test, got {split[:40]!r}")
        header = None
        if check_files and not row_problems and stat.S_ISREG(st.st_mode):
            header = read_header(file)
            if problem := header_eye_problem(file, r["patient_id"].strip(), eye, header):
                row_problems.append(problem)
            if problem := header_pattern_problem(header):
                row_problems.append(problem)
        if row_problems:
            problems += [f"row {i}: {p}" for p in row_problems]
            bad_rows.add(i)
            continue
        extra = {k: v for k, v in r.items() if k not in (*REQUIRED, "vfi", "md", "psd", "split")}
        records.append(Record(i, Path(file), r["patient_id"].strip(), eye, visit,
                              1 if label in ("glaucoma", "1") else 0, vf, split, extra, text,
                              header_patient=None if header is None else _header_patient(header),
                              header_person=None if header is None else _header_person(header),
                              header_date=None if header is None else _header_date(header)))
    if check_files:
        for rec, why in other_patients_scans(records):
            problems.append(f"row {rec.row}: its scan's own header names {why}; it is not used (correct the row or "
                            "the file)")
            bad_rows.add(rec.row)
    # one patient in two splits leaks information between training and testing
    splits_of = defaultdict(set)
    for rec in records:
        if rec.split:
            splits_of[rec.patient_id].add(rec.split)
    for rec in records:
        if len(splits_of[rec.patient_id]) > 1:
            names = ", ".join(sorted(splits_of[rec.patient_id]))
            problems.append(f"row {rec.row}: patient appears in several splits ({names})")
            bad_rows.add(rec.row)
    if not n_rows:
        problems.append("the manifest has no rows")
    if problems and not skip_bad:
        raise ManifestError(path, problems)
    records = [r for r in records if r.row not in bad_rows]
    return records, problems


def content_hash(path: str | Path) -> str:
    """SHA-256 of the manifest's bytes: a resumed run must see the same manifest, not just its name."""
    return file_sha256(path)


#: A DICOM PatientID that the rows file under more patient IDs than this is an anonymiser's placeholder
#: ("ANONYMOUS", one value for a whole export), not one person's eyes: it does not group the split.
MAX_IDS_PER_PERSON = 4


def header_patients(records: list[Record]) -> dict[int, str]:
    """Row -> the PatientID its scan's DICOM header names ("" for none, or no DICOM), read once per record
    with the study index's header reader (``study.headers.read_record``: the header only, never blocking).
    Held in memory only: never printed, logged or written."""
    _read_headers(records)
    return {r.row: r.header_patient or "" for r in records}


def header_persons(records: list[Record]) -> dict[int, dict]:
    """Row -> who its scan's DICOM header names under its PatientID ({} for none): the digests of the issuer of
    the ID, family and first name and birth date (``core.person.hashed_traits``). In memory only."""
    _read_headers(records)
    return {r.row: r.header_person or {} for r in records}


def header_dates(records: list[Record]) -> dict[int, str]:
    """Row -> the date its scan's DICOM header gives (ISO, "" for none): what the scan itself says of its visit,
    compared by ``study.index.mixed_patient_scans`` (a row's visit is the row's word, A16-4). In memory only."""
    _read_headers(records)
    return {r.row: r.header_date or "" for r in records}


def _read_headers(records: list[Record]) -> None:
    for r in records:
        if r.header_patient is None or r.header_person is None or r.header_date is None:
            header = read_header(r.path)
            r.header_patient, r.header_person = _header_patient(header), _header_person(header)
            r.header_date = _header_date(header)


def read_header(path) -> dict:
    """What the file's DICOM header says (``study.headers.read_record``: the header only, never blocking), {} for
    no regular file."""
    from octviewer.study.headers import read_record

    return read_record(Path(path)) if os.path.isfile(path) else {}


def _header_patient(header: dict) -> str:
    return str(header.get("patient_id") or "") if header.get("kind") == "scan" else ""


def _header_person(header: dict) -> dict:
    return dict(header.get("person") or {}) if header.get("kind") == "scan" else {}


def _header_date(header: dict) -> str:
    return str(header.get("date") or "") if header.get("kind") == "scan" else ""


def people_under_one_id(records: list[Record]) -> list[str]:
    """A warning, by row count, where the scans of one of the manifest's patient IDs name different people in
    their DICOM headers (another issuer of the ID, family or first name, birth date where both give one), by the
    rule PACS screens and the study index follow (``core.person.one_set_of_traits``). Such a manifest passed
    validate as one patient, counted in the patient counts and intervals as one, while Open study manifest said
    it (attack run 15, A15-14). A warning as the study index's "people" check is (a name written two ways must not
    hide a patient, A15-1) and as validate's other header disagreements that do not swap a row's scan are: the
    rows stay, one patient, in one split (the safe side for a leak)."""
    from octviewer.core.person import one_set_of_traits

    persons, by_patient = header_persons(records), defaultdict(list)
    for r in records:
        by_patient[r.patient_id].append(r)
    two = [rs for rs in by_patient.values() if len(rs) > 1 and not one_set_of_traits(persons[r.row] for r in rs)]
    if not two:
        return []
    return [f"{sum(map(len, two))} rows: the scans of {len(two)} of the manifest's patients name different people in "
            "their DICOM headers (another issuer of the ID, name or birth date: an archive holding several hospitals' "
            "IDs, a mis-filed scan, or one name written two ways); each is counted as one patient and kept in one "
            "split: check these rows before trusting the patient counts"]


def other_patients_scans(records: list[Record]) -> list[tuple[Record, str]]:
    """(row, whom its scan's header names) for the rows whose scan's header names another person than most scans
    of the row's patient ID, or another row's patient whose own scans' headers do not name them, by the study
    index's rule, called, not copied (``study.index.mixed_patient_scans``: Open study manifest leaves such a scan
    out). Two rows' paths swapped between a normal and a glaucoma patient were trained on with each other's
    labels, explained as "one per eye?" (attack run 12, A12-4), and with one scan per patient as "a re-keyed
    export?" (attack run 13, A13-16). A consistent re-key (every scan of a row patient under one other header
    ID) and per-eye IDs are not touched. Rows are named by number only: the IDs are patients'. The scans'
    header traits and dates go with them: a scan under the person's old ID is kept (``old_id_rows``, A16-10), and
    the 'eye' rule compares the scan's own date, not the row's visit (A16-4, A16-5)."""
    from octviewer.study.index import mixed_patient_scans

    mixed = mixed_patient_scans(*_index_view(records))
    first_row = {}
    for r in records:
        first_row.setdefault(r.patient_id, r.row)
    out = []
    for r in records:
        if (found := mixed.get(str(r.path))) is None:
            continue
        _, theirs, own, kind = found
        if kind == "others":  # own need not be a listed patient here
            out.append((r, "another patient than the other scans of its patient ID do (another patient's scan?)"))
        elif kind == "swapped":
            out.append((r, f"the patient of row {first_row[own]}, whose own scans' headers name someone else "
                           "(rows swapped?)"))
        else:
            out.append((r, f"the patient of row {first_row[own]}, listed with this eye at this visit under their "
                           "own ID (another patient's scan?)"))
    return out


def old_id_rows(records: list[Record]) -> list[Record]:
    """The rows whose scan's header gives another PatientID than the other scans of the row's patient ID do, while
    naming the same person (name and birth date, nothing differing): an ID changed or records merged; used as the
    row's patient, by the study index's rule (``study.index.old_id_scans``; attack run 16, A16-10)."""
    from octviewer.study.index import old_id_scans

    scans, header_ids, persons, _ = _index_view(records)
    kept, refused = old_id_scans(scans, header_ids, persons), {r.path for r, _ in other_patients_scans(records)}
    return [r for r in records if str(r.path) in kept and r.path not in refused]


def _index_view(records: list[Record]) -> tuple:
    """The rows as the study index's patient rules take them: (scans, header IDs, header traits, header dates) by
    path; a visit 'V2' as '2' (``Record.case``)."""
    from octviewer.study.index import ScanEntry

    header, persons, dates = header_patients(records), header_persons(records), header_dates(records)
    scans = [ScanEntry(str(r.path), r.patient_id, r.eye, r.case[2], None) for r in records]
    return (scans, {str(r.path): header[r.row] for r in records if header[r.row]},
            {str(r.path): persons[r.row] for r in records}, {str(r.path): dates[r.row] for r in records})


def header_pattern_problem(header: dict) -> str | None:
    """Why a row whose scan's own header says it is no volume scan (a circle scan, a line scan) is not used: every
    model the trainer makes reads volume scans (optic-disc cubes), and the viewer and octviewer-predict refuse the
    others for it (``Predictor.check``), while the trainer cached and trained on them with their rows' labels
    (attack run 13, A13-14). By the header the manifest check reads anyway (DICOM, Heidelberg .vol); a format with
    no such header is judged when it is decoded."""
    pattern = header.get("scan_pattern") if header.get("kind") == "scan" else None
    if pattern in (None, "volume"):
        return None
    n = header.get("n_bscans")
    return (f"a {pattern} scan ({n} B-scan{'s' if n != 1 else ''}): the model reads volume scans (optic-disc cubes); "
            "leave the row out")


def header_eye_problem(path, patient_id: str, eye: str, header: dict) -> str | None:
    """Why a row is not used when its scan's own header gives the other eye, in the study index's words and by its
    rule (``study.index.check_header``: which of the two is wrong cannot be told); None otherwise. The trainer
    took such a row's label and VF values for the other eye's scan without a word while Open study manifest
    refused the same row (attack run 12, A12-4). The check's patient and date warnings are not the trainer's
    (its patient rule is ``split_groups``; a visit may be a number)."""
    from octviewer.study.index import ScanEntry, check_header

    try:
        check_header(ScanEntry(str(path), patient_id, eye, "", None), header, "the row", "the row's")
    except ValueError as exc:
        return str(exc)
    return None


def _header_people(records: list[Record]) -> dict[str, set[str]]:
    """Header PatientID -> the manifest's patient IDs its rows give (only rows whose scan's header gives an ID).
    By the ID alone: people the issuer, name or birth date tell apart under one header ID are joined here all the
    same, the safe side for a leak. Telling them apart by name parted one person's per-eye IDs across train and
    test where two devices spelled the name two ways (O'BRIEN / OBRIEN: attack run 16, A16-11, A11-4's leak back);
    ``header_warnings`` says such a join (``_people_told_apart``)."""
    header, people = header_patients(records), defaultdict(set)
    for r in records:
        if header[r.row]:
            people[header[r.row]].add(r.patient_id)
    return people


def _people_told_apart(records: list[Record], header_id: str) -> bool:
    """Whether the scans whose header gives ``header_id`` name several people by their issuer, name or birth date
    (``core.person.one_set_of_traits``): a warning's words only, never the split's grouping (A16-11)."""
    from octviewer.core.person import one_set_of_traits

    header, persons = header_patients(records), header_persons(records)
    return not one_set_of_traits(persons[r.row] for r in records if header[r.row] == header_id)


#: A birth date given by the scans of more row patients than this is a placeholder (1 January 1900 for a whole
#: export), not a trait that ties two IDs to one person: ``_one_person_ids`` compares none of its scans.
MAX_PATIENTS_PER_BIRTH_DATE = 100


def _one_person_ids(records: list[Record]) -> list[set[str]]:
    """Sets of the manifest's patient IDs whose scans' headers may name one person under other PatientIDs: a name
    and a birth date given and nothing that tells two people apart (``_maybe_one_person``). A cohort listing one
    person's visits before a record merge under the old MRN and the later ones under the new was split with the
    person's baseline eyes in train and their later eyes in test, validate silent (attack run 18, A18-24; A11-4's
    leak by another door). Namesakes (twins, a 1 January placeholder) are joined too: one split for two people costs
    nothing, a leak costs the test figures. By birth date first (no other pairs are compared): a date given to the
    day with the same date, one given to the month or year with every date in it (a device that writes 194503 beside
    one that writes 19450315, attack run 22, A22-10), as any link wherever no whole other name parts them
    (``_maybe_one_person``: a word shared, or no script in common): one person's spellings (another script, free
    text, an umlaut written out) with a year-only birth date were parted where a loose link asked the names to agree
    (attack run 23, A23-7). A year-only birth date shares a name word (KIM) with every namesake born that year and
    chains them into one group above ``MAX_IDS_PER_PERSON`` (attack run 22, A22-22), so a group too big keeps only
    its firmer links, rank by rank (``_link_rank``: a full date; names that agree; names in two scripts that agree by
    their readings; a year-only 김^민수 chained three Latin KIMs born that year and the cap dropped the person's own
    link to KIM^MINSU with theirs, A23-17); a group still too big joins none (``header_warnings`` says so,
    ``_unjoined_ids``), and a birth date given as it is by the scans of more than ``MAX_PATIENTS_PER_BIRTH_DATE``
    patients (a placeholder) joins none."""
    return _capped(_person_links(records), 3)


def _person_links(records: list[Record]) -> dict[tuple[str, str], int]:
    """(patient ID, patient ID) -> its ``_link_rank``, the firmest found, for every two of the manifest's patient
    IDs whose headers may name one person (``_one_person_ids``), before any cap."""
    header, persons = header_patients(records), header_persons(records)
    entries: dict[tuple, dict] = {}  # (patient, header ID, traits) -> traits
    for r in records:
        traits = persons[r.row]
        if header[r.row] and _births(traits) and _named(traits):
            entries.setdefault((r.patient_id, header[r.row], tuple(sorted(traits.items()))), traits)
    given: dict[str, set[str]] = defaultdict(set)  # a birth date as given (its finest trait) -> its patients
    for (patient, _, _), traits in entries.items():
        given[_births(traits)[0]].add(patient)
    entries = {k: t for k, t in entries.items() if len(given[_births(t)[0]]) <= MAX_PATIENTS_PER_BIRTH_DATE}
    within: dict[str, list] = defaultdict(list)  # a birth date at each precision it gives -> the entries giving it
    for key, traits in entries.items():
        for birth in _births(traits):
            within[birth].append((key, traits))
    links: dict[tuple[str, str], int] = {}  # (patient, patient) -> its rank (``_link_rank``), the firmest found
    for (a, id_a, _), mine in entries.items():
        for (b, id_b, _), theirs in within[_births(mine)[0]]:
            if a != b and id_a != id_b and _maybe_one_person(mine, theirs):
                pair = (min(a, b), max(a, b))
                links[pair] = min(links.get(pair, 3), _link_rank(mine, theirs))
    return links


def _unjoined_ids(records: list[Record]) -> set[str]:
    """The manifest's patient IDs on a link (``_person_links``) that the split leaves unjoined (``_capped``: too many
    namesakes to tell which is the person) where neither ID kept a firmer link (``_link_rank``): the person may be
    parted across the splits, and validate said nothing (attack run 23, A23-17). A link dropped beside a firmer one
    kept (namesakes' loose links beside the person's own) is not counted: the firmer link says who the person is."""
    groups, links = split_groups(records), _person_links(records)
    group = {r.patient_id: groups[r.row] for r in records}
    kept: dict[str, int] = {}  # ID -> its firmest link kept
    for (a, b), rank in links.items():
        if group[a] == group[b]:
            kept[a], kept[b] = min(kept.get(a, rank), rank), min(kept.get(b, rank), rank)
    return {i for (a, b), rank in links.items()
            if group[a] != group[b] and min(kept.get(a, rank), kept.get(b, rank)) >= rank for i in (a, b)}


def _link_rank(mine: dict, theirs: dict) -> int:
    """How firm a link of two headers is (``_one_person_ids``), by what ties it: 0 a full birth date on both; 1 a
    birth date to the month or year only (loose) with names that agree (``core.person.other_name`` false: one
    script, spelled alike); 2 a loose one whose names would be one person's were the birth date given in full
    (``other_name`` with one date tying both: another script whose readings agree, 김^민수 / KIM^MINSU; one with no
    reading to compare, 山田^太郎 / YAMADA^TARO; a married name); 3 a loose one whose names are only not whole other
    names (a shared word, KIM^JIHOON / KIM^MINSU; another script whose readings differ, 김^민수 / KIM^JIHOON). A 2
    never displaces a 0 or 1 at the cap, nor a 3 a 2: a year-only hangul header chaining three Latin KIMs dropped
    the person's own link with the namesakes' where all were ranked alike (attack run 23, A23-17)."""
    from octviewer.core.person import other_name

    if "birth" in mine and "birth" in theirs:
        return 0
    if not other_name(mine, theirs):
        return 1
    tied = {"birth": "tied"}  # other_name asks whether both give a full date; the value is the same on both sides
    return 2 if not other_name({**mine, **tied}, {**theirs, **tied}) else 3


def _capped(links: dict[tuple[str, str], int], rank: int) -> list[set[str]]:
    """The sets of IDs that ``links`` of ``rank`` or firmer join; a set above ``MAX_IDS_PER_PERSON`` keeps only its
    firmer links (a set too big at rank 0 joins none): the person's own pair stays joined where namesakes' loose
    links chained a group too big for one person (attack run 22, A22-22)."""
    out = []
    for ids in _joined({p: r for p, r in links.items() if r <= rank}):
        if len(ids) <= MAX_IDS_PER_PERSON:
            out.append(ids)
        elif rank > 0:
            out += _capped({p: r for p, r in links.items() if p[0] in ids}, rank - 1)
    return out


def _joined(links) -> list[set[str]]:
    """The sets of patient IDs that ``links`` (pairs of IDs) join, each of two IDs at least (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in links:
        if find(a) != find(b):
            parent[max(find(a), find(b))] = min(find(a), find(b))
    groups: dict[str, set[str]] = defaultdict(set)
    for a, b in links:
        groups[find(a)] |= {a, b}
    return list(groups.values())


def _births(traits: dict) -> list[str]:
    """A header's birth date at each precision it gives, the finest first (``core.person.birth_traits``)."""
    return [traits[k] for k in ("birth", "birth_month", "birth_year") if k in traits]


def _named(traits: dict) -> bool:
    """Whether a header gives a name (any name trait, in any script: ``core.person.NAME_TRAITS``)."""
    from octviewer.core.person import NAME_TRAITS

    return any(k in NAME_TRAITS or k.endswith("set") for k in traits)


def _maybe_one_person(mine: dict, theirs: dict) -> bool:
    """Whether two headers under other PatientIDs, each with a name and a birth date, may be one person for the
    split: nothing tells two people apart, neither ``core.person.other_person`` (another issuer, or a birth date at
    the precision both give) nor a whole other name (``whole_name_differs``: under two IDs the birth date alone ties
    no two names). A name written another way (said under one ID), in another script or in free text does not part
    them: the study's rule for a scan under an old ID (``core.person.same_person_across_ids``) asks that the names
    agree, and one person whose devices wrote ПЕТРОВА^АННА / PETROVA^ANNA, DOE^JOHN^ALBERT / JOHN ALBERT DOE or a
    birth date to the month was parted across train and test (attack run 22, A22-10). Joining namesakes costs
    nothing; a leak costs the test figures."""
    from octviewer.core.person import other_person, whole_name_differs

    return not other_person(mine, theirs) and not whole_name_differs(mine, theirs)


def split_groups(records: list[Record]) -> dict[int, str]:
    """Row -> the patient the split keeps together: the row's patient ID, joined with every other row
    patient whose scans' DICOM headers give the same PatientID (``_header_people``). A manifest with per-eye
    IDs ("P1-OD", "P1-OS", a common export) split one person's eyes into train and test, and the test figures were
    optimistic (attack run 11, A11-4); the study index has the analogous rule (``_mixed_patients``). Joined too:
    the row patients whose scans' headers name one person under other PatientIDs (``_one_person_ids``: an old and
    a new MRN, A18-24).
    A joined group is keyed by its first patient ID (sorted), so a cohort whose rows and headers agree
    keeps the split it had. A header ID shared by more than ``MAX_IDS_PER_PERSON`` row patients joins none."""
    pairs = [pair for ids in [*(ids for ids in _header_people(records).values() if 1 < len(ids) <= MAX_IDS_PER_PERSON),
                              *_one_person_ids(records)]
             for pair in zip(sorted(ids), sorted(ids)[1:])]
    first = {i: min(group) for group in _joined(pairs) for i in group}
    return {r.row: first.get(r.patient_id, r.patient_id) for r in records}


def header_warnings(records: list[Record]) -> list[str]:
    """What validate and fit say when the rows' patient IDs and the scans' DICOM headers disagree, by
    row count only (the IDs are patients'): one person under several IDs (kept in one split by
    ``split_groups``; given splits that part them are said), possible links of one person the cap left unjoined
    (``_unjoined_ids``), a placeholder ID, rows re-keyed, or one patient ID's scans naming different people
    (``people_under_one_id``)."""
    header, people = header_patients(records), _header_people(records)
    joined = {h for h, ids in people.items() if 1 < len(ids) <= MAX_IDS_PER_PERSON}
    placeholder = {h for h, ids in people.items() if len(ids) > MAX_IDS_PER_PERSON}
    told_apart = {h for h in joined if _people_told_apart(records, h)}
    out = []
    if one := joined - told_apart:
        rows = [r for r in records if header[r.row] in one]
        out.append(f"{len(rows)} rows: the DICOM headers name {len(one)} person(s) each filed under several "
                   "patient IDs of the manifest (one per eye?); the split keeps each such person in one split")
    if told_apart:
        rows = [r for r in records if header[r.row] in told_apart]
        out.append(f"{len(rows)} rows: {len(told_apart)} DICOM PatientID(s) each given by the scans of several "
                   "patient IDs of the manifest whose headers tell them apart (another issuer of the ID, name or birth "
                   "date: two people of one archive ID, or one name written two ways); the split keeps each such ID's "
                   "rows in one split all the same (the safe side for a leak)")
    if merged := _one_person_ids(records):
        ids = set().union(*merged)
        out.append(f"{sum(r.patient_id in ids for r in records)} rows: the DICOM headers give the same name and birth "
                   f"date under other PatientIDs for {len(merged)} group(s) of the manifest's patients (an ID changed "
                   "or records merged, or namesakes); the split keeps each group in one split (a name written "
                   "another way or in another script, or a birth date given to the month or year, counts as the same)")
    if unjoined := _unjoined_ids(records):
        rows = sorted(r.row for r in records if r.patient_id in unjoined)
        # the rows by number (no identifier), as the several-splits problem names them: "check these patients"
        # pointed at none of thousands (attack run 24, A24-7)
        named = ", ".join(map(str, rows[:12])) + (f" and {len(rows) - 12} more" if len(rows) > 12 else "")
        out.append(f"{len(rows)} rows: the DICOM headers of {len(unjoined)} of the manifest's patients may name one "
                   "person under two of these IDs, but more of them share that name and birth date than one person "
                   f"has IDs (over {MAX_IDS_PER_PERSON}), so which of them is the person cannot be told and the split "
                   "does not join them: one person may be trained and tested on; check the patients of rows "
                   f"{named} and give each person one split in the manifest's split column")
    if joined or merged:
        groups, splits = split_groups(records), defaultdict(set)
        for r in records:
            if r.split:
                splits[groups[r.row]].add(r.split)
        if parted := sum(len(s) > 1 for s in splits.values()):
            out.append(f"{parted} such person(s) have rows in more than one split of the manifest's split column: "
                       "their eyes are trained and tested on; give each person one split")
    if placeholder:
        rows = sum(header[r.row] in placeholder for r in records)
        out.append(f"{rows} rows: one DICOM PatientID is given by the scans of more than {MAX_IDS_PER_PERSON} of the "
                   "manifest's patients (an anonymised export?); it is not used to group the split")
    if old := old_id_rows(records):
        out.append(f"{len(old)} rows: their scan's header gives another PatientID than the other scans of their "
                   "patient, with the same name and birth date (an ID changed or records merged?); they are used as "
                   "their row's patient")
    if not out and (n := sum(bool(header[r.row]) and header[r.row] != r.patient_id for r in records)):
        out.append(f"{n} of {len(records)} rows give a patient ID their scan's DICOM header does not (a re-keyed "
                   "export?); the rows' IDs are used")
    return [*out, *people_under_one_id(records)]


def assign_splits(records: list[Record], seed: int = 0, fractions=(0.6, 0.2, 0.2), manifest=None) -> list[Record]:
    """Patient-level, label-stratified, seeded split for records without one; a person the DICOM headers
    name under several patient IDs is one patient here (``split_groups``, A11-4). A patient whose rows give
    a split gets it for their rows that give none: a manifest with ``train`` on each patient's first row only
    put seven of sixteen patients in train and test (attack run 12, A12-1). ``one_split_problems`` then checks
    the groups as assigned; ManifestError (naming ``manifest``) when a group is in several splits."""
    groups = split_groups(records)
    by_patient = defaultdict(list)
    for r in records:
        by_patient[groups[r.row]].append(r)
    given = {p: next((r.split for r in rs if r.split), "") for p, rs in by_patient.items()}
    if not all(r.split for r in records):
        rng = np.random.default_rng(seed)
        for label in (1, 0):  # a patient counts as glaucoma if any of their volumes is
            patients = sorted(p for p, rs in by_patient.items() if max(x.label for x in rs) == label)
            rng.shuffle(patients)
            n = len(patients)
            n_train = int(round(fractions[0] * n))
            n_val = int(round(fractions[1] * n))
            if n >= 3:
                n_val, n_train = max(n_val, 1), min(n_train, n - 2)
            for k, p in enumerate(patients):
                split = "train" if k < n_train else "val" if k < n_train + n_val else "test"
                for r in by_patient[p]:
                    r.split = r.split or given[p] or split
    if problems := one_split_problems(records, groups):
        raise ManifestError(manifest or "the manifest", problems)
    for r in records:
        r.person = groups[r.row]
    return records


def person(record) -> str:
    """The patient a row counts as: the person ``assign_splits`` grouped it with (``split_groups``), else its
    patient ID. The patient-cluster bootstrap and the patient counts of evaluate took each per-eye ID as a
    patient, the split each person (attack run 12, A12-12)."""
    return getattr(record, "person", "") or record.patient_id


def one_split_problems(records: list[Record], groups: dict[int, str] | None = None) -> list[str]:
    """One problem per patient (a ``split_groups`` group) whose rows are in more than one split, naming its
    rows and their splits: such a patient is trained on and tested on. Run on the split as assigned, not on
    the manifest's column alone, which missed rows filled in later (attack run 12, A12-1)."""
    groups = split_groups(records) if groups is None else groups
    rows = defaultdict(list)
    for r in records:
        rows[groups[r.row]].append(r)
    out = []
    for rs in rows.values():
        if len({r.split for r in rs}) > 1:
            where = ", ".join(f"row {r.row} {r.split}" for r in sorted(rs, key=lambda r: r.row)[:12])
            more = f" and {len(rs) - 12} more" if len(rs) > 12 else ""
            out.append(f"one patient's rows are in several splits ({where}{more}): give every row of a patient "
                       "(and every patient ID of one person) the same split, or none")
    return out


def summary(records: list[Record]) -> dict:
    """Counts per split: volumes, glaucoma share, and how many have each VF index ("Part" vs "All")."""
    out = {}
    for split in SPLITS:
        rs = [r for r in records if r.split == split]
        out[split] = {"volumes": len(rs), "glaucoma": sum(r.label for r in rs),
                      "patients": len({r.patient_id for r in rs}), "cases": len({r.case for r in rs}),
                      "with_vf": {n: sum(r.vf[n] is not None for r in rs) for n in VF_INDICES}}
    return out


MIN_SPLIT_PATIENTS = 20  # per class in test: fewer and the test figures' intervals span most of [0.5, 1]


def small_split_warnings(counts: dict) -> list[str]:
    """Warnings for splits too small to judge a model by (``summary``'s counts): a fit on six patients
    "works", and its test AUC of 0.53 [0.47, 0.53] from two patients means nothing."""
    out = []
    for split, label in (("val", "validation"), ("test", "test")):
        c = counts.get(split) or {}
        patients = c.get("patients", 0)
        if patients < MIN_SPLIT_PATIENTS:
            out.append(f"only {patients} {label} patients ({c.get('volumes', 0)} volumes, "
                       f"{c.get('glaucoma', 0)} glaucoma): its figures will be too uncertain to judge the model by; "
                       f"aim for {MIN_SPLIT_PATIENTS} or more")
    return out


def label_conflicts(records: list[Record]) -> list[str]:
    """Warnings for one eye at one visit (patient, eye and visit given) whose rows carry both labels, by
    row number: an eye cannot be glaucomatous and normal at once, so a row is mislabelled or names a wrong
    file. validate and label_scarce prepare took such a manifest without a word (attack run 8, A8-3)."""
    labels, rows = defaultdict(set), defaultdict(list)
    for r in records:
        if r.eye and r.visit:  # blank: not recorded, so two rows may be two visits
            labels[r.case].add(r.label)
            rows[r.case].append(r.row)
    out = [f"rows {', '.join(map(str, rows[case]))}: one eye at one visit labelled both glaucoma and normal "
           "(a mislabelled row or a wrong file?)" for case in labels if len(labels[case]) > 1]
    if len(out) > SHOWN_PROBLEMS:
        out = [*out[:SHOWN_PROBLEMS], f"... and {len(out) - SHOWN_PROBLEMS} more eyes labelled both"]
    return out


def manifest_warnings(records: list[Record], counts: dict) -> list[str]:
    """What ``validate`` warns of in a manifest that passed ``checked_split``: one eye at one visit labelled both
    classes, splits too small to judge a model by. The Retrain dialog shows the same: it said "Manifest OK" with
    the size warnings only where validate warned of a label conflict (attack run 9, A9-5)."""
    return [*label_conflicts(records), *header_warnings(records), *small_split_warnings(counts)]


def checked_split(path, seed: int) -> tuple[list, dict]:
    """``(records, summary counts)`` of the manifest at ``path`` split with ``seed``, after the checks
    `validate` and the Retrain dialog share (the rows, the volumes, both classes in the training and test
    splits): ManifestError otherwise. One sequence for both, so neither can skip a check the other makes."""
    records, _ = read_manifest(path)
    check_volumes(path, records)
    counts = summary(assign_splits(records, seed, manifest=path))
    if problems := one_class_problems(counts):
        raise ManifestError(path, problems)
    return records, counts


def one_class_problems(counts: dict) -> list[str]:
    """Problems for a training or test split without both classes (``summary``'s counts): a manifest with
    every label normal trained a model that reads every eye as normal, its test AUC NaN, offered for use
    (attack run 8, A8-6). Validate, fit and the Retrain dialog's check refuse it with these words."""
    out = []
    for split, name in (("train", "training"), ("test", "test")):
        c = counts.get(split) or {}
        volumes, glaucoma = c.get("volumes", 0), c.get("glaucoma", 0)
        if volumes and (glaucoma == 0 or glaucoma == volumes):
            missing = "glaucoma" if glaucoma == 0 else "normal"
            out.append(f"the {name} split holds no {missing} volume ({volumes} volumes, {glaucoma} glaucoma): "
                       "a model needs both classes to learn and to be tested; check the labels, or add patients")
    return out


def check_volumes(path: str | Path, records: list[Record], progress=None) -> None:
    """Open every volume of the manifest (raises ManifestError listing the rows that do not open).

    Why whole reads: a header can look right over a file cut short, and the fit would otherwise
    find out only when it builds its cache. About 5 ms per small synthetic volume.
    """
    from octviewer.io import load_volume
    from octviewer.io.content import volume_digest

    problems = []
    for k, rec in enumerate(records):
        if stop.requested():
            raise stop.Stopped(f"stopped while opening the volumes of {Path(path).name}")
        try:  # a volume read_manifest's duplicate check decoded is not decoded again (A12-3's cost)
            if volume_digest(rec.path) is None:
                load_volume(rec.path)
        except Exception as exc:  # VolumeReadError names the file and the problem
            problems.append(f"row {rec.row}: unreadable volume: {exc}")
        if progress is not None:
            progress(k + 1, len(records))
    if problems:
        raise ManifestError(path, problems)


def vf_names_present(records: list[Record]) -> tuple[str, ...]:
    return tuple(n for n in VF_INDICES if any(r.vf[n] is not None for r in records if r.split == "train"))
