"""Trend view: one eye over all its visits — global RNFL, predicted and measured MD and VFI.

Each series is drawn as points with its least-squares line and the line's 95 % confidence band;
the slope per year and its interval are written under the plots, and a slope flagged by
``octviewer.study.trend`` (interval excludes zero and the rate is worse than the documented
threshold) is shown in red as significant change. Analysing the visits and fitting the trends
run in a worker; the view draws the result.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from octviewer.core import VF_INDICES, Cancelled, weak_vf_indices
from octviewer.model.meta import is_vf_baseline_caveat
from octviewer.study import StudyIndex, Trend, trend
from octviewer.study.index import VISIT_GAP_DAYS
from octviewer.study.ou import refused_reasons
from octviewer.study.trend import DAYS_PER_YEAR, WORSENING_PER_YEAR
from octviewer.study.vf import parse_date

from ..background import TaskSlot
from .checks import KINDS, field_of, left_out_lines, people_groups, people_lines, result_gate_note

#: series name -> (plot, legend label, colour, unit, threshold key)
SERIES = {
    "rnfl": ("rnfl", "global RNFL (structure)", "#8ab4f8", "µm", "rnfl"),
    "md_predicted": ("md", "MD predicted", "#fdd663", "dB", "md"),
    "md_measured": ("md", "MD measured", "#81c995", "dB", "md"),
    "vfi_predicted": ("vfi", "VFI predicted", "#fdd663", "%", "vfi"),
    "vfi_measured": ("vfi", "VFI measured", "#81c995", "%", "vfi"),
}
PLOTS = {"rnfl": "Global RNFL (µm)", "md": "MD (dB)", "vfi": "VFI (%)"}
#: the plots' key (symbol, colour, meaning): above the plots on screen, under them in the OU report
#: marks a series with significant change in the summary: not ▼, the key's symbol for RNFL and predicted
#: points (one mark meant two things, fifth walk-through)
FLAG = "⚠"
KEY = (("▼", SERIES["rnfl"][2], "global RNFL (structure)"),
       ("▼", SERIES["md_predicted"][2], "MD, VFI predicted by the network"),
       ("●", SERIES["md_measured"][2], "MD, VFI measured (perimetry)"))
#: plot -> (the values the index can take, the least span shown). The y range follows the values
#: and their fitted lines, not the confidence band: with three visits the band spans +/- 50 % VFI
#: and flattened every change into a line; the band is clipped to the y range shown (clipped only to
#: what the index can take, it still filled the plot), and not drawn where it is wider than that. The
#: least span (about a stage of loss) keeps test-retest noise from looking like progression.
#: MD and VFI take their physical ranges from VF_INDICES, the one place that defines them.
Y_LIMITS = {"rnfl": ((0.0, 200.0), 40.0), "md": (VF_INDICES["md"]["range"], 8.0),
            "vfi": (VF_INDICES["vfi"]["range"], 20.0)}
#: the share of the shown span added above and below it: at 3 % a VFI of 100 % sat on the plot's top edge,
#: its symbol half cut (eighth walk-through); the mouse pans and zooms no further than this beyond the limits
Y_MARGIN = 0.08

#: a fitted line's 95 % band is drawn only where its narrowest part spans at most this share of the plot's
#: height (one rule for every index, whatever the number of visits): a wider one only paints the plot over
WIDE_BAND_SHARE = 0.5


#: the ring round a point whose visit date is disputed (``checked_visits``) or holds a scan counted twice
#: (``counted_twice``), and what the summary says of a disputed date
DISPUTED_COLOUR = "#ff9800"
DISPUTED_NOTE = ("Ringed: a visit whose date is disputed: the manifest row and the scan's own header date it more "
                 f"than {VISIT_GAP_DAYS} days apart (the study's checks name both dates). It is plotted at the date "
                 "the study files it and left out of the fitted line and its slope: correct the manifest to count it.")

#: the study's checks (``checks.KINDS``, the Study panel's and the OU view's words) of the plotted scans that bear on
#: a trend, besides a disputed date (``DISPUTED_NOTE``), and what each means for the trend: the Trend said none of
#: them, so two people's scans under one ID made one slope flagged "significant change" in red, and one scan at two
#: visits was counted twice (attack run 16, A16-3)
TREND_CHECKS = {
    "people": "the slopes may mix two people's scans: no change is flagged as significant",
    "scripts": "changes are flagged as for one person's scans",
    "two visits": "counted once, at the visit where it is the eye's only scan (else its first): another visit "
                  "with another scan of the eye is plotted and fitted without it; another visit with no other scan "
                  "is ringed and left out of the fitted line",
    "repeat": "the trend plots the mean of the visit's scans, RNFL included",
    "uid": "the trend plots the mean of the visit's scans",
    "copy": "the trend counts it once",
    "field": "the measured VF series may hold another person's field: its slopes are not flagged as significant",
}
#: what ``Trend.describe`` appends to a significant slope
SIGNIFICANT = " - significant change"
#: a significant slope of a patient whose scans name different people ("people"), in its line: not flagged
MIXED = f"the slope may mix two people's scans: {KINDS['people'][1]}; not flagged"
#: a measured-VF slope of a patient whose scans name different people: a field names only the ID (walk-through H137, W5)
MIXED_MEASURED = "the patient's scans name two people and a measured field only the ID: it may be either's; not flagged"
APPROXIMATE = "the global RNFL is approximate at some visits (the boundary unsure); not flagged"
#: a significant measured-VF slope of an eye whose measured field names the patient otherwise ("field"): not flagged
MIXED_FIELD = f"the series may hold another person's field: {KINDS['field'][1]}; not flagged"


def check_note(kind: str, visits: int, at: str = "", means: str = "") -> str:
    """The Trend's note of a study check (a key of ``TREND_CHECKS``) of the scans at ``visits`` plotted visits: the
    check's own words (``checks.KINDS``), then what it means for the trend. No date or name: the anonymised OU
    report prints it too. ``at`` (``visit_positions``: "visit 2 of 4") names the visits by their place in the
    series: "at this visit" in a window of all the eye's visits pointed at none (walk-through H104, X4). ``means``:
    what it means for the trend where not ``TREND_CHECKS[kind]``."""
    where, what = KINDS[kind]
    means = means or TREND_CHECKS[kind]
    if at:
        if "this visit" in what:
            return f"Check ({where}): {what.replace('this scan at', 'a scan at').replace('this visit', at)}; " \
                   f"{means}."
        return f"Check ({where}): {what} ({at}); {means}."
    count = f" ({visits} visits)" if visits > 1 and kind not in ("people", "scripts", "field") else ""
    return f"Check ({where}): {what}{count}; {means}."


def people_places(groups, visits, scripts: bool = False) -> str:
    """Which of the plotted ``visits`` name which person, by place (``groups``: each person's visit dates, from
    ``checks.people_groups``): "visits 1 and 2 of 4 name one person; visits 3 and 4 of 4 another"; "" where fewer
    than two persons have a plotted visit (walk-through H107, Y6). With ``scripts`` (each group's, a "scripts"
    check, ``groups`` each script's): "visit 1 of 3 in one script; visits 2 and 3 of 3 in another" (walk-through H129,
    V1)."""
    if scripts:  # not which: the anonymised OU report prints the Trend's notes (walk-through H129, V14)
        parts = [p for dates in groups if (p := visit_positions(dates, visits))]
        return "; ".join([f"{parts[0]} in one script", *(f"{p} in another" for p in parts[1:])]) if len(parts) > 1 \
            else ""
    places = [p for p in (visit_positions(dates, visits) for dates in groups) if p]
    if len(places) < 2:
        return ""
    verb = "name" if places[0].startswith("visits") else "names"
    return "; ".join([f"{places[0]} {verb} one person", *(f"{p} another" for p in places[1:])])


def visit_positions(dates, series, noun: str = "visit") -> str:
    """``dates`` by their place among the dates ``series`` (the eye's plotted visits, or its measured fields with
    ``noun`` "measured field"): "visit 2 of 4", "visits 1 and 3 of 4"; "" where none of them is in it. A place, not
    a date: the anonymised OU report prints the Trend's notes."""
    order = sorted(set(series))
    places = sorted(order.index(d) + 1 for d in set(dates) if d in order)
    if not places:
        return ""
    if len(places) == 1:
        return f"{noun} {places[0]} of {len(order)}"
    return f"{noun}s {', '.join(map(str, places[:-1]))} and {places[-1]} of {len(order)}"


