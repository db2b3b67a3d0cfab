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

from octviewer.study.index import StudyWarning

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
    "other": ("study", "a study check"),
}


def check_kind(check) -> str:
    """The kind (a key of ``KINDS``) of one of the index's warnings (``StudyWarning``): the one the index gave it."""
    return check.kind if check.kind in KINDS else "other"


def check_lines(checks: list[StudyWarning], dated: bool = True) -> list[str]:
    """"Check (study manifest): ..." or "Check (study): ..." for each check; ``dated`` False (an anonymised
    report): one line per kind with its count, and no ID, date or name (a row's patient ID and visit date
    against the header's: one line naming which of the two disagree)."""
    if dated:
        return [f"Check ({KINDS[check_kind(c)][0]}): {c.text}" for c in checks]
    counts: dict[str, int] = {}
    for c in checks:
        counts[check_kind(c)] = counts.get(check_kind(c), 0) + 1
    header = [kind for kind in ("patient", "date") if kind in counts]
    lines = []
    if header:
        n = sum(counts.pop(kind) for kind in header)
        what = " and ".join(KINDS[kind][1] for kind in header)
        lines.append(f"Check (study manifest): the study manifest and this scan's header disagree ({n} check"
                     f"{'s' if n != 1 else ''}: {what})")
    lines += [f"Check ({KINDS[kind][0]}): {KINDS[kind][1]}" + (f" ({n} checks)" if n > 1 else "")
              for kind, n in counts.items()]
    return [f"{line}; details withheld: anonymised report" for line in lines]


def check_html(line: str) -> str:
    """A ``check_lines`` line for a report: its "Check (...):" in bold."""
    title, _, text = line.partition(": ")
    return f"<p><b>{html.escape(title)}:</b> {html.escape(text)}</p>"


__all__ = ["KINDS", "check_html", "check_kind", "check_lines"]


def result_gate_note(prediction, structure) -> str:
    """``results_panel.quality_check_off_note`` (the one note) for a result outside the main window's state: an
    OU view's eye, a Trend's visit. With the quality check off, they gave "NORMAL 0.00" for a scan the check
    refuses with no word of it, where the Results panel and the scan PDF say it (attack run 13, A13-17)."""
    from types import SimpleNamespace

    from ..viewer.results_panel import quality_check_off_note

    if structure is None or getattr(structure, "quality", None) is None:
        return ""
    return quality_check_off_note(SimpleNamespace(prediction=prediction, structure=structure))
