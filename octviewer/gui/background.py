"""Background work for the whole window, one idiom (superqt's worker, cut to what the viewer needs).

A ``Task`` runs a plain function ``fn(report, cancel) -> result`` on a thread of its own:
``report(value)`` hands a value to the GUI thread (``yielded``) and ``cancel`` is a
``threading.Event`` the function checks between items (cooperative cancellation); raising
``octviewer.core.Cancelled`` ends the task as cancelled. Its signals, in order: ``started``, any
number of ``yielded``, then one of ``returned`` / ``errored`` / ``cancelled``, then ``finished``.
Construction and ``start()`` are separate so that every signal is connected before the work runs.
Functions never touch widgets: they only report.

Stale results are dropped by one rule, a generation number: a ``TaskSlot`` holds the current
request of one widget and re-emits only the signals of its latest generation (the viewer's
controller numbers its reads and analyses the same way).

Why Python threads (daemon) rather than QThreads: a thread stuck in a read must never hold up or
abort the application's exit ("QThread: Destroyed while thread is still running" aborts).

Why the task keeps itself alive until its thread has ended: the Task is a QObject of the GUI
thread, and Qt objects must die there. The work function (and whatever its closure holds) belongs
to the task, so nothing is released on the worker thread; the task lets go of itself on the GUI
thread once its thread is gone. Cyclic garbage is collected on the GUI thread as well
(``collect_garbage_on_gui_thread``), so no cycle holding a Qt object is collected on a worker.
"""

from __future__ import annotations

import threading
import traceback
import warnings
import weakref

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QProgressBar, QPushButton

from octviewer.core import Cancelled

_live: set[Task] = set()  # started tasks whose thread may still run; emptied on the GUI thread only
_collector = None


def collect_garbage_on_gui_thread(interval_s: float = 1.0):
    """Python's cyclic garbage collection runs on whichever thread happens to allocate, and the
    viewer runs Python on worker threads (reading, the analysis, indexing, the manifest check). A
    Qt object that became cyclic garbage (a closed dialog whose signal lambdas refer to it) could
    then be destroyed on a worker thread, where its destructor waits for Qt's connection lock while
    the GUI thread holds the GIL and waits for that lock: a frozen window. pyqtgraph's collector
    turns automatic collection off and collects on a GUI-thread timer with the usual generation
    thresholds. Installed once per process (the window installs it; so does ``octviewer``'s main)."""
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=interval_s)
    return _collector


def _cancel_types() -> tuple[type[BaseException], ...]:
    """Every exception that means "stopped on request" (the study index has kept its own name)."""
    from octviewer.study import IndexCancelled

    return (Cancelled,) if issubclass(IndexCancelled, Cancelled) else (Cancelled, IndexCancelled)