#: the rates that count as progression (octviewer.study.trend), in words: the view cites no file
SIGNIFICANT_RATES = (f"{-WORSENING_PER_YEAR['md']:g} dB/yr of MD, {-WORSENING_PER_YEAR['vfi']:g} %/yr of VFI "
                     f"or {-WORSENING_PER_YEAR['rnfl']:g} µm/yr of global RNFL")


def y_range(key: str, values) -> tuple[float, float]:
    """The y range of a plot: its values, padded, at least the index's least span, inside its limits."""
    (low, high), span = Y_LIMITS[key]
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return low, high
    lo, hi = float(values.min()), float(values.max())
    pad = max(0.2 * (hi - lo), (span - (hi - lo)) / 2, 0.0)
    lo, hi = max(low, lo - pad), min(high, hi + pad)
    if hi - lo < span:  # at a limit (VFI 100 %): extend the other way
        lo, hi = (max(low, hi - span), hi) if hi >= high else (lo, min(high, lo + span))
    return lo, hi


@dataclass
class EyeHistory:
    """The series of one eye and their trends; built in the worker."""

    patient_id: str
    eye: str
    series: dict[str, list[tuple[dt.date, float]]] = field(default_factory=dict)
    trends: dict[str, Trend] = field(default_factory=dict)
    synthetic: bool = False
    errors: list[str] = field(default_factory=list)
    #: the visit dates of the scans ``errors`` name, which are in no OCT slope (``report_errors``)
    failed: list[dt.date] = field(default_factory=list)
    #: VF indices whose estimates the model card did not show to beat the class-mean baseline
    weak: set[str] = field(default_factory=set)
    #: the predictions' own caveat on those estimates, word for word as the Results panel and the PDFs show it:
    #: the Trend printed predicted slopes without it (seventh walk-through)
    vf_caveats: list[str] = field(default_factory=list)
    #: visit dates (as plotted) of scans whose manifest row and own header disagree on the date by more than
    #: ``VISIT_GAP_DAYS`` (the index's "date" check): plotted where the study files them, and marked
    disputed: set[dt.date] = field(default_factory=set)
    #: "<date>: <the quality check's note>" for each scan the check refuses, analysed with it off: its values are
    #: in the plots with no mark otherwise (attack run 13, A13-17)
    gate_notes: list[str] = field(default_factory=list)
    #: kind of study check -> the visit dates (as plotted) whose scans it is said of (``checked_visits``)
    checks: dict[str, set[dt.date]] = field(default_factory=dict)
    #: the visits of ``disputed`` that hold a scan also filed at an earlier visit ("two visits": ``counted_twice``)
    twice: set[dt.date] = field(default_factory=set)
    #: the eye's visit dates as plotted, in order: a check's note names its visits by their place among them
    visits: list[dt.date] = field(default_factory=list)
    #: the line for the eye's measured fields left out as another person's (``checks.left_out_lines``): the measured
    #: series was just empty, as if no perimetry was done (walk-through H107, Y8)
    fields_left_out: list[str] = field(default_factory=list)
    #: the test dates of the eye's measured fields a "field" check names (``checks.field_of``): the note said "a
    #: measured VF" of two fields, and neither was marked (walk-through H107, Y3)
    checked_fields: set[dt.date] = field(default_factory=set)
    #: for a "people" check: each person's visit dates of this eye (``checks.people_groups``)
    people: list[set[dt.date]] = field(default_factory=list)
    #: for a "scripts" check: each script's visit dates of this eye (``checks.people_groups``)
    scripts: list[set[dt.date]] = field(default_factory=list)
    #: which visits name which person or write the name in which script, dated (``checks.people_lines``): on screen
    #: at the top, as the Results panel and the OU view say it; the notes, which the anonymised OU report prints,
    #: name the visits by place only, and the reader had to map "visit 1 of 3" to a date (walk-through H131, W1)
    identified: list[str] = field(default_factory=list)
    #: visit date (as plotted) -> the quality check's first reason, for each scan the check refused (no network
    #: result): no value of it is plotted, and a slope over "3 visits" of a 4-visit series read as if no scan had been
    #: taken, the reason said only in that visit's OU view (walk-through H121, U11)
    refused: dict[dt.date, str] = field(default_factory=dict)
    #: a plotted global RNFL is approximate (``StructureReport.global_uncertain``): its slope is not flagged
    approximate_rnfl: bool = False

    def fitted(self, name: str) -> list[tuple[dt.date, float]]:
        """The points of series ``name`` its trend is fitted to: all but a scan's value at a disputed visit date.
        A date the manifest row and the scan's header dispute was fitted as if true (a 2017 row for a 2019 scan
        turned -4.5 µm/yr, significant, into -2.6, not: walk-through H65, W3); it is still drawn, ringed. A
        measured field keeps its own test date, which no scan's dispute moves."""
        points = self.series.get(name, [])
        if name.endswith("measured"):
            return list(points)
        return [(d, v) for d, v in points if d not in self.disputed]

    def left_out(self) -> int:
        """How many visits with a disputed date have a value left out of a slope (``fitted``)."""
        return len({d for name, points in self.series.items() for d, _ in points
                    if not name.endswith("measured") and d in self.disputed})

    def left_out_text(self) -> str:
        """The headline for ``left_out``, with no date in it: the anonymised OU report prints it too."""
        twice = len({d for name, points in self.series.items() for d, _ in points
                     if not name.endswith("measured") and d in self.twice})
        n = self.left_out() - twice
        parts = []
        if n:
            parts.append(f"{n} visit{'s' if n != 1 else ''} with a disputed date {'is' if n == 1 else 'are'} not in "
                         "the slope (ringed: the manifest row and the scan's own header date it differently).")
        if twice:
            parts.append(f"{twice} visit{'s' if twice != 1 else ''} holding a scan already plotted at an earlier "
                         f"visit {'is' if twice == 1 else 'are'} not in the slope (ringed: {KINDS['two visits'][1]}).")
        return " ".join(parts)

    def report_errors(self, dated: bool) -> list[str]:
        """What the OU report's trend says of the scans that could not be read or analysed: they are in no OCT
        slope, said in red on screen and not on paper, where "3 visits" silently dropped the fourth (attack run
        13, A13-9). Dated: each with its date and the reader's error; anonymised: how many visits, no date and no
        error (it names the file, and clinic file names carry names and birth dates)."""
        if not self.errors:
            return []
        if dated:
            return [f"{self.eye} not in the OCT slopes: {e.split(': ', 1)[0]}: the scan could not be read or analysed "
                    f"({e.split(': ', 1)[-1]})" for e in self.errors]
        n = len(set(self.failed)) or len(self.errors)
        whose = "1 visit's scan" if n == 1 else f"{n} visits' scans"
        return [f"{self.eye}: {whose} could not be read or analysed: not in the OCT slopes (details withheld: "
                "anonymised report)"]

    def flagged(self, name: str) -> bool:
        """A significant trend, except in an estimate no better than the class mean: a red "significant
        change" in predicted MD read as visual-field progression (sixth walk-through)."""
        t = self.trends.get(name)
        return bool(t is not None and t.significant and not self._weak_estimate(name) and not self.mixed()
                    and not self.other_field(name) and not self.approximate(name))

    def approximate(self, name: str) -> bool:
        """Series ``name`` is the global RNFL and a plotted value of it is approximate ("~", the boundary unsure on
        more than a third of the circle): its slope is not flagged (walk-through H121, U13)."""
        return name == "rnfl" and self.approximate_rnfl

    def mixed(self) -> bool:
        """The patient's scans name different people (the index's "people" check): a slope over them may be two
        people's, and was flagged "significant change" in red as one person's progression (attack run 16, A16-3)."""
        return "people" in self.checks

    def other_people(self) -> set[dt.date]:
        """With a 'people' check (``mixed``), the plotted visits that name only another person than the first plotted
        visit does (``people``): drawn hollow. The chart drew both people's points alike with one fitted line through
        them, a slope the summary said was not judged (walk-through H129, V3)."""
        groups = [dates for dates in self.people if dates & set(self.visits)]
        if not self.mixed() or len(groups) < 2:
            return set()
        first = next((g for g in groups if min(self.visits) in g), groups[0])
        return set().union(*(g for g in groups if g is not first)) - first

    def both_people(self) -> set[dt.date]:
        """Plotted visits whose scans name two people (twins scanned on one day): their point is the visit's mean of
        both people's values, which no mark can tell apart (attack run 28, A28-8)."""
        groups = [dates & set(self.visits) for dates in self.people]
        return {d for g in groups for d in g if sum(d in h for h in groups) > 1}

    def chart_note(self) -> str:
        """What a 'people' check does to the charts: no line is fitted through the scans' values (whichever eye: the
        note said "no line is fitted" where one was, A28-8, H135's W8), and which points are whose."""
        if not self.mixed():
            return ""
        # nor through the measured fields, which name only the ID (walk-through H137, W5)
        parts = ["on the charts no line is fitted through the scans' values or the measured fields"]
        if self.other_people():
            parts.append("points of visits naming another person than the first visit's are hollow")
        if both := visit_positions(self.both_people(), self.visits):
            parts.append(f"the point of {both} is the mean of both people's scans")
        return "; ".join(parts)

    def other_field(self, name: str) -> bool:
        """Series ``name`` is the measured VF and a measured field of the eye names the patient otherwise than the
        scans do (the index's "field" check): it may be another person's. It bears on the measured series only:
        as a "people" check it withheld the flag from an RNFL slope of one person's scans (attack run 16, A16-16)."""
        return name.endswith("measured") and "field" in self.checks

    def _weak_estimate(self, name: str) -> bool:
        return name.endswith("_predicted") and SERIES[name][4] in self.weak

    def significant(self) -> list[str]:
        return [name for name in self.trends if self.flagged(name)]

    def lines(self) -> list[tuple[str, bool]]:
        """One sentence per fitted series, with whether it flags significant change. A slope the test finds
        significant but that is not flagged (a weak estimate, two people's scans, another person's field) reads
        "- not judged (why)": "- significant change (...; not flagged)" put the answer a clinician reads first
        against the words after it (walk-through H104, X3)."""
        out = []
        for name, t in self.trends.items():
            text = f"{SERIES[name][1]}: {t.describe(SERIES[name][3])}"
            mixed = MIXED_MEASURED if name.endswith("measured") else MIXED
            why = (mixed if self.mixed() else "an estimate not shown to beat the class-mean baseline: not flagged"
                   if self._weak_estimate(name) else MIXED_FIELD if self.other_field(name)
                   else APPROXIMATE if self.approximate(name) else "")
            # every slope over two people's scans says so, not only a significant one (walk-through H135, W1)
            if why and (t.significant or self.mixed()):
                text = f"{text.removesuffix(SIGNIFICANT)} - not judged ({why})"
            out.append((text, self.flagged(name)))
        return out

    def check_note(self, kind: str) -> str:
        """``check_note`` of a check of ``TREND_CHECKS`` said of a plotted scan, its visits named by their place (a
        "field" check: the measured fields it names, by their place among the eye's measured fields)."""
        if kind == "people":
            return check_note(kind, len(self.checks[kind]), people_places(self.people, self.visits),
                              "; ".join(filter(None, [TREND_CHECKS[kind], self.chart_note()])))
        if kind == "scripts":
            # beside a 'people' check no change is flagged: "flagged as for one person's scans" contradicted it
            # (attack run 25, A25-4)
            return check_note(kind, len(self.checks[kind]), people_places(self.scripts, self.visits, scripts=True),
                              TREND_CHECKS["people"] if self.mixed() else "")
        if kind == "field":
            measured = {d for name in ("md_measured", "vfi_measured") for d, _ in self.series.get(name, [])}
            return check_note(kind, len(self.checks[kind]),
                              visit_positions(self.checked_fields, measured, "measured field"))
        return check_note(kind, len(self.checks[kind]), visit_positions(self.checks[kind], self.visits))

    def refused_lines(self, dated: bool) -> list[str]:
        """One line per scan of ``refused``: dated ("2020-04-06: ...") on screen; by its place among the eye's visits
        ("visit 3 of 4") in the notes the OU report prints, anonymised too."""
        out = []
        for date, why in sorted(self.refused.items()):
            where = str(date) if dated else visit_positions({date}, self.visits) or "a visit"
            out.append(f"{self.eye} {where}: a scan refused by the quality check ({why}): no value of it is plotted "
                       "or in a slope.")
        return out

    def check_notes(self) -> list[str]:
        """``check_note`` for each check of ``TREND_CHECKS`` said of a plotted scan, in that order."""
        return [self.check_note(kind) for kind in TREND_CHECKS if self.checks.get(kind)]


