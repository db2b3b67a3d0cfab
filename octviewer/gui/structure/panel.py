"""The structure panel beside the network's results: measured RNFL and disc against published normals.

A plain QWidget that paints the report with the same routine as the PDF page
(``page.draw_structure_page``), so screen and print never disagree. It holds no analysis: in the
window it follows the viewer state (``follow``); alone it is handed a report with ``show_report``.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from .page import NO_REPORT, draw_structure_page

MIN_HEIGHT = 340


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
        # at least the application's font: fitted to the dock, the text was ~7 px and cut off (fourth
        # walk-through); the page says how tall it then is, the panel takes that and its dock scrolls
        needed = draw_structure_page(painter, QRectF(self.rect()).adjusted(8, 8, -8, -8), self._report,
                                     dark=self._dark, empty_text=self._empty_text, min_point=self.font().pointSizeF())
        painter.end()
        height = max(MIN_HEIGHT, math.ceil(needed) + 16)
        if height != self.minimumHeight():
            self.setMinimumHeight(height)
