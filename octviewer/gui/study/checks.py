"""The study's checks of scans in use (``StudyIndex.warnings_for``), named by the kind of check that fired.

One wording for the Results panel, the scan PDF, the OU view and the OU PDF. A byte copy in a plain folder
(no manifest at all) read "Check (study manifest): the study manifest and this scan's header disagree" on
the anonymised PDF, as if a scan were filed under the wrong patient (H56 walk-through, item 4). An anonymised
report gives each kind and its count only: the checks' own text quotes patient IDs, dates and file names.

The index gives each check with its kind (``study.index.StudyWarning``): it was read from the wording of the text
(H56 leftovers, item 5), which a reworded warning would have silently moved to "a study check"; a kind this
module does not know is "a study check".
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from octviewer.study.index import StudyWarning, left_out_of_visit

#: kind -> (where the check comes from, what it found, for an anonymised report)
KINDS = {
    "patient": ("study manifest", "the patient ID"),
    "date": ("study manifest", "the visit date"),
    "rows": ("study manifest", "manifest rows list this scan at two visits; it is used once"),
    "copy": ("study", "a second copy of this scan at this visit, used once"),
    "two visits": ("study", "the same scan at two visits: a trend would count it twice"),
    "cut": ("study", "a scan file cut short: it cannot be opened or analysed"),  # W19
    "uid": ("study", "another scan of this visit shares its DICOM UID, with other images; both are used"),  # A14-16
    "repeat": ("study", "several scans of this eye at this visit: their network results averaged"),  # H91, W12
    "people": ("study", "this patient's scans name different people in their headers"),  # A14-19
    # A23-15, A22-4: names in two scripts that nothing told apart (``core.person.scripts_apart``)
    "scripts": ("study", "this patient's headers (scans or measured VF) write the name in two scripts, which are "
                         "not compared: check they are one person's"),
    "field": ("study", "a measured VF names the patient otherwise in its header than the scans do"),  # A16-16
    # A18-26, A18-25: read "a study check" on an anonymised report
    "old id": ("study", "one scan filed under an old and a new patient ID of one name and birth date, used once; "
                        "namesakes look the same: check whose scan it is"),
    "other": ("study", "a study check"),
}


def check_kind(check) -> str:
    """The kind (a key of ``KINDS``) of one of the index's warnings (``StudyWarning``): the one the index gave it."""
    return check.kind if check.kind in KINDS else "other"


def _eye_of(check: StudyWarning, eyes: dict[str, list[str]] | None) -> str:
    """The eye (a key of ``eyes``, eye -> its scans' paths at the visit) whose scans hold ``check``'s file, or ""."""
    real = os.path.realpath(check.path)
    return next((eye for eye, paths in (eyes or {}).items() if real in {os.path.realpath(p) for p in paths}), "")


def repeat_line(eye: str, n: int) -> str:
    """An anonymised report's line for an eye with ``n`` scans at the visit: which eye, how many, what is averaged
    and what is one scan's, with no file name. "several scans of this eye at this visit" on the OU report, which
    shows both eyes, pointed at neither, and left out that the RNFL and disc figures are one scan's (walk-through
    H95, V8)."""
    return (f"Check (study): {eye}: {n} scans at this visit: their P(glaucoma) and VF estimates are averaged; the "
            "RNFL and disc figures shown are one scan's; file names withheld: anonymised report")


#: an anonymised report's kind for a "two visits" check of a scan its visit's figures leave out (the visit has the
#: eye's own scan beside the re-dated copy: ``StudyIndex.counted_scans``)
COPY_ELSEWHERE = "two visits, counted elsewhere"


def _anonymised_kind(check: StudyWarning, eyes: dict[str, list[str]] | None) -> str:
    """``check_kind``, but ``COPY_ELSEWHERE`` for a "two visits" check of a scan none of ``eyes``' scans (the
    visit's figures) is: the anonymised OU report said "the same scan at two visits" and no more, so its reader could
    not tell whether the eye's figures were the visit's own scan or the copy (walk-through H107, Y7)."""
    kind = check_kind(check)
    if kind == "two visits" and eyes and not _eye_of(check, eyes):
        return COPY_ELSEWHERE
    return kind


