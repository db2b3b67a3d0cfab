"""The OU report page: both eyes of a visit, the asymmetry table, the trend of one eye, measured vs
predicted VF. Drawn with Qt's PDF writer like the single-scan report.

Anonymised by default: the patient ID is printed only when the caller passes it, and the images
are grabbed from the parts of the OU and trend views that hold no identifier (their headers,
which show the ID on screen, are left out).
"""

from __future__ import annotations

import datetime as dt
import html
import math

from PySide6.QtCore import QRect, QUrl
from PySide6.QtGui import QImage, QTextDocument

from octviewer.core import outside_normal
from octviewer.core.prediction import worse_vf_indices
from octviewer.study.ou import VisitSummary, patient_identity
from octviewer.study.vf import VF_COMPARE_MAX_DAYS, vf_days_from_scan

from ..structure.panel import wheel_key_text
from ..study.checks import check_html, check_lines, left_out_reason
from ..study.ou_view import (
    NO_LIMIT,
    OUTSIDE_MARK,
    asymmetry_digits,
    averaged_text,
    eye_not_compared,
    figures_from_text,
    measured_not_compared,
    no_limit_note,
    shown_difference,
    vf_test_date,
    visit_probability_digits,
)
from ..viewer.results_panel import borderline_words
from .scan_pdf import DISCLAIMER, report_key, running_header, write_pdf

_VF_ROWS = (("vfi", "VFI", "%"), ("md", "MD", "dB"), ("psd", "PSD", "dB"))  # the order of compare_vf


def _fmt(value, digits=1, sign=False) -> str:
    return "" if value is None else (f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}")


def vf_interval(vf_date, scan_date) -> str:
    """How far a field lies from its scan, in days, with no date (fit for an anonymised report)."""
    days = vf_days_from_scan(vf_date, scan_date)
    return (f"{abs(days)} days {'after' if days > 0 else 'before'} its scan, more than {VF_COMPARE_MAX_DAYS} days"
            if days is not None else f"more than {VF_COMPARE_MAX_DAYS} days from its scan")


#: under a predicted index the model's evaluation found worse than the class mean (the column is narrow, a longer
#: text broke mid-word: ``WORSE_KEY`` under the table says it in full); on its own line, as beside the number it
#: widened two of the table's eleven columns so far that the others broke "+1.7" into "+1." over "7" (walk-through
#: H115, Z1)
WORSE_CELL = "<br><b>WORSE</b>"
#: a table cell that is never broken inside a number or a word (``_nowrap``)
_CELL = "<td style='white-space: nowrap'>"
WORSE_KEY = "WORSE: the model's own evaluation found this estimate worse than the class-mean baseline: do not use it"


def _mark(name: str, value, weak=()) -> str:
    return OUTSIDE_MARK if outside_normal(name, value, weak) else ""


def _predicted_cell(name: str, value, worse=()) -> str:
    """A predicted index's cell: marked as the panel marks it, or "WORSE" beside it (on one line: the narrow
    column broke the word) when the model's evaluation found it worse than the class mean."""
    if name in worse and value is not None:
        return f"{_CELL}{_fmt(value)}{WORSE_CELL}</td>"
    return f"{_CELL}{_fmt(value)}{_mark(name, value, worse)}</td>"


def _nowrap(text: str) -> str:
    """``text`` (HTML) whose lines (``<br>``) are each kept whole: Qt breaks a table cell's text anywhere, mid-number
    ("+1." over "7") or mid-word ("ey" over "e"), where the table is too narrow for its columns (H115, Z1)."""
    return "<br>".join(f"<span style='white-space: nowrap'>{line}</span>" for line in text.split("<br>"))


def trend_key_html(key, notes=()) -> str:
    """The trend plots' key and what their lines mean, under the printed plots: the report printed the
    plots alone (the key sits above them on screen, outside the image), so its colours and symbols
    went unexplained (walk-through). Symbols on the plots' own dark ground, so yellow shows on paper."""
    entries = ", ".join(f"<span style='background-color:#202124; color:{colour}'>&nbsp;{symbol}&nbsp;</span> "
                        f"{html.escape(text)}" for symbol, colour, text in key)
    return f"<p>Key: {entries}.</p>" + "".join(f"<p>{html.escape(n)}</p>" for n in notes)


