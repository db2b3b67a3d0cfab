"""OU view: both eyes of one visit side by side, as vendor OU printouts show them.

Right eye on the left, left eye on the right, each drawn so that its temporal side faces out:
the en-face projections are in fundus orientation already (OD nasal to the right, OS nasal to the
left) and the RNFL sector wheel of the left eye is the mirror image of the right eye's. Below the
eyes, the inter-eye asymmetry table flags differences beyond published limits
(``octviewer.study.ou.ASYMMETRY_LIMITS``).

Analysis of the two eyes runs in a background task through the injected ``analyse(volume, cancel)
-> (Prediction | None, StructureReport | None)``: the view never builds a predictor. Without it the view shows the
measured VF and the en-face images only.
"""

from __future__ import annotations

import datetime as dt
import math
import os

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from octviewer.core import Cancelled, outside_normal
from octviewer.core.prediction import (
    OUTSIDE_KEY,
    OUTSIDE_MARK,
    VF_WORSE_BESIDE,
    probability_and_threshold,
    probability_digits,
    worse_vf_indices,
)
from octviewer.core.text import printable
from octviewer.model.meta import is_vf_baseline_caveat
from octviewer.study import StudyIndex
from octviewer.study.ou import (
    ASYMMETRY_DIGITS,
    SECTOR_DEGREES,
    SECTOR_NAMES,
    EyeSummary,
    VisitSummary,
    case_level,
    enface_image,
)
from octviewer.study.vf import VF_COMPARE_MAX_DAYS, vf_days_from_scan, vf_not_compared

from ..background import TaskSlot
from ..dialogs import as_literal
from ..structure.page import CLASS_COLOURS, fit_in_circle, global_rnfl_text, sector_text, wheel_class
from ..structure.panel import wheel_key_text
from ..viewer.results_panel import borderline_words
from .checks import (
    check_kind,
    check_lines,
    checks_of_fields_shown,
    left_out_lines,
    left_out_reason,
    people_groups,
    people_lines,
    result_gate_note,
)

FLAG_COLOUR = QColor("#ff6b6b")




def shown_difference(a, b, digits: int = 1) -> float | None:
    """``a - b`` as the two values shown beside it give it: 96.3 and 95.3 read +1.0, where the
    unrounded values gave +1.1 and a reader saw an arithmetic error."""
    if a is None or b is None or (isinstance(a, float) and np.isnan(a)) or (isinstance(b, float) and np.isnan(b)):
        return None
    return round(a, digits) - round(b, digits)


#: the limit cell of an asymmetry row with no limit: empty, it read as "within limits" beside a 5 dB measured-MD or an
#: 8.5 % VFI difference while the RNFL's red ASYMMETRIC drew the eye (walk-through H121, U9)
NO_LIMIT = "none set"


def no_limit_note() -> str:
    """What ``NO_LIMIT`` means, in the OU view's tooltip and under the OU report's table."""
    from octviewer.study.ou import ASYMMETRY_LIMITS

    return (f"{NO_LIMIT}: no inter-eye limit is applied to this row, so its OD - OS is never flagged ASYMMETRIC: read "
            f"a large difference yourself. Only global RNFL (beyond {ASYMMETRY_LIMITS['rnfl_global_um']:g} µm) and the "
            f"vertical cup-to-disc ratio (beyond {ASYMMETRY_LIMITS['cup_to_disc']:g}) are flagged, by published limits")


def asymmetry_digits(name: str, probability: int = 2) -> int:
    """Decimals of an asymmetry row, on screen and in the OU report alike; ``probability``: the visit's
    (``visit_probability_digits``)."""
    return probability if name == "probability" else ASYMMETRY_DIGITS.get(name, 1)


def visit_probability_digits(summary: VisitSummary) -> int:
    """The decimals of every probability and threshold of the visit's page: enough that no eye's probability is
    printed equal to the threshold it differs from, and one threshold printed one way on both eyes' cards, in the
    eyes' table and in the OU report (walk-through H107, Y1; ``core.prediction.probability_digits``)."""
    return probability_digits((e.probability, e.threshold) for e in summary.eyes.values()
                              if e is not None and e.probability is not None)


