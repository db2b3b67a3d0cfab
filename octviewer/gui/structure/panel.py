"""The structure panel beside the network's results: measured RNFL and disc against published normals.

A plain QWidget that paints the report with the same routine as the PDF page
(``page.draw_structure_page``), so screen and print never disagree. It holds no analysis: in the
window it follows the viewer state (``follow``); alone it is handed a report with ``show_report``.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from .page import CLASS_COLOURS, NO_REPORT, analysed, draw_structure_page

MIN_HEIGHT = 340
#: what the wheels' and the profile's colours mean (the panel had no key, walk-through); the norms' percentiles
COLOUR_KEY = (("normal", "normal (≥ 5th percentile)"), ("borderline", "borderline (1st-5th)"),
              ("outside", "outside normal (< 1st)"), ("", "grey: not classified"))


def wheel_key_text(summary) -> str:
    """What the OU page's sector wheels mean, in one line: their colours, the sectors left grey, "~", and
    whose normal ranges classed them. The Structure panel and the scan report say it; the OU view and the
    OU report drew the same red, green and grey wheels with nothing saying so (eighth walk-through)."""
    from octviewer.structure.normative import UNCLASSED_SECTORS

    sources = dict.fromkeys(e.structure.norms_source for e in summary.eyes.values()
                            if e is not None and getattr(e.structure, "norms_source", ""))
    colours = "; ".join(f"{colour}: {text}" for colour, (_, text) in zip(("green", "yellow", "red"), COLOUR_KEY))
    return (f"Sector colours: {colours}; grey: not classified ({', '.join(UNCLASSED_SECTORS)} always: µm only); "
            f"~: approximate (boundary unsure). Norms: {' / '.join(sources) or 'none (nothing measured)'}")


def key_layout(font_metrics, width: float) -> tuple[list[tuple[float, int, str, str]], int]:
    """The colour key's entries flowed into rows of ``width`` px: ([(x, row, class, text)], rows). Flowed, not one
    line: the panel can be 190 px wide, too narrow for the key on one line. Apart from painting, so the painter
    knows the key's height before it lays out the page under it, and a test can check that no entry is cut."""
    swatch = font_metrics.height() * 0.8
    entries, x, row = [], 0.0, 0
    for name, text in COLOUR_KEY:
        w = swatch + 4 + font_metrics.horizontalAdvance(text) + 12
        if x > 0 and x + w > width:
            x, row = 0.0, row + 1
        entries.append((x, row, name, text))
        x += w
    return entries, row + 1


class StructurePanel(QWidget):
    def __init__(self, parent: QWidget | None = None, dark: bool = True):
        super().__init__(parent)
        self._report = None
        self._empty_text = NO_REPORT
        self._dark = dark
        self.setObjectName("structurePanel")
        # the page lays itself out upright when narrow and grows downwards (paintEvent): 420, then 320 px
        # wide made the dock of a 1024 px window scroll sideways with a wheel cut off (walk-through)
        self.setMinimumSize(QSize(190, MIN_HEIGHT))
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setToolTip("Measured RNFL and optic disc against published normal figures "
                        "(not a licensed normative database)")

    @property
    def report(self):
        return self._report

    @property
    def empty_text(self) -> str:
        return self._empty_text

    def show_report(self, report, empty_text: str = NO_REPORT) -> None:
        """Show a StructureReport, or ``empty_text`` for None (e.g. that the measurement is running)."""
        self._report = report
        self._empty_text = empty_text
        self.update()

    def follow(self, state) -> None:
        """Show the structure report of the scan on screen (or why there is none), whenever it changes."""
        def show():
            # with no scan open there is nothing to analyse, not "no analysis for this scan" (fourth walk-through)
            self.show_report(state.structure, state.structure_note or (NO_REPORT if state.volume is not None
                                                                       else "No scan open"))
        state.events.structure.connect(show)
        state.events.scan.connect(show)
        show()

    def paintEvent(self, event):  # noqa: N802 (Qt's name)
        painter = QPainter(self)
        if self._dark:
            painter.fillRect(self.rect(), self.palette().window())
        painter.setFont(self.font())
        line_h = painter.fontMetrics().height()
        entries, rows = key_layout(painter.fontMetrics(), self.width() - 16)
        key_h = rows * line_h + 6 if self._report is not None and analysed(self._report) else 0
        # at least the application's font: fitted to the dock, the text was ~7 px and cut off (fourth
        # walk-through); the page says how tall it then is, the panel takes that and its dock scrolls
        needed = draw_structure_page(painter, QRectF(self.rect()).adjusted(8, 8 + key_h, -8, -8), self._report,
                                     dark=self._dark, empty_text=self._empty_text, min_point=self.font().pointSizeF(),
                                     fg=self.palette().windowText().color() if self._dark else None)
        if key_h:  # at the top, seen without scrolling the dock: what green, yellow, red and grey mean
            painter.setPen(self.palette().windowText().color() if self._dark else Qt.black)
            swatch = line_h * 0.8
            for x, row, name, text in entries:
                top = 8 + row * line_h
                painter.fillRect(QRectF(8 + x, top + (line_h - swatch) / 2, swatch, swatch), CLASS_COLOURS[name])
                painter.drawText(QRectF(8 + x + swatch + 4, top, self.width(), line_h), Qt.AlignVCenter, text)
        painter.end()
        height = max(MIN_HEIGHT, math.ceil(needed) + 16 + key_h)
        if height != self.minimumHeight():
            self.setMinimumHeight(height)