def check_lines(checks: list[StudyWarning], dated: bool = True, eyes: dict[str, list[str]] | None = None) -> list[str]:
    """"Check (study manifest): ..." or "Check (study): ..." for each check; ``dated`` False (an anonymised
    report): one line per kind with its count, and no ID, date or name (a row's patient ID and visit date
    against the header's: one line naming which of the two disagree). ``eyes`` (eye -> the visit's scans of that
    eye, an OU report's): a repeat scan's line names its eye and the number of scans (``repeat_line``)."""
    if dated:
        return [f"Check ({KINDS[check_kind(c)][0]}): {c.text}" for c in checks]
    repeats = {}
    for c in checks:
        if check_kind(c) == "repeat" and _eye_of(c, eyes):
            repeats[_eye_of(c, eyes)] = len(eyes[_eye_of(c, eyes)])
    checks = [c for c in checks if not (check_kind(c) == "repeat" and _eye_of(c, eyes))]
    counts: dict[str, int] = {}
    for c in checks:
        counts[_anonymised_kind(c, eyes)] = counts.get(_anonymised_kind(c, eyes), 0) + 1
    header = [kind for kind in ("patient", "date") if kind in counts]
    lines = []
    if header:
        n = sum(counts.pop(kind) for kind in header)
        what = " and ".join(KINDS[kind][1] for kind in header)
        lines.append(f"Check (study manifest): the study manifest and this scan's header disagree ({n} check"
                     f"{'s' if n != 1 else ''}: {what})")
    lines += [f"Check ({KINDS[kind][0]}): {KINDS[kind][1]}" + (f" ({n} checks)" if n > 1 else "")
              for kind, n in counts.items() if kind != COPY_ELSEWHERE]
    if COPY_ELSEWHERE in counts:
        lines.append(f"Check (study): {KINDS['two visits'][1]}; this visit's figures are from its own scan, the "
                     "copy counts at the other visit" + (f" ({counts[COPY_ELSEWHERE]} checks)"
                                                         if counts[COPY_ELSEWHERE] > 1 else ""))
    return [f"{line}; details withheld: anonymised report" for line in lines] + [
        repeat_line(eye, n) for eye, n in sorted(repeats.items())]


def study_check_entries(index) -> list[str]:
    """The Study panel's list of checks of scans used (``StudyIndex.warnings``), one entry per check: "<file>:
    <what to check>"; a check the index says of several files word for word, once, with its files ("<file>,
    <file>: ..."), and a repeat acquisition's (said of each of its scans) as its text, which names the files. The
    repeat was listed twice, once per file, and counted twice, and "the RNFL and disc figures shown are one
    scan's" did not say whose (walk-through H95, V5): its entry names the file whose figures the OU view shows
    (``ou_view.analyse_visit``: the visit's first scan of the eye that could be measured)."""
    base = index.root if os.path.isdir(index.root) else os.path.dirname(index.root)

    def shown(path: str) -> str:
        inside = os.path.abspath(path).startswith(os.path.abspath(base) + os.sep)
        return os.path.relpath(path, base) if inside else path

    groups: dict[tuple[str, str], list[str]] = {}
    for w in index.warnings:
        groups.setdefault((w.kind, w.text), []).append(w.path)
    entries, lookup = [], None
    scans = {s.path: s for s in index.scans}  # a warning names its scan's path (one pass, not one per check)
    left = left_out_of_visit(index.scans, index.at_two_visits)  # a later visit's copy is not what it shows
    for (kind, text), paths in groups.items():
        if kind in ("people", "scripts") and paths[0] in scans and (
                split := people_visits(index, scans[paths[0]].patient_id, kind)):
            # which visit is whose (walk-through H107, Y6; H129, V1), in place of every scan's file, which came
            # first and pushed the words below the list's fold
            entries.append(f"{text}; visits: {split}")
            continue
        if kind == "field":  # its text names the field's file; the eye's scans listed with it made one entry per
            entries.append(text)  # field as long as the eye's visits (walk-through H107, Y3)
            continue
        scan = scans.get(paths[0]) if kind == "repeat" and len(paths) > 1 else None
        if scan is None:  # one file, or several named before the text they share
            entries.append(f"{', '.join(shown(p) for p in paths)}: {text}")
            continue
        lookup = lookup or index.lookup()  # built once for the list (A13-12: per-call passes froze the window)
        first = next(s for s in lookup.scans_for(scan.patient_id, scan.visit, scan.eye) if s.path not in left)
        entries.append(f"{text}; the OU view shows the RNFL and disc figures of {shown(first.path)} (the next "
                       "one's if it cannot be measured)")
    return entries


def check_html(line: str) -> str:
    """A ``check_lines`` line for a report: its "Check (...):" in bold."""
    title, _, text = line.partition(": ")
    return f"<p><b>{html.escape(title)}:</b> {html.escape(text)}</p>"