def measured_not_compared(summary: VisitSummary, name: str) -> str:
    """Why an asymmetry row gives no OD - OS ("" when it gives one): the eyes' scans name different people
    (``VisitSummary.eyes_apart``, every row); of measured VF, an eye's field lies more than ``VF_COMPARE_MAX_DAYS``
    from its scan, so its values are shown but not set against the other eye's, as its own column sets them
    against no estimate (one rule with Results)."""
    if summary.eyes_apart:
        return "not compared: " + summary.eyes_apart
    if not name.endswith("_measured"):
        return ""
    reasons = [eye_not_compared(summary.eyes[eye]) for eye in ("OD", "OS") if eye in summary.eyes]
    reasons = [why for why in reasons if why]
    return "not compared: " + "; ".join(reasons) if reasons else ""


def eye_not_compared(eye: EyeSummary) -> str:
    """Why an eye's measured field is not set against its scan's estimate ("" when it is, or there is none), in
    words that need no date. The rule is ``study.vf.vf_not_compared``'s (through ``EyeSummary.vf_compared``):
    far from the scan, or a date unknown (a manifest row's undated field was compared as if current, H56)."""
    m = eye.vf_measured
    if m is None or eye.vf_compared():
        return ""
    if m.date is None:
        return f"the {eye.eye} field's test date is unknown"
    if eye.scan_date is None:
        return f"the {eye.eye} scan's date is unknown"
    return f"the {eye.eye} field lies more than {VF_COMPARE_MAX_DAYS} days from its scan"


def averaged_text(eye: EyeSummary) -> str:
    """"mean of 2 scans" for an eye whose probability and VF estimates are the mean of several scans' results, else
    "": the OU view's and the OU report's 0.08 did not say it was a mean (walk-through H95, V5)."""
    return f"mean of {eye.n_predictions} scans" if eye.n_predictions > 1 else ""


def figures_from_text(eye: EyeSummary | None, name: bool = True) -> str:
    """Whose RNFL and disc figures an eye with several scans at the visit shows: "RNFL and disc figures:
    OS_20190407.dcm (one of 2 scans)", or "" (one scan, or none measured). ``name`` False (an anonymised report):
    the file is not named."""
    if eye is None or len(eye.paths) < 2 or not eye.structure_path:
        return ""
    which = printable(os.path.basename(eye.structure_path)) if name else "one scan's, file name withheld"
    return f"RNFL and disc figures: {which} (one of {len(eye.paths)} scans)"


def visit_checks(index: StudyIndex, patient_id: str, visit_label: str) -> list:
    """The study's checks of the visit's scans (``StudyIndex.warnings_for``), a misspelt measured field's only where
    that field is one the visit's scans are shown beside (``checks.checks_of_fields_shown``): the OU view gave the
    check of another visit's field too (walk-through H107, Y3)."""
    paths = [s.path for s in index.scans_for(patient_id, visit_label)]
    return checks_of_fields_shown(index.warnings_for(paths), index, paths)


def eyes_apart(index: StudyIndex, patient_id: str, scans, checks) -> str:
    """Why the visit's OD and OS are not compared, or "": under a 'people' check, its scans name more than one
    person (``checks.people_groups``)."""
    if not any(check_kind(c) == "people" for c in checks):
        return ""
    eyes = {s.path: s.eye for s in scans if s.eye in ("OD", "OS")}
    held = [{eyes[s.path] for s in group if s.path in eyes} for group in people_groups(index, patient_id)]
    held = [h for h in held if h]
    if len(held) > 1:  # twins scanned on one day: an eye's figures may be the mean of both (A29-5)
        return ("the scans of this visit name different people in their headers (the study's check): an eye's "
                "figures may be the mean of two people's scans")
    return ""