def eye_history(index: StudyIndex, patient_id: str, eye: str, analyse, progress, cancel) -> EyeHistory:
    """Task body: analyse every volume of the eye at every visit, collect measured VF, fit trends."""
    from octviewer.io import load_volume

    history = EyeHistory(patient_id, eye, {name: [] for name in SERIES})
    listed = [s for s in index.scans_for(patient_id, eye=eye) if s.date is not None]
    # a later visit's re-dated copy of an earlier scan is left out of it where the visit has the eye's own scan
    # (``StudyIndex.counted_scans``, the OU view's rule too); one that is its visit's only scan stays, ringed
    scans = [s for s in index.counted_scans(patient_id, eye=eye) if s.date is not None]
    history.synthetic = any(s.synthetic for s in scans)
    history.checks = checked_visits(index, listed)
    history.visits = sorted({parse_date(s.visit) or s.date for s in scans})
    history.fields_left_out = left_out_lines(index, patient_id, [eye])
    history.identified = people_lines(index, patient_id, index.warnings_for(s.path for s in listed))
    mine = [m for m in index.vf if m.patient_id == patient_id and m.eye == eye and m.date is not None]
    if "people" in history.checks:
        history.people = [{parse_date(s.visit) or s.date for s in group if s.eye == eye}
                          for group in people_groups(index, patient_id)]
    if "scripts" in history.checks:
        history.scripts = [{parse_date(s.visit) or s.date for s in group if s.eye == eye}
                           for group in people_groups(index, patient_id, "scripts")]
    history.checked_fields = {f.date for f in (field_of(w, mine) for w in index.warnings_for(s.path for s in listed))
                              if f is not None}
    history.twice = counted_twice(index, scans)
    history.disputed = history.checks.get("date", set()) | history.twice
    # one value per visit ("case" level: the mean over the visit's volumes), dated at the visit, so
    # two volumes of one visit do not count as two independent observations in the trend
    per_visit: dict[dt.date, dict[str, list[float]]] = {}
    if analyse is not None:
        for n, scan in enumerate(scans):
            if cancel.is_set():
                raise Cancelled()
            try:
                prediction, structure = analyse(load_volume(scan.path), cancel)
            except Cancelled:
                raise
            except Exception as exc:  # the other visits still make a trend
                history.errors.append(f"{scan.date}: {type(exc).__name__}: {exc}")
                history.failed.append(parse_date(scan.visit) or scan.date)
                continue
            values = per_visit.setdefault(parse_date(scan.visit) or scan.date, {})
            why = refusal_reason(prediction, structure)
            if why:
                history.refused.setdefault(parse_date(scan.visit) or scan.date, why)
            note = result_gate_note(prediction, structure)
            if note:
                history.gate_notes.append(f"{scan.date}: {note}")
            if prediction is not None:
                history.synthetic = history.synthetic or prediction.synthetic_model
                history.weak |= weak_vf_indices(prediction.notes)
                history.vf_caveats += [n for n in prediction.notes
                                       if is_vf_baseline_caveat(n) and n not in history.vf_caveats]
                for key in ("md", "vfi"):
                    if key in prediction.vf:
                        values.setdefault(f"{key}_predicted", []).append(float(prediction.vf[key]))
            rnfl = getattr(structure, "rnfl_global_um", None)
            if rnfl is not None and getattr(structure, "global_uncertain", False):
                # approximate ("~"): without the boundary model the fallback read +4.8 µm/yr where the eye lost
                # 4.6 µm/yr, with nothing said (walk-through H121, U13): plotted, said, never flagged
                history.approximate_rnfl = True
                history.gate_notes.append(f"{scan.date}: global RNFL approximate (the RNFL boundary is unsure on "
                                          "more than a third of the circle; see the scan's Structure panel)")
            if rnfl is not None:
                values.setdefault("rnfl", []).append(float(rnfl))
            progress(n + 1, len(scans))
    for date, values in per_visit.items():
        for name, vs in values.items():
            history.series[name].append((date, float(np.mean(vs))))
    for m in index.vf:
        if m.patient_id == patient_id and m.eye == eye and m.date is not None:
            if m.md_db is not None:
                history.series["md_measured"].append((m.date, m.md_db))
            if m.vfi is not None:
                history.series["vfi_measured"].append((m.date, m.vfi))
    for name, points in history.series.items():
        points.sort()
        if points:
            history.trends[name] = trend(history.fitted(name), measure=SERIES[name][4])
    return history


