"""The viewer's background tasks: reading a file and analysing the scan on screen.

Both run as ``background.Task``s and never touch widgets or the state: what they report reaches
the controller's ``on_*`` methods on the GUI thread, with the request's generation number (the
controller drops what is not current). Reads and analyses report on separate methods, so a read
error can never be mistaken for an analysis error. Cancellation is cooperative (the task's event,
which the pipeline checks between stages and the Predictor between batches); ``wait_idle`` lets
the controller wait until no analysis holds the model before it builds another Predictor.

Files are read progressively (``octviewer.io.open_volume_progressive``): ``opened`` carries the
volume as soon as its first B-scan is decoded, ``frames`` the B-scans decoded since, ``load_done``
the end. The decoding callbacks run on decoding threads; they report through the read's task,
gated so that nothing arrives before ``opened``. For 8-bit volumes shown as stored the display
array *is* the volume's array (one copy of the pixels); other volumes need every frame for their
contrast, so they are shown when complete (``loaded``). ``ScanTasks.progressive = False`` reads
every volume whole before showing it (the benchmark baseline).

An analysis is ``octviewer.pipeline.analyse_scan`` with the window's results store.
"""

from __future__ import annotations

import threading
import time
import traceback

from PySide6.QtCore import QObject, Signal

from ..background import Task

#: Decoded B-scans are reported to the window at most this often (seconds): a report per frame meant
#: 200 en-face redraws and repaints for a Cirrus cube, GUI-thread CPU that the decoding shares.
FRAME_REPORT_S = 0.1