def analyse_visit(index: StudyIndex, patient_id: str, visit_label: str, analyse, progress, cancel) -> VisitSummary:
    """Task body: analyse every volume of both eyes of the visit, aggregate per eye (case level).
    Each file is read once, for its analysis and (the first of each eye) its en-face image."""
    from octviewer.io import VolumeReadError, load_volume

    # a re-dated copy of an earlier scan is left out where the visit has the eye's own scan (the Trend's rule,
    # ``StudyIndex.counted_scans``): the OU view showed the copy's RNFL, the earlier image (attack run 16, A16-15);
    # the visit's checks are those of every scan listed at it, the copy's included
    scans = index.counted_scans(patient_id, visit_label)
    summary = VisitSummary(patient_id, visit_label, checks=visit_checks(index, patient_id, visit_label))
    summary.left_out = left_out_lines(index, patient_id, sorted({s.eye for s in scans if s.eye}))
    summary.people = people_lines(index, patient_id, summary.checks)
    summary.eyes_apart = eyes_apart(index, patient_id, scans, summary.checks)
    done = 0
    for eye in ("OD", "OS"):
        mine = [s for s in scans if s.eye == eye]
        if not mine:
            continue
        results, errors, enface, acquired, analysed = [], [], None, {}, []
        for scan in mine:
            if cancel.is_set():
                raise Cancelled()
            try:
                volume = load_volume(scan.path)
                acquired[scan.path] = volume.acquired
                summary.header_ids.append(getattr(volume, "patient_id", None) or "")  # the report names both
                if enface is None:
                    enface = enface_image(volume)
                if analyse is not None:
                    results.append(analyse(volume, cancel))
                    analysed.append(scan.path)
            except Cancelled:
                raise
            except VolumeReadError as exc:
                errors.append(str(exc))
            except Exception as exc:  # one bad scan must not hide the other eye
                errors.append(f"{type(exc).__name__}: {exc}")
            done += 1
            progress(done, len(scans))
        eye_summary = case_level(eye, [s.path for s in mine], results)
        # the file whose RNFL and disc figures the eye shows (the first measured), named where it has several (V5)
        eye_summary.structure_path = next((path for path, (_, report) in zip(analysed, results)
                                           if report is not None and report is eye_summary.structure), "")
        # the field Results gives this eye's (latest) scan, far or near (one function): the visit's 45-day
        # match left a field a year off blank here ("MD measured n/a") where Results showed it "not compared"
        latest = max(mine, key=lambda s: s.date or dt.date.min)
        eye_summary.vf_measured = index.measured_vf_for_scan(latest.path)
        # dated as Results dates it, by the file's own acquisition time: a manifest row giving the visit a year
        # before the header's date made the OU view compare a field Results called "not compared" (H56, 1)
        when = acquired.get(latest.path)
        eye_summary.scan_date = (when.date() if isinstance(when, dt.datetime) else when) or latest.date
        eye_summary.synthetic = eye_summary.synthetic or any(s.synthetic for s in mine)
        eye_summary.error = "; ".join(errors)
        # any of the eye's scans the quality check refuses (check off), said beside the verdict (A13-17)
        eye_summary.gate_note = next((n for n in (result_gate_note(p, s) for p, s in results) if n), "")
        eye_summary.enface = enface
        summary.eyes[eye] = eye_summary
    return summary


