"""One background thread type for the study widgets: run plain work, report progress, allow cancel.

The work is a plain function ``fn(progress, cancel)``: it calls ``progress(done, total)`` and
checks ``cancel.is_set()`` between items (cooperative cancellation, as in superqt). Results come
back as signals carrying the request's generation; a widget drops any result whose generation
is no longer its current one (the user asked for something else meanwhile), as the viewer does.
Workers never touch widgets.
"""

from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QThread, Signal


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
        from ..study import IndexCancelled

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


def stop(worker: StudyWorker | None, wait_ms: int = 5000) -> None:
    """Ask a worker to stop and wait for it (closing a widget must not leave a thread running)."""
    if worker is not None and worker.isRunning():
        worker.cancel()
        worker.wait(wait_ms)
