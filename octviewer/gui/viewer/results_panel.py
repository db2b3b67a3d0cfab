"""The results dock: eye, date, scan, the volume's probability and decision, VF estimates.

Everything here is PLAIN text (Qt.PlainText): names and values that come from files or model
metadata (manufacturer, model name) can never be rendered as markup, so a crafted file cannot draw
a fake result. Free text from files (DICOM ImageComments and the like) is not shown
at all; only the caveats the viewer itself recognises are (synthetic data, unknown spacing).
"""

from __future__ import annotations

import os
import weakref

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from octviewer.core import VF_INDICES, outside_normal
from octviewer.core.prediction import (
    VF_BASELINE_WORDS,
    VF_WORSE_BESIDE,
    probability_and_threshold,
    weak_vf_indices,
    worse_vf_indices,
)
from octviewer.core.text import printable
from octviewer.io.stacks import FOLDER_NOTE
from octviewer.model.meta import is_vf_baseline_caveat
from octviewer.model.precision import precision_words

from .state import CANCELLED, ViewerState

DISCLAIMER = "Research use only. Not a medical device."


def _label(style: str = "") -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


def plain(value, limit: int = 80) -> str:
    """A value from a file as one short line of text, hidden characters written as escapes
    (``core.text.printable``: a right-to-left override in a file name showed ``PAT<U+202E>mcd.1234.dcm``
    as "PAT4321.dcm..." in the window title, A7-11)."""
    text = " ".join(printable(str(value)).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


SYNTHETIC_MODEL = "model trained on SYNTHETIC data: not clinically valid"  # the predictor's note
UNVERIFIED_MODEL = "model file not verified"  # the start of the signing module's note


def is_synthetic_scan(volume) -> bool:
    return any("SYNTHETIC" in n for n in volume.notes)


def trust_warnings(volume, prediction) -> str:
    """The warnings that must never scroll out of sight: research use, a SYNTHETIC scan or model, a
    model file not verified. One compact line (wrapped), shown above the panel's scroll area."""
    parts = [DISCLAIMER]
    if volume is not None and is_synthetic_scan(volume):
        parts.append("SYNTHETIC scan (generated, not a patient).")
    notes = prediction.notes if prediction is not None else ()
    if prediction is not None and (prediction.synthetic_model or SYNTHETIC_MODEL in notes):
        parts.append("Model trained on SYNTHETIC data: not clinically valid.")
    if any(n.startswith(UNVERIFIED_MODEL) for n in notes):
        parts.append("Model file NOT VERIFIED (details below).")
    return " ".join(parts)


def scan_caveats(volume) -> list[str]:
    """Caveats the viewer states in its own words, never the file's free text (a SYNTHETIC scan is
    said in the trust line at the top, ``trust_warnings``)."""
    caveats = []
    if not volume.spacing.known:  # a folder of images is no "file" (walk-through H104, X7)
        what = "The images state" if volume.source and os.path.isdir(volume.source) else "The file states"
        caveats.append(f"{what} no physical spacing: no scale bar, pixels shown square.")
    # a folder of B-scans: numbers missing, neighbours unlike (io.stacks.folder_notes: the reader's own words)
    caveats += [n[len(FOLDER_NOTE):] for n in volume.notes if n.startswith(FOLDER_NOTE)]
    return caveats


def scan_date(volume) -> str:
    if not volume.acquired:
        return "date unknown"
    return volume.acquired.strftime("%Y-%m-%d %H:%M" if hasattr(volume.acquired, "hour") else "%Y-%m-%d")


#: beside an estimate the model's evaluation found WORSE than the class mean, in the panel's narrow VF grid, as the
#: OU view says it: the whole ``VF_WORSE_BESIDE`` is its tooltip, and the caveat right under the grid says "do not
#: use" (``short_vf_caveat``). The whole words took 4 lines of the grid's third column
WORSE_SHORT = "WORSE"


def short_vf_caveat(notes) -> str:
    """The caveat under the panel's VF estimates in few words; the prediction's whole note is its tooltip. The
    whole note (naming every weak index, then the WORSE ones again) took 6-7 lines of a 230 px dock and, with the
    WORSE text beside PSD over 4 lines, ended 20-75 px below the fold at 1280 x 800 and 1024 x 700 (walk-through
    H65, item 1). A note this cannot read back is shown whole."""
    weak, worse = weak_vf_indices(notes), worse_vf_indices(notes)
    note = next((str(n) for n in notes or () if is_vf_baseline_caveat(n)), "")
    if not weak:
        return plain(note, 400)
    weak_only = [VF_INDICES[k]["label"] for k in VF_INDICES if k in weak - worse]
    worse_labels = [VF_INDICES[k]["label"] for k in VF_INDICES if k in worse]
    parts = []
    if weak_only:
        parts.append(f"{', '.join(weak_only)} estimates {VF_BASELINE_WORDS} (model card): read as weak.")
    if worse_labels:
        parts.append(f"{', '.join(worse_labels)}: WORSE than {'it' if weak_only else 'the class-mean baseline'}"
                     + ("" if weak_only else " (model card)") + ", do not use.")
    return " ".join(parts)


BORDERLINE = 0.05  # |P - threshold| below this: the decision could flip with a repeat scan's noise


def near_threshold(probability: float, threshold: float) -> bool:
    return abs(float(probability) - float(threshold)) < BORDERLINE


def borderline_words(probability: float | None, threshold: float | None) -> str:
    """"borderline: within 0.05 of the threshold" for a result that close to it, else "": the words beside the verdict
    wherever one is printed (the scan PDF had them, the OU view and its report not: walk-through H107, Y2)."""
    if probability is None or threshold is None or not near_threshold(probability, threshold):
        return ""
    return f"borderline: within {BORDERLINE:.2f} of the threshold"


def quality_check_off_note(state) -> str:
    """What is said beside the verdict of a scan analysed with the quality check off that the check refuses
    (its measurement's verdict, ``state.structure.quality``), or "". With the check on such a scan gets no
    result; the panel and the PDF gave "0.00, normal" with no word of it, the Structure section alone saying
    REFUSED pages later (attack run 13, A13-11). By the result's own settings (``state.made_with``), not the ticks:
    a result made with the check on says nothing; one whose settings are not known (an OU view's eye) is judged by
    what stands: with the check on, no result stands on a scan it refuses."""
    from octviewer.pipeline.outputs import quality_check_cells

    report = state.structure
    made_with = getattr(state, "made_with", None)
    note = quality_check_cells(state.prediction, getattr(report, "quality", None), made_with)[1] if report else ""
    # the check ticked again after the result was made: the note read in the present tense under a ticked menu
    # entry, two opposite stories (walk-through H91, W5); the result stays until the scan is analysed again. On
    # screen only: a report names no state of the app (H95, V3)
    if note and made_with and getattr(getattr(state, "options", None), "gate", False):
        note += "; this result was made with the check off; it is on now: Analysis > Analyse (F5) applies it"
    return note


#: right under a verdict greyed out by ``refused_now`` (in the borderline line's place: no verdict stands to be near)
REFUSED_NOW = "NOT A RESULT NOW: the quality check refuses this scan; the greyed-out figures were made with it off"
#: how a figure that ``refused_now`` voids is drawn: grey and struck through, in the body's size
VOID_STYLE = "color: #8a8a8a; text-decoration: line-through"


def refused_now(state) -> bool:
    """True when the result on screen stands only because the quality check was off when it was made, the check is
    ticked again now, and it refuses the scan (``quality_check_off_note`` says so then). Its verdict kept its big
    green "normal" and its VF figures beside a small note, and a glance or a screenshot read "normal" for a scan of
    pure noise (walk-through H121, U2): the panel now greys its figures out until Analyse (F5) applies the check."""
    return "it is on now" in quality_check_off_note(state)


#: after a refusal's reason once Analysis > Quality check is unticked (``check_off_hint``)
CHECK_OFF_HINT = ("The check is off now: Analysis > Analyse (F5) analyses this scan anyway (a result on a scan the "
                  "check refuses)")


#: the panel's line under the reason left where Esc stopped the network (``state.CANCELLED``): "Analysis cancelled."
#: said nothing of how to get the result (walk-through H121, U12); the exports keep the reason alone
CANCELLED_HINT = "Analysis > Analyse (F5) runs it again"


def check_off_hint(state) -> str:
    """``CHECK_OFF_HINT`` for a scan on screen the quality check refused (no result, a refused measurement) while the
    check is off now, else "": unticking it changed nothing on screen, where ticking it again says that Analyse
    (F5) applies it (walk-through H115, Z6)."""
    off = not getattr(getattr(state, "options", None), "gate", True)
    if off and state.prediction is None and state.reason and state.refused and not state.analysing:
        return CHECK_OFF_HINT
    return ""


def made_by(p) -> str:
    """How the result on screen was made, in the Device menu's words: "0.6 s on cpu, bf16", or
    "remembered result (cpu, exact fp32)" for one read from the results store. It names the
    prediction's own device and precision, so after a Device switch it stays true until the next
    analysis replaces the result."""
    how = ", ".join(plain(x) for x in (p.device, precision_words(p.precision)) if x)
    return f"remembered result ({how})" if p.remembered else f"{p.seconds:.1f} s on {how}"


class ResultsPanel(QWidget):
    def __init__(self, state: ViewerState):
        super().__init__()
        self.state = state
        # wraps rather than scrolls sideways in a 1024 px window (Study panel open): at 190 px, with the
        # dock's vertical scroll bar, the dock also scrolled sideways and cut the panel's right edge
        self.setMinimumWidth(170)
        layout = QVBoxLayout(self)
        # compact: at 1280 x 800 the caveat on the VF estimates was cut off at the fold, at 1024 x 700
        # (Study panel open) PSD, the caveat and the measured VF were below it (fifth walk-through)
        layout.setContentsMargins(9, 4, 9, 4)
        layout.setSpacing(2)
        self.eye = _label("font-size: 16pt; font-weight: bold")
        self.scan = _label()
        self.caveats = _label("color: #ffb74d")
        self.probability = _label("font-size: 14pt; font-weight: bold")
        self.decision = _label("font-size: 16pt; font-weight: bold")
        # beside the decision in the normal font: "normal   (threshold 0.32)" at 16 pt took two lines
        self.threshold = _label()
        # "borderline" right under the verdict (the OU card has it beside it; beside it here, in the dock's width, it
        # broke "(threshold 0.42)" over two lines): the panel said it only as its last note, below the fold once a
        # study's checks were shown (walk-through H115, Z3)
        self.borderline = _label("color: #ffb74d; font-weight: bold")
        # the study's checks of the scan (set by the study controller), under the verdict: after the VF estimates and
        # their notes they were below the fold at 1024 x 700 (walk-through H129, V7)
        self.study_checks = _label("color: #ffb74d")
        self.vf = QGridLayout()
        self.vf.setVerticalSpacing(0)
        # right under the estimates, not among the notes below the fold: a reader of an MD figure must see at
        # once when it was not shown to beat the class-mean baseline (third walk-through)
        self.vf_note = _label("color: #ffb74d; font-style: italic")
        self.model = _label("color: #aaa")
        self.notes = _label("color: #ffb74d")
        self.reason = _label("color: #ffb74d")
        self.extra = _label()  # set by the study controller: measured VF beside the estimate (study/controller.py)
        # what "●" means, wherever one is drawn (``outside_key``): it came only under a study's measured VF, while the
        # demo's estimates carried ● with no key (walk-through H91, W9)
        self.key = _label("color: #aaa")
        # not in this widget's layout: the window puts it above the scroll area, so it never scrolls away
        self.trust = _label("color: #ffb74d; font-weight: bold")
        # why there is no result comes right under the scan, where the probability would be: below the
        # empty estimate rows it was cut off or off-screen at 1024 x 700 (fourth walk-through)
        decision = QHBoxLayout()
        decision.addWidget(self.decision, 0, Qt.AlignBottom)
        decision.addWidget(self.threshold, 1, Qt.AlignBottom)
        for w in (self.eye, self.scan, self.caveats, self.probability):
            layout.addWidget(w)
        layout.addLayout(decision)
        layout.addWidget(self.borderline)
        layout.addWidget(self.study_checks)
        layout.addWidget(self.reason)
        layout.addLayout(self.vf)
        layout.addWidget(self.vf_note)
        for w in (self.extra, self.key, self.model, self.notes):
            layout.addWidget(w)
        layout.addStretch(1)
        self.vf_labels: list[QLabel] = []
        state.events.scan.connect(self.refresh)
        state.events.analysis.connect(self.refresh)
        state.events.structure.connect(self.refresh)  # the quality check's verdict comes with it (A13-11)
        state.events.options.connect(self.refresh)  # the check ticked again: the note says so (W5)
        state.events.options.connect(self.fit_dock_later)  # and the hint unticking it adds is in sight (H115, Z6)
        self.refresh()

    def refresh(self):
        s, v, p = self.state, self.state.volume, self.state.prediction
        for label in self.vf_labels:
            self.vf.removeWidget(label)
            label.hide()  # at once: deleteLater waits for the event loop, and the old model's rows stayed drawn
            label.deleteLater()
        self.vf_labels = []
        self.trust.setText(trust_warnings(v, p))
        if v is None:
            self.eye.setText("")
            self.scan.setText("Open a scan (Ctrl+O).")
            for w in (self.caveats, self.probability, self.decision, self.threshold, self.borderline, self.vf_note,
                      self.model, self.notes, self.reason, self.key):
                w.setText("")
            self._hide_empty()
            return
        self.eye.setText(f"{v.laterality or 'eye unknown'}   {scan_date(v)}")
        self.scan.setText(f"{v.scan_pattern} scan, {v.n_bscans} B-scan{'' if v.n_bscans == 1 else 's'}, "
                          f"{plain(v.device or 'device unknown')}")
        self.caveats.setText("\n".join(scan_caveats(v)))
        if p is None:
            self.probability.setStyleSheet("font-size: 14pt; font-weight: bold")
            self.probability.setText("analysing…" if s.analysing else "")
            self.decision.setText("")
            self.threshold.setText("")
            self.borderline.setText("")
            self.model.setText("")
            self.notes.setText("")
            self.vf_note.setText("")
        else:
            void = refused_now(s)
            shown_p, shown_t = probability_and_threshold(p.probability, p.threshold)
            self.probability.setText(f"P(glaucoma) = {shown_p}")
            self.decision.setText(p.decision)
            self.threshold.setText(f"(threshold {shown_t})")
            self.borderline.setText(REFUSED_NOW if void else borderline_words(p.probability, p.threshold))
            colour = "#ef5350" if p.decision == "glaucoma" else "#66bb6a"
            self.decision.setStyleSheet(VOID_STYLE if void else f"font-size: 16pt; font-weight: bold; color: {colour}")
            self.probability.setStyleSheet(VOID_STYLE if void else "font-size: 14pt; font-weight: bold")
            self.threshold.setStyleSheet(VOID_STYLE if void else "")
            # said plainly in place of the normal range (W10), and no ●; every other estimate is marked as a measured
            # value is (walk-through H65, W11)
            worse = worse_vf_indices(p.notes)
            for row, (name, value) in enumerate(p.vf.items()):
                spec = VF_INDICES.get(name, {"label": name, "unit": "", "normal": (float("nan"),) * 2})
                lo, hi = spec["normal"]
                outside = outside_normal(name, value, worse)  # core's one rule for the ● marks: amber, as caveats
                cells = [spec["label"], f"{value:.1f} {spec['unit']}" + (" ●" if outside else ""),
                         WORSE_SHORT if name in worse else f"normal {lo:g} to {hi:g}"]
                for col, text in enumerate(cells):
                    label = _label(VOID_STYLE if void and col == 1
                                   else "color: #ffb74d; font-weight: bold" if col == 2 and name in worse
                                   else "color: #aaa" if col == 2 else "color: #ffb74d" if col == 1 and outside else "")
                    if col == 1 and outside:
                        label.setToolTip("outside the normal range")
                    if col == 2 and name in worse:
                        label.setToolTip(VF_WORSE_BESIDE)
                    label.setText(text)
                    self.vf.addWidget(label, row, col)
                    self.vf_labels.append(label)
            self.model.setText(f"model: {plain(p.model_name)}\n{made_by(p)}")
            self.vf_note.setText(short_vf_caveat(p.notes) if p.vf else "")
            self.vf_note.setToolTip("\n".join(plain(n, 400) for n in p.notes if is_vf_baseline_caveat(n)))
            notes = [plain(n, 200) for n in p.notes  # the synthetic one is in the trust line
                     if n != SYNTHETIC_MODEL and not is_vf_baseline_caveat(n)]
            if near_threshold(p.probability, p.threshold) and not void:
                notes.insert(0, f"close to the threshold (within {BORDERLINE:.2f}): a borderline result, read it "
                                "with the B-scans and the structure")
            self.notes.setText("\n".join(notes))
        hints = (check_off_hint(s), CANCELLED_HINT if s.reason == CANCELLED and not s.analysing else "")
        self.reason.setText("\n".join(t for t in (s.reason, *hints) if t) if s.reason
                            else quality_check_off_note(s))
        self._show_key()
        self._hide_empty()

    def _show_key(self) -> None:
        """The ● key under the estimates and the study's measured VF whenever either carries a ●: one line, said
        once (``ou_view.OUTSIDE_KEY``, the OU view's and Help's words)."""
        from octviewer.core.prediction import OUTSIDE_KEY, OUTSIDE_MARK

        mark = OUTSIDE_MARK.strip()
        marked = any(mark in label.text() for label in self.vf_labels) or mark in self.extra.text()
        self.key.setText(OUTSIDE_KEY if marked else "")
        self.key.setVisible(marked)

    def _hide_empty(self) -> None:
        """An empty label still takes a line of its font: with no result, the empty probability, decision
        and model lines left a gap that pushed the reason below the fold."""
        for w in (self.eye, self.scan, self.caveats, self.probability, self.decision, self.threshold, self.borderline,
                  self.study_checks, self.reason, self.vf_note, self.extra, self.model, self.notes):
            w.setVisible(bool(w.text()))

    def set_extra(self, text: str, checks: str = "") -> None:
        """Plain text the window adds under the estimates (measured VF and its difference), and the study's
        ``checks`` of the scan, which go under the verdict."""
        self.extra.setText(text)
        self.extra.setVisible(bool(text))
        self.study_checks.setText(checks)
        self.study_checks.setVisible(bool(checks))
        self._show_key()
        self.fit_dock_later()

    #: the least height the dock under the Results dock (the Structure panel) keeps when Results grows
    LEAST_BELOW_PX = 300

    def fit_dock(self, window, dock, scroll, below) -> None:
        """Size the Results ``dock`` to what it shows whenever a scan's results are in (``fit_dock_later``): its
        spare room goes to the ``below`` dock (the Structure panel), and it takes room back from it, down to
        ``LEAST_BELOW_PX``, when its text would run below its fold. At a fixed 470 px the Results dock kept ~200 px
        blank at 1600 x 975 while the Structure panel's sectors and disc figures took 15+ wheel steps
        (walk-through H65, W19). Once the user drags the divider between the two, it stays where they put it: the fit
        reset it with every scan."""
        # weak: the panel is the window's child, and a strong reference back kept every closed window alive
        # (tests/test_window_freed.py)
        self._fit = tuple(weakref.ref(x) for x in (window, dock, scroll, below))
        self.state.events.settled.connect(self.fit_dock_later)
        window.installEventFilter(self)  # a press on the window's own area is on a dock divider

    def eventFilter(self, watched, event) -> bool:
        """A mouse press on the main window itself, not on any of its widgets, is on a divider between its docks:
        the user sizes the docks from then on, and the fit leaves them be. A press on a label (the Study panel's
        summary, a Results line) is passed up to the window too: only one with no widget under it is the divider's,
        else one click on the Study panel kept the Results dock squeezed for good (walk-through H104, X6)."""
        if (event.type() == QEvent.Type.MouseButtonPress and self._fit is not None and watched is self._fit[0]()
                and watched.childAt(event.position().toPoint()) is None):
            self._fit = None
            watched.removeEventFilter(self)
        return False

    def fit_dock_later(self) -> None:
        if getattr(self, "_fit", None) is not None:
            QTimer.singleShot(0, self._fit_dock)  # once the labels' new text is laid out

    def _fit_dock(self) -> None:
        if self._fit is None:  # the user took the divider since this fit was asked for
            return
        if self.state.volume is None:  # "Open a scan" alone: squeezed to it, the next scan's verdict was cut (X6)
            return
        window, dock, scroll, below = (ref() for ref in self._fit)
        if window is None or dock is None or scroll is None or below is None:  # the window is closing
            return
        if (dock.isFloating() or below.isFloating() or not dock.isVisible() or not below.isVisible()
                or abs(dock.x() - below.x()) > 2 or below.y() <= dock.y()):  # not the two docks of one column
            return
        total = dock.height() + below.height()
        viewport = scroll.viewport()
        content = self.heightForWidth(viewport.width())
        content = content if content > 0 else self.sizeHint().height()
        need = dock.height() - viewport.height() + content + 4
        # what still runs below the fold, measured by the scroll area itself: the panel's size hint, taken at another
        # width than its word-wrapped lines have, under-read it and the measured VF block stayed cut (H82, W8)
        if (overflow := scroll.verticalScrollBar().maximum()) > 0:
            need = max(need, dock.height() + overflow + 4)
        if getattr(self, "_first_share", None) is None:  # the window's own split, before this ever moved it
            self._first_share = dock.height() / max(total, 1)
        # it grows back to the window's own split at least (a small window's Structure panel keeps less than
        # LEAST_BELOW_PX there: at 1024 x 700 the measured VF, added after the result, would stay below the fold)
        target = min(need, max(total - self.LEAST_BELOW_PX, round(self._first_share * total), dock.height()))
        if abs(target - dock.height()) > 8:
            window.resizeDocks([dock, below], [target, total - target], Qt.Vertical)

    def text(self) -> str:
        """Everything the panel shows, as a person reads it (for tests and accessibility)."""
        parts = [w.text() for w in (self.trust, self.eye, self.scan, self.caveats, self.probability)]
        parts += [" ".join(t for t in (self.decision.text(), self.threshold.text()) if t), self.borderline.text(),
                  self.study_checks.text(), self.reason.text()]
        parts += [label.text() for label in self.vf_labels] + [self.vf_note.text()]
        parts += [w.text() for w in (self.extra, self.key, self.model, self.notes)]
        return "\n".join(t for t in parts if t)
