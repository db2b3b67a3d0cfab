"""The study browser: patients -> visits -> eyes -> scans, indexed in a worker thread.

The panel only shows the index and forwards the user's intent as signals; the window decides what
opening a scan, an OU view or a trend means. Indexing runs in a worker thread with a progress
bar and a Cancel button; a second request cancels the first and its late result is dropped.
Patient IDs appear in the tree (the user opened these files) but never in a log or status text
that could be copied into a bug report.
"""

from __future__ import annotations

import os
import re

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from octviewer.study import StudyIndex, index_folder, index_manifest
from octviewer.study.vf import VF_MATCH_DAYS, parse_date, vf_days_from_scan

from ..background import TaskSlot
from ..dialogs import as_literal
from ..viewer.render import bscans_text
from .checks import study_check_entries

ROLE = Qt.UserRole  # item data: ("patient", pid) / ("visit", pid, label) / ("eye", pid, label, eye) / ("scan", ...)
EYE_NAMES = {"OD": "OD (right eye)", "OS": "OS (left eye)", "": "eye unknown"}


def _vf_text(m, scan_date=None) -> str:
    """The eye's measured field in the tree, with its test date, and its days from the visit's scan where it
    lies beyond ``VF_MATCH_DAYS`` (a field the Results panel compares from further away: walk-through H65, W4)."""
    if m is None:
        return ""
    parts = [f"{label} {v:.1f}{unit}" for label, v, unit in (("MD", m.md_db, " dB"), ("VFI", m.vfi, "%"),
                                                              ("PSD", m.psd_db, " dB")) if v is not None]
    # the test date too: a field months from the visit is read differently (walk-through)
    when = f" (tested {m.date.isoformat()})" if m.date is not None else " (test date unknown)"
    days = vf_days_from_scan(m.date, scan_date)
    if days is not None and abs(days) > VF_MATCH_DAYS:
        when = f" (tested {m.date.isoformat()}, {abs(days)} days {'after' if days > 0 else 'before'} the scan)"
    return "measured VF: " + ", ".join(parts) + when


def wrappable(text: str) -> str:
    """``text`` with a zero-width space between the characters of each long unbroken run (a file or folder
    name): a word-wrapped label is at least as wide as its longest word, so one long scan name made the
    panel wider than its dock, which then scrolled sideways with its buttons' labels out of sight (seventh
    walk-through). Short words still wrap between words."""
    return re.sub(r"\S{17,}", lambda m: "\u200b".join(m.group()), text)


def visit_text(visit) -> str:
    """A visit's name in the tree: its label, with its date beside a label that is no date ("V2 (2019-03-04)"):
    visits are ordered by date, and labels alone read V2, V10, V3, V1 like a sorting bug (H51 walk-through)."""
    label = visit.label or "visit unknown"
    if visit.date is not None and parse_date(visit.label) != visit.date:
        return f"{label} ({visit.date.isoformat()})"
    return label


NAME_WIDTH = 210  # the name column's width where the dock has room


class _Tree(QTreeWidget):
    """The study tree: in a dock narrower than the name column, the column takes the visible width, so a
    name is elided where it shows (in the middle) rather than cut by the dock's edge (walk-through). The
    width the user dragged the column to is kept and comes back when the dock is wide enough again: every
    resize set it back to NAME_WIDTH (review H36 #12)."""

    def __init__(self):
        super().__init__()
        self._wanted = NAME_WIDTH  # the name column's width when the viewport has room: ours, or the user's
        self._fitting = False
        self.header().sectionResized.connect(self._resized)

    def _resized(self, column: int, _old: int, new: int) -> None:
        if column == 0 and not self._fitting:
            self._wanted = new

    def resizeEvent(self, event):  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fitting = True
        try:
            self.setColumnWidth(0, max(80, min(self._wanted, self.viewport().width())))
        finally:
            self._fitting = False


def problems_and_warnings(index: StudyIndex, limit: int, breaks: bool = True) -> str:
    """What the panel lists under the tree: the files left out, then the scans used with something to check
    (a manifest row its scan's header contradicts, one scan at two visits: eighth walk-through, item 3); one
    entry a line, each marked, its path broken at its separators (it read as one run of text, H51 item 5)."""
    def entries(text: str) -> str:
        return "\n".join("• " + (path_breaks(line) if breaks else line) for line in text.splitlines())

    listed, checks = index.problems_text(limit=limit), study_check_entries(index)
    if len(checks) > limit:
        checks = checks[:limit] + [f"... and {len(checks) - limit} more"]
    return "\n".join([*(["Left out:\n" + entries(listed)] if listed else []),
                      *(["Check (used as listed):\n" + entries("\n".join(checks))] if checks else [])])