class SectorWheel(QWidget):
    """Garway-Heath RNFL sectors coloured by class; the left eye's wheel is mirrored (temporal out).
    The wheel knows its eye: the grey wheel of an eye with no scan took the right eye's layout from the
    missing summary (T on the left under a left eye's "N ... T", fifth walk-through)."""

    def __init__(self, eye: str = "OD", parent=None):
        super().__init__(parent)
        self.eye = eye
        self.summary: EyeSummary | None = None
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Preferred)
        self.loading = False  # the eye's analysis runs: the centre says so

    def set_summary(self, summary: EyeSummary | None, loading: bool = False) -> None:
        self.summary = summary
        self.loading = loading and summary is None
        self.update()

    def centre_text(self, total, unsure: bool = False) -> str:
        """The centre's words: the global RNFL ("~" where approximate), "loading…" while the eye's analysis runs (it
        read "RNFL n/a" for those seconds, walk-through H65, W7, left by H68), else "n/a"."""
        if total is not None:
            return global_rnfl_text(total, unsure)
        return "RNFL\nloading…" if self.loading else "RNFL\nn/a"

    def sector_label(self, name: str) -> str:
        """What the wheel prints in a sector: its name and value, "~45" where the value is uncertain
        (the structure page's formatting, so the OU view and the PDF say the same)."""
        s = self.summary
        text = sector_text(s.structure, name) if s is not None and s.structure is not None else ""
        return f"{name}\n{text}" if text else name

    def screen_angle(self, clinical_deg: float) -> float:
        """Qt angle (counter-clockwise from 3 o'clock) of a clinical angle (0 = temporal, 90 = superior)."""
        return clinical_deg % 360 if self.mirrored else (180 - clinical_deg) % 360

    @property
    def mirrored(self) -> bool:
        """True for a left eye's wheel (the summary's eye when there is one, else the column's)."""
        return (self.summary.eye if self.summary is not None else self.eye) == "OS"

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        side = min(self.width(), self.height()) - 24
        rect = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        centre = rect.center()
        s = self.summary
        has_structure = s is not None and s.structure is not None
        for name in SECTOR_NAMES:
            lo, hi = SECTOR_DEGREES[name]
            span = (hi - lo) % 360
            cls = wheel_class(s.structure, name) if has_structure else ""
            painter.setPen(QPen(QColor("#202124"), 2))
            painter.setBrush(CLASS_COLOURS.get(cls, CLASS_COLOURS[""]))
            a0, a1 = self.screen_angle(lo), self.screen_angle(hi)
            start = a0 if self.mirrored else a1
            painter.drawPie(rect, int(start * 16), int(span * 16))
            mid = math.radians(self.screen_angle(lo + span / 2))
            r = side * 0.36
            pos = QPointF(centre.x() + r * math.cos(mid), centre.y() - r * math.sin(mid))
            painter.setPen(QColor("white"))
            painter.drawText(QRectF(pos.x() - 24, pos.y() - 14, 48, 28), Qt.AlignCenter, self.sector_label(name))
        inner = QRectF(centre.x() - side * 0.2, centre.y() - side * 0.2, side * 0.4, side * 0.4)
        painter.setPen(QPen(QColor("#202124"), 2))
        # the centre is the global RNFL's class, as on the Structure panel (page.wheel_class): it was always grey
        painter.setBrush(CLASS_COLOURS.get(wheel_class(s.structure, "global") if has_structure else "",
                                           CLASS_COLOURS[""]))
        painter.drawEllipse(inner)
        painter.setPen(QColor("white"))
        total = s.rnfl_global_um() if has_structure else None
        text = self.centre_text(total, bool(has_structure and getattr(s.structure, "global_uncertain", False)))
        painter.setFont(self.centre_font(painter.font(), text, inner.width()))
        painter.drawText(inner, Qt.AlignCenter, text)
        painter.end()

    @staticmethod
    def centre_font(font: QFont, text: str, diameter: float) -> QFont:
        """``font``, made smaller until ``text`` fits the centre circle (page.fit_in_circle, the panel's rule)."""
        return fit_in_circle(font, text, diameter)


def vf_test_date(measured, scan_acquired, dated: bool = True) -> str:
    """When the measured field was done, and how far from the scan: a field a year off the scan is
    read differently (walk-through: no date was shown), and one more than ``VF_COMPARE_MAX_DAYS`` off
    is said to be not compared (eighth walk-through: 277 days gave a difference with no word), as is one
    of unknown date (``study.vf.vf_not_compared``: it was compared as if current, H56). The Results panel, the
    OU view and the OU PDF say it alike (the OU view gave no date: walk-through H65, W4).
    ``dated`` False (an anonymised report) gives the interval only."""
    why = vf_not_compared(measured.date, scan_acquired)  # the one rule, with its reason in words
    if measured.date is None:
        return f"VF test date unknown: not compared (it cannot be placed within {VF_COMPARE_MAX_DAYS} days of the scan)"
    days = vf_days_from_scan(measured.date, scan_acquired)
    interval = ""
    if days is not None:
        interval = ("the same day as the scan" if days == 0 else
                    f"{abs(days)} day{'s' if abs(days) != 1 else ''} {'after' if days > 0 else 'before'} the scan")
    note = f": not compared, {why}" if why else ""
    if dated:
        inner = interval + note if interval else note[2:]
        return f"VF tested {measured.date.isoformat()}" + (f" ({inner})" if inner else "")
    return f"VF tested {interval or 'on a date'}{note} (date withheld: anonymised report)"


def _say(label: QLabel, text: str) -> None:
    """A line of the eye's column shown only with something to say: an empty one took its height and the
    layout's spacing, and the OU dialog no longer fitted a 700 px screen (walk-through H65, W4)."""
    label.setText(text)
    label.setVisible(bool(text))