def ou_report_html(summary: VisitSummary, trend_lines: list[str] | None = None, patient_id: str | None = None,
                   images: tuple[str, ...] = (), trend_key: str = "", trend_notes=()) -> str:
    """The page as HTML (images referenced by resource name); separate from drawing so it is testable.
    ``trend_notes`` follow the slopes as on screen: they speak of "the slope's interval above" (printed
    with the key, before the slopes, they pointed at text below them, fifth walk-through)."""
    eyes = [e for e in ("OD", "OS") if e in summary.eyes]
    rows, far = [], []  # far: the eyes whose measured field lies too far from their scan to compare
    probability = visit_probability_digits(summary)  # the OU view's decimals (walk-through H107, Y1)
    for eye in eyes:
        s = summary.eyes[eye]
        prob = f"{s.probability:.{probability}f} ({s.decision})" if s.probability is not None else "not analysed"
        # as the scan PDF and the OU view's card say it (walk-through H107, Y2)
        borderline = borderline_words(s.probability, s.threshold)
        mean = f"<br>{html.escape(borderline)}" if borderline else ""
        # a mean of several scans says so, as the OU view's card does (walk-through H95, V5)
        mean += (f"<br><span style='white-space: nowrap'>{html.escape(averaged_text(s))}</span>"
                 if s.probability is not None and averaged_text(s) else "")
        # said beside the estimate instead of a mark (W10); other estimates marked as measured values (H65, W11)
        worse = worse_vf_indices(s.notes)
        cells = "".join(_predicted_cell(c.name, c.predicted, worse)
                        + f"{_CELL}{_fmt(c.measured)}{_mark(c.name, c.measured)}</td>"
                        + (f"{_CELL}{_fmt(shown_difference(c.predicted, c.measured), sign=True)}</td>"
                           if s.vf_compared() or c.measured is None else f"{_CELL}n.c.</td>")
                        for c in s.vf_comparison())
        if not s.vf_compared():  # "not compared" broke mid-word in the narrow column: "n.c.", said in full below
            known = vf_days_from_scan(s.vf_measured.date, s.scan_date) is not None  # else a date is unknown
            far.append(f"the {eye} field {vf_interval(s.vf_measured.date, s.scan_date)}" if known
                       else eye_not_compared(s))
        # with the quality check off, a scan the check refuses: the note beside the verdict, not only the RNFL/CDR
        # "n/a" pages later (attack run 13, A13-17)
        gate = (f"<br><span style='color:#b00020'>{html.escape(s.gate_note)}</span>"
                if s.probability is not None and s.gate_note else "")
        # why a scan has no result, as the OU view's card says it (walk-through H107, Y5); a reader's error may name
        # the file and stays withheld here (A10-3)
        gate += f"<br>{html.escape(s.refusal())}" if s.refusal() else ""
        rows.append(f"<tr>{_CELL}<b>{eye}</b></td><td><span style='white-space: nowrap'>{html.escape(prob)}</span>"
                    f"{mean}{gate}</td>{cells}</tr>")
    # each measured field's test date (anonymised: its days from the scan only), as the Results panel and the scan
    # PDF say it: the OU report gave none, and a field 74 days off read as the visit's (walk-through H65, W4)
    tested = [f"{e} {vf_test_date(s.vf_measured, s.scan_date, dated=patient_id is not None)}"
              for e, s in ((e, summary.eyes[e]) for e in eyes) if s.vf_measured is not None]
    # the mark on the value's line (it wrapped under it), the header in two lines (it broke "pred." mid-word)
    # a VFI difference in percentage points ("pp", keyed under the table), not "%" (walk-through wording, H81)
    vf_header = "".join(f"<th>{_nowrap(label + '<br>pred.')}</th><th>{_nowrap(label + '<br>meas.')}</th>"
                        f"<th>{_nowrap('diff<br>(' + ('pp' if unit == '%' else unit) + ')')}</th>"
                        for _, label, unit in _VF_ROWS)
    flag = ' <b style="color:#b00020">ASYMMETRIC</b>'
    asym_rows = summary.asymmetry()
    missing = []  # (eye, row label, reason) for the footnote under the table

    def eye_cell(r, eye, value):
        if value is not None:
            return _fmt(value, asymmetry_digits(r.name, probability))
        s = summary.eyes.get(eye)
        why = s.missing_reason(r.name) if s is not None else "no scan of this eye"
        if r.name.endswith("_measured") and s is not None and left_out_reason(summary.left_out, eye):
            why = left_out_reason(summary.left_out, eye)  # not "no visual field recorded" (H115, Z2)
        if patient_id is None and s is not None and s.error:  # a reader's error names the file, and clinic
            # file names carry names and birth dates: the anonymised report printed one (attack run 10, A10-3)
            why = "a scan of this eye could not be read or analysed (details withheld: anonymised report)"
        missing.append((eye, r.label, why))
        return "n/a"
    apart: dict[str, list[str]] = {}  # why measured rows give no OD - OS (a field far from its scan), as on screen

    def difference_cell(r):
        digits = asymmetry_digits(r.name, probability)
        difference = shown_difference(r.od, r.os, digits)
        why = measured_not_compared(summary, r.name)
        if difference is not None and why:
            apart.setdefault(why, []).append(r.label)
            return "not compared"
        mark = flag if r.flagged else f" <small>{html.escape(r.mark)}</small>" if r.mark else ""
        return f"{_fmt(difference, digits, sign=True)}{mark}"
    asym = "".join(
        f"<tr><td>{html.escape(r.label)}</td><td>{eye_cell(r, 'OD', r.od)}</td><td>{eye_cell(r, 'OS', r.os)}</td>"
        f"<td>{difference_cell(r)}</td><td>{_fmt(r.limit, asymmetry_digits(r.name, probability)) or NO_LIMIT}</td></tr>"
        for r in asym_rows)
    # one line per distinct reason, not one per cell (a missing field leaves both VF rows empty)
    reasons: dict[tuple[str, str], list[str]] = {}
    for eye, label, why in missing:
        reasons.setdefault((eye, why), []).append(label)
    notes = "".join(f"<li>{eye} {html.escape(', '.join(labels))}: {html.escape(why)}</li>"
                    for (eye, why), labels in reasons.items())
    notes = f"<p><small>n/a:</small></p><ul><small>{notes}</small></ul>" if notes else ""
    notes += "".join(f"<p><small>OD - OS of {html.escape(', '.join(labels))}: {html.escape(why)}</small></p>"
                     for why, labels in apart.items())
    if any(r.limit is None for r in asym_rows):  # the limit column's "none set" is no "within limits" (H121, U9)
        notes += f"<p><small>{html.escape(no_limit_note())}</small></p>"
    # the footnote is the table's last row: a printed table is kept whole with its heading (scan_pdf's
    # keep_headings_with_next), where a paragraph after it went overleaf, away from the cells it explains (H56)
    notes = f"<tr><td colspan='5'>{notes}</td></tr>" if notes else ""
    synthetic = ("<p style='color:#b00020'><b>SYNTHETIC data or model: results have no clinical validity.</b></p>"
                 if summary.synthetic else "")
    model = next((s.model_name for s in summary.eyes.values() if s.model_name), "none")
    # what the results say about themselves (an unverified model file first), as the scan report prints it
    result_notes = dict.fromkeys(n for e in eyes for n in summary.eyes[e].notes)
    result_notes = "".join(f"<p><b>Note:</b> {html.escape(n)}</p>" for n in result_notes)
    trend = "".join(f"<li>{html.escape(line)}</li>" for line in (trend_lines or []))
    notes_after = "".join(f"<p>{html.escape(n)}</p>" for n in trend_notes)
    img = {name: f'<img src="{name}" width="{w}">' for name, w in (("ou", 620), ("trend", 520)) if name in images}
    visit = html.escape(summary.visit or "unknown") if patient_id else "withheld (anonymised report)"
    # the study's ID with the scans' header IDs beside it where they differ, as the window says it (W2)
    who = html.escape(patient_identity(patient_id, summary.header_ids)) if patient_id else "anonymised"
    # the visit's study checks, as the OU view shows them above the eyes; anonymised: kind and count only
    # anonymised, a repeat scan's line names its eye and count (it said "this eye" on a page of two, H95, V8)
    checks = "".join(check_html(line) for line in check_lines(summary.checks, dated=patient_id is not None,
                                                              eyes={e: summary.eyes[e].paths for e in eyes})
                     + (summary.people if patient_id is not None else [])  # which visits are whose (H131, W3)
                     + summary.left_out)  # an eye's fields left out as another person's (walk-through H107, Y8)
    # identified, the file whose RNFL and disc figures an eye with several scans shows (the anonymised check says
    # they are one scan's): the report said neither (V5)
    figures = [f"{e}: {figures_from_text(summary.eyes[e])}" for e in eyes if figures_from_text(summary.eyes[e])]
    figures = (f"<p>{html.escape('; '.join(figures))}</p>" if figures and patient_id is not None else "")
    # the day, as the scan report gives it: the OU report's "2026-12-07T05:22" stood beside the scan PDF's
    # "2026-12-07" (walk-through H82, W17)
    created = dt.date.today().isoformat() if patient_id else "withheld"
    return f"""
    <h1>OU report: both eyes of one visit</h1>
    <p style="color:#b00020"><b>{html.escape(DISCLAIMER)}</b></p>{synthetic}
    <table cellpadding="3">
      <tr><td>Patient</td><td>{who}</td></tr>
      <tr><td>Visit</td><td>{visit}</td></tr>
      <tr><td>Model</td><td>{html.escape(model)}</td></tr>
      <tr><td>Report created</td><td>{created}</td></tr>
    </table>
    {checks}
    <p>"Case" = one eye at this visit: the mean over its volumes.</p>
    <h2>Predicted and measured visual field</h2>
    <!-- a smaller type: eleven columns of whole figures left "0.41 (glaucoma" over ")" at the body's (H115, Z1) -->
    <table border="1" cellpadding="2" width="100%" style="font-size: small">
      <tr><th>{_nowrap('eye')}</th><th>{_nowrap('P(glaucoma)')}</th>{vf_header}</tr>{''.join(rows)}
    </table>
    {f"<p>{OUTSIDE_MARK.strip()} outside the normal range</p>" if OUTSIDE_MARK in ''.join(rows) else ""}
    {"<p>pp = percentage points (VFI % predicted minus VFI % measured)</p>" if rows else ""}
    {f"<p><b>{html.escape(WORSE_KEY)}</b></p>" if WORSE_CELL in ''.join(rows) else ""}
    {f"<p>Measured: {html.escape('; '.join(tested))}</p>" if tested else ""}
    {f"<p>n.c. = not compared: {html.escape('; '.join(far))}</p>" if far else ""}
    {figures}
    {result_notes}
    <h2>Both eyes (temporal sides facing out)</h2>
    {img.get('ou', '')}
    <p><small>{html.escape(wheel_key_text(summary))}</small></p>
    <h2>Inter-eye asymmetry</h2>
    <!-- page-wide with its notes (the "none set" one always, H121 U9): the columns' shares keep each row's name whole,
         shared evenly they broke "Glaucoma / probability" over two lines -->
    <table border="1" cellpadding="3" width="100%">
      <thead><tr><th width="32%"></th><th width="12%">OD</th><th width="12%">OS</th><th width="28%">OD - OS</th>
      <th width="16%">limit</th></tr></thead>{asym}{notes}</table>
    {f"<h2>Trend</h2><p>{img.get('trend', '')}</p>{trend_key}<ul>{trend}</ul>{notes_after}"
     if (trend or 'trend' in img) else ''}
    <p style="color:#555"><small>{html.escape(DISCLAIMER)}</small></p>
    """