#: the Study panel's entry of a measured field left out as another person's (``study.index``'s problem text)
_OTHER_PERSON_FIELD = re.compile(r"measured VF of (?P<patient>.+) (?P<eye>OD|OS|eye unknown): its header names "
                                 r"another person")


def fields_left_out(index, patient_id: str, eye: str) -> int:
    """How many measured fields of ``patient_id``'s ``eye`` (or of no stated eye) the study left out because their
    header names another person (``index.problems``; the index records them by its problem text only)."""
    count = 0
    for _path, why in getattr(index, "problems", ()) if index is not None else ():
        found = _OTHER_PERSON_FIELD.match(why)
        if found and found["patient"] == patient_id and found["eye"] in (eye, "eye unknown"):
            count += 1
    return count


def field_of(check: StudyWarning, fields) -> object | None:
    """The measured field (of ``fields``, ``VfMeasurement``s) a "field" check is of: the index says it of each scan of
    the field's eye, naming the field's file in its text ("... OD (<file name>) names the patient otherwise ...")."""
    if check_kind(check) != "field":
        return None
    return next((m for m in fields if m.source and f"({os.path.basename(m.source)})" in check.text), None)


def checks_of_fields_shown(checks: list[StudyWarning], index, paths) -> list[StudyWarning]:
    """``checks`` less the "field" checks of a measured field none of the scans ``paths`` is shown beside
    (``StudyIndex.measured_vf_for_scan``): a 2018 scan's Results panel gave the check of the 2019 field too, which
    that scan is never compared with, and an OU view both (walk-through H107, Y3)."""
    if index is None or not any(check_kind(c) == "field" for c in checks):
        return list(checks)
    shown = {m.source for m in (index.measured_vf_for_scan(p) for p in paths) if m is not None and m.source}
    return [c for c in checks if check_kind(c) != "field"
            or (field := field_of(c, index.vf)) is None or field.source in shown]


def people_groups(index, patient_id: str, kind: str = "people") -> list[list]:
    """The patient's scans (``ScanEntry``) grouped by the person their headers name (``core.person.
    one_set_of_traits``, the index's rule for the "people" check), or with ``kind`` "scripts" by the scripts they
    write the name in (``core.person.scripts_apart``), in the order first met; scans whose header names no one (a
    .vol) are in none. The index keeps no scan's person, so the headers are read again here (only where the check
    fired): the check said "name different people" and not which visits are whose, and a clinician had to open each
    header to find the break (walk-through H107, Y6); the "scripts" check did not say which visit wrote which script
    (walk-through H129, V1)."""
    return [scans for _, scans in _header_groups(index, patient_id, kind)]


def script_groups(index, patient_id: str) -> list[tuple[list, str]]:
    """``people_groups`` for a "scripts" check, each group with the scripts it writes the name in ("Latin")."""
    from octviewer.core.person import name_scripts

    return [(scans, name_scripts({k: v for t in traits for k, v in t.items()}))
            for traits, scans in _header_groups(index, patient_id, "scripts")]


def _header_groups(index, patient_id: str, kind: str) -> list[tuple[list[dict], list]]:
    """``people_groups`` with each group's header traits."""
    from octviewer.core.person import one_set_of_traits, scripts_apart
    from octviewer.study.headers import read_record

    def together(group: list[dict], traits: dict) -> bool:
        return not scripts_apart([*group, traits]) if kind == "scripts" else one_set_of_traits([*group, traits])

    groups: list[tuple[list[dict], list]] = []
    for scan in index.scans_for(patient_id):
        traits = read_record(Path(scan.path)).get("person") or {}
        if not traits:
            continue
        group = next((g for g in groups if together(g[0], traits)), None)
        if group is None:
            groups.append(([traits], [scan]))
        else:
            group[0].append(traits)
            group[1].append(scan)
    return groups


def people_visits_text(groups: list[list[str]], scripts: list[str] | None = None) -> str:
    """Which visits (labels or places, one list per person, ``people_groups``' order) name which person, with no
    name: "2018-09-18, 2019-09-24 name one person; 2020-10-05, 2021-09-25 another"; with ``scripts`` (each group's,
    a "scripts" check) which write the name in which script: "2018-09-18 in Latin; 2019-09-24, 2020-10-05 in
    Hangul"; "" for fewer than two."""
    if scripts is not None:
        parts = [f"{', '.join(g)} in {words}" for g, words in zip(groups, scripts) if g]
        return "; ".join(parts) if len(parts) > 1 else ""
    groups = [g for g in groups if g]
    if len(groups) < 2:
        return ""
    first = groups[0]
    parts = [f"{', '.join(first)} {'name' if len(first) > 1 else 'names'} one person"]
    parts += [f"{', '.join(g)} another" for g in groups[1:]]
    return "; ".join(parts)