#: the identity checks' words in the Study panel's summary line (``problems_summary``)
IDENTITY_CHECKS = {"people": "scans naming different people", "scripts": "a name in two scripts"}


def problems_summary(index: StudyIndex) -> str:
    """The one line above the (small, scrolling) list: how many entries of each kind it holds (a check said of
    several files, a repeat scan, is one entry: ``checks.study_check_entries``)."""
    checks = len(study_check_entries(index))
    parts = [f"{head}: {n}" for head, n in (("Notes", len(index.notes)), ("Left out", len(index.problems)),
                                            ("Check (used as listed)", checks)) if n]
    # what a check of a patient's identity is, in the line: a 'people' and a 'scripts' check read alike there
    # ("Check (used as listed): 1", walk-through H129, V3)
    who = [words for kind, words in IDENTITY_CHECKS.items() if any(w.kind == kind for w in index.warnings)]
    if who and parts:
        parts[-1] += f" ({', '.join(who)})"
    many = len(index.notes) + len(index.problems) + checks > 3
    return "; ".join(parts) + (" - scroll the list" if many and parts else "")


def set_tooltips(item) -> None:
    """Each cell's whole text as its tooltip: the dock elides the name and cuts the Details column, and only some
    cells had one ("measure…-09-24)", walk-through H65, W8)."""
    for column in range(item.columnCount()):
        if item.text(column) and not item.toolTip(column):
            item.setToolTip(column, as_literal(item.text(column)))
    for k in range(item.childCount()):
        set_tooltips(item.child(k))


def path_breaks(text: str) -> str:
    """``wrappable`` for a line naming files: long runs break after a path's separators (/ _ - .), and only
    runs still longer than 20 characters between every character; ``wrappable`` broke names mid-word."""
    def run(m) -> str:
        broken = re.sub(r"([/\\_.-])", "\\1\u200b", m.group())
        return re.sub(r"[^\s\u200b]{20,}", lambda k: "\u200b".join(k.group()), broken)
    return re.sub(r"\S{17,}", run, text)


#: Lines of text the list of problems and checks first shows before it scrolls (the splitter gives it more):
#: 20 checks filled the panel at 1024 x 700 and pushed the tree, OU view and Trend out of sight (H51
#: walk-through, item 5).
PROBLEM_LINES = 5