class Task(QObject):
    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)  # the exception, its traceback text in ``.task_traceback``
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn, name: str = "task", parent=None):
        super().__init__(parent)
        self._fn = fn
        self.cancel_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Task:
        _live.add(self)
        self.finished.connect(self._release)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_s: float) -> bool:
        """True once the thread has ended (closing a window waits a moment for its work)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        emit = self._emit
        emit(self.started)
        task = weakref.ref(self)  # what the work keeps (decoding callbacks) never keeps the task alive

        def report(value) -> None:
            alive = task()
            if alive is not None:
                emit(alive.yielded, value)
        try:
            result = self._fn(report, self.cancel_event)
        except _cancel_types():
            emit(self.cancelled)
        except Exception as exc:
            exc.task_traceback = traceback.format_exc(limit=3)
            emit(self.errored, exc.with_traceback(None))
        else:
            emit(self.cancelled) if self.cancel_event.is_set() else emit(self.returned, result)
        finally:
            emit(self.finished)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the window was deleted while the work ran
            pass

    def _release(self) -> None:
        """On the GUI thread: drop the last reference once the thread is gone (it may still be
        returning from ``_run`` when ``finished`` is delivered)."""
        if self._thread.is_alive():
            QTimer.singleShot(10, self._release)
            return
        _live.discard(self)
        self._disconnect_all()

    def _disconnect_all(self) -> None:
        """PySide keeps a connected callable alive in C++ while its sender lives, where the garbage
        collector cannot see it: a lambda connected to this task's signal that refers to the task (and to
        its owner: the controller, the window) kept the task, and through it a closed window with its scan,
        alive for good (a test suite's process grew ~100 MB per test that opened a scan). Once the task has
        ended nothing more is emitted, so its connections are dropped."""
        for signal in (self.started, self.yielded, self.returned, self.errored, self.cancelled, self.finished):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a signal nobody connected to
                try:
                    signal.disconnect()
                except (RuntimeError, TypeError):
                    pass


class TaskSlot(QObject):
    """The one current background request of a widget; only its signals are re-emitted.

    With ``progress_widgets`` it also owns a progress bar and a Cancel button (``bar``,
    ``cancel_button``, for the widget to lay out): busy while a request runs, filled by the
    ``(done, total)`` values the work reports, hidden when it ends in any way.
    """

    yielded = Signal(object)
    progress = Signal(int, int)  # done, total (work reporting a (done, total) pair)
    done = Signal(object)
    failed = Signal(str)  # a message without patient identifiers
    cancelled = Signal()

    def __init__(self, parent=None, progress_widgets: bool = True):
        super().__init__(parent)
        self.generation = 0
        self.current: Task | None = None
        self._waiting = False  # the current request's outcome has not been delivered yet
        self._tasks: set[Task] = set()
        self.bar = self.cancel_button = None
        if progress_widgets:
            self.bar = QProgressBar()
            self.bar.setVisible(False)
            self.cancel_button = QPushButton("Cancel")
            self.cancel_button.setVisible(False)
            self.cancel_button.clicked.connect(self.cancel)

    def start(self, fn, name: str = "task") -> int:
        """Run ``fn(progress, cancel)``; a request still running is cancelled (not waited for)."""
        self.cancel()
        self.generation += 1
        generation = self.generation

        def current() -> bool:
            return generation == self.generation

        task = self.current = Task(lambda report, cancel: fn(lambda d, t: report((d, t)), cancel), name)
        task.yielded.connect(lambda value: current() and self._on_progress(*value))
        task.returned.connect(lambda result: current() and self._end(self.done, result))
        task.errored.connect(lambda exc: current() and self._end(
            self.failed, f"{type(exc).__name__}: {exc}\n{getattr(exc, 'task_traceback', '')}"))
        task.cancelled.connect(lambda: current() and self._end(self.cancelled))
        task.finished.connect(lambda: self._tasks.discard(task))
        self._tasks.add(task)
        self._waiting = True
        if self.bar is not None:
            self.bar.setRange(0, 0)
            self.bar.setVisible(True)
            self.cancel_button.setVisible(True)
        task.start()
        return generation

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

    def drop(self) -> None:
        """The current request is no longer wanted: cancelled, and nothing of it is re-emitted."""
        self.cancel()
        self.generation += 1
        self._waiting = False
        if self.bar is not None:
            self.bar.setVisible(False)
            self.cancel_button.setVisible(False)

    def busy(self) -> bool:
        """A request whose outcome (done, failed, cancelled) has not been delivered. Not "its thread is
        alive": the thread runs on for a moment after its result reached the GUI thread, and a dialog
        that enabled its buttons on that result saw itself busy and left them disabled (Open from PACS:
        Retrieve stayed grey after the series list came, and a click did nothing; under load only)."""
        return self._waiting

    def shutdown(self, wait_s: float = 1.0) -> None:
        """Cancel everything and wait a moment for it (closing a widget stops its work). Work that
        does not stop (a read blocked in the system) is left to its daemon thread: closing never
        hangs and never aborts."""
        self.generation += 1  # nothing more is re-emitted
        self._waiting = False
        for task in list(self._tasks):
            task.cancel()
            task.wait(wait_s)

    def _on_progress(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.setRange(0, max(total, 1))
            self.bar.setValue(done)
        self.progress.emit(done, total)

    def _end(self, signal, *args) -> None:
        self._waiting = False
        if self.bar is not None:
            self.bar.setVisible(False)
            self.cancel_button.setVisible(False)
        signal.emit(*args)