def refusal_reason(prediction, structure) -> str:
    """The quality check's first reason (120 characters at most) where it refused the scan (no network result, its
    measurement refused), else "". The check's own words: they name no file or person."""
    reasons = refused_reasons(prediction is not None, structure)
    if reasons is None:
        return ""
    why = " ".join(str(reasons[0]).split()) if reasons else "no reason given"
    return why if len(why) <= 120 else why[:119] + "…"


def checked_visits(index: StudyIndex, scans) -> dict[str, set[dt.date]]:
    """Kind of study check (``StudyWarning.kind``) -> the visit dates, as the trend plots them, of ``scans`` the
    index says it of. The Trend read the "date" kind only (attack run 16, A16-3). A "date" check's visit (a manifest
    row and the scan's header more than ``VISIT_GAP_DAYS`` apart) stays where the study files the scan (moving it
    to the header's date broke the one-scan-one-visit rules, and the study's other views use the study's date): it
    is marked, and the summary says so (H56 leftovers, item 6)."""
    visits = {os.path.realpath(s.path): parse_date(s.visit) or s.date for s in scans}
    out: dict[str, set[dt.date]] = {}
    for w in index.warnings:
        if os.path.realpath(w.path) in visits:
            out.setdefault(w.kind, set()).add(visits[os.path.realpath(w.path)])
    return out


