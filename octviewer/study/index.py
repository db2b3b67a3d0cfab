"""Index a folder (or a manifest) of OCT scans by patient, eye and visit, from file headers only.

``octviewer.load_volume`` reads the pixels; a folder of hundreds of Cirrus cubes would take
minutes that way. Here each file is opened for its header alone (pydicom stops before the pixel
data; a Heidelberg ``.vol`` is read for its first 2048 bytes: ``headers.py``), and what was learnt is kept per
file under the key (relative path, size, mtime, ctime, inode), so reopening a folder only stats its files.
Size and mtime alone were not enough: unzip, ``cp -p`` and ``rsync -t`` leave the files of one export
with one mtime, and two scans of one size that swapped names kept each other's patient (attack run 4,
F4). A rename or a rewrite changes the ctime, which no program can set back, and a swap the inodes.

The header records live in the results store (``octviewer.pipeline.store``, in the user's data
folder, owner-only), never next to the scans: clinic folders are shared and the records hold
patient IDs. For the same reason nothing here logs a patient ID or a file name (names often
contain the ID); logs carry counts only.

Anything that is not an OCT scan (other DICOM modalities, truth files, reports) is skipped and
counted by reason; a folder never fails to index because of one odd file. DICOM visual fields
(Modality OPV), the Humphrey's CZM XML exports (``.xml``) and VF tables (CSV) found in the folder
become measured VF for the tree; a damaged OPV or XML export is listed by name with its reason.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import logging
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..core.cancel import Cancelled
from ..core.files import file_sha256, table_encoding
from ..core.person import one_set_of_traits, same_person_across_ids, scripts_apart, what_differs
from ..core.text import text_problem
from ..io import VolumeReadError
from ..io.content import SAMPLE_KIND
from ..io.dicom import cut_short
from ..io.formats import IMAGE_SUFFIXES, LINKED_FOLDER, detect, walk_files
from ..io.limits import date_problem, open_regular
from ..io.loading import given_path
from .headers import NO_ONE_PERSON, UNUSABLE_PATIENT_ID, XML_READER, read_record, well_formed
from .vf import (
    CANCEL_EVERY,
    TABLE_SUFFIXES,
    VF_COMPARE_MAX_DAYS,
    NotAVfTable,
    VfMeasurement,
    VfReadError,
    names_vf_columns,
    nearest_vf,
    parse_date,
    read_vf_rows,
    table_reader,
    vf_compared,
)

log = logging.getLogger(__name__)

#: Scans of one patient taken within this many days of the visit's first scan form one visit
#: (both eyes are not always scanned on the same day).
VISIT_GAP_DAYS = 7
NO_PATIENT = "(no patient ID)"


class IndexCancelled(Exception):
    """The user cancelled indexing; what was read so far is kept in the cache."""


@dataclass(frozen=True)
class ScanEntry:
    """One scan file as its header (or manifest row) describes it."""

    path: str  # absolute
    patient_id: str
    eye: str  # OD / OS / "" when unknown
    visit: str  # ISO date when known, else the manifest's visit label, else ""
    date: dt.date | None
    scan_pattern: str = ""
    n_bscans: int = 0
    synthetic: bool = False


class StudyWarning(NamedTuple):
    """A check of a scan that IS used (``StudyIndex.warnings``): its file, the kind of check that fired, and the
    text shown. ``kind`` is one of ``WARNING_KINDS``: the window names a check and counts it on an anonymised report
    by its kind, which it had read from the text's wording (H56 leftovers, item 5). The text quotes patient IDs,
    dates and file names: shown in the window, never logged."""

    path: str
    kind: str
    text: str


#: patient: a manifest row's patient ID and the header's disagree; date: its visit date and the header's; rows:
#: manifest rows list one scan at several visits (used once); copy: copies of one scan at one visit (used once);
#: two visits: one scan (its UID and images, content or bytes) at two visits, which a trend would count twice; cut:
#: a file cut short; uid: two scans of one visit share a DICOM UID but not their images (both used); repeat: several
#: scans of an eye at one visit; people: a patient's scans' headers name different people; field: a measured field's
#: header names the patient otherwise than the patient's scans do (said on the scans; it bears on the measured VF
#: only, not on the scans' own series: attack run 16, A16-16)
#: old id: one scan filed under two patient IDs whose headers give one name and birth date, used once under the ID
#: with other scans (an old and a new MRN, or namesakes: no manifest disagrees with a header, so not 'patient',
#: whose words said "the study manifest" in a folder with none: attack run 18, A18-26)
WARNING_KINDS = ("patient", "date", "rows", "copy", "two visits", "cut", "uid", "repeat", "people", "scripts", "field",
                 "old id")


@dataclass(frozen=True)
class Visit:
    label: str
    date: dt.date | None


@dataclass
class StudyIndex:
    """Patients -> visits -> scans, plus the measured visual fields found with them."""

    root: str
    scans: list[ScanEntry] = field(default_factory=list)
    vf: list[VfMeasurement] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what is wrong with it), shown by name
    from_cache: int = 0
    notes: list[str] = field(default_factory=list)  # not about one file (the header cache was set aside)
    #: (path, kind, what to check) for scans that ARE used: a manifest row whose patient or visit date its scan's
    #: header contradicts, one scan at two visits (``check_header``, ``_two_visits``); shown, never logged
    warnings: list[StudyWarning] = field(default_factory=list)
    #: the files left out as copies of a scan used (``_copies``): the study's scans all the same, which no export
    #: may replace (the whole copy beside a damaged one was saved over, attack run 10, A10-19)
    copies: list[str] = field(default_factory=list)
    #: the files of each scan the study files at two or more visits of its eye (the "two visits" check's groups,
    #: ``_two_visits``): the OU view and the Trend read which files are one scan from here (``later_copies``), one
    #: rule for both; the check's text names them for the reader only (attack run 16, A16-15)
    at_two_visits: list[tuple[str, ...]] = field(default_factory=list)

    def lookup(self) -> StudyLookup:
        """The study's scans and fields by patient, built once for a pass over the whole study (the Study panel's
        tree, ``unmatched_vf``): each method below was a pass over every scan or field, called per patient,
        visit and eye, and filling the tree of 800 patients froze the window for 53 s (attack run 13, A13-12)."""
        return StudyLookup(self)

    def patients(self) -> list[str]:
        return self.lookup().patients()

    def visits(self, patient_id: str) -> list[Visit]:
        """The patient's visits by date (``StudyLookup.visits``)."""
        return self.lookup().visits(patient_id)

    def visit(self, patient_id: str, label: str) -> Visit:
        """The visit of this label with its date (``visits``)."""
        return self.lookup().visit(patient_id, label)

    def scans_for(self, patient_id: str, visit: str | None = None, eye: str | None = None) -> list[ScanEntry]:
        return self.lookup().scans_for(patient_id, visit, eye)

    def eyes(self, patient_id: str) -> list[str]:
        return self.lookup().eyes(patient_id)

    def later_copies(self) -> set[str]:
        """The scans the study also files at another visit of their eye, where they count (``later_copies``)."""
        return later_copies(self.scans, self.at_two_visits)

    def counted_scans(self, patient_id: str, visit: str | None = None, eye: str | None = None) -> list[ScanEntry]:
        """``scans_for`` less the later copies that their visit of the eye does not need (``left_out_of_visit``):
        the scans the OU view and the Trend analyse, one rule for both (attack run 16, A16-15)."""
        left = left_out_of_visit(self.scans, self.at_two_visits)
        return [s for s in self.scans_for(patient_id, visit, eye) if s.path not in left]

    def measured_vf(self, patient_id: str, eye: str, visit: Visit) -> VfMeasurement | None:
        return self.lookup().measured_vf(patient_id, eye, visit)

    def scan_at(self, path) -> ScanEntry | None:
        """The indexed scan of a file the viewer has open (to show its measured VF beside the prediction)."""
        wanted = os.path.realpath(path)
        return next((s for s in self.scans if os.path.realpath(s.path) == wanted), None)

    def measured_vf_for_scan(self, path) -> VfMeasurement | None:
        """Measured VF of an open file's eye: its visit's (``measured_vf``), else the eye's field nearest the
        scan at any distance, which the window shows as not compared past ``VF_COMPARE_MAX_DAYS``; None when
        not indexed or the eye has none. One rule, whichever route gave the field: a field a year before the
        scan was shown "not compared" from its manifest row (matched by the row's visit) and not at all from
        a study folder's table (beyond ``VF_MATCH_DAYS`` of the visit), though counted (H51 walk-through, 1)."""
        scan = self.scan_at(path)
        if scan is None or not scan.eye:
            return None
        lookup = self.lookup()
        return lookup.scan_vf(scan, lookup.visit(scan.patient_id, scan.visit))

    def vf_at(self, patient_id: str, eye: str, visit: Visit) -> VfMeasurement | None:
        """The eye's measured field the study tree shows at this visit (``StudyLookup.vf_at``)."""
        return self.lookup().vf_at(patient_id, eye, visit)

    def unmatched_vf(self) -> list[tuple[VfMeasurement, str]]:
        """The measured fields the study shows at no visit of their eye, with why (``StudyLookup.unmatched_vf``)."""
        return self.lookup().unmatched_vf()

    def matched_vf_count(self) -> int:
        """How many measured fields the study shows at a visit (``unmatched_vf``'s are not counted)."""
        return self.lookup().matched_vf_count()

    def skipped_text(self) -> str:
        if not self.skipped:
            return "nothing skipped"
        return "skipped " + ", ".join(f"{n} {_singular(reason, n)}" for reason, n in sorted(self.skipped.items()))

    def problems_text(self, limit: int = 50) -> str:
        """One line per file or folder left out for a problem (name and reason), for the reader to fix;
        the notes first (the study browser shows this text)."""
        base = self._base()  # a manifest's folder: its rows' paths read as the warnings' do (H82, W13)
        lines = list(self.notes) + [f"{os.path.relpath(p, base) if _inside(p, base) else p}: {why}"
                                    for p, why in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    def warnings_text(self, limit: int = 50) -> str:
        """One line per warning (name and what to check), as ``problems_text`` lists problems."""
        lines = [f"{os.path.relpath(p, self._base()) if _inside(p, self._base()) else p}: {why}"
                 for p, _, why in self.warnings[:limit]]
        if len(self.warnings) > limit:
            lines.append(f"... and {len(self.warnings) - limit} more")
        return "\n".join(lines)

    def warnings_for(self, paths) -> list[StudyWarning]:
        """The warnings about these scans (a visit's), each text once (the first scan's): the OU view shows them
        above the eyes."""
        wanted = {os.path.realpath(p) for p in paths}
        once: dict[str, StudyWarning] = {}
        for w in self.warnings:
            if os.path.realpath(w.path) in wanted:
                once.setdefault(w.text, w)
        return list(once.values())

    def _base(self) -> str:
        return self.root if os.path.isdir(self.root) else os.path.dirname(self.root)

    def _problem(self, path, category: str, problem: str) -> None:
        self.skipped[category] += 1
        self.problems.append((str(path), problem or category))


class StudyLookup:
    """A study's scans and measured fields by patient, for passes over the whole study: one pass over the scans
    and fields builds it, and each answer reads the patient's own. It is a snapshot: build another after the
    index changes. The Study panel's tree called per patient, visit and eye methods that each passed over every
    scan or field (53 s frozen at 800 patients, attack run 13, A13-12); the rules are unchanged."""

    def __init__(self, index: StudyIndex):
        self.index = index
        self.by_patient: dict[str, list[ScanEntry]] = {}
        for s in index.scans:
            self.by_patient.setdefault(s.patient_id, []).append(s)
        self.vf_by_patient: dict[str, list[VfMeasurement]] = {}
        for m in index.vf:
            self.vf_by_patient.setdefault(m.patient_id, []).append(m)
        self._sorted: dict[str, list[ScanEntry]] = {}
        self._visits: dict[str, list[Visit]] = {}

    def patients(self) -> list[str]:
        return sorted(self.by_patient)

    def _scans(self, patient_id: str) -> list[ScanEntry]:
        """The patient's scans by date, eye and path (sorted once)."""
        if patient_id not in self._sorted:
            self._sorted[patient_id] = sorted(self.by_patient.get(patient_id, ()),
                                              key=lambda s: (s.date or dt.date.max, s.eye, s.path))
        return self._sorted[patient_id]

    def visits(self, patient_id: str) -> list[Visit]:
        """The patient's visits by date, a visit labelled V1 dated by its scans' headers; those with no date
        after them, by label in natural order (V2 before V10): labels were sorted as text and header
        dates not used (attack run 8, A8-8)."""
        if patient_id not in self._visits:
            dates: dict[str, list[dt.date]] = {}
            for s in self.by_patient.get(patient_id, ()):
                dates.setdefault(s.visit, []).extend([s.date] if s.date else [])
            visits = [Visit(label, parse_date(label) or min(d, default=None)) for label, d in dates.items()]
            self._visits[patient_id] = sorted(visits, key=lambda v: (v.date or dt.date.max, natural_key(v.label),
                                                                     v.label))
        return list(self._visits[patient_id])

    def visit(self, patient_id: str, label: str) -> Visit:
        """The visit of this label with its date (``visits``)."""
        return next((v for v in self.visits(patient_id) if v.label == label), Visit(label, parse_date(label)))

    def scans_for(self, patient_id: str, visit: str | None = None, eye: str | None = None) -> list[ScanEntry]:
        return [s for s in self._scans(patient_id) if (visit is None or s.visit == visit)
                and (eye is None or s.eye == eye)]

    def eyes(self, patient_id: str) -> list[str]:
        return sorted({s.eye for s in self.by_patient.get(patient_id, ())})

    def measured_vf(self, patient_id: str, eye: str, visit: Visit) -> VfMeasurement | None:
        return nearest_vf(self.vf_by_patient.get(patient_id, []), eye, visit.date, visit.label)

    def scan_vf(self, scan: ScanEntry, visit: Visit) -> VfMeasurement | None:
        """``StudyIndex.measured_vf_for_scan`` of an indexed scan at its visit."""
        mine = self.vf_by_patient.get(scan.patient_id, [])
        return (self.measured_vf(scan.patient_id, scan.eye, visit)
                or nearest_vf(mine, scan.eye, scan.date or visit.date, max_days=dt.date.max.toordinal()))

    def vf_at(self, patient_id: str, eye: str, visit: Visit) -> VfMeasurement | None:
        """The eye's measured field the study tree shows at this visit: the visit's own (``measured_vf``, within
        ``VF_MATCH_DAYS``), else the field the Results panel and the OU view compare with the visit's scan of
        that eye (within ``VF_COMPARE_MAX_DAYS``). The tree showed no field for an eye whose scan the Results
        panel compared with one 74 days away (walk-through H65, W4); the matching rules are unchanged."""
        for scan in self.scans_for(patient_id, visit.label, eye):
            m = self.scan_vf(scan, visit)
            if m is not None and (m is self.measured_vf(patient_id, eye, visit)
                                  or vf_compared(m.date, scan.date or visit.date)):
                return m
        return None

    def unmatched_vf(self) -> list[tuple[VfMeasurement, str]]:
        """The measured fields the study shows at no visit of their eye (``vf_at``), each with why: counted as
        "measured visual fields" and shown nowhere, they were lost in silence (walk-through H65, W5). None in a
        study without scans: there is nothing to match (it says "no OCT scans found")."""
        if not self.index.scans:
            return []
        at = {(p, e, v.label): self.vf_at(p, e, v)
              for p in self.by_patient for v in self.visits(p) for e in self.eyes(p)}
        shown = {id(m) for m in at.values()}
        shown_days = {(m.patient_id, m.eye, m.date) for m in at.values() if m is not None and m.date is not None}
        out = []
        for m in self.index.vf:
            if id(m) in shown:
                continue
            scans = [s for s in self.by_patient.get(m.patient_id, ()) if s.eye == m.eye]
            days = [abs((m.date - s.date).days) for s in scans if m.date is not None and s.date is not None]
            if m.patient_id not in self.by_patient:
                why = "its patient is not in the study"
            elif not scans:
                why = "the patient has no scan of this eye"
            elif m.date is None:
                why = "it has no test date"
            elif not days or min(days) > VF_COMPARE_MAX_DAYS:
                why = f"no dated scan of this eye within {VF_COMPARE_MAX_DAYS} days"
            elif (m.patient_id, m.eye, m.date) in shown_days:  # the same test from another source: not unmatched
                continue
            else:
                why = self._nearer(m, scans, at)
            out.append((m, why))
        return out

    def matched_vf_count(self) -> int:
        """How many measured fields the study shows at a visit (``unmatched_vf``'s are not counted)."""
        return len(self.index.vf) - len(self.unmatched_vf())

    def _nearer(self, m: VfMeasurement, scans: list[ScanEntry], at: dict) -> str:
        """Why a field within ``VF_COMPARE_MAX_DAYS`` of a scan of its eye is shown at no visit: the visit of its
        nearest scan shows another field, nearer. Such a field (a real test, months from the one shown) was
        taken for another source of the same test, not listed, and counted (attack run 13, A13-10)."""
        scan = min((s for s in scans if s.date is not None), key=lambda s: abs((m.date - s.date).days))
        other = at.get((m.patient_id, m.eye, scan.visit))
        if other is None:
            return f"no visit of this eye shows it (its nearest scan, of {scan.date.isoformat()}, has no field shown)"
        visit = scan.visit or scan.date.isoformat()
        if other.date is None:
            return f"the visit {visit} shows another field (of its visit label, test date unknown)"
        return f"the visit {visit} shows the field of {other.date.isoformat()}, nearer"


def _unmatched_vf_problems(index: StudyIndex) -> None:
    """List each field matched to no visit (``StudyIndex.unmatched_vf``) among the problems, with its reason."""
    for m, why in index.unmatched_vf():
        when = m.date.isoformat() if m.date else (m.visit or "with no date")
        index._problem(m.source or index.root, "visual fields matched to no visit",
                       f"measured VF of {m.patient_id} {m.eye or 'eye unknown'} {when} is matched to no visit: {why}")


def natural_key(label: str) -> list:
    """Sort key of a visit label with its numbers as numbers: V2 before V10. A run of ASCII digits compares by
    its length, then its text (no int(): a label of 5000 digits passed Python's limit, and '²' is a digit to
    str.isdigit() but not to int(); either refused a whole manifest, attack run 10, A10-21)."""
    parts = re.split(r"([0-9]+)", label)  # text, digits, text, ...: like parts stand at like places
    return [(len(p.lstrip("0")), p.lstrip("0")) if i % 2 else p.lower() for i, p in enumerate(parts)]


def _undated_note(index: StudyIndex) -> None:
    """Say that visits without any date (a manifest's label, scans whose headers carry none) cannot be
    ordered by date (attack run 8, A8-8)."""
    lookup = index.lookup()
    n = sum(1 for p in lookup.patients() for v in lookup.visits(p) if v.date is None)
    if n:
        index.notes.append(f"{n} visit{'s have' if n != 1 else ' has'} no date (neither the manifest nor the "
                           "scans' headers give one): listed after the dated visits, by label, and not ordered "
                           "by date")


def _singular(reason: str, n: int) -> str:
    if n != 1:
        return reason
    return (reason.replace("files", "file").replace("folders", "folder").replace("scans that", "scan that")
            .replace("scans whose", "scan whose").replace("fields on", "field on")
            .replace("rows refused", "row refused").replace("fields matched", "field matched")
            .replace("scans cut short", "scan cut short").replace("rows listing", "row listing")
            .replace("scans filed in", "scan filed in").replace("visual fields of", "visual field of"))


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == os.path.abspath(root) \
            and os.path.isdir(root)
    except ValueError:
        return False


def _cancelled(cancel) -> bool:
    if cancel is None:
        return False
    return cancel.is_set() if hasattr(cancel, "is_set") else bool(cancel())


def group_visits(scans: list[ScanEntry]) -> list[ScanEntry]:
    """Label each dated scan with its visit: the first date of a run of dates within VISIT_GAP_DAYS."""
    out, by_patient = [], {}
    for s in scans:
        by_patient.setdefault(s.patient_id, []).append(s)
    def dated(s: ScanEntry) -> bool:  # a manifest's own label (V1) is kept: the scan's date only dates it
        return s.date is not None and (not s.visit or parse_date(s.visit) is not None)

    for patient_scans in by_patient.values():
        dates = sorted({s.date for s in patient_scans if dated(s)})
        label, first = {}, None
        for d in dates:
            if first is None or (d - first).days > VISIT_GAP_DAYS:
                first = d
            label[d] = first
        for s in patient_scans:
            if dated(s):
                s = dataclasses.replace(s, visit=label[s.date].isoformat())
            out.append(s)
    return out


def unique_vf(measurements: list[VfMeasurement]) -> list[VfMeasurement]:
    """One measurement per patient, eye and date: the same test found twice (an OPV file or an HFA XML
    export and a row of a manifest) must not count twice in a trend. The perimeter's own files win
    over tables typed from them."""
    ordered = sorted(measurements, key=lambda m: m.source.lower().endswith(TABLE_SUFFIXES))
    seen, out = set(), []
    for m in ordered:
        key = (m.patient_id, m.eye, m.date or m.visit)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


# ---------------------------------------------------------------- header readers (one record per file)

# ---------------------------------------------------------------- cache

def _header_store(cache_dir) -> tuple:
    """The results store that keeps the header records (with ``cache_dir``: a store in that folder),
    and why it is not used (None and the reason, said with the study: a file there that is no
    database is left alone, attack run 7, A7-23): the study still opens, every header is read."""
    from ..pipeline.store import ResultsStore, StoreError

    try:
        return ResultsStore(Path(cache_dir) / "results.sqlite" if cache_dir is not None else None), ""
    except StoreError as exc:
        log.warning("study index cache not used (%s)", type(exc).__name__)
        return None, f"The header cache is not used: {exc}"


def _cache_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _cached_record(hit, key: list[int], suffix: str) -> dict | None:
    """The cached record when its row was made for this very file (same key) and is well formed;
    None: the header is read again (a damaged row never refuses the study, attack run 4, F5)."""
    if not (isinstance(hit, list) and len(hit) == 5 and hit[:4] == key and well_formed(hit[4])):
        return None
    if suffix == ".xml" and hit[4].get("reader") != XML_READER:
        return None  # recorded before perimetry XML exports were read
    return hit[4]


def _keep_digests(cache_dir, root: Path, entries: dict[str, list], found: dict[str, dict[str, str]]) -> None:
    """Write what was learnt of the scans' content while indexing (path -> {"content": digest, "sample": key}:
    ``_content_copies``, ``_same_scan_groups``) into the header records of the study's cache, so the next opening
    compares scans without reading their pixels. A record is served only for the very file it was made for (size,
    times, inode), so its digest and key are too."""
    for path, values in found.items():
        if not _inside(path, str(root)):
            continue
        rel = Path(path).relative_to(root).as_posix()
        if rel in entries:
            entries[rel] = [*entries[rel][:4], {**entries[rel][4], **values}]
    store, _ = _header_store(cache_dir)
    if store is not None:
        try:
            store.put_study_headers(str(root), entries)
        finally:
            store.close()


# ---------------------------------------------------------------- manifests and VF tables

def _read_manifest_rows(path: Path, cancel=None) -> list[dict] | None:
    """Rows of a CSV with a ``path`` column (a manifest), or None for any other CSV; VfReadError saying
    why a file cannot be read as a table (missing, a folder, a device, not UTF-8, no CSV), the words the
    VF tables use: every such failure was "it has no 'path' column" (attack run 7, A7-12). Each row
    carries its line number under ``_row`` (for messages). ``cancel`` is checked as the VF tables check it."""
    try:
        with open_regular(path) as raw, io.TextIOWrapper(raw, encoding=table_encoding(raw), newline="") as f:
            reader = table_reader(f)  # ';' or tabs, names with blanks around them, as a VF table (A9-6, A10-6)
            if "path" not in (reader.fieldnames or ()):
                return None
            rows = []
            for n, row in enumerate(reader, start=reader.first_row):
                if n % CANCEL_EVERY == 0 and _cancelled(cancel):
                    raise IndexCancelled()
                rows.append({**row, "_row": n})
            return rows
    except VolumeReadError as exc:
        raise VfReadError(path, exc.problem) from None
    except UnicodeDecodeError:
        raise VfReadError(path, "not UTF-8 text (save it as CSV UTF-8); the table is not read") from None
    except csv.Error as exc:
        raise VfReadError(path, f"not a readable CSV ({exc}); the table is not read") from None
    except OSError as exc:
        raise VfReadError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None


def _row_path(row: dict) -> str:
    """The ``path`` of a manifest row, or ValueError saying why there is none to use."""
    where = f"row {row.get('_row', '?')}"
    value = row.get("path")
    if value is None:
        raise ValueError(f"{where} is short: it has no path")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: the path is empty")
    if "\0" in value:
        raise ValueError(f"{where}: the path holds a NUL byte")
    return value.strip()


def _row_problem(row: dict) -> str:
    """Why a manifest row's patient ID or visit date cannot be taken, or "": the scan headers' rules. An ID
    holding a right-to-left override or a newline (PAT<U+202E>4321 shown as PAT1234) was filed as a
    patient (attack run 5, F17), and a visit dated 1900 or 2999 made a visit of its own (F6). An eye other
    than OD or OS is refused as the VF table refuses it."""
    where = f"row {row.get('_row', '?')}"
    if problem := text_problem("patient_id", str(row.get("patient_id") or "")):
        return f"{where}: {problem}"
    eye = str(row.get("eye") or "").strip().upper()
    if eye not in ("", "OD", "OS"):  # "left", "R", "OU" were filed as an unknown eye (attack run 7, A7-19)
        return f"{where}: eye is {eye[:10]!r}, expected OD or OS (or empty when unknown)"
    date = parse_date(str(row.get("visit") or "").strip())
    if date is not None and (problem := date_problem(date)):
        return f"{where}: the visit {problem}"
    return ""


def _row_file(row: dict, base: Path) -> str:
    """The manifest row's file with its links followed, or ValueError naming the row: Path.resolve()
    raised RuntimeError for links that loop and RecursionError for a chain of a thousand links, and
    one such row refused the whole study."""
    text = _row_path(row)
    try:
        return str((base / text).resolve())
    except (RuntimeError, RecursionError, OSError):
        raise ValueError(f"row {row.get('_row', '?')}: the path's symbolic links loop or run too deep to "
                         "follow") from None


def _row_says(row: dict) -> tuple:
    """What a manifest row says about its scan: patient, eye and visit (a date however written)."""
    visit = str(row.get("visit") or "").strip()
    return (str(row.get("patient_id") or "").strip(), str(row.get("eye") or "").strip().upper(),
            parse_date(visit) or visit)


def _manifest_scan(row: dict, base: Path) -> ScanEntry:
    """The scan a manifest row describes; ValueError (naming the row) for a row that cannot be used."""
    if problem := _row_problem(row):
        raise ValueError(problem)
    path = _row_file(row, base)
    visit = str(row.get("visit") or "").strip()
    date = parse_date(visit)
    eye = str(row.get("eye") or "").strip().upper()
    return ScanEntry(path=path, patient_id=str(row.get("patient_id") or "").strip()
                     or NO_PATIENT, eye=eye if eye in ("OD", "OS") else "",
                     visit=date.isoformat() if date else visit, date=date,
                     synthetic=str(row.get("synthetic") or "").strip() in ("1", "true", "True"))


def _vf_key(row: dict) -> tuple:
    """The (patient, eye, date or visit) under which ``read_vf_rows`` files a manifest row's field."""
    visit = str(row.get("date") or row.get("visit") or "").strip()
    patient, eye = str(row.get("patient_id") or "").strip(), str(row.get("eye") or "").strip().upper()
    return patient, eye, parse_date(visit) or visit


def _one_visit(entries: list[tuple[dict, tuple]]) -> tuple[tuple[dict, tuple], str]:
    """The row (and its ``_header_checked``) a scan is used at, and a warning when rows list it at several visits:
    the row whose visit its header's date agrees with, else the first. Such a scan was left out ("neither is
    used"), and its eye vanished from that visit's OU view and the trend (H51 walk-through, item 4)."""
    if len({_row_says(row) for row, _ in entries}) == 1:
        return entries[0], ""
    header = parse_date(entries[0][1][2].get("date") or "")
    agrees = [e for e in entries if header and e[1][0].date and abs((e[1][0].date - header).days) <= VISIT_GAP_DAYS]
    kept = (agrees or entries)[0]
    rows = ", ".join(str(row.get("_row", "?")) for row, _ in entries)
    visits = ", ".join(dict.fromkeys(e[1][0].visit or "no visit" for e in entries))
    why = "the date in its header" if agrees else "its first row"
    return kept, (f"rows {rows} list it at the visits {visits}: it is used once, at {kept[1][0].visit or 'no visit'} "
                  f"({why}); correct the other rows")


def _disagreement(places: list[str]) -> str:
    """The problem of a scan that manifest rows describe differently (the folder's and the manifest's rule)."""
    return f"manifest rows give it different patients, eyes or visits ({'; '.join(places[:4])}); neither is used"


def check_header(says: ScanEntry, record: dict, where: str, date_kept: str) -> list[tuple[str, str]]:
    """The one rule for a manifest row (``says``) against its scan's own header (``record``), for Open
    study manifest and a study folder's manifest alike (attack run 8, A8-5: the folder ignored it).

    An eye the header contradicts is a ValueError naming the row: an OS scan listed as OD was shown in
    the right eye's place, beside the right eye's VF, and exported as OD (attack run 7, A7-4); which of
    the two is wrong cannot be told (a row pointing at the wrong file is as likely as a wrong eye), so the
    scan is not used. A patient ID or a visit date that disagrees is a warning naming the row and both
    values, and the scan is used: clinics re-key IDs on export (the row's ID is used, by either route), yet a
    manifest put four scans of four patients under one ID and the OU view paired them (``_mixed_patients``
    leaves such scans out), and dated a scan nine months before its acquisition (warned; ``date_kept``: Open
    study manifest keeps the row's visit, a study folder files a dated scan by its header). Dates within
    ``VISIT_GAP_DAYS`` of each other agree (both eyes of a visit are not always scanned on the same day).
    The warnings, (kind, text), are shown in the window and never logged (they hold patient IDs).

    A header whose PatientID cannot be taken (two values: two patients in one scan; hidden characters) is a
    ValueError too: a study folder, the viewer and PACS send refuse such a scan, while a row's patient ID let
    it through here as that patient's visit, and the trainer's labels (attack run 14, A14-9)."""
    if record.get("kind") == "skip" and record.get("reason") == UNUSABLE_PATIENT_ID:
        raise ValueError(f"{where} lists a scan whose {record.get('problem') or 'PatientID cannot be used'}; "
                         "it is not used")
    if record.get("kind") == "skip" and record.get("reason") == NO_ONE_PERSON:  # as a study folder does (A17-7)
        raise ValueError(f"{where} lists a scan: {record.get('problem')}")
    if record.get("kind") != "scan":
        return []
    eye = record.get("eye") or ""
    if eye in ("OD", "OS") and says.eye and says.eye != eye:
        raise ValueError(f"{where} gives the eye {says.eye}, the scan's own header says {eye}; it is not used "
                         "(correct the row or the file)")
    warnings = []
    header_id, row_id = record.get("patient_id") or "", "" if says.patient_id == NO_PATIENT else says.patient_id
    if header_id and row_id and header_id != row_id:
        warnings.append(("patient", f'{where} gives the patient "{row_id}", the scan\'s own header says '
                                    f'"{header_id}"; the row\'s is used'))
    header_date = parse_date(record.get("date") or "")
    if header_date and says.date and abs((header_date - says.date).days) > VISIT_GAP_DAYS:
        warnings.append(("date", f"{where} gives the visit {says.date.isoformat()}, the scan's own header dates "
                                 f"it {header_date.isoformat()}; {date_kept} is used"))
    return warnings


def _same_scans(scans: list[ScanEntry], uids: dict[str, str], root: str,
                found: list[tuple[str, ...]] | None = None) -> list[StudyWarning]:
    """Warnings for one file's bytes at two visits of an eye (size, then a SHA-256 of the files that share a
    size), for the scans without a UID; the callers give those without a header (NumPy, TIFF, B-scan images listed
    by a manifest), which ``_same_scan_groups`` cannot compare by geometry: two byte-identical files listed a year
    apart were plotted as two visits and the trend fitted a slope through them (eighth walk-through, item 3)."""
    by_key: dict[tuple, list[ScanEntry]] = {}
    by_size: dict[tuple, list[ScanEntry]] = {}
    for s in scans:
        if uids.get(s.path):
            continue
        try:  # within one patient's eye, where a repeat bends a trend
            by_size.setdefault((s.patient_id, s.eye, os.stat(s.path).st_size), []).append(s)
        except OSError:
            continue
    for same_size in by_size.values():
        if len({s.visit for s in same_size}) > 1:
            for s in same_size:
                try:
                    by_key.setdefault(("bytes", file_sha256(s.path)), []).append(s)
                except OSError:
                    continue
    return _two_visits(scans, [([s.path for s in group], "the same bytes") for group in by_key.values()], root,
                       found)


def _copies(scans: list[ScanEntry], uids: dict[str, str], root: str, digests: dict[str, str | None] | None = None,
            cancel=None) -> tuple[list[ScanEntry], list[StudyWarning]]:
    """``scans`` with each scan listed several times at one visit of one eye kept once (the first), and a
    warning on the one kept: the same header UID, the same bytes (a SHA-256 only of the files
    of that visit's eye that share a size), or the same decoded voxels (``_content_copies``). Copies of one
    scan at one visit (an export run twice into the study folder) were indexed without a word and each one
    counted in the OU view's and the trend's mean of the visit as a scan of its own (attack run 9, A9-9);
    ``_two_visits`` and ``_same_scans`` warn of one scan at two visits.

    A shared UID is a copy only where the two decode to the same voxels, or one does not decode (a copy cut
    short keeps the UID: A10-5). Two acquisitions under one UID (an export or anonymiser that reuses UIDs) were
    taken for one scan and the one first by size dropped, maybe the good repeat (attack run 14, A14-16): both
    are used now, with a "uid" warning."""
    digests = {} if digests is None else digests
    by_visit = _by_eye_visit(scans)
    copies: dict[str, list[ScanEntry]] = {}  # the path kept -> its copies
    clashes: list[tuple[ScanEntry, ScanEntry]] = []  # (kept, another scan under its UID, other voxels)
    how: dict[str, set[str]] = {}  # the path kept -> what its copies share with it
    size: dict[str, int] = {}
    for group in (g for g in by_visit.values() if len(g) > 1):
        for s in group:
            try:
                size[s.path] = os.stat(s.path).st_size
            except OSError:
                continue
        # a folder (B-scan images) has no bytes of its own to hash: it goes to the content comparison, as a scan at
        # another place does; hashed as a file it raised, was passed over, and two copies of one image folder at a
        # visit were a 'repeat' of two scans (attack run 18, A18-29)
        size = {p: n for p, n in size.items() if not os.path.isdir(p)}
        left_folders = [s for s in group if os.path.isdir(s.path)]
        sizes = Counter(size[s.path] for s in group if s.path in size and not uids.get(s.path))
        first: dict[tuple, ScanEntry] = {}
        left: list[ScanEntry] = list(left_folders)  # the scans of the group no UID or bytes found a copy of
        # the largest copy first: one cut short after its header keeps the UID, and the first by name was kept,
        # damaged, while the whole one beside it was dropped (attack run 10, A10-5)
        for s in sorted((s for s in group if s.path in size), key=lambda s: -size[s.path]):
            try:
                if uids.get(s.path):
                    key = ("DICOM UID", uids[s.path])
                elif sizes[size[s.path]] > 1:
                    key = ("bytes", file_sha256(s.path))
                else:
                    left.append(s)
                    continue
            except OSError:
                continue
            if key in first and key[0] == "DICOM UID" and _other_images(first[key].path, s.path, digests, cancel):
                clashes.append((first[key], s))
                left.append(s)
            elif key in first:
                copies.setdefault(first[key].path, []).append(s)
                how.setdefault(first[key].path, set()).add(key[0])
            else:
                first[key] = s
                left.append(s)
        # the file that states the most is kept (``_states_less``), then a scan that already has copies before its
        # re-encodings (theirs move to it), then the first by name
        order = sorted(left, key=lambda s: (_states_less(s.path, uids), s.path not in copies, s.path))
        for kept, copy in _content_copies(order, digests, cancel):
            copies.setdefault(kept.path, []).extend([copy, *copies.pop(copy.path, [])])
            how.setdefault(kept.path, set()).update({"pixel data", *how.pop(copy.path, set())})
    dropped = {c.path for group in copies.values() for c in group}
    patients = {s.patient_id for s in scans}
    warnings = [StudyWarning(a.path, "uid", f"{os.path.relpath(a.path, root)} and {os.path.relpath(b.path, root)} "
                                            "share a DICOM UID but hold different images (an export that reuses "
                                            "UIDs?); both are used")
                for a, b in clashes if a.path not in dropped and b.path not in dropped]
    for path, group in copies.items():
        kept = next(s for s in scans if s.path == path)
        names = ", ".join(os.path.relpath(c.path, root) for c in group[:4]) + (" ..." if len(group) > 4 else "")
        times = "twice" if len(group) == 1 else f"{len(group) + 1} times"
        same = " or ".join(sorted(how[path]))
        text = (f"the same scan as {names} (the same {same}; listed {times} at the visit "
                f"{kept.visit or 'with no date'}): it is used once: this file, not "
                f"{'the copy' if len(group) == 1 else 'the copies'}")
        if how[path] == {"DICOM UID"} and any(size[c.path] != size[path] for c in group):
            cut = [f"{os.path.relpath(c.path, root)} is cut short: {why}"
                   for c in group if (why := _cut_short(c.path))]
            text += (f" (the largest; {'; '.join(cut)})" if cut else
                     " (the largest: their sizes differ, and a smaller one may be cut short)")
        text += "".join(_in_patients_folder(c.path, kept.patient_id, patients, root) for c in group)
        warnings.append(StudyWarning(path, "copy", text))
    return [s for s in scans if s.path not in dropped], warnings


def _states_less(path: str, uids: dict[str, str]) -> tuple[bool, bool]:
    """A sort key putting first, among copies of one scan at a visit, the file that states the most: a header with a
    UID (DICOM: pixel size, laterality, device), then any other file, then the formats that state no pixel size
    (NumPy, TIFF, B-scan images). The first by name was kept: a visit listing the device's DICOM and its NumPy export
    kept the export, and lost its RNFL and disc figures (no µm without a pixel size) and its Trend point (attack run
    18, A18-31)."""
    # a HEYEX XML export folder states its pixel size in its XML: not bare (attack run 20, A20-6)
    heyex = os.path.isdir(path) and any(p.suffix.lower() == ".xml" for p in Path(path).iterdir())
    bare = (os.path.isdir(path) and not heyex) or Path(path).suffix.lower() in (".npy", ".npz", *IMAGE_SUFFIXES)
    return not uids.get(path), bare


def _in_patients_folder(path: str, patient: str, patients: set[str], root: str) -> str:
    """"; PATH lies in the folder of the patient P" where a copy of ``patient``'s scan lies in a folder named for
    another patient of the study (a misfiling a clinic wants to know of: its header says whose scan it is, so it is
    used as ``patient``'s, once; walk-through H82, W13), else ""."""
    rel = os.path.relpath(path, root)
    other = next((part for part in Path(rel).parts[:-1] if part in patients and part != patient), None)
    return (f"; {rel} lies in the folder of the patient {other}: it counts for {patient}, whose scan its header "
            f"says it is, not for {other} (a misfiled copy? check the archive)") if other else ""


def _same_scan_groups(scans: list[ScanEntry], uids: dict[str, str], geometry: dict[str, int],
                      digests: dict[str, str | None], samples: dict[str, str | None],
                      cancel=None) -> list[tuple[list[ScanEntry], str]]:
    """The one rule for "one scan filed in two places": groups of ``scans`` that are one scan at two or more places
    (patient, eye, visit), each with the evidence in words. Evidence is a shared DICOM UID whose images are not
    different (two acquisitions under one reused UID are two scans: A14-16), or the same decoded content
    (``io.content.volume_digest``): a copy given new UIDs by an anonymiser or a re-keying export and filed under
    another patient, as the other eye or at another visit, was used there with nothing said, where the trainer
    refuses it by content (attack run 15, A15-2; A15-17 for the same UID at two visits).

    Cheap first, so a clinic archive is not decoded at each opening: only scans whose B-scan count (``geometry``,
    from the header) another scan's at another place shares get a ``sample_key`` (their middle B-scan, one frame
    read), and only those whose key another's at another place shares are decoded whole; ``samples`` and
    ``digests`` (path -> value) hold those known (a folder study's header cache keeps both) and receive the new
    ones; ``cancel`` is checked before each reading. A scan without a header (NumPy, TIFF, B-scan images listed by
    a manifest) has the count its format states (``_headerless_geometry``); one whose format states none is
    compared by bytes only (``_same_scans``). Copies at one place are ``_copies``'s."""
    def place(s: ScanEntry) -> tuple:
        return s.patient_id, s.eye, s.visit

    parent = {s.path: s.path for s in scans}

    def top(path: str) -> str:
        while parent[path] != path:
            path = parent[path]
        return path

    def join(a: ScanEntry, b: ScanEntry) -> None:
        parent[top(a.path)] = top(b.path)

    by_uid: dict[str, list[ScanEntry]] = {}
    for s in scans:
        if uids.get(s.path):
            by_uid.setdefault(uids[s.path], []).append(s)
    for group in _at_two_places(by_uid.values(), place):
        for a, b in _one_uid_copies(group, digests, cancel):
            join(a, b)
    for same_geometry in _at_two_places(_grouped(scans, lambda s: geometry.get(s.path)), place):
        for same_sample in _at_two_places(_grouped(same_geometry, lambda s: _sample(s.path, samples, cancel)), place):
            for same in _at_two_places(_grouped(same_sample, lambda s: _digest(s.path, digests, cancel)), place):
                for s in same[1:]:
                    join(s, same[0])
    groups: dict[str, list[ScanEntry]] = {}
    for s in scans:
        groups.setdefault(top(s.path), []).append(s)
    out = []
    for group in _at_two_places(groups.values(), place):
        one_uid = uids.get(group[0].path) and len({uids.get(s.path) for s in group}) == 1
        out.append((group, "the same DICOM UID and images" if one_uid else
                    "the same pixel data under other header fields"))
    return out


def _one_uid_copies(group: list[ScanEntry], digests: dict[str, str | None],
                    cancel=None) -> list[tuple[ScanEntry, ScanEntry]]:
    """The pairs of ``group`` (scans sharing one DICOM UID) that the UID shows to be one scan: those that decode to
    the same voxels, and a file that does not decode (a copy cut short keeps its UID: A10-5) with the others only
    where every file of the UID that decodes holds one image (the UID names one scan here). A file that does not
    decode is evidence of nothing else: every scan was compared with the UID's first file alone, and a cut-short
    first file, different from none, joined every scan of a reused UID into "one scan (the same DICOM UID and
    images)": one damaged file left a whole study out (attack run 18, A18-22)."""
    whole = [(s, d) for s in group if (d := _digest(s.path, digests, cancel)) is not None]
    cut = [s for s in group if all(s is not w for w, _ in whole)]
    first: dict[str, ScanEntry] = {}
    pairs = []
    for s, d in whole:
        if d in first:
            pairs.append((s, first[d]))
        first.setdefault(d, s)
    if len(first) <= 1:  # one image under the UID (or none decodes): the files that do not decode are its copies
        anchor = next(iter(first.values()), cut[0] if cut else None)
        pairs += [(s, anchor) for s in cut if s is not anchor]
    return pairs


def _headerless_geometry(scans: list[ScanEntry], geometry: dict[str, int]) -> None:
    """Add to ``geometry`` (path -> B-scan count, from the header records) the count of each of ``scans`` without a
    header record that its format states (``io.content.bscan_count``: a .npy or .npz array header, a TIFF stack's,
    an image folder's file count; nothing decoded), so ``_same_scan_groups`` compares every scan the manifest route
    accepts: a NumPy or B-scan image export of one patient's scan listed under another patient was used there,
    nothing said, where the trainer refuses it by content (attack run 16, A16-12)."""
    from ..io.content import bscan_count

    for s in scans:
        if s.path not in geometry and (n := bscan_count(s.path)):
            geometry[s.path] = n


def _grouped(scans, key) -> list[list[ScanEntry]]:
    """``scans`` grouped by ``key(scan)``, those whose key is None left out."""
    out: dict = {}
    for s in scans:
        if (k := key(s)) is not None:
            out.setdefault(k, []).append(s)
    return list(out.values())


def _at_two_places(groups, place) -> list[list[ScanEntry]]:
    """The groups whose scans stand at two or more places (``place(scan)``)."""
    return [g for g in groups if len({place(s) for s in g}) > 1]


def _one_scan_in_two_places(index: StudyIndex, uids: dict[str, str], geometry: dict[str, int], root: str,
                            digests: dict[str, str | None], samples: dict[str, str | None],
                            cancel=None, persons: dict[str, dict] | None = None) -> list[tuple[list[str], str]]:
    """Leave out, listed, the scans that are one scan (``_same_scan_groups``) filed under two eyes or two patients:
    a copy whose laterality was corrected beside the original, or re-saved under another PatientID, was used as the
    other eye's scan of the visit (the OU view compared one image with itself) or as another patient's, nothing
    said (attack run 14, A14-18, for one UID; run 15, A15-2, for a copy given new UIDs). Which place is right
    cannot be told, so neither is used; except one person's scan under their old and new ID (``_old_id_copy``),
    used once. The groups at two visits of one eye are returned (paths, evidence) for ``_two_visits``, once the
    visits are grouped. ``persons``: each scan's header traits (``core.person``)."""
    wrong: set[str] = set()
    at_visits = []
    groups = _same_scan_groups(index.scans, uids, geometry, digests, samples, cancel)
    across = [g for g, _ in groups if len({s.patient_id for s in g}) > 1]
    in_groups = {s.path for g in across for s in g}
    listed_otherwise = {s.patient_id for s in index.scans if s.path not in in_groups}
    for group, how in groups:
        places = {(s.patient_id, s.eye) for s in group}
        if len(places) < 2:
            at_visits.append(([s.path for s in group], how))
            continue
        patients, eyes = sorted({p for p, _ in places}), sorted({e or "eye unknown" for _, e in places})
        names = ", ".join(os.path.relpath(s.path, root) for s in group)
        if (kept := _old_id_copy(group, persons or {}, listed_otherwise)) is not None:
            left = [s for s in group if s.patient_id != kept]
            wrong |= {s.path for s in left}
            index.copies += [s.path for s in left]
            for s in group:
                if s.patient_id == kept:
                    index.warnings.append(StudyWarning(
                        s.path, "old id", f"{names} are one scan ({how}) filed under the patients "
                                          f"{' and '.join(patients)}, whose headers give the same name and birth "
                                          f"date (an ID changed or records merged?): it is used once, as {kept}'s, "
                                          f"whose other scans the study lists; "
                                          f"{', '.join(os.path.relpath(o.path, root) for o in left)} is left out. "
                                          "Two people of one name and birth date (namesakes, twins) look the same: "
                                          f"check that it is {kept}'s scan before comparing visits"))
            if len({s.visit for s in group if s.patient_id == kept}) > 1:
                at_visits.append(([s.path for s in group if s.patient_id == kept], how))
            continue
        where = (f"under the patients {' and '.join(patients)}" if len(patients) > 1 else
                 f"as {' and as '.join(eyes)}")
        if (len(patients) > 1 and len(eyes) == 1 and set(patients) <= listed_otherwise
                and _one_person_in(group, persons or {})):  # say why ``_old_id_copy`` makes no allowance (A18-20)
            where += (", whose headers give the same name and birth date while each ID has other scans (one person "
                      "under two IDs whose records were not merged, or two people of one name and birth date)")
        for s in group:
            wrong.add(s.path)
            index._problem(s.path, "scans filed in two places",
                           f"{names} are one scan ({how}) filed {where}: "
                           f"{'whose scan' if len(patients) > 1 else 'which eye'} it is cannot be told; "
                           "neither is used")
    index.scans = [s for s in index.scans if s.path not in wrong]
    index.warnings = [w for w in index.warnings if w.path not in wrong]
    return at_visits


def _old_id_copy(group: list[ScanEntry], persons: dict[str, dict], listed_otherwise: set[str]) -> str | None:
    """The patient under whom one scan filed under two patient IDs (``_same_scan_groups``) counts, where its files'
    headers name one person (``core.person.same_person_across_ids``: name and birth date given, nothing differing;
    ``old_id_scans``' allowance) and exactly one of the IDs is a patient the study lists with other scans
    (``listed_otherwise``): the same scan exported before and after a record merge (the old MRN's export left in the
    clinic's folder) was "whose scan it is cannot be told; neither is used", and the person's visit was lost from
    both (attack run 17, A17-6). One eye only; None where the persons differ or cannot be compared, or both or
    neither ID has other scans. Both with other scans is two patients in use, as ``old_id_scans`` takes a listed ID
    with scans of its own (A17-3): namesakes (twins, a 1 January placeholder) each with a history look exactly as
    one person's old and new MRN do, and one's scan in the other's trend is worse than a visit listed and not used
    (attack run 18, A18-20: not made; the problem says why). The shape allowed here is namesakes' too (a patient's
    only scan copied into a namesake's record, A18-25): its 'old id' check says so."""
    if len({s.eye for s in group}) > 1 or not _one_person_in(group, persons):
        return None
    ids = {s.patient_id for s in group} & listed_otherwise
    return ids.pop() if len(ids) == 1 else None


def _one_person_in(group: list[ScanEntry], persons: dict[str, dict]) -> bool:
    """Whether the headers of ``group``'s files all name one person (``core.person.same_person_across_ids``: a name
    and a birth date given, nothing differing)."""
    traits = [persons.get(s.path, {}) for s in group]
    return all(same_person_across_ids(t, traits[:k] + traits[k + 1:]) for k, t in enumerate(traits))


def _two_visits(scans: list[ScanEntry], groups: list[tuple[list[str], str]], root: str,
                found: list[tuple[str, ...]] | None = None) -> list[StudyWarning]:
    """A "two visits" check on each scan of a group of ``_one_scan_in_two_places`` that stands at two visits of its
    eye once the visits are grouped (a copy at one visit is ``_copies``'s): one scan re-dated in its header (a
    date-shifting export or anonymiser) was a second visit in the trend, a flat segment pulling any slope towards
    "stable" (attack run 15, A15-17). Both are used: which date is right cannot be told; each group's files are
    added to ``found`` (``StudyIndex.at_two_visits``), which the views read (``left_out_of_visit``)."""
    by_path = {s.path: s for s in scans}
    found = [] if found is None else found
    mine = []  # (the group's files, evidence, its index in ``found``)
    for paths, how in groups:
        group = [by_path[p] for p in paths if p in by_path]
        if len({s.visit for s in group}) < 2:
            continue
        mine.append((group, how, len(found)))
        found.append(tuple(s.path for s in group))
    counted_at = counted_visits(scans, found)  # with the groups found before (the files without a header's)
    out = []
    for group, how, k in mine:
        visits = ", ".join(sorted({s.visit or "no visit" for s in group}))  # ISO dates: in time order
        counted = counted_at.get(k) or "no visit"
        for s in group:
            others = ", ".join(os.path.relpath(o.path, root) for o in group if o is not s)
            out.append(StudyWarning(s.path, "two visits", f"the same scan as {others} ({how}), listed at the visits "
                                                          f"{visits}: a trend would count it twice; which date is "
                                                          f"right cannot be told; it is counted at {counted} only "
                                                          "(the visit where it is the eye's only scan, else the "
                                                          "first): another visit with another scan of the eye uses "
                                                          "that scan without it (the trend rings another visit with "
                                                          "no other scan and leaves it out of its slope)"))
    return out


def _visit_order(s: ScanEntry) -> tuple:
    """A scan's place in time by its visit: its date, else its label in natural order."""
    return parse_date(s.visit) or s.date or dt.date.max, natural_key(s.visit or "")


def counted_visits(scans: list[ScanEntry], groups: list[tuple[str, ...]]) -> dict[int, str]:
    """The one visit at which each scan the study files at two or more visits of its eye (``groups``, the "two
    visits" check's: ``StudyIndex.at_two_visits``) counts, by the group's place in ``groups``: the first visit where
    it is the eye's only scan, else its first visit. Which date is right cannot be told, but which visit the scan
    crowds can: counted at its first visit, a scan re-dated BACKWARD (the last visit's scan given an earlier date,
    beside that visit's own scan) left the genuine last visit out of the slopes, ringed, and made the earlier point
    the mean of two years' scans (attack run 17, A17-8; A16-15 assumed the copy was later).

    The groups are settled together, not each alone: a copy that counts at another visit is no "other scan" where
    it is left out. Judged each alone, two re-dated copies in a chain (the 2019 scan dated 2018, the 2020 scan dated
    2019) left the 2019 scan alone nowhere: it was counted at 2018 beside that visit's own scan (a 'repeat', the
    mean of two years' scans) and the 2019 visit, its own scan and the 2020 copy, was ringed and left out: a
    significant loss read p=0.138 (attack run 18, A18-21). The groups are settled in time order (their first
    visit), each at its first visit where it is alone once the groups settled before are left out of their other
    visits, and again until none moves; what stays unsettled counts at its first visit. A whole export re-dated by
    one offset (a date-shifting anonymiser's, kept beside the originals) is so counted at one set of dates: the
    series is one source's, not a mix of both."""
    by_path = {s.path: s for s in scans}
    by_visit = _by_eye_visit(scans)
    members: dict[int, list[ScanEntry]] = {}
    owner: dict[str, int] = {}  # file -> the group it belongs to
    for k, paths in enumerate(groups):
        group = [by_path[p] for p in paths if p in by_path]
        if len({s.visit for s in group}) > 1:
            members[k] = group
            owner.update((s.path, k) for s in group)
    counted: dict[int, str] = {}

    def elsewhere(o: ScanEntry) -> bool:  # a copy settled at another visit than the one it stands at
        return owner.get(o.path) in counted and counted[owner[o.path]] != o.visit

    in_time = sorted(members, key=lambda k: min((_visit_order(s), s.path) for s in members[k]))
    settled = True
    while settled:
        settled = False
        for k in (k for k in in_time if k not in counted):
            paths = {s.path for s in members[k]}
            alone = [s for s in members[k] if all(o.path in paths or elsewhere(o)
                                                  for o in by_visit.get((s.patient_id, s.eye, s.visit), [s]))]
            if alone:
                counted[k], settled = min(alone, key=_visit_order).visit, True
    for k, group in members.items():
        counted.setdefault(k, min(group, key=_visit_order).visit)
    return counted


def later_copies(scans: list[ScanEntry], at_two_visits: list[tuple[str, ...]]) -> set[str]:
    """The paths of ``scans`` that the "two visits" check (``_two_visits``'s groups, ``StudyIndex.at_two_visits``)
    finds at another visit of their eye, the one where the scan counts (``counted_visits``): not counted here."""
    by_path = {s.path: s for s in scans}
    out: set[str] = set()
    for k, counted in counted_visits(scans, at_two_visits).items():
        out |= {p for p in at_two_visits[k] if p in by_path and by_path[p].visit != counted}
    return out


def left_out_of_visit(scans: list[ScanEntry], at_two_visits: list[tuple[str, ...]]) -> set[str]:
    """The later copies (``later_copies``) whose visit of the eye holds another scan: left out of that visit by
    the OU view and the Trend, the visit keeping its other scans. The Trend left out the whole visit, so the eye's
    genuine scan of it went with the re-dated copy of an earlier one (a significant loss read "not significant"),
    its point was the mean of the two, and the OU view showed the copy's RNFL (attack run 16, A16-15). A copy that
    is its visit's only scan of the eye stays: the Trend rings that visit and leaves it out of its slope."""
    later = later_copies(scans, at_two_visits)
    out: set[str] = set()
    if later:
        for group in _by_eye_visit(scans).values():
            if any(s.path not in later for s in group):
                out |= {s.path for s in group if s.path in later}
    return out


def _use_once(index: StudyIndex, uids: dict[str, str], root: str, digests: dict[str, str | None] | None = None,
              cancel=None) -> list[StudyWarning]:
    """Keep each scan of ``index`` once at its visit (``_copies``), the copies left out in ``index.copies``;
    the warnings on the scans kept."""
    kept, warnings = _copies(index.scans, uids, root, digests, cancel)
    index.copies = sorted(set(index.copies) | ({s.path for s in index.scans} - {s.path for s in kept}))
    index.scans = kept
    return warnings


def _repeats_counted(index: StudyIndex, root: str) -> list[StudyWarning]:
    """``_repeats`` of the scans each visit counts (the later copies of ``left_out_of_visit`` left out), once the
    "two visits" checks are known: a visit holding the eye's scan and a re-dated copy of an earlier one is not a
    repeat acquisition (attack run 16, A16-15)."""
    left = left_out_of_visit(index.scans, index.at_two_visits)
    return _repeats([s for s in index.scans if s.path not in left], root)


def _by_eye_visit(scans: list[ScanEntry]) -> dict[tuple, list[ScanEntry]]:
    """``scans`` by (patient, eye, visit): the group whose copies are used once and whose repeats are said."""
    out: dict[tuple, list[ScanEntry]] = {}
    for s in scans:
        out.setdefault((s.patient_id, s.eye, s.visit), []).append(s)
    return out


def _repeats(scans: list[ScanEntry], root: str) -> list[StudyWarning]:
    """A check on each scan of an eye's visit that holds several different scans (a repeat acquisition): the OU
    view and the OU report average their network results and show one scan's RNFL and disc figures, the trend
    averages their VF estimates and global RNFL, which nothing said (walk-through H91, W12; attack run 15, A15-5:
    "use their mean" was untrue of the structure; run 16, A16-9: "one scan's" was untrue of the trend)."""
    by_visit = _by_eye_visit(scans)
    out = []
    for (_, eye, visit), group in by_visit.items():
        if len(group) > 1:
            names = ", ".join(os.path.relpath(s.path, root) for s in group)
            out += [StudyWarning(s.path, "repeat", f"{eye or 'eye unknown'}: {len(group)} scans at the visit "
                                                   f"{visit or 'with no date'} ({names}): the OU view averages "
                                                   "their network results and shows one scan's RNFL and disc "
                                                   "figures; the trend averages their VF estimates and RNFL (open "
                                                   "each to compare)") for s in group]
    return out


def _content_copies(scans: list[ScanEntry], digests: dict[str, str | None],
                    cancel=None) -> list[tuple[ScanEntry, ScanEntry]]:
    """(kept, copy) for scans of one eye at one visit with the same decoded voxels and geometry
    (``io.content.volume_digest``) under other header fields, encoding or format: a scan re-exported with a
    new SOPInstanceUID was used twice at its visit (attack run 10, A10-17), and so was one re-encoded
    losslessly (RLE) or converted to .npz, while Pixel Data bytes were compared (run 12's A12-3, H79's
    recheck); the trainer's manifest finds copies by the same digest. Only scans of one scan pattern and
    B-scan count are decoded (a repeat scan at a visit is; a cube beside a circle is not), each once: ``digests``
    (path -> digest) holds those known (a folder study's header cache keeps them, so a study reopens without
    decoding) and receives the new ones; ``cancel`` is checked before each decoding (about 0.4 s for a 40 MB
    cube): decoding every repeat pair of a study ignored Cancel and ran again at each opening (attack run 14,
    A14-8). The first of ``scans`` is kept."""
    by_geometry: dict[tuple, list[ScanEntry]] = {}
    for s in scans:
        by_geometry.setdefault((s.scan_pattern, s.n_bscans), []).append(s)
    out, first = [], {}
    for same_geometry in (g for g in by_geometry.values() if len(g) > 1):
        for s in same_geometry:
            if (digest := _digest(s.path, digests, cancel)) is None:
                continue
            if digest in first:
                out.append((first[digest], s))
            else:
                first[digest] = s
    return out


def _digest(path: str, digests: dict[str, str | None], cancel=None) -> str | None:
    """``io.content.volume_digest`` of ``path``, from ``digests`` where known (the header cache's), else decoded."""
    from ..io.content import volume_digest

    return _known_or_read(path, digests, volume_digest, cancel)


def _sample(path: str, samples: dict[str, str | None], cancel=None) -> str | None:
    """``io.content.sample_key`` of ``path``, from ``samples`` where known (the header cache's), else read."""
    from ..io.content import sample_key

    return _known_or_read(path, samples, sample_key, cancel)


def _known_or_read(path: str, known: dict[str, str | None], read, cancel=None) -> str | None:
    """``known[path]``, else ``read(path)`` (``cancel`` checked first) added to ``known``."""
    if path not in known:
        if _cancelled(cancel):
            raise IndexCancelled()
        known[path] = read(path)
    return known[path]


def _other_images(a: str, b: str, digests: dict[str, str | None], cancel=None) -> bool:
    """Whether two scans sharing a UID both decode, to different voxels: two acquisitions, not a copy."""
    da, db = _digest(a, digests, cancel), _digest(b, digests, cancel)
    return da is not None and db is not None and da != db


def _row_patient(row_scan: ScanEntry | None) -> str:
    """The patient a manifest row gives ("" for none): it is used over the header's, by either route."""
    return row_scan.patient_id if row_scan is not None and row_scan.patient_id != NO_PATIENT else ""


def mixed_patient_scans(scans: list[ScanEntry], header_ids: dict[str, str], persons: dict[str, dict] | None = None,
                        dates: dict[str, str] | None = None) -> dict[str, tuple[str, str, str, str]]:
    """The scans a manifest files under a patient whose other scans' headers name someone else, as
    {path: (listed patient, the header ID of that patient's other scans, its own header ID, why)}, ``why`` one of
    "others" (the patient's other scans name another), "swapped" and "eye" (below). ``persons``: each scan's
    header traits (``core.person``), ``dates``: its header's date (ISO, "" for none).

    A consistent re-key (every scan of manifest patient P has header ID X) is a clinic's export and is
    used with check_header's warning; but P's scans carrying two header IDs are two people under one ID:
    the OU view paired them as one patient's eyes (eighth and H56 walk-throughs). P itself where any of P's scans
    carries it, else the header ID most of P's scans carry (the first listed's on a tie), is taken as P's
    (``_majority_ids``); the others are not used. One rule for
    Open study manifest (``_mixed_patients``) and the trainer's manifest (attack run 12, A12-4). Except where
    the minority scan's header names the majority's person (``old_id_scans``: an ID changed or records merged).

    Also not used, with "" for the other scans' ID: the scans of listed patients whose headers name each other
    in a cycle (P's scans name Q, Q's name P; or P -> Q -> R -> P): rows swapped or rotated. With one scan per
    patient (a cross-sectional cohort) there are no other scans to outvote them, and a swap passed as a re-keyed
    export (attack run 13, A13-16). A chain that does not return (a re-key whose code for one patient happens to
    be another patient's header ID) is a re-key, not a swap: it was refused, in the other patient's name (attack
    run 14, A14-11); a re-key that permutes the listed IDs among themselves is a cycle and is refused. A header ID
    of a listed patient whose scans do name them (P1 beside P1-OS: one person's eyes under two IDs) is left to
    the split's grouping.

    And not used ("eye"): a scan whose header names another listed patient Q who is listed with a scan of the
    SAME eye at the scan's own VISIT under their own ID (its header naming Q): a single row mis-pointed at another
    patient's scan, which neither rule above sees (no other scans, no cycle), was "one per eye?" and trained on
    with the row's label (attack run 14, A14-17). The visit is what the scan says (``_scan_says``: its header's
    date), not its row's: a mis-pointed row carries its own patient's visit, and passed whenever that was not the
    other patient's (attack run 16, A16-4); an empty visit cell matched another empty one (A16-5). One person keyed
    per eye never has one eye under both IDs at a visit; a partly re-keyed export (earlier visits under a study
    code, later ones under the MRN) has the eye at other visits, and is not refused (attack run 15, A15-7)."""
    persons, dates = persons or {}, dates or {}
    by_patient = _by_patient(scans)
    kept = old_id_scans(scans, header_ids, persons)
    out = {}
    for patient, theirs in _majority_ids(by_patient, header_ids).items():
        for scan in by_patient[patient]:
            own = header_ids.get(scan.path, "")
            if own and own != theirs and scan.path not in kept:
                out[scan.path] = (patient, theirs, own, "others")
    points: dict[str, str] = {}  # listed patient -> the other listed patient all its scans' headers name
    for patient, theirs_scans in by_patient.items():
        ids = {header_ids.get(s.path) for s in theirs_scans if header_ids.get(s.path)}
        if len(ids) == 1 and (named := ids.pop()) != patient and named in by_patient:
            points[patient] = named
    for patient in points:
        seen, step = {patient}, points[patient]
        while step in points and step not in seen:
            seen.add(step)
            step = points[step]
        if step != patient:  # no cycle back: a re-key whose code happens to be another patient's header ID (A14-11)
            continue
        for scan in by_patient[patient]:
            out.setdefault(scan.path, (patient, "", points[patient], "swapped"))
    own_visits: dict[tuple[str, str], set[str]] = {}  # (listed patient, eye) -> the visits its own scans say
    for p, ss in by_patient.items():
        for s in ss:
            if s.eye and header_ids.get(s.path) == p:
                own_visits.setdefault((p, s.eye), set()).update(v for v in (_scan_says(s, dates), s.visit) if v)
    for patient, theirs_scans in by_patient.items():
        for scan in theirs_scans:
            own, visit = header_ids.get(scan.path, ""), _scan_says(scan, dates)
            if own and own != patient and visit and any(_one_visit_of(visit, v)
                                                        for v in own_visits.get((own, scan.eye), ())):
                out.setdefault(scan.path, (patient, "", own, "eye"))
    return out


def old_id_scans(scans: list[ScanEntry], header_ids: dict[str, str],
                 persons: dict[str, dict]) -> dict[str, tuple[str, str, str]]:
    """The scans ``mixed_patient_scans``' majority rule would leave out whose header names the very person the
    patient's other scans name, under another PatientID: {path: (listed patient, the other scans' header ID, its
    own)}. A person's older scans under the MRN they had before a record merge (or an ID change) vanished from
    their trend as "another patient's scan", and the trainer refused the manifest (attack run 16, A16-10). Kept
    only where both headers give a name and a birth date and nothing (issuer, name, birth date: ``core.person``)
    differs; where they contradict, or give nothing to compare, the scan is left out as before. Never where its
    header ID is a patient the manifest lists whose own scans carry it (``_listed_ids``): that ID is in use, not
    retired, so the scan is that patient's; two patients of a cohort sharing a name and birth date (namesakes,
    twins, a 1 January placeholder) had one's scan used and trained as the other's (attack run 17, A17-3)."""
    by_patient = _by_patient(scans)
    in_use = _listed_ids(by_patient, header_ids)
    out = {}
    for patient, theirs in _majority_ids(by_patient, header_ids).items():
        majority = [persons.get(s.path, {}) for s in by_patient[patient] if header_ids.get(s.path) == theirs]
        for scan in by_patient[patient]:
            own = header_ids.get(scan.path, "")
            if (own and own != theirs and own not in in_use
                    and same_person_across_ids(persons.get(scan.path, {}), majority)):
                out[scan.path] = (patient, theirs, own)
    return out


def _listed_ids(by_patient: dict[str, list[ScanEntry]], header_ids: dict[str, str]) -> set[str]:
    """The listed patients (``by_patient``'s keys) at least one of whose own scans' headers carries their ID."""
    return {p for p, ss in by_patient.items() if any(header_ids.get(s.path) == p for s in ss)}


def _by_patient(scans: list[ScanEntry]) -> dict[str, list[ScanEntry]]:
    by_patient: dict[str, list[ScanEntry]] = {}
    for scan in scans:
        by_patient.setdefault(scan.patient_id, []).append(scan)
    return by_patient


def _majority_ids(by_patient: dict[str, list[ScanEntry]], header_ids: dict[str, str]) -> dict[str, str]:
    """Listed patient -> the header ID taken as theirs, for the patients whose scans carry several: their own ID where
    a scan's header gives it, else the one most of their scans carry (the first listed's on a tie). A scan whose
    header agrees with its row is the row's patient's: a patient listed under the current MRN whose earlier visits'
    headers still carry the old one had the latest visits, whose headers give the listed ID, refused as "another
    patient's scan" once the old MRN's scans were as many (attack run 18, A18-27, after A17-3's guard)."""
    out = {}
    for patient, theirs_scans in by_patient.items():
        ids = [header_ids.get(s.path, "") for s in theirs_scans if header_ids.get(s.path)]
        if len(set(ids)) > 1:
            counts = {i: ids.count(i) for i in dict.fromkeys(ids)}
            out[patient] = patient if patient in counts else max(counts, key=counts.get)
    return out


def _scan_says(scan: ScanEntry, dates: dict[str, str]) -> str:
    """The visit a scan itself gives: its header's date, else its row's visit ("" for none)."""
    return dates.get(scan.path) or scan.visit


def _one_visit_of(a: str, b: str) -> bool:
    """Two visits (ISO dates or labels) are one: dates within ``VISIT_GAP_DAYS``, labels equal."""
    da, db = parse_date(a), parse_date(b)
    if da and db:
        return abs((da - db).days) <= VISIT_GAP_DAYS
    return a == b


def _mixed_patients(index: StudyIndex, header_ids: dict[str, str], persons: dict[str, dict],
                    dates: dict[str, str]) -> None:
    """Leave out the scans of ``mixed_patient_scans``, each listed; the problem text names the file and both
    IDs: it is shown in the window, never logged. A scan under the person's old ID (``old_id_scans``) is used, its
    'patient' check saying why (A16-10)."""
    mixed = mixed_patient_scans(index.scans, header_ids, persons, dates)
    for path, (patient, theirs, own) in old_id_scans(index.scans, header_ids, persons).items():
        if path not in mixed:  # the row's "the row's is used" said less: this says both IDs and why
            index.warnings = [w for w in index.warnings if not (w.path == path and w.kind == "patient")]
            index.warnings.append(StudyWarning(path, "patient", f'listed under the patient "{patient}", whose other '
                                               f'scans\' headers say "{theirs}", while its own says "{own}": the '
                                               "headers give the same name and birth date (an ID changed or records "
                                               "merged?); it is used"))
    for path, (patient, theirs, own, kind) in mixed.items():
        why = {"others": f'whose other scans\' headers say "{theirs}", while its own says "{own}"',
               "swapped": f'while its own header says "{own}", another patient of the study (rows swapped?)',
               "eye": f'while its own header says "{own}", a patient of the study listed with this eye at this visit '
                      f'under their own ID'}[kind]
        index._problem(path, "scans of another patient",
                       f'listed under the patient "{patient}", {why}: another patient\'s scan is not used')
    index.scans = [s for s in index.scans if s.path not in mixed]
    index.warnings = [w for w in index.warnings if w.path not in mixed]  # "the row's is used": it is not (H87)


def _people_under_one_id(index: StudyIndex, persons: dict[str, dict]) -> None:
    """A check on each scan of a patient of the study whose scans' headers name different people (another issuer
    of the ID, family name, first given name or birth date where both give one: ``core.person``, the rule PACS
    screens follow). A PatientID is unique only within its issuer; a folder filled from a regional or merged
    archive filed two people as one patient and the OU view paired one person's right eye with the other's left
    (attack run 14, A14-19). Said, not hidden: names are written differently by devices and exports (O'BRIEN and
    OBRIEN, MUELLER and MÜLLER), and leaving out every scan of a patient for one such spelling hid whole histories
    (attack run 15, A15-1, A15-16); grouped by the study's patient, so a manifest that files the two under two IDs
    is not questioned (A15-3). Names in two scripts that nothing told apart get a 'scripts' check instead, which
    leaves the Trend's flags (``core.person.scripts_apart``). DICOM headers only (a .vol's name and birth date are
    not read)."""
    by_patient: dict[str, list[ScanEntry]] = {}
    for scan in index.scans:
        by_patient.setdefault(scan.patient_id, []).append(scan)
    for patient, scans in by_patient.items():
        if len(scans) > 1 and not one_set_of_traits(persons.get(s.path, {}) for s in scans):
            # which of the headers' facts differ, in words, no name or date (walk-through H140, W3)
            differ = what_differs(persons.get(s.path, {}) for s in scans)
            index.warnings += [StudyWarning(scan.path, "people", f'the scans of the patient "{patient}" name '
                                            f"different people in their headers ({differ}: an archive holding "
                                            "several hospitals' IDs, a mis-filed scan, or one name written two "
                                            "ways): check before comparing eyes or visits") for scan in scans]
        # also beside a 'people' check: KIM^MINSEO / 김^민서 / KIM^JIHO said two people and grouped the hangul visit
        # with the first, which nothing compared (walk-through H129, V13)
        if len(scans) > 1 and (scripts := scripts_apart(persons.get(s.path, {}) for s in scans)):
            # not compared (names in two scripts that nothing told apart): said, the Trend's flags kept (A23-15)
            index.warnings += [StudyWarning(scan.path, "scripts", f'the scans of the patient "{patient}" write the '
                                            f"name in two scripts ({scripts}), which are not compared: one person's "
                                            "name from two devices, or twins under one ID; check before comparing "
                                            "eyes or visits") for scan in scans]


def _fields_of_another_person(index: StudyIndex, persons: dict[str, dict], vf_persons: dict[int, dict]) -> None:
    """Leave out, listed, a measured field (a perimeter's DICOM, an HFA XML exam) whose header names another person
    than every scan of its eye does (``_beside``) by what a spelling cannot explain: another issuer of the ID or
    birth date (``core.person.other_person``): it was shown as the patient's measured VF beside the estimate
    (attack run 15, A15-15; the XML export, A16-5). ``vf_persons`` is keyed by the measurement's ``id``, one exam:
    an export holding two people's exams under one ID was judged by its last exam's person for both (attack run 17,
    A17-4). A field is one test, so it is not used where it contradicts. A field whose name only differs from a
    scan's after the fold is kept, with a 'field' check on each scan of its eye that names the patient otherwise
    (two scans' names get a 'people' check, ``_people_under_one_id``): the patient's own field written O'BRIEN by
    the perimeter and OBRIEN by the OCT was dropped as another person's (attack run 16, A16-2)."""
    by_patient: dict[str, list[ScanEntry]] = {}
    for scan in index.scans:
        by_patient.setdefault(scan.patient_id, []).append(scan)
    kept, exams = [], Counter(m.source for m in index.vf)
    for m in index.vf:
        scans = _beside(m, by_patient.get(m.patient_id, []))
        theirs = [t for t in (persons.get(s.path, {}) for s in scans) if t]
        mine = vf_persons.get(id(m), {})
        if mine and theirs and all(not one_set_of_traits([mine, t], names=False) for t in theirs):
            index._problem(m.source or index.root, "visual fields of another person",
                           f"measured VF of {m.patient_id} {m.eye or 'eye unknown'}: its header names another "
                           f"person ({what_differs([mine, *theirs])}) than this patient's scans; it is not used"
                           + (f" (its exam of {m.date or 'no date'}, one of {exams[m.source]} in the file)"
                              if exams[m.source] > 1 else ""))
            continue
        kept.append(m)
        other = [s for s in scans if mine and persons.get(s.path) and not one_set_of_traits([mine, persons[s.path]])]
        if other:
            # a check of its own kind, on the scans of the field's eye: it bears on the measured VF, and the Trend
            # took it for the scans' "people" check and withheld the flag from an RNFL slope measured on one
            # person's scans, saying they name different people (attack run 16, A16-16). On each scan whose header
            # names another person than the field's (the twin's fields beside her sister's scans, A22-13), and on
            # the headerless ones too where no scan names the field's person
            if len(other) == len(theirs):
                other = scans
            name = os.path.basename(m.source or "")
            index.warnings += [StudyWarning(scan.path, "field", f'the measured VF of the patient "{m.patient_id}" '
                                            f"{m.eye or 'eye unknown'} ({name}) names the patient otherwise in its "
                                            "header than the scans do (another person, or one name written two "
                                            "ways): check before comparing it with the estimate")
                               for scan in other if not m.eye or not scan.eye or scan.eye == m.eye]
        elif mine and theirs and all(scripts_apart([mine, t]) for t in theirs) and (
                scripts := scripts_apart([mine, *theirs])):
            # written in a script no scan of its eye writes, and nothing told them apart: a 'scripts' check, which
            # leaves the flags as the scans' does (a twin's field in Latin beside her sister's hangul scans, A24-2)
            name = os.path.basename(m.source or "")
            index.warnings += [StudyWarning(scan.path, "scripts", f'the measured VF of the patient "{m.patient_id}" '
                                            f"{m.eye or 'eye unknown'} ({name}) writes the name in another script "
                                            f"than the scans ({scripts}), which are not "
                                            "compared: one person's name from two devices, or twins under one ID; "
                                            "check before comparing it with the estimate")
                               for scan in scans if not m.eye or not scan.eye or scan.eye == m.eye]
    index.vf = kept


def _beside(m: VfMeasurement, scans: list[ScanEntry]) -> list[ScanEntry]:
    """The scans a measured field is shown beside: those of its eye (and of no stated eye), where the patient has
    any; else every scan of the patient. Compared with every scan of the patient, a twin's fields beside the other
    twin's eye carried no 'field' check wherever the twin had one scan of the other eye under the shared ID: the
    Trend showed them as the eye's own measured VF (attack run 22, A22-13)."""
    mine = [s for s in scans if not m.eye or not s.eye or s.eye == m.eye]
    return mine or scans


def _one_field_under_two_patients(index: StudyIndex) -> None:
    """Leave out, listed, the measured fields that are one test filed under two patients: the same eye, test date,
    VFI, MD and PSD (all three given) under two patient IDs. One perimeter export re-saved under another patient
    (an export to the wrong record) was used as both patients' measured VF, nothing said, where one scan under two
    patients is "whose scan it is cannot be told; neither is used" (attack run 18, A18-28). The field's values stand
    for its identity: a field record keeps no UID, and two people tested on one day do not give three equal indices."""
    same: dict[tuple, list[VfMeasurement]] = {}
    for m in index.vf:
        if m.date is not None and None not in (m.vfi, m.md_db, m.psd_db):
            same.setdefault((m.eye, m.date, m.vfi, m.md_db, m.psd_db), []).append(m)
    wrong: set[int] = set()
    base = index._base()
    for group in (g for g in same.values() if len({m.patient_id for m in g}) > 1):
        patients = " and ".join(sorted({m.patient_id for m in group}))
        names = ", ".join(dict.fromkeys(os.path.relpath(m.source, base) if _inside(m.source, base) else m.source
                                        for m in group if m.source))
        for m in group:
            wrong.add(id(m))
            index._problem(m.source or index.root, "visual fields filed under two patients",
                           f"measured VF of {m.patient_id} {m.eye or 'eye unknown'} {m.date.isoformat()}: the same "
                           f"test (eye, date, VFI, MD and PSD) is filed under the patients {patients} ({names}): whose "
                           "field it is cannot be told; it is not used")
    index.vf = [m for m in index.vf if id(m) not in wrong]


def _one_field_at_two_dates(index: StudyIndex) -> None:
    """Count once, at one date, a measured field the study holds at two or more dates of one patient's eye: the same
    VFI, MD and PSD (all three given; a field record keeps no UID). A perimeter export re-dated (a date-shifting
    export, the scans' A15-17 for a field) was a second test in the measured-VF slope (attack run 18, A18-28). It
    counts at its first date where no other field of the eye lies within ``VF_MATCH_DAYS`` (the scans' rule, A17-8:
    a copy re-dated backward or forward does not crowd a visit's own field), else at its first; the others are
    listed and not used. A field table's row (``visit`` set) is the clinic's own record of a test, counted
    whatever equals it (a stable eye's equal rows a year apart, in one file or the clinic's yearly exports: attack
    runs 20 and 21, A20-7, A21-2), unless its file is a re-dated copy of another table (``_redated_tables``: a
    date-shifted export kept beside the original counted every test twice, attack run 22, A22-15: decided per
    patient); where a group holds such a row, the copy and perimeter exams count at its date, and the list says why
    the other file's dates count. A test in the copy only is listed and not used: its date is the copy's, shifted
    (attack run 23, A23-5)."""
    from .vf import VF_MATCH_DAYS

    same: dict[tuple, list[VfMeasurement]] = {}
    for m in index.vf:
        if m.date is not None and None not in (m.vfi, m.md_db, m.psd_db):
            same.setdefault((m.patient_id, m.eye, m.vfi, m.md_db, m.psd_db), []).append(m)
    wrong: set[int] = set()
    base = index._base()

    def name(m: VfMeasurement) -> str:
        return os.path.relpath(m.source, base) if m.source and _inside(m.source, base) else m.source or "a table"

    copies = _redated_tables(index.vf, index.scans)

    def record(m: VfMeasurement) -> bool:  # a table's row, not of a re-dated copy: the clinic's record, counted
        return bool(m.visit) and (m.source, m.patient_id) not in copies

    for group in (g for g in same.values() if len({m.date for m in g}) > 1):
        mine = {id(m) for m in group}
        others = [o for o in index.vf if id(o) not in mine and (o.patient_id, o.eye) == (group[0].patient_id,
                                                                                       group[0].eye) and o.date]
        pool = [m for m in group if record(m)] or group
        alone = [m for m in pool if all(abs((o.date - m.date).days) > VF_MATCH_DAYS for o in others)]
        kept = min(alone or pool, key=lambda m: m.date)
        for m in group:
            # the exams of one export are the clinic's own records too: equal rounded values a year apart are a
            # stable eye, not a copy (A20-7); a copy is another file's exam or a re-dated table's row
            if m.date == kept.date or m.source == kept.source or record(m):
                continue
            wrong.add(id(m))
            why = copies.get((m.source, m.patient_id)) if record(kept) else None
            index._problem(m.source or index.root, "visual fields at two dates",
                           f"measured VF of {m.patient_id} {m.eye or 'eye unknown'} {m.date.isoformat()}: the same "
                           f"test (VFI, MD and PSD) as {name(kept)} of {kept.date.isoformat()} (a re-dated copy?): "
                           + (f"this file's rows of the patient equal that file's at one date offset, and that "
                              f"file's dates {why}" if why else "which date is right cannot be told")
                           + f"; it is counted once, at {kept.date.isoformat()} ("
                           + ("the table's own row)" if record(kept) else
                              "a date with no other field of the eye, else the first)"))
    for m in index.vf:
        # a test only the copy holds: its date is the copy's, shifted (attack run 23, A23-5)
        if id(m) not in wrong and m.visit and (m.source, m.patient_id) in copies and not any(
                record(o) for o in same.get((m.patient_id, m.eye, m.vfi, m.md_db, m.psd_db), ())):
            wrong.add(id(m))
            index._problem(m.source, "visual fields at two dates",
                           f"measured VF of {m.patient_id} {m.eye or 'eye unknown'} {m.date.isoformat()}: this "
                           "file's other rows of the patient are a re-dated copy of another table's, and this test "
                           "is in the copy only: its date is the copy's, not the clinic's; it is not used")
    index.vf = [m for m in index.vf if id(m) not in wrong]


def _redated_tables(fields: list[VfMeasurement], scans: list[ScanEntry]) -> dict[tuple[str, str], str]:
    """The patients' rows of field tables (files of rows, ``visit`` set) that are a re-dated copy of another table
    file's, each (file, patient) with why the other file's dates are taken: a date-shifting export kept beside the
    original counted every test twice (attack run 22, A22-15). Two files' rows of one patient are one record
    re-dated where they equal each other (eye, VFI, MD and PSD) at the patient's one non-zero date offset, each eye's
    rows of one file or the other all matched (``_one_offset``), and one patient of the two files gives two such
    rows at least. The offset and the decision are the patient's, not the file's: de-identification tools shift
    each patient's dates by their own offset (A22-15's residual), and one row left out of either file for any
    patient or eye (an export made before the last test was typed in) cleared the whole file and every test counted
    twice (attack run 23, A23-5). The shape tells it from a clinic's yearly exports of a stable eye, where one or two
    rows equal rows of the other file among others (A20-7, A21-2): those stay two tests. Of the two, the copy is the
    one whose dates lie farther from the scans' (``_copy``), whichever holds more rows: the clinic's table that
    lacked one row of the export was taken for the copy, and each visit showed another year's test (A23-6)."""
    rows: dict[str, dict[str, list[VfMeasurement]]] = {}  # file -> patient -> rows
    for m in fields:
        if m.visit and m.date is not None and None not in (m.vfi, m.md_db, m.psd_db):
            rows.setdefault(m.source, {}).setdefault(m.patient_id, []).append(m)
    copies: dict[tuple[str, str], str] = {}
    files = sorted(rows)
    for n, first in enumerate(files):
        for second in files[n + 1:]:
            matched = {patient: pairs for patient in rows[first].keys() & rows[second].keys()
                       if (pairs := _one_offset(rows[first][patient], rows[second][patient]))}
            if any(len(pairs) > 1 for pairs in matched.values()):
                for patient, pairs in matched.items():
                    copy, why = _copy(first, second, patient, pairs, rows, scans)
                    copies.setdefault((copy, patient), why)
    return copies


def _one_offset(mine: list[VfMeasurement], theirs: list[VfMeasurement]) -> list[tuple]:
    """One patient's rows of two files that equal each other (eye, VFI, MD and PSD) at one non-zero date offset,
    as pairs (mine, theirs), where at that offset each eye's rows of one file or the other are all matched: a copy
    may lack a test of the original or hold one the original lacks, eye by eye (``_redated_tables``). Empty where
    no offset does; of several, the one matching most rows (then the smallest)."""
    def key(m: VfMeasurement) -> tuple:
        return m.eye, m.vfi, m.md_db, m.psd_db

    found: list[tuple] = []
    for days in sorted({(t.date - m.date).days for m in mine for t in theirs if key(m) == key(t)} - {0}, key=abs):
        pairs = [(m, t) for m in mine for t in theirs if key(m) == key(t) and (t.date - m.date).days == days]
        ours, others = {id(m) for m, _ in pairs}, {id(t) for _, t in pairs}
        if len(pairs) > len(found) and all(
                all(id(m) in ours for m in mine if m.eye == eye) or all(id(t) in others for t in theirs if t.eye == eye)
                for eye in {m.eye for m in mine} | {t.eye for t in theirs}):
            found = pairs
    return found


def _copy(first: str, second: str, patient: str, pairs: list[tuple], rows: dict[str, dict[str, list]],
          scans: list[ScanEntry]) -> tuple[str, str]:
    """Of two files whose rows of ``patient`` are one record re-dated (``pairs``, first's and second's), the copy
    and why the other's dates count: the copy's dates lie farther from the scans' of the patient's eye (days to the
    nearest, summed over the paired rows: the visits the clinic recorded); where that ties (no scans), the file
    holding fewer of the patient's rows (an export that left a test out), then the one written later (its
    modification time; then its name, so one of the two is always the copy)."""
    dates: dict[str, list[dt.date]] = {}
    for s in scans:
        if s.patient_id == patient and s.date is not None:
            dates.setdefault(s.eye, []).append(s.date)

    def far(m: VfMeasurement) -> int:
        return min((abs((d - m.date).days) for d in dates.get(m.eye, ())), default=0)

    mine, theirs = sum(far(m) for m, _ in pairs), sum(far(t) for _, t in pairs)
    if mine != theirs:
        return (first if mine > theirs else second), "lie nearer the scans'"
    held = len(rows[first][patient]), len(rows[second][patient])
    if held[0] != held[1]:
        return (first if held[0] < held[1] else second), "hold more of the patient's tests"

    def written(path: str) -> tuple:
        try:
            return os.stat(path).st_mtime, path
        except OSError:
            return 0.0, path

    return (first if written(first) > written(second) else second), "were written first"


def _header_checked(scan: ScanEntry, row: dict) -> tuple[ScanEntry, list[tuple[str, str]], dict]:
    """The manifest's scan with the eye its own header states where the row gives none, the warnings of
    ``check_header`` and the header record; ValueError naming the row when the header states the other
    eye. Only the header is read (``headers.read_record``), never the pixels."""
    record = read_record(Path(scan.path))
    if record.get("kind") == "vf" or record.get("reason") in ("non-OCT DICOM files", "unreadable visual-field files"):
        # a perimeter's DICOM was the OD scan of its visit, "nothing skipped" (attack run 15, A15-13)
        field = record.get("kind") == "vf" or "visual" in record["reason"]
        what = "a visual field" if field else "another kind of DICOM"
        raise ValueError(f"row {row.get('_row', '?')}: not an OCT scan ({what}); it is not used")
    if record.get("kind") == "skip" and record.get("reason") == "unreadable files":  # as a study folder does
        # (a DICOM whose laterality fields disagree was filed under the row's eye, and refused on opening)
        raise ValueError(f"row {row.get('_row', '?')}: {record.get('problem') or 'unreadable'}; it is not used")
    warnings = check_header(scan, record, f"row {row.get('_row', '?')}", "the row's")
    eye = record.get("eye") if record.get("kind") == "scan" else ""
    if eye in ("OD", "OS") and not scan.eye:
        scan = dataclasses.replace(scan, eye=eye)
    date = parse_date(record.get("date") or "") if record.get("kind") == "scan" else None
    if date is not None and scan.date is None:  # a visit labelled V1 (or none) is dated by the header (A8-8)
        scan = dataclasses.replace(scan, date=date, visit=scan.visit or date.isoformat())
    return scan, warnings, record


def cut_short_text(cut: str) -> str:
    """What the folder index says of a scan whose file is cut short (``io.dicom.cut_short``'s words): it stays in
    the tree (indexed from its header), but cannot be opened; a folder study said "nothing skipped" where a manifest
    study names it (walk-through H82, W19)."""
    return f"cut short: {cut}; listed from its header, it cannot be opened or analysed until a whole copy replaces it"


def _not_a_scan(path: str) -> str | None:
    """Why a manifest row's file is no scan the viewer opens, in ``io.formats.detect``'s words (a device, a table
    such as the manifest itself, an unknown format; a folder without B-scan images), None for a file or folder of
    a volume format. Such a row was counted a scan of its patient, eye and visit with nothing listed, refused only
    when the visit was clicked, where a study folder lists special files and the trainer refuses the row (attack
    run 14, A14-5). Reads the first 132 bytes (or the folder's names), not the scan."""
    try:
        fmt = detect(Path(path))
        if fmt.name == "image_folder" and not any(p.suffix.lower() in IMAGE_SUFFIXES for p in Path(path).iterdir()):
            return "a folder without B-scan images, not a scan"
    except VolumeReadError as exc:
        return exc.problem
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    return None


def _cut_short(path: str) -> str | None:
    """How a listed DICOM scan is cut short (``io.dicom.cut_short``), None where it is whole or not DICOM: a
    manifest study reads only headers, and listed a scan cut inside its data as a good one (walk-through H65,
    W18). Unreadable here, it is left to the header reader to say why."""
    try:
        return cut_short(path)
    except (OSError, VolumeReadError):
        return None


def index_manifest(csv_path, progress=None, cancel=None) -> StudyIndex:
    """Index from a manifest's columns and the eye in each listed scan's header, with its measured VF.

    The folder's rules hold here too: a file that rows describe differently (one scan at three visits,
    or for two patients) is listed and not used (attack run 7, A7-8), and a header's eye fills an empty
    cell; what the header contradicts is said (``check_header``), and one scan at two visits too."""
    csv_path = given_path(csv_path).resolve()
    rows = _read_manifest_rows(csv_path, cancel)
    if rows is None:
        raise VfReadError(csv_path, "not a manifest: it has no 'path' column")
    index = StudyIndex(root=str(csv_path))
    listed: dict[str, list[tuple[dict, tuple | None]]] = {}  # file -> the rows that list it, _header_checked's
    for n, row in enumerate(rows):
        if _cancelled(cancel):
            raise IndexCancelled()
        try:
            scan = _manifest_scan(row, csv_path.parent)
        except (ValueError, OSError) as exc:
            index._problem(csv_path, "manifest rows unusable", str(exc))
            continue
        if not os.path.exists(scan.path):  # named, as a study folder's manifest names it (A18-23)
            index._problem(scan.path, "listed files missing", f"row {row.get('_row', '?')}: the file is missing; "
                                                              "it is not used")
        elif problem := _not_a_scan(scan.path):
            index._problem(scan.path, "rows listing no scan", f"row {row.get('_row', '?')}: {problem}; "
                                                                          "it is not used")
        elif cut := _cut_short(scan.path):  # listed as a visit, it failed on opening with "no pixel data" (W18)
            index._problem(scan.path, "scans cut short",
                           f"row {row.get('_row', '?')}: cut short: {cut}; it is not used")
            listed.setdefault(scan.path, []).append((row, None))
        else:
            try:
                listed.setdefault(scan.path, []).append((row, _header_checked(scan, row)))
            except ValueError as exc:
                index._problem(scan.path, "scans whose header the manifest contradicts", str(exc))
                listed.setdefault(scan.path, []).append((row, None))
        if progress is not None:
            progress(n + 1, len(rows))
    uids: dict[str, str] = {}
    header_ids: dict[str, str] = {}  # file -> the patient ID in its own header
    persons: dict[str, dict] = {}  # file -> who under that ID (hashed issuer, name, birth date)
    dates: dict[str, str] = {}  # file -> the date in its own header (ISO, "" for none)
    geometry: dict[str, int] = {}  # file -> the B-scan count in its header (files with a header only)
    used_rows: list[dict] = []  # the rows whose scans are used: only their visual fields are the study's
    for path, entries in listed.items():
        visit_only = len({_row_says(row)[:2] for row, _ in entries}) == 1 and all(c for _, c in entries)
        if len({_row_says(row) for row, _ in entries}) > 1 and not visit_only:
            index._problem(path, "scans that manifests disagree about",
                           _disagreement([f"row {row.get('_row', '?')}" for row, _ in entries]))
        elif entries[0][1] is not None:
            (row, (scan, warnings, record)), note = _one_visit(entries)
            index.scans.append(scan)
            index.warnings += [StudyWarning(path, kind, w) for kind, w in ([("rows", note)] if note else []) + warnings]
            uids[path] = record.get("uid") or ""
            header_ids[path] = record.get("patient_id") or ""
            persons[path] = record.get("person") or {}
            dates[path] = record.get("date") or ""
            if record.get("kind") == "scan":  # a header's B-scan count: the first sign of one content (A15-2)
                geometry[path] = record.get("n_bscans") or 0
            used_rows += [r for r, _ in entries if _row_says(r) == _row_says(row)]
    _mixed_patients(index, header_ids, persons, dates)
    _headerless_geometry(index.scans, geometry)
    digests: dict[str, str | None] = {}
    samples: dict[str, str | None] = {}
    base = str(csv_path.parent)
    at_visits = _one_scan_in_two_places(index, uids, geometry, base, digests, samples, cancel, persons)
    index.scans = group_visits(index.scans)
    copies = _use_once(index, uids, base, digests, cancel)
    # over the scans used: another patient's copy, left out, put the check on every scan of this one (H140, W1)
    _people_under_one_id(index, persons)
    index.warnings += (copies + _two_visits(index.scans, at_visits, base, index.at_two_visits)
                       + _same_scans([s for s in index.scans if s.path not in geometry], uids, base,
                                     index.at_two_visits))
    index.warnings += _repeats_counted(index, base)
    _undated_note(index)
    if {"vfi", "md", "psd"} & set(rows[0] if rows else {}):
        try:
            index.vf, bad = read_vf_rows(csv_path, cancel=cancel)
        except Cancelled:
            raise IndexCancelled() from None
        except VfReadError as exc:  # the VF columns refused whole (damaged): the scans still open
            index.vf, bad = [], [exc.problem]
        # a field on the row of a scan left out is no field of the study: "3 measured visual fields" were
        # counted where 1 was on a used row (H51 walk-through, item 4)
        used = {_vf_key(row) for row in used_rows}
        left_out = [m for m in index.vf if (m.patient_id, m.eye, m.date or m.visit) not in used]
        if left_out:
            index.skipped["visual fields on rows of scans not used"] += len(left_out)
            index.vf = [m for m in index.vf if m not in left_out]
        if bad:
            index._problem(csv_path, "visual-field rows refused", "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    _one_field_under_two_patients(index)
    _one_field_at_two_dates(index)
    _unmatched_vf_problems(index)
    log.info("indexed manifest: %d scans, %d VF, %s", len(index.scans), len(index.vf), index.skipped_text())
    return index


# ---------------------------------------------------------------- folders



def _rows_not_walked(index: StudyIndex, root: Path, by_path: dict[str, dict], described_by: dict[str, str],
                     walked: set[str], row_dated: dict[str, str]) -> set[str]:
    """The rows of a study folder's manifests whose path is no file the folder's walk read: a folder of B-scan
    images is indexed as Open study manifest indexes it (its row's patient, eye and visit; compared by content as
    the other files without a header, A16-12) and returned (its images are the scan's, not "other files"); a
    missing file, one outside the study folder, or a folder that is no scan is listed with its row. Such rows met
    no file of the walk and were dropped in silence: the eye of an image-folder row vanished from the OU view, its
    images counted as "other files" (attack run 18, A18-23). ``row_dated`` receives the folders indexed."""
    folders: set[str] = set()
    for file, row in by_path.items():
        if file in walked:
            continue
        where = described_by[file]
        if not os.path.lexists(file):
            index._problem(file, "listed files missing", f"{where}: the file is missing; it is not used")
        elif not _inside(file, str(root)):
            index._problem(file, "rows listing files outside the folder",
                           f"{where}: the file lies outside the study folder: open the manifest itself (File > Open "
                           "study manifest) to use it; it is not used here")
        elif os.path.isdir(file):
            if problem := ("the study folder itself, not a scan" if file == str(root) else _not_a_scan(file)):
                index._problem(file, "rows listing no scan", f"{where}: {problem}; it is not used")
                continue
            folders.add(file)
            index.scans.append(dataclasses.replace(_manifest_scan(row, root), path=file))
            row_dated[file] = ""
    return folders


def index_folder(path, progress=None, cancel=None, cache_dir: str | os.PathLike | None = None) -> StudyIndex:
    """Index every scan under ``path`` (recursively) from headers, using and refreshing the cache.

    ``progress(done, total)`` is called per file; ``cancel`` is a threading.Event (or a callable)
    checked between files, raising IndexCancelled. CSV files with a ``path`` column (manifests)
    fill in patient, eye and visit where a header lacks them; CSVs with VF columns give measured VF.
    """
    root = given_path(path).resolve()  # bytes named as the OS does; "" (the working folder) refused
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    store, unused = _header_store(cache_dir)
    cached = store.study_headers(str(root)) if store is not None else {}
    entries: dict[str, list] = {}
    index = StudyIndex(root=str(root))
    if store is not None and store.notice:  # damaged: set aside, a new one started
        index.notes.append(store.notice)
    if unused:
        index.notes.append(unused)
    try:
        files, unreadable_folders = walk_files(root, hidden=False, cancelled=cancel)
    except Cancelled:
        raise IndexCancelled() from None
    for folder, reason in unreadable_folders:
        index._problem(folder, "linked folders" if reason == LINKED_FOLDER else "unreadable folders", reason)
    csvs = [f for f in files if f.suffix.lower() in TABLE_SUFFIXES]
    others = [f for f in files if f.suffix.lower() not in TABLE_SUFFIXES]
    records: list[tuple[Path, dict]] = []
    vf_persons: dict[int, dict] = {}  # a measured field (its id(): one exam of a file) -> who its header names
    try:
        for n, file in enumerate(others):
            if _cancelled(cancel):
                raise IndexCancelled()
            rel = file.relative_to(root).as_posix()
            try:
                st = file.stat()
            except OSError as exc:
                index._problem(file, "unreadable files", f"cannot be read ({exc.strerror or type(exc).__name__})")
                continue
            if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end: not opened
                index._problem(file, "special files", "not a regular file (a named pipe, device or socket); "
                                                      "it was not opened")
                continue
            key = _cache_key(st)
            record = _cached_record(cached.get(rel), key, file.suffix.lower())
            if record is not None:
                index.from_cache += 1
            else:
                record = read_record(file)
            entries[rel] = [*key, record]
            records.append((file, record))
            if progress is not None:
                progress(n + 1, len(others))
    finally:
        if store is not None:
            if entries:
                store.put_study_headers(str(root), {**cached, **entries} if _cancelled(cancel) else entries)
            store.close()

    by_path: dict[str, dict] = {}
    described_by: dict[str, str] = {}  # scan -> the first manifest row that describes it
    disagree: dict[str, list[str]] = {}  # scan -> rows that say different things about it
    other_scan: set[str] = set()  # ... about its patient or eye (not only its visit): not used
    for csv_file in csvs:
        if _cancelled(cancel):
            raise IndexCancelled()
        try:
            regular = stat.S_ISREG(csv_file.stat().st_mode)
        except OSError:
            regular = False
        if not regular:
            index._problem(csv_file, "special files", "not a regular file (a named pipe, device or socket, or gone); "
                                                      "it was not opened")
            continue
        try:
            rows = _read_manifest_rows(csv_file, cancel)
        except VfReadError:  # read_vf_rows below names what is wrong with the file
            rows = None
        bad_rows = []
        for row in rows or ():
            if problem := _row_problem(row):
                bad_rows.append(problem)
                continue
            try:
                file = _row_file(row, csv_file.parent)
            except (ValueError, OSError) as exc:
                bad_rows.append(str(exc))
                continue
            here = f"{os.path.relpath(csv_file, root)} row {row.get('_row', '?')}"
            if file in by_path and _row_says(by_path[file]) != _row_says(row):
                disagree.setdefault(file, [described_by[file]]).append(here)
                if _row_says(by_path[file])[:2] != _row_says(row)[:2]:
                    other_scan.add(file)
            by_path.setdefault(file, row)
            described_by.setdefault(file, here)
        try:
            measurements, bad_vf = read_vf_rows(csv_file, cancel=cancel)
            index.vf.extend(measurements)
            bad_rows += bad_vf
        except Cancelled:
            raise IndexCancelled() from None
        except NotAVfTable:
            if rows is None:
                index.skipped["other files"] += 1
        except VfReadError as exc:  # a VF table refused whole (damaged, unreadable): named, never lost in silence
            if csv_file.suffix.lower() == ".csv" or rows is not None or names_vf_columns(csv_file):
                index._problem(csv_file, "unreadable files", exc.problem)
            else:  # a .txt note that is no table (Latin-1, a long log line): another file, as before 8a5a141 (A29-11)
                index.skipped["other files"] += 1
        if bad_rows:
            index._problem(csv_file, "table rows refused", "; ".join(bad_rows[:5])
                           + (f" ... and {len(bad_rows) - 5} more rows" if len(bad_rows) > 5 else ""))

    for file, places in disagree.items():  # which row is right? neither is used, and both are named
        if file not in other_scan:  # one scan at several visits: used once, as Open study manifest does
            index.warnings.append(StudyWarning(file, "rows", f"{'; '.join(places[:4])} list it at different visits: it "
                                               "is used once, at the date in its header, else its first row's; correct "
                                               "the other rows"))
            continue
        del by_path[file]
        index._problem(file, "scans that manifests disagree about", _disagreement(places))
    row_dated: dict[str, str] = {}  # scans with no date of their own, dated by a manifest row -> header UID
    listed_folders = _rows_not_walked(index, root, by_path, described_by, {str(f) for f, _ in records}, row_dated)
    for file, record in records:
        if str(file.parent) in listed_folders and file.suffix.lower() in IMAGE_SUFFIXES:  # a listed scan's image
            continue
        kind = record["kind"]
        if kind == "skip" and record["reason"] == "other files" and str(file) in other_scan:  # listed above
            continue
        if kind == "skip" and record["reason"] == "other files" and str(file) in by_path:
            # a format without patient headers (NumPy, TIFF) that a manifest in the folder describes
            index.scans.append(dataclasses.replace(_manifest_scan(by_path[str(file)], root), path=str(file)))
            row_dated[str(file)] = ""
        elif kind == "skip" and record.get("problem"):
            index._problem(file, record["reason"], record["problem"])
        elif kind == "skip":
            index.skipped[record["reason"]] += 1
        elif kind == "vf":
            for m in record.get("exams", [record]):  # an HFA XML export may hold several exams
                index.vf.append(VfMeasurement(m["patient_id"], m["eye"], parse_date(m["date"]),
                                              m["vfi"], m["md_db"], m["psd_db"], source=str(file)))
                vf_persons[id(index.vf[-1])] = m.get("person") or {}  # by exam, not by file (A17-4)
        else:
            if record.get("date_note"):  # filed, with the date unknown: said, not dropped
                index.problems.append((str(file), str(record["date_note"])))
            row = by_path.get(str(file))
            from_row = _manifest_scan(row, root) if row else None
            try:  # Open study manifest's rule: a row's eye the header contradicts leaves the scan out (A8-5)
                warnings = check_header(from_row, record, described_by[str(file)], "the header's") if row else []
            except ValueError as exc:
                index._problem(file, "scans whose header the manifest contradicts", str(exc))
                continue
            index.warnings += [StudyWarning(str(file), kind, w) for kind, w in warnings]
            if row and not parse_date(record["date"]):  # dated by its row: may sit at two visits
                row_dated[str(file)] = record.get("uid") or ""
            date = parse_date(record["date"]) or (from_row.date if from_row else None)
            visit = date.isoformat() if date else (from_row.visit if from_row else "")
            index.scans.append(ScanEntry(
                path=str(file), patient_id=_row_patient(from_row) or record["patient_id"] or NO_PATIENT,
                eye=record["eye"] or (from_row.eye if from_row else ""), visit=visit, date=date,
                scan_pattern=record["scan_pattern"], n_bscans=record["n_bscans"], synthetic=record["synthetic"]))
            if record.get("cut"):  # indexed from its header, as before; said when the study opens (W19)
                index.warnings.append(StudyWarning(str(file), "cut", cut_short_text(record["cut"])))
    scan_records = [(str(f), r) for f, r in records if r.get("kind") == "scan"]
    persons = {f: r.get("person") or {} for f, r in scan_records}
    _mixed_patients(index, {f: r.get("patient_id") or "" for f, r in scan_records}, persons,
                    {f: r.get("date") or "" for f, r in scan_records})
    _fields_of_another_person(index, persons, vf_persons)
    uids = {str(f): r.get("uid") or "" for f, r in records}
    geometry = {f: r.get("n_bscans") or 0 for f, r in scan_records}
    _headerless_geometry([s for s in index.scans if s.path in row_dated], geometry)
    digests = {str(f): r["content"] for f, r in records if r.get("content")}
    samples = {str(f): r["sample"] for f, r in records if str(r.get("sample", "")).startswith(f"{SAMPLE_KIND}:")}
    known = {"content": set(digests), "sample": set(samples)}  # what the header cache gave
    try:
        at_visits = _one_scan_in_two_places(index, uids, geometry, str(root), digests, samples, cancel, persons)
        index.scans = group_visits(index.scans)
        copies = _use_once(index, uids, str(root), digests, cancel)
        # over the scans used: another patient's copy, left out, put the check on every scan of this one (H140, W1)
        _people_under_one_id(index, persons)
    finally:  # cancelled too: what was read is kept, as the headers are
        found: dict[str, dict[str, str]] = {}
        for name, values in (("content", digests), ("sample", samples)):
            for path, value in values.items():
                if path not in known[name] and value:
                    found.setdefault(path, {})[name] = value
        if found:
            _keep_digests(cache_dir, root, entries, found)
    # a cut-short file left out as a copy of a whole one is said by the copy's warning, not as a scan that cannot open
    left_out = set(index.copies)
    index.warnings = [w for w in index.warnings if not (w.kind == "cut" and w.path in left_out)] + copies
    # one scan at two visits of an eye: by UID and images or content where the header gives a geometry (a copy
    # re-dated in its header, with its UID or new ones: A15-17); by bytes for the files without a header, which a
    # manifest row dates (hashing every same-size scan of an archive read all of it)
    index.warnings += _two_visits(index.scans, at_visits, str(root), index.at_two_visits) + _same_scans(
        [s for s in index.scans if s.path in row_dated and s.path not in geometry], uids, str(root),
        index.at_two_visits)
    index.warnings += _repeats_counted(index, str(root))
    _undated_note(index)
    index.vf = unique_vf(index.vf)
    _one_field_under_two_patients(index)
    _one_field_at_two_dates(index)
    _unmatched_vf_problems(index)
    log.info("indexed folder: %d scans, %d VF, %d from cache, %s", len(index.scans), len(index.vf),
             index.from_cache, index.skipped_text())
    return index