class ScanTasks(QObject):
    """The window's reads and analyses; one object per window. The signals below follow what the
    controller was handed (for benchmarks, screenshots and tests), on the GUI thread."""

    batch = Signal(int, object)  # generation, BatchResult
    analysed = Signal(int, object)  # generation, ScanResult
    cancelled = Signal(int)  # generation

    #: False: read each volume whole before showing it (benchmark baseline)
    progressive = True

    def __init__(self, parent=None, store=None):
        super().__init__(parent)
        self.store = store  # octviewer.pipeline.store.ResultsStore, or None
        self.controller = None
        self._load_cancel = threading.Event()  # set: the read not yet on screen stops
        self._load_lock = threading.Lock()
        self._analysis: Task | None = None
        self._idle = threading.Event()  # set while no analysis is running
        self._idle.set()
        self._tasks: set[Task] = set()
        self._closing = threading.Event()  # the window closes: nothing is waited for any more

    def connect(self, controller) -> None:
        self.controller = controller

    def _start(self, task: Task, generation: int, ended=None) -> Task:
        """Route the task's reports to ``controller.on_<kind>(generation, ...)``; start it."""
        c = self.controller
        def dispatch(item):
            getattr(c, f"on_{item[0]}")(generation, *item[1:])
            if item[0] == "batch":
                self.batch.emit(generation, item[1])
        task.yielded.connect(dispatch)
        if ended is not None:
            task.returned.connect(lambda result: ended("returned", result))
            task.errored.connect(lambda exc: ended("errored", exc))
            task.cancelled.connect(lambda: ended("cancelled", None))
        task.finished.connect(lambda: self._tasks.discard(task))
        self._tasks.add(task)
        return task.start()

    # -- reading -------------------------------------------------------------------------------
    def load(self, generation: int, path: str) -> None:
        """Read ``path``; a read not yet on screen is cancelled (its results would be dropped anyway).
        A scan already on screen keeps decoding: the controller stops it once the new scan is shown,
        so a file that fails to open does not take the scan on screen with it."""
        with self._load_lock:
            self._load_cancel.set()
            cancel = self._load_cancel = threading.Event()
        work = self._read_progressively if self.progressive else self._read_whole
        self._start(Task(lambda report, _task_cancel: work(path, report, cancel), "read"), generation)

    def cancel_load(self) -> None:
        """The read not yet on screen stops (File > Open's Cancel); a scan on screen goes on decoding."""
        with self._load_lock:
            self._load_cancel.set()

    def _read_progressively(self, path: str, report, cancel: threading.Event) -> None:
        import numpy as np

        from octviewer import VolumeReadError
        from octviewer.io import open_volume_progressive

        gate = threading.Lock()
        opened, pending, landed, last = [False], [], [], [0.0]
        ended = threading.Event()  # the decoder's last call is over

        def frames(indices):
            with gate:
                if not opened[0]:  # the mask read with ``opened`` covers them
                    return
                landed.extend(indices)
                now = time.monotonic()
                if now - last[0] >= FRAME_REPORT_S:
                    report(("frames", landed.copy()))
                    landed.clear()
                    last[0] = now

        def done(error):
            message = None if error is None else str(error)
            with gate:
                if opened[0]:
                    if landed:
                        report(("frames", landed.copy()))
                    report(("load_done", message))
                else:
                    pending.append(message)
            ended.set()

        progressive = None
        try:
            progressive = open_volume_progressive(path, on_frames=frames, on_done=done, cancel=cancel)
            volume = progressive.volume
            if volume.data.dtype != np.uint8 or volume.intensity_transform != "identity":
                whole = progressive.wait()  # the display contrast needs every frame
                report(("loaded", whole, whole.display()))
                return
            with gate:
                with self._load_lock:  # on screen from now on: only the controller stops its decoding
                    if self._load_cancel is cancel:
                        self._load_cancel = threading.Event()
                report(("opened", progressive, volume.data))  # uint8 shown as stored: no copy
                opened[0], last[0] = True, time.monotonic()
                for message in pending:
                    report(("load_done", message))
        except VolumeReadError as exc:
            report(("load_failed", str(exc)))
        except Exception:  # never let a reader bug take the window down
            report(("load_failed", f"{path}: unexpected error\n{traceback.format_exc(limit=3)}"))
        finally:
            # the task ends after the decoder's last report, so its ``finished`` is the read's last
            # word, and the decoding threads never hold the task when they let go of their callbacks
            while progressive is not None and not ended.wait(0.1) and not self._closing.is_set():
                pass

    @staticmethod
    def _read_whole(path: str, report, cancel: threading.Event) -> None:
        from octviewer import VolumeReadError, load_volume

        try:
            volume = load_volume(path)
            # the display transform (e.g. Spectralis float -> uint8) is done here, off the GUI thread
            report(("loaded", volume, volume.display()))
        except VolumeReadError as exc:
            report(("load_failed", str(exc)))
        except Exception:  # never let a reader bug take the window down
            report(("load_failed", f"{path}: unexpected error\n{traceback.format_exc(limit=3)}"))

    # -- analysing -----------------------------------------------------------------------------
    def analyse(self, generation: int, predictor, volume, first: int, options) -> None:
        from octviewer.pipeline import analyse_scan

        if self._analysis is not None:
            self._analysis.cancel()  # stop any previous analysis
        previous_idle, idle = self._idle, threading.Event()
        self._idle = idle
        store = self.store

        def work(report, cancel):
            previous_idle.wait()  # one analysis at a time holds the model
            try:
                return analyse_scan(
                    volume, predictor, options, store=store, cancel=cancel, first=first,
                    on_batch=lambda b: report(("batch", b)), progress=lambda d, t: report(("progress", d, t)),
                    on_prediction=lambda p: report(("prediction", p)),
                    on_structure=lambda r: report(("structure", r)))
            finally:
                idle.set()

        c = self.controller

        def ended(how, value):
            if how == "returned":
                c.on_analysed(generation, value)
                self.analysed.emit(generation, value)
            elif how == "cancelled":
                c.on_cancelled(generation)
                self.cancelled.emit(generation)
            else:
                c.on_analysis_failed(generation, f"analysis failed: {type(value).__name__}: {value}")

        self._analysis = self._start(Task(work, "analysis"), generation, ended)

    def busy(self) -> bool:
        """True until every read and analysis has ended and its last report has been delivered."""
        return bool(self._tasks)

    def cancel(self) -> None:
        if self._analysis is not None:
            self._analysis.cancel()

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once no analysis is running (the model it used is free)."""
        return self._idle.wait(timeout_s)

    def shutdown(self, wait_s: float = 5.0) -> None:
        """The window closes: every read and analysis is cancelled and given a moment to stop."""
        self._closing.set()
        self._load_cancel.set()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            task.wait(wait_s)
