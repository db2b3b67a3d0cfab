"""One background thread type for the study widgets: run plain work, report progress, allow cancel.

The work is a plain function ``fn(progress, cancel)``: it calls ``progress(done, total)`` and
checks ``cancel.is_set()`` between items (cooperative cancellation, as in superqt). Results come
back as signals carrying the request's generation; a ``WorkerSlot`` forwards only those of its
current generation, so a result of a request the user has since replaced is dropped, as the
viewer does. A replaced worker is cancelled but not waited for (the GUI never blocks on it); the
slot keeps it alive until its thread ends. Workers never touch widgets.
"""

from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtWidgets import QProgressBar, QPushButton


class Cancelled(Exception):
    """Raised by work that saw the cancel request."""


class StudyWorker(QThread):
    progress = Signal(int, int, int)  # generation, done, total
    done = Signal(int, object)  # generation, result
    failed = Signal(int, str)  # generation, message (no patient identifiers)
    cancelled = Signal(int)

    def __init__(self, generation: int, fn, parent=None):
        super().__init__(parent)
        self.generation, self.fn = generation, fn
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        from octviewer.study import IndexCancelled

        g = self.generation
        try:
            result = self.fn(lambda d, t: self.progress.emit(g, d, t), self.cancel_event)
        except (Cancelled, IndexCancelled):
            self.cancelled.emit(g)
            return
        except Exception as exc:  # shown to the user; never take the window down
            self.failed.emit(g, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=2)}")
            return
        if self.cancel_event.is_set():
            self.cancelled.emit(g)
        else:
            self.done.emit(g, result)


class WorkerSlot(QObject):
    """The one current background request of a widget, re-emitting only its current results.

    It also owns the widget's progress bar and Cancel button (``bar``, ``cancel_button``, for the
    widget to lay out): shown busy when a request starts, filled by its progress, hidden when it
    ends in any way, so the study panel, OU view and trend view do not each repeat that.
    """

    progress = Signal(int, int)  # done, total
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.generation = 0
        self.current: StudyWorker | None = None
        self._running: set[StudyWorker] = set()
        self.bar = QProgressBar()
        self.bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)

    def start(self, fn) -> None:
        if self.current is not None:
            self.current.cancel()
        self.generation += 1
        self.bar.setRange(0, 0)
        self.bar.setVisible(True)
        self.cancel_button.setVisible(True)
        worker = self.current = StudyWorker(self.generation, fn)
        worker.progress.connect(self._on_progress)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.finished.connect(self._reap)  # a bound slot of a GUI-thread object: queued to the GUI thread
        self._running.add(worker)
        worker.start()

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

    def busy(self) -> bool:
        return self.current is not None and self.current.isRunning()

    def shutdown(self, wait_ms: int = 5000) -> None:
        """Cancel everything and wait (closing a widget must not leave a thread running)."""
        for worker in list(self._running):
            worker.cancel()
            worker.wait(wait_ms)
        self._running.clear()

    def _reap(self) -> None:
        """Drop the references to ended threads (a QThread destroyed while running would abort)."""
        ended = self.sender()
        for worker in list(self._running):
            if worker is ended or worker.isFinished():
                worker.wait(1000)  # finished is emitted just before the thread's last instructions
                self._running.discard(worker)

    def _idle(self) -> None:
        self.bar.setVisible(False)
        self.cancel_button.setVisible(False)

    def _on_progress(self, generation: int, done: int, total: int) -> None:
        if generation == self.generation:
            self.bar.setRange(0, max(total, 1))
            self.bar.setValue(done)
            self.progress.emit(done, total)

    def _on_done(self, generation: int, result) -> None:
        if generation == self.generation:
            self._idle()
            self.done.emit(result)

    def _on_failed(self, generation: int, message: str) -> None:
        if generation == self.generation:
            self._idle()
            self.failed.emit(message)

    def _on_cancelled(self, generation: int) -> None:
        if generation == self.generation:
            self._idle()
            self.cancelled.emit()