def counted_twice(index: StudyIndex, scans) -> set[dt.date]:
    """The visits (as plotted) of ``scans`` that hold a later copy of a scan the study files at an earlier visit of
    the eye (``StudyIndex.later_copies``, the "two visits" check's groups): one scan re-dated in its header was a
    second visit in the slope (attack run 15, A15-17; run 16, A16-3). Which date is right cannot be told; the scan
    counts once, at its first visit. ``scans`` are the eye's counted scans (``StudyIndex.counted_scans``), so a
    later copy here is its visit's only scan: that visit is ringed and left out of the fitted line as a disputed
    date is (``EyeHistory.disputed``). A visit with the eye's own scan beside the copy keeps that scan, plotted and
    fitted: the whole visit was left out, the genuine scan with the copy (attack run 16, A16-15)."""
    later = index.later_copies()
    return {parse_date(s.visit) or s.date for s in scans if s.path in later}


def _years_inside(t: Trend, last: float, low: float, high: float) -> np.ndarray | None:
    """Where to draw ``t``'s fitted line: years from its first visit to ``last``, cut where the line leaves
    ``low``..``high`` (what the index can be), at the crossing itself. The line is drawn from the first visit to
    the last (the fit says nothing before or after them); a VFI line fitted past 100 % ran off the plot's top
    (seventh walk-through), and masked at 40 samples it stopped short of the edge (eighth). Flattened at the
    limit instead, it would look like a fitted plateau. None when no part of it lies inside."""
    start, end = 0.0, last
    if t.slope_per_year != 0:
        a, b = sorted(((low - t.intercept) / t.slope_per_year, (high - t.intercept) / t.slope_per_year))
        start, end = max(start, a), min(end, b)
    elif not low <= t.intercept <= high:
        return None
    return np.linspace(start, end, 40) if end > start else None