SECONDS_PER_YEAR = 365.25 * 86400
#: the anonymised report's time axis: no dates (visit dates identify), years from the eye's first visit
YEARS_AXIS_LABEL = "years since the first visit (dates withheld: anonymised report)"


def years_ticks(origin: float, x0: float, x1: float, room: int) -> list[tuple[float, str]]:
    """At most ``room`` ticks between the epoch seconds ``x0`` and ``x1``, labelled in years since ``origin``
    (the first visit) at a round step (0.25, 0.5, 1, 2, 5, ... years). The anonymised report hid the date axis's
    values and printed no ticks at all, with a stray "(x1e+09)" exponent (walk-through H65, W16)."""
    if not (math.isfinite(x0) and math.isfinite(x1)) or x1 <= x0:
        return []
    a, b = (x0 - origin) / SECONDS_PER_YEAR, (x1 - origin) / SECONDS_PER_YEAR
    for step in (0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        first, last = math.ceil(a / step), math.floor(b / step)
        if last - first + 1 <= max(room, 2):
            return [(origin + k * step * SECONDS_PER_YEAR, f"{k * step:g}") for k in range(first, last + 1)]
    return []


def _years_axis(axis, origin: float) -> None:
    """Label ``axis`` (a trend plot's time axis, epoch seconds) in years since ``origin``, with no exponent;
    undone by ``_date_axis``. The axis's own methods are shadowed on the instance, so nothing of the trend view
    changes for good."""
    labels: dict[float, str] = {}

    def tick_values(lo, hi, size):
        labels.clear()
        labels.update(years_ticks(origin, lo, hi, int(size // 75)))
        return [(1.0, list(labels))]
    axis.tickValues = tick_values
    axis.tickStrings = lambda values, scale, spacing: [labels.get(v, "") for v in values]
    axis.enableAutoSIPrefix(False)  # the "(x1e+09)" beside the label
    axis.setLabel(YEARS_AXIS_LABEL)


def _date_axis(axis) -> None:
    for name in ("tickValues", "tickStrings"):
        axis.__dict__.pop(name, None)
    axis.enableAutoSIPrefix(True)
    axis.setStyle(showValues=True)
    axis.showLabel(False)
    axis.picture = None
    axis.update()


#: in the printed picture, in an unreadable scan's en-face place, where the screen says the reader's error (which
#: names the file, and clinic file names carry names and birth dates: attack run 13, A13-3)
UNREADABLE_ANONYMISED = "scan unreadable (details withheld: anonymised report)"
UNREADABLE_IDENTIFIED = "scan unreadable (reason in the report's text)"


def printed_image_text(text: str, anonymised: bool) -> str:
    """An eye's en-face label as the page prints it: never a reader's error ("scan unreadable: <error>" on
    screen), which the anonymised report's picture printed, file name and all, where its text withheld it (A10-3
    fixed the text only: attack run 13, A13-3); the identified report gives the reason in its text."""
    if not text.startswith("scan unreadable"):
        return text
    return UNREADABLE_ANONYMISED if anonymised else UNREADABLE_IDENTIFIED


def eye_pair_image(ou_view, anonymised: bool = True) -> QImage:
    """Both eyes' en-face and sector wheels for the page, without the per-eye tables: the page has
    the same numbers as text, and at print size the window's copy was ~6 pt on dark grey. An unreadable scan's
    label is worded for the page (``printed_image_text``) while it is grabbed."""
    pair = ou_view.eye_pair
    tables = [column.table for column in ou_view.columns.values() if column.table.isVisible()]
    labels = [(column.image, column.image.text()) for column in ou_view.columns.values()]
    for table in tables:
        table.hide()
    for label, text in labels:
        if printed_image_text(text, anonymised) != text:
            label.setText(printed_image_text(text, anonymised))
    try:
        bottom = max((column.decision.mapTo(pair, column.decision.rect().bottomLeft()).y()
                      for column in ou_view.columns.values()), default=pair.height())
        return pair.grab(QRect(0, 0, pair.width(), min(pair.height(), bottom + 12))).toImage()
    finally:
        for table in tables:
            table.show()
        for label, text in labels:
            if label.text() != text:
                label.setText(text)


def write_ou_report(path: str, ou_view, trend_view=None, patient_id: str | None = None) -> str:
    """Write the OU page of ``ou_view``'s visit (and ``trend_view``'s eye, when given) as a PDF."""
    summary = ou_view.summary
    if summary is None:
        raise ValueError("the OU view has no analysed visit to report")
    doc = QTextDocument()
    images = {"ou": eye_pair_image(ou_view, anonymised=patient_id is None)}
    trend_lines, trend_key, trend_notes = None, "", ()
    if trend_view is not None and trend_view.history is not None:
        from ..study.trend_view import KEY

        # the scans in no OCT slope first, as the screen says them in red (A13-9), then what the plots mean
        trend_key = trend_key_html(KEY)
        trend_notes = trend_view.history.report_errors(dated=patient_id is not None) + list(trend_view.notes)
        axes = [plot.getAxis("bottom") for plot in trend_view.plots.values()]
        dates = sorted(d for points in trend_view.history.series.values() for d, _ in points)
        if patient_id is None and dates:  # anonymised: no dates on the time axis (visit dates identify): years
            origin = dt.datetime(dates[0].year, dates[0].month, dates[0].day, tzinfo=dt.timezone.utc).timestamp()
            for axis in axes:
                _years_axis(axis, origin)
        elif patient_id is None:  # no visit to count from: no values at all
            for axis in axes:
                axis.setStyle(showValues=False)
        try:
            for plot in trend_view.plots.values():  # room for the label under the ticks now, not at the next repaint
                plot.layout.activate()
            images["trend"] = trend_view.graphics.grab().toImage()
        finally:
            for axis in axes:
                _date_axis(axis)
        trend_lines = [f"{trend_view.history.eye} {line}" for line, _ in trend_view.history.lines()]
    for name, image in images.items():
        doc.addResource(QTextDocument.ImageResource, QUrl(name), image)
    doc.setHtml(ou_report_html(summary, trend_lines, patient_id, tuple(images), trend_key, trend_notes))
    # every page names the patient, both eyes and the visit; anonymised, a key of the patient and "OU" (W15)
    running = running_header(patient_id, "OU", f"visit {summary.visit}" if summary.visit else "",
                             "" if patient_id else report_key(summary.patient_id or "", "pat"))
    return write_pdf(doc, path, "OCT OU report (research use only)", anonymised=patient_id is None,
                     running=running)