class EyeColumn(QFrame):
    """One eye: en-face image with orientation marks, sector wheel, predicted vs measured VF."""

    ROWS = ("probability", "vfi", "md", "psd")

    def __init__(self, eye: str, parent=None):
        super().__init__(parent)
        self.eye = eye
        self.setFrameShape(QFrame.StyledPanel)
        self.title = QLabel(f"<b>{eye}</b> · {'right' if eye == 'OD' else 'left'} eye")
        self.title.setAlignment(Qt.AlignCenter)
        font = QFont(self.title.font())
        font.setPointSize(font.pointSize() + 3)
        self.title.setFont(font)
        self.image = QLabel("no scan")
        self.image.setTextFormat(Qt.PlainText)  # "scan unreadable: <the reader's error>" names the file
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setWordWrap(True)  # "no scan of this eye at this visit" was cut at the image's width
        self.image.setMinimumSize(160, 160)
        temporal, nasal = QLabel("T"), QLabel("N")
        outer, inner = (temporal, nasal) if eye == "OD" else (nasal, temporal)
        self.orientation = (outer.text(), inner.text())  # left and right of the image on screen
        image_row = QHBoxLayout()
        image_row.addWidget(outer)
        image_row.addWidget(self.image, 1)
        image_row.addWidget(inner)
        self.wheel = SectorWheel(eye)
        self.decision = QLabel("")
        self.decision.setAlignment(Qt.AlignCenter)
        self.decision.setWordWrap(True)  # the quality check's note under the verdict (A13-17)
        self.decision.setTextFormat(Qt.PlainText)
        self.table = QTableWidget(len(self.ROWS), 3)
        self.table.setHorizontalHeaderLabels(["predicted", "measured", "pred − meas"])
        self.table.setVerticalHeaderLabels(["Probability", "VFI (%)", "MD (dB)", "PSD (dB)"])
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().setDefaultSectionSize(22)
        # the columns share the width: a narrow dialog scrolled each eye's four rows sideways
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        # its header and four rows, no empty strip under them (4 * 22 + 30 left 10 px bare): with the measured
        # field's date under it the OU dialog still fits a 700 px screen (walk-through H65, W4)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + len(self.ROWS) * 22
                                  + 2 * self.table.frameWidth())
        # the measured field's test date and days from the scan, as the Results panel says it (walk-through H65, W4)
        self.vf_when = QLabel("")
        self.vf_when.setWordWrap(True)
        self.vf_when.setTextFormat(Qt.PlainText)
        # an eye with several scans at the visit: the file whose RNFL and disc figures the wheel shows (H95, V5);
        # under the table, so the OU report's picture (cut under the verdict) never prints a file name
        self.figures_from = QLabel("")
        self.figures_from.setWordWrap(True)
        self.figures_from.setTextFormat(Qt.PlainText)
        self.error = QLabel("")
        self.error.setTextFormat(Qt.PlainText)  # a read error starts with the file's name (A7-18)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff6b6b")
        # the en-face and the wheel side by side: one above the other, the OU dialog needed 895 px of
        # height, more than a 1024 x 700 screen has (walk-through)
        figures = QHBoxLayout()
        figures.addLayout(image_row, 1)
        figures.addWidget(self.wheel, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addLayout(figures)
        layout.addWidget(self.decision)
        layout.addWidget(self.table)
        layout.addWidget(self.vf_when)
        layout.addWidget(self.figures_from)
        layout.addWidget(self.error)
        for label in (self.vf_when, self.figures_from, self.error):
            label.setVisible(False)  # shown with a text only: an empty line still took its height and spacing

    def cell(self, row: str, column: int) -> str:
        item = self.table.item(self.ROWS.index(row), column)
        return item.text() if item is not None else ""

    def show_loading(self) -> None:
        """The eye has a scan at this visit, still being read and analysed: it said "no scan of this eye at this
        visit" for the seconds that took, the eye open in the main window too (walk-through H65, W7)."""
        self.show_summary(None, "loading…")
        self.wheel.set_summary(None, loading=True)

    def show_summary(self, s: EyeSummary | None, empty: str = "no scan of this eye at this visit",
                     digits: int | None = None) -> None:
        """``s`` None: nothing to show, ``empty`` says why (no scan, or ``show_loading``)."""
        self.table.clearContents()
        self.table.setToolTip("")
        self.decision.setToolTip("")
        _say(self.vf_when, "")
        _say(self.figures_from, figures_from_text(s))
        self.wheel.set_summary(s)
        if s is None:
            self.image.setPixmap(QPixmap())
            self.image.setText(empty)
            self.decision.setText("")
            _say(self.error, "")
            return
        if s.enface is None:  # no scan of the eye could be read: it is there, but unreadable (W7)
            self.image.setPixmap(QPixmap())
            self.image.setText(f"scan unreadable: {s.error}" if s.error else "no en-face image")
        else:
            h, w = s.enface.shape
            qimage = QImage(s.enface.data, w, h, w, QImage.Format_Grayscale8).copy()
            self.image.setPixmap(QPixmap.fromImage(qimage).scaled(200, 200, Qt.KeepAspectRatio,
                                                                  Qt.SmoothTransformation))
        if s.probability is not None:
            if digits is None:  # never equal-looking (X8); the visit's decimals where given (Y1)
                shown_p, shown_t = probability_and_threshold(s.probability, s.threshold)
            else:
                shown_p, shown_t = f"{s.probability:.{digits}f}", f"{s.threshold:.{digits}f}"
            # the word on the card, its reason in the tooltip and the OU report: the card's line has room for one
            # line, and a second was drawn over the en-face image in a short dialog (walk-through H107, Y2)
            borderline = borderline_words(s.probability, s.threshold)
            self.decision.setToolTip(borderline)
            self.decision.setText(f"{s.decision.upper()} (threshold {shown_t})"
                                  + ("  · borderline" if borderline else "")
                                  + ("  · SYNTHETIC" if s.synthetic else "")
                                  + (f"  · {averaged_text(s)}" if averaged_text(s) else "")
                                  + (f"\n{s.gate_note}" if s.gate_note else ""))
            self._set("probability", 0, shown_p)
            if averaged_text(s):  # the cell is narrow: the verdict above says it, the cell's tooltip too
                self.table.item(self.ROWS.index("probability"), 0).setToolTip(
                    f"P(glaucoma) and the VF estimates: {averaged_text(s)}")
        else:
            why = s.error or s.refusal()  # said, not only "not analysed" (walk-through H107, Y5)
            self.decision.setText("not analysed" + (f": {why}" if why else "")
                                  + ("  · SYNTHETIC data" if s.synthetic else ""))
        # a predicted index the model's evaluation found WORSE than the class mean: never marked, and said so
        # beside it, as the results panel and the PDFs do (walk-through H65, W10/W11)
        worse = worse_vf_indices(s.notes)
        compared = s.vf_compared()
        for row in s.vf_comparison():
            for column, value, fmt in ((0, row.predicted, "{:.1f}"), (1, row.measured, "{:.1f}"),
                                       (2, shown_difference(row.predicted, row.measured), "{:+.1f}")):
                if column == 2 and not compared and row.measured is not None:
                    self._set(row.name, column, "not compared")
                elif value is not None:  # marked as in the results panel (the OU view had no mark: walk-through)
                    worse_here = worse if column == 0 else ()  # column 0 predicted, 1 measured
                    mark = OUTSIDE_MARK if column < 2 and outside_normal(row.name, value, worse_here) else ""
                    unit = " pp" if column == 2 and row.name == "vfi" else ""  # percentage points, not %
                    self._set(row.name, column, fmt.format(value) + unit + mark
                              + (" WORSE" if column == 0 and row.name in worse else ""))
                    if column == 0 and row.name in worse:
                        self.table.item(self.ROWS.index(row.name), column).setToolTip(VF_WORSE_BESIDE)
        if s.vf_measured is not None:
            far = "" if compared else f": not compared, {eye_not_compared(s)}"  # the one rule's reason
            when = s.vf_measured.date.isoformat() if s.vf_measured.date else "unknown date"
            self.table.setToolTip(f"measured VF of {when}{far}")
            _say(self.vf_when, "measured " + vf_test_date(s.vf_measured, s.scan_date))
        _say(self.error, s.error if s.enface is not None else "")  # else said in the image's place, once

    def _set(self, row: str, column: int, text: str) -> None:
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.table.setItem(self.ROWS.index(row), column, item)


class OUView(QWidget):
    """Show a visit with ``show_visit(index, patient_id, visit_label, analyse)``."""

    ready = Signal(object)  # VisitSummary, when the analysis of the visit is complete

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("OUView")
        self.summary: VisitSummary | None = None
        self.tasks = TaskSlot(self)
        self.tasks.done.connect(self._on_done)
        self.tasks.failed.connect(self._on_failed)
        self.tasks.cancelled.connect(self._on_cancelled)
        self.header = QLabel("No visit selected")  # the only place a patient ID is shown
        # plain text, bold by its font: an ID (from a manifest or a DICOM header) holding <h1>NORMAL</h1> was
        # rendered as a large verdict above the eyes (attack run 7, A7-18)
        self.header.setTextFormat(Qt.PlainText)
        bold = QFont(self.header.font())
        bold.setBold(True)
        self.header.setFont(bold)
        # what the manifest and the scans' headers disagree about (``StudyIndex.warnings_for``): a manifest put
        # two patients' eyes under one ID and this view paired them without a word (eighth walk-through, item 3)
        self.checks = QLabel("")
        self.checks.setTextFormat(Qt.PlainText)
        self.checks.setWordWrap(True)
        self.checks.setStyleSheet("color: #ffb74d")
        self.checks.setVisible(False)
        self.synthetic_banner = QLabel("SYNTHETIC data or model: engineering use only, no clinical validity")
        self.synthetic_banner.setStyleSheet("color: #ff6b6b; font-weight: bold")
        self.synthetic_banner.setVisible(False)
        self.progress, self.cancel_button = self.tasks.bar, self.tasks.cancel_button
        self.columns = {"OD": EyeColumn("OD"), "OS": EyeColumn("OS")}
        self.eyes = QWidget()  # holds no patient identifier
        self.eye_pair = QWidget()  # grabbed for the report
        pair_layout = QHBoxLayout(self.eye_pair)
        pair_layout.setContentsMargins(0, 0, 0, 0)
        pair_layout.addWidget(self.columns["OD"])  # right eye on the left, as OU printouts do
        pair_layout.addWidget(self.columns["OS"])
        eyes_layout = QGridLayout(self.eyes)
        eyes_layout.setContentsMargins(0, 0, 0, 0)
        eyes_layout.addWidget(self.eye_pair, 0, 0, 1, 2)
        # the predictions' caveat on weak VF estimates, as the Results panel and the PDFs word it: the OU view
        # listed predicted VFI/MD/PSD and their inter-eye differences without it (seventh walk-through)
        self.vf_note = QLabel("")
        self.vf_note.setTextFormat(Qt.PlainText)
        self.vf_note.setWordWrap(True)
        self.vf_note.setStyleSheet("color: #ffb74d; font-style: italic")
        self.vf_note.setVisible(False)
        self.asymmetry_table = QTableWidget(0, 4)
        self.asymmetry_table.setHorizontalHeaderLabels(["OD", "OS", "OD − OS", "flag if |diff| >"])
        self.asymmetry_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.asymmetry_table.verticalHeader().setDefaultSectionSize(22)
        self.asymmetry_table.horizontalHeader().setStretchLastSection(True)
        self.asymmetry_table.setMinimumHeight(7 * 22 + 30)
        eyes_layout.addWidget(QLabel("<b>Inter-eye asymmetry</b>"), 1, 0, 1, 2)
        eyes_layout.addWidget(self.asymmetry_table, 2, 0, 1, 2)
        eyes_layout.addWidget(self.vf_note, 3, 0, 1, 2)  # under the table: above it, it pushed the table off a 640 px
        self.wheel_key = QLabel("")  # what the wheels' colours mean (panel.wheel_key_text), under the table too
        self.wheel_key.setTextFormat(Qt.PlainText)
        self.wheel_key.setWordWrap(True)
        eyes_layout.addWidget(self.wheel_key, 4, 0, 1, 2)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.header)
        layout.addWidget(self.checks)
        layout.addWidget(self.synthetic_banner)
        layout.addLayout(busy)
        layout.addWidget(self.eyes, 1)

    def show_visit(self, index: StudyIndex, patient_id: str, visit_label: str, analyse=None) -> None:
        self.header.setText(f"{patient_id} · visit {visit_label}")
        checks = visit_checks(index, patient_id, visit_label)
        eyes = {s.eye for s in index.scans_for(patient_id, visit_label)}
        lines = (check_lines(checks) + people_lines(index, patient_id, checks)
                 + left_out_lines(index, patient_id, sorted(e for e in eyes if e)))
        self.checks.setText("\n".join(lines))  # each named by its kind, as Results names it
        self.checks.setVisible(bool(lines))
        for eye, column in self.columns.items():
            if eye in eyes:
                column.show_loading()
            else:
                column.show_summary(None)
        self.asymmetry_table.setRowCount(0)
        self.vf_note.setText("")
        self.vf_note.setVisible(False)
        self.tasks.start(
            lambda progress, cancel: analyse_visit(index, patient_id, visit_label, analyse, progress, cancel))

    def cancel(self) -> None:
        self.tasks.cancel()

    def _on_failed(self, message: str) -> None:
        self.header.setText(self.header.text() + f" — analysis failed: {message.splitlines()[0]}")

    def _on_cancelled(self) -> None:
        self.header.setText(self.header.text() + " — cancelled")

    def _on_done(self, summary: VisitSummary) -> None:
        self.show_summary(summary)
        self.ready.emit(summary)

    def show_summary(self, summary: VisitSummary) -> None:
        self.summary = summary
        if summary.eyes_apart:  # on screen, not only in a cell's tooltip (walk-through H137, W4)
            line = f"OD − OS not compared: {summary.eyes_apart}"
            if line not in self.checks.text():
                self.checks.setText("\n".join(filter(None, [self.checks.text(), line])))
            self.checks.setVisible(True)
        probability = visit_probability_digits(summary)
        for eye, column in self.columns.items():
            column.show_summary(summary.eyes.get(eye), digits=probability)
        self.synthetic_banner.setVisible(summary.synthetic)
        caveats = dict.fromkeys(n for e in summary.eyes.values() if e is not None and e.vf_predicted
                                for n in e.notes if is_vf_baseline_caveat(n))
        self.vf_note.setText("\n".join(caveats))
        self.vf_note.setVisible(bool(caveats))
        # the ● key where a value of either eye carries one: the footer explained the colours and ~ only (W9)
        marked = any(OUTSIDE_MARK.strip() in c.cell(row, j)
                     for c in self.columns.values() for row in c.ROWS for j in (0, 1))
        self.wheel_key.setText(wheel_key_text(summary) + (f"\n{OUTSIDE_KEY}" if marked else ""))
        rows = summary.asymmetry()
        self.asymmetry_table.setRowCount(len(rows))
        self.asymmetry_table.setVerticalHeaderLabels([r.label for r in rows])
        for i, row in enumerate(rows):
            digits = asymmetry_digits(row.name, probability)
            apart = measured_not_compared(summary, row.name)
            values = [row.od, row.os, shown_difference(row.od, row.os, digits), row.limit]
            for j, value in enumerate(values):
                missing = value is None or (isinstance(value, float) and np.isnan(value))
                text = "" if missing else (f"{value:+.{digits}f}" if j == 2 else f"{value:.{digits}f}")
                why = ""
                if missing and j < 2:  # an eye's value: say why it is not there
                    eye = summary.eyes.get(("OD", "OS")[j])
                    why = eye.missing_reason(row.name) if eye is not None else "no scan of this eye at this visit"
                    if row.name.endswith("_measured") and eye is not None:  # not "no visual field recorded" (Z2)
                        why = left_out_reason(summary.left_out, ("OD", "OS")[j]) or why
                    text = "n/a"
                if j == 2 and apart and not missing:
                    text, why = "not compared", apart
                if j == 3 and missing:
                    text, why = NO_LIMIT, no_limit_note()
                item = QTableWidgetItem(text + (f"  {row.mark}" if j == 2 and row.mark else ""))
                if why:
                    item.setToolTip(as_literal(why))  # names the scan file: never rich text (A8-17)
                if row.flagged and j == 2:  # the difference: red beside an eye's value read as that eye outside
                    item.setForeground(FLAG_COLOUR)  # normal, the normal eye too (seventh walk-through)
                self.asymmetry_table.setItem(i, j, item)
        self.asymmetry_table.resizeColumnsToContents()
        self.lay_out_now()

    def lay_out_now(self) -> None:
        """Give the view the height its new text needs and lay it out at once, not at the event loop's next turn:
        until then the scroll area kept the view at its old height, and each card's new verdict line was drawn over
        its en-face image and sector wheel (a grab then, H112's of a four-line check header, showed it)."""
        for widget in (*self.columns.values(), self.eye_pair, self.eyes):  # the innermost first: each one's hints
            widget.layout().invalidate()  # are what the one around it sizes by, and are kept until its LayoutRequest
            widget.layout().activate()
        self.layout().invalidate()
        # with the wrapped lines' height for this width (the scroll area counts it too, but only at its next turn)
        need = max(self.minimumSizeHint().height(), self.heightForWidth(self.width()))
        if self.height() < need:
            self.resize(self.width(), need)
        self.layout().activate()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.tasks.shutdown()
        super().closeEvent(event)


__all__ = ["EyeColumn", "OUView", "SectorWheel", "analyse_visit", "averaged_text", "eye_not_compared",
           "figures_from_text", "measured_not_compared", "vf_test_date"]