def people_visits(index, patient_id: str, kind: str = "people") -> str:
    """``people_visits_text`` of the patient's visits by their labels (an identified view's words). Where a visit
    holds scans of two people (one eye's scans name one, the other eye's another), each scan is named by its visit
    and eye, and by its file where that still repeats: the same four visits listed for "one person" and for
    "another" read as a contradiction and did not say which eye to distrust (walk-through H121, U3)."""
    found = (script_groups(index, patient_id) if kind == "scripts"
             else [(g, "") for g in people_groups(index, patient_id)])
    groups = [scans for scans, _ in found]

    def labels(label) -> list[list[str]]:
        return [list(dict.fromkeys(label(s) for s in g)) for g in groups]

    def repeats(named: list[list[str]]) -> bool:
        flat = [x for g in named for x in g]
        return len(flat) != len(set(flat))

    named = labels(lambda s: s.visit or "no date")
    if repeats(named):
        named = labels(lambda s: f"{s.visit or 'no date'} {s.eye or 'eye unknown'}")
    if repeats(named):
        named = labels(lambda s: f"{s.visit or 'no date'} {s.eye or 'eye unknown'} ({Path(s.path).name})")
    return people_visits_text(named, [words for _, words in found] if kind == "scripts" else None)


def people_lines(index, patient_id: str, checks) -> list[str]:
    """An identified view's line, under a "people" check of ``checks``, saying which visits name which person
    (``people_visits``), and under a "scripts" check which write the name in which script; none otherwise. Visit
    dates: an anonymised report does not print it."""
    if index is None:
        return []
    lines = []
    for kind, what in (("people", "which visits name which person"),
                       ("scripts", "which visits write the name in which script")):
        if any(check_kind(c) == kind for c in checks) and (split := people_visits(index, patient_id, kind)):
            lines.append(f"Check (study): {what}: {split}")
    return lines


def field_left_out_line(eye: str, n: int) -> str:
    """The line a view of the eye gives for ``n`` (> 0) measured fields left out as another person's, with no name,
    date or file: the Study panel alone said it, and the Results panel, the OU view and the Trend of the eye read as
    if no perimetry was done (walk-through H107, Y8)."""
    fields = "1 measured visual field" if n == 1 else f"{n} measured visual fields"
    header = "its header names" if n == 1 else "their headers name"
    return (f"Check (study): {eye}: {fields} left out: {header} another person than this patient's scans (the Study "
            "panel lists the files)")


def left_out_lines(index, patient_id: str, eyes) -> list[str]:
    """``field_left_out_line`` for each of ``eyes`` with such fields."""
    return [field_left_out_line(eye, n) for eye in eyes if (n := fields_left_out(index, patient_id, eye))]


#: why an eye's measured VF figures are empty where ``field_left_out_line`` was said of it
LEFT_OUT_REASON = ("no visual field used for this eye and visit: measured fields of this eye were left out as "
                   "another person's (see Check)")


def left_out_reason(lines, eye: str) -> str:
    """``LEFT_OUT_REASON`` where ``lines`` (``left_out_lines``') hold ``eye``'s line, else "": the OU report's
    footnote said "no visual field recorded for this eye and visit" of an eye whose fields were left out, while its
    page 1 said they were (walk-through H115, Z2)."""
    return LEFT_OUT_REASON if any(line.startswith(f"Check (study): {eye}: ") for line in lines or ()) else ""


__all__ = ["KINDS", "check_html", "check_kind", "check_lines", "checks_of_fields_shown", "field_left_out_line",
           "field_of", "fields_left_out",
           "left_out_lines", "left_out_reason", "repeat_line", "study_check_entries"]


def result_gate_note(prediction, structure) -> str:
    """The quality check's note (``pipeline.outputs.quality_check_cells``, the CSVs' and the PDFs' one rule) for a
    result outside the main window's state: an OU view's eye, a Trend's visit. With the quality check off, they gave
    "NORMAL 0.00" for a scan the check refuses with no word of it, where the Results panel and the scan PDF say it
    (attack run 13, A13-17). Its settings are not known here: judged by what stands."""
    from octviewer.pipeline.outputs import quality_check_cells

    if structure is None or getattr(structure, "quality", None) is None:
        return ""
    return quality_check_cells(prediction, structure.quality, None)[1]