def _epoch(d: dt.date) -> float:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()


#: the dates a time axis can show: Python's dates end at 9999, and pyqtgraph's mouse zoom has no end of its own (a
#: zoom out past year 9999 raised ValueError on every repaint, review H36 #7); 1900 is before any visit
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(9999, 12, 31)


def _date(x: float) -> dt.date:
    """The UTC date of epoch seconds ``x``, clamped to FIRST_DATE..LAST_DATE (fromtimestamp raises past them)."""
    x = min(max(x, _epoch(FIRST_DATE)), _epoch(LAST_DATE))
    return (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=x)).date()


def _month_starts(first: dt.date, last: dt.date, step: int) -> list[dt.date]:
    """The first days of the months between ``first`` and ``last`` whose number from January 0 is a
    multiple of ``step``: counted from a fixed origin, not from ``first``, so the ticks stay on the same
    months (Jan, Jul for 6) while the plot pans instead of sliding with its left edge."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        d = dt.date(y, m, 1)
        if d >= first and (12 * y + m - 1) % step == 0:
            out.append(d)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _year_steps():
    """1, 2, 5, 10, 20, 50, ... years: round numbers a reader counts in, as many as a zoom out needs."""
    scale = 1
    while True:
        for k in (1, 2, 5):
            yield k * scale
        scale *= 10


def date_ticks(x0: float, x1: float, room: int) -> list[tuple[float, str]]:
    """At most ``room`` ticks between the UTC epoch seconds ``x0`` and ``x1``, each with a label a reader
    cannot misread: month starts as "Apr 2024" (every 1, 2, 3 or 6 months) or years as "2024" (every 1, 2, 5,
    10, ... years); under two months, days as "2024-04-02". pyqtgraph's date axis wrote a day beside its month
    ("Apr02", walk-through). Years go on as far as a zoom out needs: when 10-year steps did not fit it fell
    through to day ticks, 13,000 of them for 1000 years, 0.86 s a repaint (review H36 #7)."""
    if not (np.isfinite(x0) and np.isfinite(x1)) or x1 <= x0:
        return []
    first, last = _date(x0), _date(x1)
    room = max(room, 2)
    if (last - first).days > 62:
        for step in (1, 2, 3, 6) if (last - first).days < 190 * room else ():  # else months cannot fit
            months = _month_starts(first, last, step)
            if len(months) <= room:
                return [(_epoch(d), d.strftime("%b %Y")) for d in months]
        for step in _year_steps():
            years = [y for y in range(-(-first.year // step) * step, last.year + 1, step)
                     if dt.date(y, 1, 1) >= first] if last.year // step - first.year // step <= room else None
            if years is not None and len(years) <= room:
                return [(_epoch(dt.date(y, 1, 1)), f"{y:04d}") for y in years]
    months = _month_starts(first, last, 1)
    if len(months) >= 2:
        return [(_epoch(d), d.strftime("%b %Y")) for d in months]
    span = (last - first).days
    for step in (1, 2, 7, 14, 28):
        if span // step + 1 <= room:
            break
    return [(_epoch(first + dt.timedelta(days=k)), (first + dt.timedelta(days=k)).isoformat())
            for k in range(0, span + 1, step)]


class DateAxis(pg.AxisItem):
    """The time axis of the trend plots, ticks and labels by ``date_ticks``: pyqtgraph's DateAxisItem labelled
    a month's tick "Apr02" (a day beside its month, read as a date) and offers no format to change it. The labels
    are kept from ``tickValues`` for ``tickStrings``, which pyqtgraph calls with the values alone."""

    def __init__(self):
        super().__init__(orientation="bottom")
        self._labels: dict[float, str] = {}

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 (pyqtgraph's names)
        ticks = date_ticks(minVal, maxVal, int(size // 75))
        self._labels = dict(ticks)
        return [(1.0, [x for x, _ in ticks])]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        return [self._labels.get(v, "") for v in values]


def _text(text: str) -> str:
    """Text for the rich-text summary, shown as written: the errors name files and the lines name series,
    and markup in a file's name was rendered (attack run 7, A7-18)."""
    return html.escape(text, quote=False)


class TrendView(QWidget):
    """Show an eye with ``show_eye(index, patient_id, eye, analyse)``."""

    ready = Signal(object)  # EyeHistory

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("TrendView")
        self.history: EyeHistory | None = None
        self.tasks = TaskSlot(self)
        self.tasks.done.connect(self._on_done)
        self.tasks.failed.connect(self._on_failed)
        self.tasks.cancelled.connect(self._on_cancelled)
        self.header = QLabel("No eye selected")  # the only place a patient ID is shown
        # plain text, bold by its font: a patient ID holding markup was rendered (attack run 7, A7-18)
        self.header.setTextFormat(Qt.PlainText)
        bold = QFont(self.header.font())
        bold.setBold(True)
        self.header.setFont(bold)
        self.progress, self.cancel_button = self.tasks.bar, self.tasks.cancel_button
        self.body = QWidget()  # grabbed for the report: holds no patient identifier
        self.graphics = pg.GraphicsLayoutWidget()
        # the plots take the height the summary leaves, not their own 480 px hint: with it, a 1024 x 700 screen
        # cut the summary's last line and the dialog scrolled (eighth walk-through); 300 px keep three plots legible
        self.graphics.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self.graphics.setMinimumHeight(300)
        self.plots: dict[str, pg.PlotItem] = {}
        for row, (key, title) in enumerate(PLOTS.items()):
            plot = self.graphics.addPlot(row=row, col=0, title=title,
                                         axisItems={"bottom": DateAxis()})
            plot.showGrid(x=True, y=True, alpha=0.25)
            # the mouse zooms out no further than dates can go (past 9999 every repaint raised, review H36 #7)
            # and no further than the index can go: zoomed out, the VFI axis ran from -50 to 200 % (eighth walk-through)
            (low, high), _ = Y_LIMITS[key]
            margin = Y_MARGIN * (high - low)
            plot.setLimits(xMin=_epoch(FIRST_DATE), xMax=_epoch(LAST_DATE), yMin=low - margin, yMax=high + margin)
            self.plots[key] = plot
        # the key sits above the plots, not in them: inside, it hid values, and room kept free for it
        # right of the last visit made the time axis run two years past it (walk-through M9)
        self.key_text = "  ".join(f"<span style='color:{colour}'>{symbol}</span> {text}"
                                  for symbol, colour, text in KEY)
        self.key = QLabel(self.key_text)
        self.notes: list[str] = []  # what the lines, bands and red lines mean, as plain text (the OU report)
        for key in ("md", "vfi"):
            self.plots[key].setXLink(self.plots["rnfl"])
        self.summary = QLabel("")
        self.summary.setTextFormat(Qt.RichText)  # our colours; every text from a file in it is escaped
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignLeft | Qt.AlignTop)  # "Loading…" under the header, the plots hidden
        body_layout = QVBoxLayout(self.body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(self.key)
        body_layout.addWidget(self.graphics, 1)
        body_layout.addWidget(self.summary)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(busy)
        layout.addWidget(self.body, 1)

    def show_eye(self, index: StudyIndex, patient_id: str, eye: str, analyse=None) -> None:
        self.header.setText(f"{patient_id} · {eye}: progression over all visits")
        self.clear(f"Loading the trend of {eye}: analysing its visits…")
        self.tasks.start(lambda progress, cancel: eye_history(index, patient_id, eye, analyse, progress, cancel))

    def clear(self, text: str) -> None:
        """Nothing of the last eye: its plots, slopes and "significant change" flags stayed under the new eye's
        header for the seconds the new trend took to load (walk-through H65, W1), and the empty plots showed
        placeholder 0.2-0.8 axes (W28). The plots are hidden until the new eye's values are drawn; ``history``
        goes too, so the OU report cannot print the last eye's trend meanwhile."""
        self.history = None
        self.notes = []
        for plot in self.plots.values():
            plot.clear()
        self.graphics.setVisible(False)
        self.key.setVisible(False)
        self.summary.setText(_text(text))

    def cancel(self) -> None:
        self.tasks.cancel()

    def _on_failed(self, message: str) -> None:
        self.summary.setText(_text(f"Trend failed: {message.splitlines()[0]}"))

    def _on_cancelled(self) -> None:
        self.summary.setText("Cancelled.")

    def _on_done(self, history: EyeHistory) -> None:
        self.show_history(history)
        self.ready.emit(history)

    def show_history(self, history: EyeHistory) -> None:
        self.history = history
        for plot in self.plots.values():
            plot.clear()
        self.graphics.setVisible(True)
        self.key.setVisible(True)
        fitted = []  # (plot key, series name, dates, fit, band low, band high, trend)
        shown = {key: [] for key in self.plots}  # values and fitted lines, for the y ranges
        others = history.other_people()
        # the key says what a hollow point is, not only the last note (walk-through H135, W2)
        self.key.setText(self.key_text + ("  ▽ hollow: another person's scans (study check)" if others else ""))
        for name, points in history.series.items():
            if not points:
                continue
            plot_key, label, colour, unit, _ = SERIES[name]
            plot = self.plots[plot_key]
            x = np.array([_epoch(d) for d, _ in points])
            y = np.array([v for _, v in points])
            shown[plot_key].extend(y)
            symbol = "o" if name.endswith("measured") else "t"
            # another person's points (a 'people' check) hollow, ringed in the series' colour
            hollow = [not name.endswith("measured") and d in others for d, _ in points]
            points_item = plot.plot(x, y, pen=None, symbol=symbol, symbolSize=11, name=label,
                                    symbolBrush=[pg.mkBrush(0, 0, 0, 0) if h else pg.mkBrush(colour) for h in hollow],
                                    symbolPen=[pg.mkPen(colour, width=2) if h else pg.mkPen("k", width=1)
                                               for h in hollow])
            points_item.setZValue(10)  # over the fitted line and its band, drawn later: they hid the points
            ringed = [k for k, (d, _) in enumerate(points) if d in history.disputed and not name.endswith("measured")]
            if ringed:  # a disputed date: a ring round the point (where the study files it, not moved)
                ring = plot.plot(x[ringed], y[ringed], pen=None, symbol="o", symbolSize=21, symbolBrush=None,
                                 symbolPen=pg.mkPen(DISPUTED_COLOUR, width=2))
                ring.setZValue(11)
            t = history.trends.get(name)
            if history.mixed():
                continue  # no line through two people's points, nor the fields either may have (``chart_note``)
            # no line under MIN_VISITS: the summary says "at least 3 needed for a trend" while a line through
            # two points was drawn and captioned as a fit (eighth walk-through)
            if t is None or not t.enough or not np.isfinite(t.slope_per_year):
                continue
            # the line spans the points it was fitted to (``fitted``), not a ringed point before or after them
            years = _years_inside(t, (history.fitted(name)[-1][0] - t.start).days / DAYS_PER_YEAR,
                                  *Y_LIMITS[plot_key][0])
            if years is None:
                continue
            fit, lo, hi = t.band(years)
            shown[plot_key].extend(fit)
            fitted.append((plot_key, name, _epoch(t.start) + years * DAYS_PER_YEAR * 86400, fit, lo, hi, t))
        ranges = {key: y_range(key, shown[key]) for key in self.plots}
        wide = []  # series whose band would cover most of their plot: drawn, it only painted the plot over
        for plot_key, name, xs, fit, lo, hi, t in fitted:
            plot, colour = self.plots[plot_key], SERIES[name][2]
            red = history.flagged(name)
            pen = pg.mkPen("#ff6b6b" if red else colour, width=3 if red else 2)
            plot.plot(xs, fit, pen=pen)
            if not t.enough:
                continue
            low, high = ranges[plot_key]
            if np.min(hi - lo) > WIDE_BAND_SHARE * (high - low):
                wide.append(f"{SERIES[name][1]} ({t.n} visits)")
                continue
            # the 95 % confidence band of the fitted line, clipped to what the plot shows
            lo, hi = np.clip(lo, low, high), np.clip(hi, low, high)
            edge = pg.mkPen(colour, width=1, style=Qt.DashLine)
            lower, upper = pg.PlotCurveItem(xs, lo, pen=edge), pg.PlotCurveItem(xs, hi, pen=edge)
            c = pg.mkColor(colour)
            band = pg.FillBetweenItem(lower, upper, brush=pg.mkBrush(c.red(), c.green(), c.blue(), 60))
            for item in (lower, upper, band):
                plot.addItem(item)
        dates = sorted(d for points in history.series.values() for d, _ in points)
        if dates:  # one time axis for all plots: the eye's first to last value, a margin each side
            x0, x1 = _epoch(dates[0]), _epoch(dates[-1])
            # the first and last points sat on the plot's edge, half cut (walk-through): 6 %, 45 days at least
            pad = max(0.06 * (x1 - x0), 45 * 86400)
            self.plots["rnfl"].setXRange(x0 - pad, x1 + pad, padding=0)
        for key, plot in self.plots.items():
            low, high = ranges[key]
            plot.setYRange(low - Y_MARGIN * (high - low), high + Y_MARGIN * (high - low), padding=0)
            empty = not plot.listDataItems()
            plot.setTitle(PLOTS[key] + (" — no values" if empty else ""))
        lines = [f"<span style='color:#ff6b6b'><b>{FLAG} {_text(text)}</b></span>" if flagged
                 else _text(text) for text, flagged in history.lines()]
        notes = []
        if not lines:
            lines.append("No values over time for this eye yet (analysis or measured VF needed).")
        else:
            banded = len(wide) < len(fitted)
            if fitted:  # no line is drawn under MIN_VISITS visits: no caption for one
                notes.append("Lines: least-squares fit over the visits"
                             + ("; shaded: its 95% confidence band." if banded else "."))
            if wide:
                # the rule is the band's width against the plot, the same for every index; the note named only the
                # visits, so "not drawn for MD measured (4 visits)" beside a band for VFI measured from 4 visits
                # read as a broken rule (fifth walk-through)
                notes.append(f"Band not drawn for {', '.join(wide)}: even at its narrowest it would span more than "
                             "half the plot's height (a band is drawn only where it is narrower, for every index; "
                             "the slope's interval above says how uncertain the trend is).")
        if history.disputed - history.twice:  # no date here: the OU report prints these notes anonymised too
            notes.append(DISPUTED_NOTE)
        notes += history.check_notes() + history.fields_left_out
        if any(flagged for _, flagged in history.lines()):
            notes.append(f"Red line: significant change (the slope's 95% interval excludes 0 and the loss is at "
                         f"least {SIGNIFICANT_RATES}).")
        headline = history.left_out_text()
        # the OU report prints the notes after its slopes: a refused scan by its place there, by its date on screen
        self.notes = ([headline] if headline else []) + notes + history.refused_lines(dated=False)
        if any(history.series.get(f"{k}_predicted") for k in ("md", "vfi")):  # right under the slopes
            lines += [f"<span style='color:#ffb74d'><i>{_text(n)}</i></span>" for n in history.vf_caveats]
        lines += [f"<span style='color:#ff6b6b'>{_text(n)}</span>" if n.startswith("Red line") else
                  f"<span style='color:{DISPUTED_COLOUR}'>{_text(n)}</span>" if n.startswith("Check (") else _text(n)
                  for n in notes]
        if headline:  # above the slopes, not only in the key's footnote
            lines.insert(0, f"<span style='color:{DISPUTED_COLOUR}'><b>{_text(headline)}</b></span>")
        lines[:0] = [f"<span style='color:{DISPUTED_COLOUR}'>{_text(n)}</span>" for n in history.identified]
        if history.synthetic:
            lines.insert(0, "<span style='color:#ff6b6b'><b>SYNTHETIC data or model: engineering use only</b></span>")
        lines += [f"<span style='color:#ffb74d'>{_text(n)}</span>"
                  for n in history.gate_notes + history.refused_lines(dated=True)]
        lines += [f"<span style='color:#ff6b6b'>{_text(e)}</span>" for e in history.errors]
        self.summary.setText("<br>".join(lines))

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.tasks.shutdown()
        super().closeEvent(event)