class StudyPanel(QWidget):
    open_requested = Signal(str)  # path of a scan the user selected
    ou_requested = Signal(str, str)  # patient_id, visit label
    trend_requested = Signal(str, str)  # patient_id, eye
    index_ready = Signal(object)  # StudyIndex

    def __init__(self, parent=None, cache_dir: str | None = None):
        super().__init__(parent)
        self.setObjectName("StudyPanel")
        self.index: StudyIndex | None = None
        self.cache_dir = cache_dir
        #: asked before the folder or manifest is chosen (File menu and this panel's buttons alike): False keeps
        #: the study on screen, and what runs with it (the window's StudyController asks about running work)
        self.may_open = lambda: True
        #: told when the folder or manifest dialog was cancelled after ``may_open`` said yes: nothing was opened
        self.open_dropped = lambda: None
        self.tasks = TaskSlot(self)
        self.tasks.done.connect(self._on_done)
        self.tasks.failed.connect(self._on_failed)
        self.tasks.cancelled.connect(self._on_cancelled)

        # short labels (the tooltips say it in full): "Open folder… Open manifest…" held the panel at
        # ~260 px, wider than its dock in a 1024 px window, so the panel scrolled sideways
        self.open_folder_button = QPushButton("Folder…")
        self.open_manifest_button = QPushButton("Manifest…")
        self.open_folder_button.setToolTip("Open a study folder (File > Open study folder…)")
        self.open_manifest_button.setToolTip("Open a study manifest CSV (File > Open study manifest…)")
        self.open_folder_button.clicked.connect(lambda: self.open_folder())
        self.open_manifest_button.clicked.connect(lambda: self.open_manifest())
        self.progress, self.cancel_button = self.tasks.bar, self.tasks.cancel_button
        self.status = QLabel("Open a folder of scans or a manifest CSV.")
        # plain text: it starts with the folder's (or manifest's) name, and a folder named "<h1>ALL NORMAL"
        # showed a big heading above the study (attack run 7, A7-17)
        self.status.setTextFormat(Qt.PlainText)
        self.status.setWordWrap(True)
        # the files and folders left out, each with its reason: one odd file never hides the study,
        # and the reader sees what to fix (plain text: file names are data, not markup)
        self.problems = QLabel("")
        self.problems.setTextFormat(Qt.PlainText)
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #ffb74d")
        self.problems_summary = QLabel("")
        self.problems_summary.setWordWrap(True)
        self.problems_summary.setStyleSheet("color: #ffb74d; font-weight: bold")
        self.problems_box = QScrollArea()
        self.problems_box.setWidget(self.problems)
        self.problems_box.setWidgetResizable(True)
        self.problems_box.setFrameShape(QScrollArea.NoFrame)
        self.problems_box.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # all of them in a window of their own, and the list beside the tree on a splitter the reader drags: a
        # box ~3 lines high held entries of 3-4 lines each (walk-through H65, W8)
        self.all_problems_button = QPushButton("Show all problems…")
        self.all_problems_button.setToolTip("The files left out and the scans to check, in a window of their own")
        self.all_problems_button.clicked.connect(self.show_all_problems)
        self.problems_dialog: QDialog | None = None
        for widget in (self.problems_summary, self.problems_box, self.all_problems_button):
            widget.setVisible(False)
        self.tree = _Tree()
        self.tree.setHeaderLabels(["Patient / visit / eye / scan", "Details"])
        self.tree.setColumnWidth(0, NAME_WIDTH)
        # long scan names keep both ends (the eye and date often sit at the end): cut at the right they read alike
        self.tree.setTextElideMode(Qt.ElideMiddle)
        self.tree.setAlternatingRowColors(True)
        self._following = False  # ``show_scan`` is selecting the scan on screen: nothing to open
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemActivated.connect(self._activated)
        # the selected item's name and details in full, wrapped: the Details column is out of sight in
        # the narrow dock of a small window (walk-through: it was clipped, only a tooltip showed it)
        self.details = QLabel("")
        self.details.setTextFormat(Qt.PlainText)
        self.details.setWordWrap(True)
        self.details.setVisible(False)
        self.ou_button = QPushButton("OU view")
        self.trend_button = QPushButton("Trend")
        self.ou_button.setToolTip("Both eyes of the selected visit side by side")
        self.trend_button.setToolTip("Progression of the selected eye over all its visits")
        self.ou_button.clicked.connect(self._request_ou)
        self.trend_button.clicked.connect(self._request_trend)
        self.ou_button.setEnabled(False)
        self.trend_button.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(self.open_folder_button)
        top.addWidget(self.open_manifest_button)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.cancel_button)
        actions = QHBoxLayout()
        actions.addWidget(self.ou_button)
        actions.addWidget(self.trend_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addLayout(busy)
        layout.addWidget(self.status)
        layout.addWidget(self.problems_summary)  # the button on a line of its own: beside it, it squeezed the
        layout.addWidget(self.all_problems_button)  # summary into a column a word wide in a narrow dock
        self.splitter = QSplitter(Qt.Vertical)
        # the tree's own policy: a Preferred splitter gave up its width to the panel's size hint (174 px, not 264:
        # the wrapped status line asks for height-for-width), so the Study dock opened at its 180 px minimum and
        # the tree was squeezed under a panel wider than the dock
        self.splitter.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.splitter.addWidget(self.problems_box)
        self.splitter.addWidget(self.tree)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setStretchFactor(1, 1)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.details)
        layout.addLayout(actions)

    # ------------------------------------------------------------ indexing
    def open_folder(self, path: str | None = None) -> None:
        if path is None:
            if not self.may_open():
                return
            path = QFileDialog.getExistingDirectory(self, "Open a folder of scans", self._last("study_folder"))
            if not path:
                self.open_dropped()
                return
            self._remember("study_folder", path)
        self._start(lambda progress, cancel: index_folder(path, progress, cancel, cache_dir=self.cache_dir),
                    f"Indexing {os.path.basename(os.path.normpath(path))}…")

    def open_manifest(self, path: str | None = None) -> None:
        if path is None:
            if not self.may_open():
                return
            path, _ = QFileDialog.getOpenFileName(self, "Open a manifest", self._last("study_manifest_folder"),
                                                  "Manifest (*.csv)")
            if not path:
                self.open_dropped()
                return
            self._remember("study_manifest_folder", os.path.dirname(path))
        self._start(lambda progress, cancel: index_manifest(path, progress, cancel), "Reading the manifest…")

    #: the window's settings (``WindowSettings``), set by the study controller: where the dialogs start
    settings = None

    def _last(self, key: str) -> str:
        """The folder the last study (or manifest) was opened from, while it exists: Open study folder… started in
        the last single scan's folder, and a clinician reopening the study archive navigated there each time
        (walk-through H82, W12)."""
        folder = self.settings.value(key, "", type=str) if self.settings is not None else ""
        return folder if folder and os.path.isdir(folder) else ""

    def _remember(self, key: str, folder: str) -> None:
        if self.settings is not None:
            self.settings.set(key, folder)

    def _start(self, fn, message: str) -> None:
        self.status.setText(message)
        self.tasks.start(fn)

    def cancel(self) -> None:
        self.tasks.cancel()

    def is_busy(self) -> bool:
        return self.tasks.busy()

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Could not index: {message.splitlines()[0]}")

    def _on_cancelled(self) -> None:
        self.status.setText("Indexing cancelled.")

    def _on_done(self, index: StudyIndex) -> None:
        self.set_index(index)
        self.index_ready.emit(index)

    # ------------------------------------------------------------ tree
    def set_index(self, index: StudyIndex) -> None:
        self.index = index
        self.tree.clear()
        # nothing is selected in the new tree (clear() does not say so): an empty study left them enabled
        self.ou_button.setEnabled(False)
        self.trend_button.setEnabled(False)
        self.details.setText("")  # the last study's selected scan stayed described (fourth walk-through)
        self.details.setVisible(False)
        listed = problems_and_warnings(index, limit=200)
        self.problems.setText(listed)
        self.problems_summary.setText(problems_summary(index))
        for widget in (self.problems, self.problems_summary, self.problems_box, self.all_problems_button):
            widget.setVisible(bool(listed))
        if listed:  # the list starts PROBLEM_LINES high; the splitter gives it more
            line = self.fontMetrics().lineSpacing()
            self.splitter.setSizes([line * PROBLEM_LINES + 4, max(150, self.splitter.height() - line * PROBLEM_LINES)])
        # one lookup by patient for the whole tree: per item passes over every scan and field froze the window
        # for 53 s at 800 patients (attack run 13, A13-12)
        lookup = index.lookup()
        # a patient whose scans name different people is marked in the tree, not only in the list above it, which
        # scrolls away (walk-through H140, W4)
        people = {w.path for w in index.warnings if w.kind == "people"}
        for pid in lookup.patients():
            visits = lookup.visits(pid)
            patient = QTreeWidgetItem([pid, f"{len(visits)} visit{'s' if len(visits) != 1 else ''}, "
                                            f"{' '.join(e or '?' for e in lookup.eyes(pid))}"])
            patient.setData(0, ROLE, ("patient", pid))
            checked = False
            for visit in visits:
                scans = lookup.scans_for(pid, visit.label)
                eyes = sorted({s.eye for s in scans})
                fields = {e: lookup.vf_at(pid, e, visit) for e in eyes}
                has_vf = any(fields.values())
                item = QTreeWidgetItem([visit_text(visit),
                                        " ".join(e or "?" for e in eyes) + ("  · VF" if has_vf else "")])
                item.setData(0, ROLE, ("visit", pid, visit.label))
                item.setToolTip(1, as_literal(item.text(1)))
                for eye in eyes:
                    scan_date = next((s.date for s in scans if s.eye == eye and s.date), visit.date)
                    eye_item = QTreeWidgetItem([EYE_NAMES.get(eye, eye),
                                                _vf_text(fields[eye], scan_date)])
                    eye_item.setData(0, ROLE, ("eye", pid, visit.label, eye))
                    eye_item.setToolTip(1, as_literal(eye_item.text(1)))  # a narrow dock clips the column
                    for scan in (s for s in scans if s.eye == eye):
                        detail = ", ".join(x for x in (scan.scan_pattern, bscans_text(scan.n_bscans) if scan.n_bscans
                                                       else "", "SYNTHETIC" if scan.synthetic else "") if x)
                        scan_item = QTreeWidgetItem([os.path.basename(scan.path), detail])
                        scan_item.setData(0, ROLE, ("scan", pid, visit.label, eye, scan.path))
                        scan_item.setToolTip(0, as_literal(scan.path))
                        scan_item.setToolTip(1, as_literal(detail))
                        eye_item.addChild(scan_item)
                    item.addChild(eye_item)
                patient.addChild(item)
                checked = checked or any(s.path in people for s in scans)
            if checked:
                patient.setText(1, f"{patient.text(1)}  · check: scans name different people")
            self.tree.addTopLevelItem(patient)
        for k in range(self.tree.topLevelItemCount()):
            set_tooltips(self.tree.topLevelItem(k))
        if self.tree.topLevelItemCount():
            self.tree.topLevelItem(0).setExpanded(True)
        patients = len(lookup.by_patient)
        matched = lookup.matched_vf_count()
        # the folder (or manifest) is named: "0 scans of 0 patients" did not say which folder was empty
        name = os.path.basename(os.path.normpath(index.root)) or index.root
        # scans found and all left out are not "no OCT scans found" (H51 walk-through, item 4)
        left_out = any(reason.startswith(("scans ", "listed ")) for reason in index.skipped)
        found = (f"{len(index.scans)} scan{'s' if len(index.scans) != 1 else ''} of {patients} "
                 f"patient{'s' if patients != 1 else ''}, "
                 f"{matched} measured visual field{'s' if matched != 1 else ''}"
                 if index.scans
                 else "no scan used" if left_out else "no OCT scans found")
        self.status.setText(wrappable(f"{name}: {found}; {index.skipped_text()}" + (
            f"; {index.from_cache} files' headers read from the cache" if index.from_cache else "")))

    def show_all_problems(self) -> None:
        """The study's problems and checks in a resizable window of their own, whole lines, to read and copy."""
        if self.problems_dialog is None:
            self.problems_dialog = QDialog(self)
            self.problems_dialog.setWindowTitle("Study problems")
            self.problems_dialog.resize(720, 480)
            text = QPlainTextEdit()
            text.setReadOnly(True)
            text.setObjectName("problems_text")
            QVBoxLayout(self.problems_dialog).addWidget(text)
        text = self.problems_dialog.findChild(QPlainTextEdit, "problems_text")
        text.setPlainText(problems_and_warnings(self.index, limit=10000, breaks=False) if self.index else "")
        self.problems_dialog.show()
        self.problems_dialog.raise_()

    def clear_selection(self) -> None:
        """No item current or highlighted; OU view and Trend disabled until one is chosen again."""
        self.tree.setCurrentItem(None)
        self.tree.clearSelection()
        self.ou_button.setEnabled(False)
        self.trend_button.setEnabled(False)

    def show_scan(self, path: str | None) -> None:
        """Select the item of the scan at ``path``, the one on screen, without opening it again; no such item (or
        None): no selection. After a scan failed to open, the tree kept it selected, and OU view and Trend
        enabled for its patient, while another patient's scan stayed on screen (walk-through H65, W9)."""
        wanted = os.path.realpath(path) if path else None
        iterator = QTreeWidgetItemIterator(self.tree)
        while wanted and iterator.value() is not None:
            item = iterator.value()
            data = item.data(0, ROLE)
            if data and data[0] == "scan" and os.path.realpath(data[4]) == wanted:
                self._following = True  # selected, not asked for: no open_requested
                try:
                    self.tree.setCurrentItem(item)
                finally:
                    self._following = False
                self.tree.scrollToItem(item)
                return
            iterator += 1
        self.clear_selection()

    def selected(self) -> tuple | None:
        item = self.tree.currentItem()
        return item.data(0, ROLE) if item is not None else None

    def _current_changed(self, current, _previous) -> None:
        detail = current.text(1) if current is not None else ""
        self.details.setText(wrappable(f"{current.text(0)}: {detail}") if detail else "")
        self.details.setVisible(bool(detail))
        data = current.data(0, ROLE) if current is not None else None
        kind = data[0] if data else None
        self.ou_button.setEnabled(kind in ("visit", "eye", "scan"))
        self.trend_button.setEnabled(kind in ("eye", "scan"))
        if kind == "scan" and not self._following:
            self.open_requested.emit(data[4])

    def _activated(self, item, _column) -> None:
        """Double-click (or Enter) on an eye opens that eye's scan, its first if it has several: a
        clinician expects the scan, not the Trend, which stays on its button (fourth walk-through).
        On a visit it opens the OU view, as before."""
        data = item.data(0, ROLE)
        if data and data[0] == "visit":
            self.ou_requested.emit(data[1], data[2])
        elif data and data[0] == "eye" and item.childCount():
            self.tree.setCurrentItem(item.child(0))  # selected as a click would: the scan opens
            # shown: the double-click's own expand-or-collapse comes after this slot
            QTimer.singleShot(0, lambda: item.setExpanded(True))

    def _request_ou(self) -> None:
        data = self.selected()
        if data and data[0] in ("visit", "eye", "scan"):
            self.ou_requested.emit(data[1], data[2])

    def _request_trend(self) -> None:
        data = self.selected()
        if data and data[0] in ("eye", "scan"):
            self.trend_requested.emit(data[1], data[3])

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.tasks.shutdown()
        super().closeEvent(event)
