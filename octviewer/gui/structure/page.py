"""Drawing of a structure report with QPainter: one routine for the viewer's panel and the PDF page.

Laid out like the one-page RNFL printouts clinicians know: the TSNIT thickness curve over the
normal band (green >= 5th percentile, yellow 1st-5th, red < 1st), the Garway-Heath sector pie and
the clock hours coloured by class as seen on the fundus (temporal on the left for OD, on the right
for OS), and the disc figures. Always states where the normal figures come from.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen

from octviewer.pipeline.outputs import refused_quality_text
from octviewer.structure import normative, rnfl

CLASS_COLOURS = {"normal": QColor(40, 160, 60), "borderline": QColor(225, 190, 0), "outside": QColor(205, 30, 30),
                 "": QColor(128, 128, 128)}


def _screen_deg(clinical_deg: float, laterality: str | None) -> float:
    """Clinical angle (0 temporal, 90 superior) -> Qt angle (0 = 3 o'clock, counter-clockwise)."""
    return (clinical_deg if laterality == "OS" else 180.0 - clinical_deg) % 360.0


def _band(profile_len: int) -> dict[str, np.ndarray]:
    """Per-angle 1st/5th/95th percentiles from the quadrant norms, softened over 30 deg for display."""
    theta = rnfl.profile_angles(profile_len)
    norms = [normative.norm_for(normative.quadrant_of(t)) for t in theta]
    out = {}
    for key in ("p1_um", "p5_um", "p95_um"):
        v = np.array([getattr(n, key) for n in norms])
        k = max(1, profile_len // 12)
        kernel = np.ones(k) / k
        out[key] = np.convolve(np.r_[v[-k:], v, v[:k]], kernel, mode="same")[k:-k]
    return out


NO_REPORT = "No structure analysis for this scan"


def draw_structure_page(painter: QPainter, rect: QRectF, report, dark: bool = False,
                        empty_text: str = NO_REPORT, min_point: float | None = None, text: bool = True,
                        fg: QColor | None = None) -> float:
    """Draw ``report`` (a StructureReport or None, then ``empty_text``) into ``rect``.

    ``min_point``: the least font size. The panel passes the application's: fitted to a 250 px dock,
    its text came out ~7 px and its last lines were cut off (fourth walk-through). With it, a narrow page
    is laid out upright at the width's scale whatever the height, and the height it needs is returned
    (the panel takes it and its dock scrolls); without it (the printed page) the page fits ``rect``
    and returns its height.

    ``text=False`` leaves out the header and the text block (the PDF prints them as paragraphs:
    shrunk into the picture they were ~4 pt on paper, fifth walk-through) and gives the wheels the room.

    ``fg``: the text and line colour; the panel passes its palette's text colour. A fixed light grey, meant for
    the application's dark palette, was drawn light grey on light grey under any other (H56's screenshots)."""
    fg = fg or (QColor(230, 230, 230) if dark else QColor(20, 20, 20))
    painter.save()
    painter.setRenderHint(QPainter.Antialiasing)
    base = QFont(painter.font())
    # by the smaller side: a tall narrow panel (a large window) grew the text past the wheels' room
    base.setPointSizeF(max(min_point or 6.0, min(rect.height(), rect.width()) / 60.0))
    upright = min_point is not None and rect.width() < 560  # sized by its width: the panel grows downwards
    painter.setFont(base)
    painter.setPen(fg)
    line_h = painter.fontMetrics().height()
    if report is None:
        if min_point is None:  # the printed page: the note in its middle
            painter.drawText(rect, Qt.AlignCenter | Qt.TextWordWrap, empty_text)
            painter.restore()
            return rect.height()
        # the panel: at its top, and only as tall as the note. Centred in the last report's height (the dock
        # scrolled to its top), "Decoding cancelled" or "Measuring" was below the fold: the panel read blank
        flags = Qt.AlignHCenter | Qt.AlignTop | Qt.TextWordWrap
        box = painter.boundingRect(QRectF(rect.left(), rect.top(), rect.width(), 20 * line_h), flags, empty_text)
        painter.drawText(QRectF(rect.left(), rect.top(), rect.width(), box.height()), flags, empty_text)
        painter.restore()
        return box.height()
    if text:
        head = head_text(report, dark)
        head_rect = painter.boundingRect(QRectF(rect.left(), rect.top(), rect.width(), 4 * line_h),
                                         Qt.TextWordWrap, head)
        painter.drawText(QRectF(rect.left(), rect.top(), rect.width(), head_rect.height()), Qt.TextWordWrap, head)
        top = rect.top() + head_rect.height() + 1.5 * line_h  # a wrapped header never runs into the plot title
    else:
        top = rect.top() + 1.5 * line_h  # the plot's title
    if not analysed(report):  # in the text's colour: red is "outside normal" (H95, V4)
        text = not_analysed_text(report, headed=text)
        painter.drawText(QRectF(rect.left(), top, rect.width(), rect.bottom() - top), Qt.TextWordWrap, text)
        needed = top - rect.top() + painter.boundingRect(QRectF(0, 0, rect.width(), 1e5), Qt.TextWordWrap,
                                                         text).height()
        painter.restore()
        return max(needed, rect.height()) if upright else rect.height()
    # a tall narrow panel (the dock of a 1024 px window) puts the figures' text under the two wheels:
    # beside them, the wheels shrank to thumbnails or the panel scrolled sideways (walk-through)
    portrait = upright or rect.width() < rect.height()
    plot = QRectF(rect.left() + 3 * line_h, top, rect.width() - 3.5 * line_h,
                  0.5 * rect.width() if upright else (rect.bottom() - top) * (0.35 if portrait else 0.45))
    _draw_tsnit(painter, plot, report, fg, line_h)
    lower = QRectF(rect.left(), plot.bottom() + 2.2 * line_h, rect.width(),
                   rect.bottom() - plot.bottom() - 2.2 * line_h)
    with_text, text = text, _disc_text(report, short=dark)  # the panel is narrow; the page cites the source in full
    text_h = painter.boundingRect(QRectF(0, 0, lower.width(), 1e5), Qt.TextWordWrap, text).height() if with_text else 0
    stacked = upright and lower.width() / 2.3 < 150  # side by side, a 250 px panel's wheels were ~100 px
    if upright:  # one wheel above the other where side by side their labels at the app's font would collide
        size = min(0.8 * lower.width(), 260.0) if stacked else lower.width() / 2.3
    elif portrait:  # the wheels take what the text under them leaves
        size = min(lower.width() / 2.3, lower.height() - 1.5 * line_h - text_h)
        portrait = size >= min(lower.height() - 2 * line_h, lower.width() / 3.3)  # else side by side is larger
    if not portrait:
        size = min(lower.height() - 2 * line_h, lower.width() / (3.3 if with_text else 2.4))
    pie = QRectF(lower.left() + 0.05 * size, lower.top() + line_h, size, size)
    if not with_text and not upright:  # the two wheels centred under the plot
        pie.moveLeft(lower.left() + (lower.width() - 2.15 * size) / 2)
    clock = QRectF(pie.right() + 0.15 * size, lower.top() + line_h, size, size)
    if stacked:
        pie.moveLeft(lower.left() + (lower.width() - size) / 2)
        clock.moveTo(pie.left(), pie.bottom() + 1.5 * line_h)
    label_px = painter.fontMetrics().height() * (4 if upright else 3) // 4  # the wheels' least label size
    _draw_sectors(painter, pie, report, fg, label_px)
    _draw_clock(painter, clock, report, fg, label_px)
    painter.setPen(fg)
    for box, title, short in ((pie, "Sectors (Garway-Heath)", "Sectors"),
                              (clock, "Quadrants and clock hours", "Clock hours")):
        fits = painter.fontMetrics().horizontalAdvance(title) <= size * 1.1  # a narrow panel clipped them
        painter.drawText(QRectF(box.left() - 0.05 * size, box.top() - line_h, size * 1.1, line_h), Qt.AlignCenter,
                         title if fits else short)
    if not with_text:
        painter.restore()
        return rect.height()
    if portrait:
        text_rect = QRectF(lower.left(), clock.bottom() + 0.5 * line_h, lower.width(),
                           lower.bottom() - clock.bottom() - 0.5 * line_h)
    else:
        text_rect = QRectF(clock.right() + 0.15 * size, lower.top(), lower.right() - clock.right() - 0.15 * size,
                           lower.height())
    if upright:
        text_rect.setHeight(text_h)
        _draw_fitted(painter, text_rect, text)
        painter.restore()
        return text_rect.bottom() - rect.top()
    _draw_fitted(painter, text_rect, text)
    painter.restore()
    return rect.height()


def analysed(report) -> bool:
    """Whether the page has figures to draw (else it says why not)."""
    return report.quality.ok and report.rnfl_profile is not None


def compared(report) -> bool:
    """Whether any region was classed against the normal figures: a refused line scan's PDF said "norms: another
    device's (Cirrus)" though nothing had been compared (eighth walk-through); without a class, norms go unsaid."""
    return any(report.classes.values())


def not_measured_for_pattern(report) -> str:
    """"not measured: <why>" for a scan whose pattern the structure analysis does not take (a line scan), else "".
    Such a scan is not refused for its quality (walk-through H65, W24): the window's CSV said "refused; signal not
    measured: a line scan ..." of a good scan, which read as a failed quality check (H91, W14). The page's header
    and the CSV's quality cell say it by this rule, and the header says it once: the page repeated it under the
    header in red, the colour of "outside normal" (H91, W14)."""
    if report.scan_pattern in ("circle", "volume"):
        return ""
    return "not measured: " + "; ".join(report.quality.reasons)


def not_analysed_text(report, headed: bool = True) -> str:
    """What the page says under its header when it has no figures (``analysed`` false): why, unless the header
    (``headed``) already said it (``said_in_header``)."""
    if headed and said_in_header(report):
        return ""
    return "Not analysed: " + "; ".join(report.quality.reasons or ("no RNFL profile",))


def said_in_header(report) -> bool:
    """The header (``head_text``) names why the page has no figures: a line scan's "not measured: ..." or a refused
    scan's "REFUSED; ...: <reasons>". One rule for both: W14's fix left a refused cube's reasons said twice, the
    second time in red, the colour of "outside normal" (H95, V4)."""
    return bool(not_measured_for_pattern(report) or (not report.quality.ok and report.quality.reasons))


def head_text(report, dark: bool = False) -> str:
    """The page's first line: eye, scan, segmentation, quality (and the norms' device on paper)."""
    source = {"vendor": "the file's own", "own": "octviewer's"}.get(report.source, "none (not measured)")
    q = report.quality
    # the signal score alone does not decide: a scan with a good signal is still refused when it is
    # not an optic-disc scan, so the verdict and the score are named apart ("REFUSED (score 0.46)"
    # beside another scan's "ok (score 0.46)" read as a contradiction)
    quality = not_measured_for_pattern(report) or (
        (f"measured; {q.signal_text}" if q.ok else f"REFUSED; {q.signal_text}") + (
            ": " + "; ".join(q.reasons) if q.reasons else ""))
    head = (f"RNFL and optic disc  |  {report.laterality or 'eye unknown'}  |  {report.scan_pattern}  |  "
            f"segmentation: {source}  |  {refused_quality_text(quality)}")
    # the printed page says it where it is read, when anything was classed against those norms
    if normative.other_device(report.norms_source) and not dark and compared(report):
        head += "  |  norms: another device's (Cirrus)"  # first; the narrow panel in its norms line only
    if report.synthetic:
        head = "SYNTHETIC DATA  |  " + head
    return head


def printed_text(report) -> str:
    """The page's text block as the PDF prints it, under the figure (lines separated by newlines)."""
    if not analysed(report):
        return not_analysed_text(report)  # the PDF prints head_text above it
    return _disc_text(report)


def _draw_fitted(painter: QPainter, rect: QRectF, text: str) -> None:
    """Word-wrapped ``text`` in ``rect``, in a smaller font where it would not fit: at 1400 x 850 the
    panel's last lines (the norms' source) were cut off (walk-through)."""
    painter.save()
    font = QFont(painter.font())
    while (painter.boundingRect(rect, Qt.TextWordWrap, text).height() > rect.height() + 0.5
           and font.pointSizeF() > 5.0):
        font.setPointSizeF(font.pointSizeF() * 0.9)
        painter.setFont(font)
    painter.drawText(rect, Qt.TextWordWrap, text)
    painter.restore()


def _draw_tsnit(painter: QPainter, plot: QRectF, report, fg: QColor, line_h: float) -> None:
    profile = np.asarray(report.rnfl_profile, float)
    n = len(profile)
    band = _band(n)
    # the profile is dashed where a sample rests on unsure A-scans as a sector printed "~" does
    unsure = getattr(report, "unsure_profile", None)
    unsure = (np.zeros(n, bool) if unsure is None or len(unsure) != n
              else np.nan_to_num(np.asarray(unsure)) > rnfl.UNSURE_LIMIT)
    ymax = max(200.0, float(np.nanmax(profile)) + 20.0) if np.isfinite(profile).any() else 200.0

    def pt(i, v):
        return QPointF(plot.left() + (i + 0.5) / n * plot.width(), plot.bottom() - min(v, ymax) / ymax * plot.height())

    def fill(lower, upper, colour):
        path = QPainterPath(pt(0, lower[0]))
        for i in range(n):
            path.lineTo(pt(i, lower[i]))
        for i in range(n - 1, -1, -1):
            path.lineTo(pt(i, upper[i]))
        path.closeSubpath()
        c = QColor(colour)
        c.setAlpha(110)
        painter.fillPath(path, c)

    classified = bool(report.classes)
    if classified:
        zero = np.zeros(n)
        fill(zero, band["p1_um"], CLASS_COLOURS["outside"])
        fill(band["p1_um"], band["p5_um"], CLASS_COLOURS["borderline"])
        fill(band["p5_um"], band["p95_um"], CLASS_COLOURS["normal"])
    painter.setPen(QPen(fg, 1))
    painter.drawRect(plot)
    for v in range(0, int(ymax) + 1, 50):
        y = pt(0, v).y()
        painter.drawText(QRectF(plot.left() - 3 * line_h, y - line_h / 2, 2.8 * line_h, line_h),
                         Qt.AlignRight | Qt.AlignVCenter, str(v))
    for k, name in enumerate("TSNIT"):  # clear of the frame: the T's bar merged into it and read "|"
        x = plot.left() + k / 4 * plot.width()
        painter.drawText(QRectF(x - line_h, plot.bottom() + 0.25 * line_h, 2 * line_h, line_h), Qt.AlignCenter, name)
    # the longest title that fits: at 1400 x 850 the panel cut "(dashed: boundary unsure)" to "unsu"
    notes = ("" if classified else "  (no normal band: see quality)") + ("  (dashed: boundary unsure)" if unsure.any()
                                                                         else "")
    titles = (f"RNFL thickness (µm) on the {report.circle_diameter_mm:.2f} mm circle" + notes,
              f"RNFL (µm), {report.circle_diameter_mm:.2f} mm circle" + notes.replace("boundary ", ""),
              "RNFL (µm)" + notes.replace("boundary ", ""), "RNFL (µm)")  # (the narrow panel at the app's font)
    metrics = painter.fontMetrics()
    title = next((t for t in titles if metrics.horizontalAdvance(t) <= plot.width()),
                 metrics.elidedText(titles[-1], Qt.ElideRight, int(plot.width())))
    painter.drawText(QRectF(plot.left(), plot.top() - 1.2 * line_h, plot.width(), line_h), Qt.AlignLeft, title)
    for dashed in (False, True):
        path = QPainterPath()
        first = True
        for i in range(n):
            if not np.isfinite(profile[i]) or (unsure[i] != dashed and (i == 0 or unsure[i - 1] != dashed)):
                first = True
                continue
            if first:
                path.moveTo(pt(i, profile[i]))
                first = False
            else:
                path.lineTo(pt(i, profile[i]))
        painter.setPen(QPen(fg, 2, Qt.DashLine if dashed else Qt.SolidLine))
        painter.drawPath(path)


def _wedge(painter, box: QRectF, start_clinical: float, end_clinical: float, laterality, colour: QColor, fg):
    span = (end_clinical - start_clinical) % 360.0
    a0 = _screen_deg(start_clinical, laterality)
    sign = 1.0 if laterality == "OS" else -1.0  # clinical angles run clockwise on screen for OD
    painter.setBrush(colour)
    painter.setPen(QPen(fg, 1))
    painter.drawPie(box, int(a0 * 16), int(sign * span * 16))


def _label_at(painter, centre: QPointF, radius: float, clinical_deg: float, laterality, text: str):
    a = math.radians(_screen_deg(clinical_deg, laterality))
    p = QPointF(centre.x() + radius * math.cos(a), centre.y() - radius * math.sin(a))
    lines = text.split("\n")
    w = max(painter.fontMetrics().horizontalAdvance(t) for t in lines) + 4
    h = painter.fontMetrics().height() * len(lines)
    painter.drawText(QRectF(p.x() - w / 2, p.y() - h / 2, w, h), Qt.AlignCenter, text)


def sector_text(report, name: str) -> str:
    """A sector's RNFL thickness as printed everywhere (structure page, PDF, OU view): "47", or
    "~45" (rounded to 5 µm) where it rests on unsure A-scans, so it gets no precise-looking number
    (the quality notes say why); "" where the report has no value for it."""
    value = (getattr(report, "sectors", None) or {}).get(name)
    unsure = name in getattr(report, "uncertain_sectors", ())
    return _thickness_text(value, unsure)


def _thickness_text(value, unsure: bool) -> str:
    if value is None or not np.isfinite(value):
        return ""
    return f"~{5 * round(value / 5):.0f}" if unsure else f"{value:.0f}"


def _arc_unsure(report, start: float, end: float) -> bool:
    """The arc rests on unsure A-scans as a sector printed "~" does (``rnfl.arc_unsure``, the one rule)."""
    return rnfl.arc_unsure(getattr(report, "unsure_profile", None), start, end)


def quadrant_text(report, name: str) -> str:
    """A quadrant's thickness as a sector's is printed: "~120" where it rests on unsure A-scans (the
    quadrants and clock hours printed a precise number beside a "~" sector, walk-through); the CSV's
    ``rnfl_uncertain_quadrants`` names the same quadrants (``rnfl.uncertain_quadrants``)."""
    return _thickness_text((getattr(report, "quadrants", None) or {}).get(name),
                           name in rnfl.uncertain_quadrants(getattr(report, "unsure_profile", None)))


def clock_text(report, hour: int) -> str:
    """A clock hour's thickness, "~" where it rests on unsure A-scans (see ``quadrant_text``; the CSV's
    ``rnfl_uncertain_clock_hours``)."""
    return _thickness_text((getattr(report, "clock_hours", None) or {}).get(hour),
                           hour in rnfl.uncertain_clock_hours(getattr(report, "unsure_profile", None),
                                                              report.laterality))


def _wheel_font(painter: QPainter, size: float, share: float, least_px: int) -> None:
    """The wheel's labels sized by the wheel (``share`` of its width in pixels), never smaller than
    ``least_px`` (about the page's text): on the printed page they were a fraction of the wheel they
    label (walk-through)."""
    font = QFont(painter.font())
    font.setPixelSize(max(int(round(size * share)), least_px, 6))
    painter.setFont(font)


def wheel_class(report, name: str) -> str:
    """The class a sector wheel colours ``name`` by ("global" for its centre, else a Garway-Heath sector):
    normal / borderline / outside, or "" (grey, not classified). The one rule for this page's wheel and the
    OU view's (and so the OU report's): the OU wheel painted its centre grey whatever the global class, a
    yellow G on its own read grey, "not classified", beside its other eye (ninth walk-through)."""
    classes = getattr(report, "classes", None) or {}
    return str(classes.get(name if name == "global" else f"sector_{name}", ""))


def global_rnfl_text(value: float, unsure: bool = False) -> str:
    """The centre of a sector wheel: the global RNFL, named and with its unit, "~" where it is approximate
    (``StructureReport.global_uncertain``, walk-through H121, U1). The Structure panel's and the PDF's wheel said
    "G 53" and the OU view's "RNFL 53 µm", one number under two names (walk-through H91, W17)."""
    return f"RNFL\n{_thickness_text(value, unsure) or 'n/a'} µm"


def fit_in_circle(font: QFont, text: str, diameter: float) -> QFont:
    """``font``, made smaller until ``text`` fits the square inside a wheel's centre circle of ``diameter``: at the
    wheel's smaller sizes "RNFL loading…" ran out over the sectors (walk-through H82, W17)."""
    font = QFont(font)
    room = diameter / math.sqrt(2.0)  # the square inscribed in the circle
    pixels = font.pixelSize() > 0  # the wheels on the page are sized in pixels (_wheel_font), the OU view's in points
    size = font.pixelSize() if pixels else font.pointSizeF() if font.pointSizeF() > 0 else 9.0
    least, step = (6, 1) if pixels else (5.0, 0.5)
    while size > least:
        if pixels:
            font.setPixelSize(int(size))
        else:
            font.setPointSizeF(size)
        box = QFontMetricsF(font).boundingRect(QRectF(0, 0, 10000, 10000), int(Qt.AlignCenter), text)
        if box.width() <= room and box.height() <= room:
            break
        size -= step
    return font


def _draw_sectors(painter: QPainter, box: QRectF, report, fg: QColor, label_px: int) -> None:
    lat = report.laterality
    for name, (start, end) in rnfl.SECTORS.items():
        _wedge(painter, box, start, end, lat, CLASS_COLOURS[wheel_class(report, name)], fg)
    inner = box.adjusted(box.width() * 0.3, box.height() * 0.3, -box.width() * 0.3, -box.height() * 0.3)
    painter.setBrush(CLASS_COLOURS[wheel_class(report, "global")])
    painter.drawEllipse(inner)
    painter.setPen(QColor(255, 255, 255))
    centre = box.center()
    painter.save()
    _wheel_font(painter, box.width(), 0.085, label_px)
    text = global_rnfl_text(report.rnfl_global_um, getattr(report, "global_uncertain", False))
    painter.setFont(fit_in_circle(painter.font(), text, inner.width()))
    painter.drawText(inner, Qt.AlignCenter, text)
    for name, (start, end) in rnfl.SECTORS.items():
        mid = (start + ((end - start) % 360.0) / 2.0) % 360.0
        _label_at(painter, centre, box.width() * 0.36, mid, lat, f"{name}\n{sector_text(report, name)}")
    painter.restore()


def _draw_clock(painter: QPainter, box: QRectF, report, fg: QColor, label_px: int) -> None:
    """The clock-hour ring around the quadrants, each hour numbered OUTSIDE the ring, as on a clock face: which
    cell was 7 o'clock could not be read (walk-through H65, W17), and numbers inside the cells, at the page's text
    size in the narrow panel, ran into the thickness values ("10107", walk-through H82, W3). Hours as on the
    fundus: 12 superior, 3 to the right (nasal for OD, temporal for OS)."""
    lat = report.laterality
    painter.save()
    _wheel_font(painter, box.width(), 0.036, label_px)  # never under the page's text (the narrow panel's rule)
    margin = painter.fontMetrics().height() * 1.1
    ring = box.adjusted(margin, margin, -margin, -margin)  # the hours go in the margin around it
    painter.setPen(fg)
    for h in range(1, 13):
        _label_at(painter, box.center(), ring.width() / 2 + margin * 0.5, rnfl.clock_hour_centre_deg(h, lat), lat,
                  str(h))
    painter.restore()
    for h in range(1, 13):
        c = rnfl.clock_hour_centre_deg(h, lat)
        _wedge(painter, ring, c - 15.0, c + 15.0, lat, CLASS_COLOURS[report.classes.get(f"clock_{h}", "")], fg)
    inner = ring.adjusted(ring.width() * 0.22, ring.height() * 0.22, -ring.width() * 0.22, -ring.height() * 0.22)
    for q, (start, end) in rnfl.QUADRANTS.items():
        _wedge(painter, inner, start, end, lat, CLASS_COLOURS[report.classes.get(f"quadrant_{q}", "")], fg)
    painter.setPen(QColor(255, 255, 255))
    centre = ring.center()
    painter.save()
    _wheel_font(painter, ring.width(), 0.06, label_px)
    for h in range(1, 13):
        _label_at(painter, centre, ring.width() * 0.39, rnfl.clock_hour_centre_deg(h, lat), lat, clock_text(report, h))
    for q, (start, end) in rnfl.QUADRANTS.items():
        mid = (start + ((end - start) % 360.0) / 2.0) % 360.0
        _label_at(painter, centre, ring.width() * 0.15, mid, lat, f"{q}\n{quadrant_text(report, q)}")
    painter.restore()


def _fmt(v, unit="", digits=2):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}{unit}"


def _disc_text(report, short: bool = False) -> str:
    global_um = _thickness_text(report.rnfl_global_um, getattr(report, "global_uncertain", False)) or "n/a"
    lines = [f"Global RNFL {global_um} µm ({report.classes.get('global') or 'not classified'})",
             f"Overall (worst of global, quadrants, sectors): {report.rnfl_class_text}",
             "Clock hours: µm only, not classed (no published normal range per clock hour)",
             "Sectors NS, NI: µm only, not classed (the quadrant's range would call normal eyes thin)"]
    if report.scan_pattern == "volume":
        lines += [f"Disc area {_fmt(report.disc_area_mm2, ' mm²')}", f"Cup area {_fmt(report.cup_area_mm2, ' mm²')}",
                  f"Rim area {_fmt(report.rim_area_mm2, ' mm²')}", f"Vertical C/D {_fmt(report.cup_to_disc)}",
                  f"Average C/D {_fmt(report.cup_to_disc_average)}", f"BMO-MRW {_fmt(report.bmo_mrw_um, ' µm', 0)}"]
    else:
        lines.append("Disc measures need an optic-disc cube")
    if report.quality.reasons and not short:  # the panel's header says them already
        lines.append("Quality notes: " + "; ".join(report.quality.reasons))
    foreign = normative.other_device(report.norms_source)
    lines.append(("Norms: Cirrus figures, ANOTHER DEVICE'S; not licensed, " if foreign else
                  "Norms: published Cirrus figures, not a licensed database, ") + "not age-adjusted (source: report)"
                 if short else "Normal figures: " + report.norms_source)
    return "\n".join(lines)


THICKNESS_RANGE_UM = (0.0, 250.0)  # colour scale of the en-face RNFL thickness map
#: the thickness map where nothing was measured (the disc and its margin band, ``analysis.map_without_disc_margin``):
#: a neutral grey, said in the legend, the PDF caption and Help (``MAP_BLANK_TEXT``). Transparent, the en-face's
#: bright disc showed through as a large pale disc beside the map's colours, with nothing saying it was not measured
#: (walk-through H91, W3 and W13).
MAP_BLANK_RGB = (150, 150, 150)


def map_blank_text() -> str:
    """The legend's words for ``MAP_BLANK_RGB``."""
    from octviewer.structure.analysis import DISC_MARGIN_BAND_UM

    return f"grey: disc + {DISC_MARGIN_BAND_UM:.0f} µm margin, not measured"


#: the thickness map's colour for a patch at the scale's top (250 µm or more) touching the grey (not measured) or the
#: cube's edge: painted the thickest colour it read as the thickest tissue of the eye, an isolated yellow streak in
#: an advanced glaucoma's corner (one B-scan of 309 µm between neighbours of 41, the segmentation running off at the
#: edge) and a yellow rim hugging the grey band (H95, V1). The display only: the measured values, and every figure
#: made from them, stay as measured.
MAP_EDGE_RGB = (70, 70, 70)


#: the values a patch of ``MAP_EDGE_RGB`` runs on into: the scale's yellow and yellow-green (80 % of its top and
#: up). Cut at the top alone, the same streak went on in yellow past the dark grey (walk-through H104, X1: the
#: advanced-glaucoma demo's corner streak 309 ... 240, 216, 214 µm between neighbours of ~45)
MAP_EDGE_RUN_UM = 0.8 * THICKNESS_RANGE_UM[1]


def map_edge_text() -> str:
    """The legend's words for ``MAP_EDGE_RGB``."""
    return f"dark grey: {THICKNESS_RANGE_UM[1]:.0f} µm or more at the grey or the scan's edge, with the " \
        f"{MAP_EDGE_RUN_UM:.0f} µm or more it runs on into: read as a segmentation error, not thick tissue"


def edge_artefacts(thickness_um: np.ndarray) -> np.ndarray:
    """Where the thickness map is painted ``MAP_EDGE_RGB``: patches (8-connected) of values at or above the colour
    scale's top that touch the map's border or a value not measured, with the values of at least
    ``MAP_EDGE_RUN_UM`` connected to them (the streak's near-yellow run on). The RNFL is thickest in the arcuate
    bundles near the disc, which the grey band (disc + margin) leaves out; at the band's or the cube's edge such a
    value is the boundary leaving the layer (Help > Reading the results says so)."""
    import cv2

    t = np.asarray(thickness_um, np.float32)
    top = np.isfinite(t) & (t >= THICKNESS_RANGE_UM[1])
    if not top.any():
        return top
    near = cv2.dilate((~np.isfinite(t)).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    near[[0, -1], :] = near[:, [0, -1]] = True
    _count, labels = cv2.connectedComponents(top.astype(np.uint8), connectivity=8)
    seeds = top & np.isin(labels, np.unique(labels[top & near]))
    if not seeds.any():
        return seeds
    run = np.isfinite(t) & (t >= MAP_EDGE_RUN_UM)
    _count, labels = cv2.connectedComponents(run.astype(np.uint8), connectivity=8)
    return run & np.isin(labels, np.unique(labels[seeds]))


def enface_layers(report) -> tuple[np.ndarray, np.ndarray] | None:
    """RGBA images (n_bscans, width, 4) uint8 for the en-face view of a cube: the RNFL thickness
    map (a perceptually ordered colormap over THICKNESS_RANGE_UM, grey, ``MAP_BLANK_RGB``, inside the disc and
    the band at its margin, ``analysis.map_without_disc_margin``) and the deviation map (yellow borderline, red
    outside, transparent elsewhere), like Cirrus's."""
    if report is None or report.thickness_map_um is None:
        return None
    import cv2

    t = np.asarray(report.thickness_map_um, np.float32)
    lo, hi = THICKNESS_RANGE_UM
    grey = np.clip((np.nan_to_num(t, nan=lo) - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    rgb[~np.isfinite(t)] = MAP_BLANK_RGB  # not measured: grey, not the en-face showing through
    rgb[edge_artefacts(t)] = MAP_EDGE_RGB  # not the thickest tissue (H95, V1)
    thickness = np.dstack([rgb, np.full(t.shape, 255, np.uint8)])
    deviation = np.zeros(t.shape + (4,), np.uint8)
    if report.deviation_map is not None:
        for code, name in ((1, "borderline"), (2, "outside")):
            c = CLASS_COLOURS[name]
            deviation[report.deviation_map == code] = (c.red(), c.green(), c.blue(), 200)
    return thickness, deviation


def structure_page_image(report, width: int = 1240, height: int = 900, text: bool = True) -> QImage:
    """The page as a white-background image, for the PDF report's QTextDocument (addResource);
    ``text=False``: the figures only (the report prints ``head_text`` and ``printed_text`` beside it)."""
    image = QImage(width, height, QImage.Format_RGB888)
    image.fill(QColor(255, 255, 255))
    painter = QPainter(image)
    draw_structure_page(painter, QRectF(20, 20, width - 40, height - 40), report, dark=False, text=text)
    painter.end()
    return image
