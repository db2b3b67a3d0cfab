"""Background work for the viewer: reading files and running the Predictor off the GUI thread.

Workers never touch widgets or the state: they emit signals that the controller applies on the GUI
thread. Each request carries a generation number; reads and analyses report on separate signals,
so a read error can never be mistaken for an analysis error. Cancellation is cooperative (a
threading.Event the Predictor checks between batches); ``wait_idle`` lets the controller wait
until no analysis holds the model before it builds another Predictor.

Files are read progressively (``octviewer.io.open_volume_progressive``): ``opened`` carries the
volume as soon as its first B-scan is decoded, ``frames`` the B-scans decoded since, ``load_done``
the end. The decoding callbacks run on decoding threads; they emit queued signals, gated so that
none arrives before ``opened``. For 8-bit volumes shown as stored the display array *is* the
volume's array (one copy of the pixels); other volumes need every frame for their contrast, so
they are shown when complete (``loaded``). ``Workers.progressive = False`` reads every volume
whole before showing it (the old path, kept as the benchmark baseline).
"""

from __future__ import annotations

import threading
import time
import traceback

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

#: Decoded B-scans are reported to the window at most this often (seconds): a report per frame meant
#: 200 en-face redraws and repaints for a Cirrus cube, GUI-thread CPU that the decoding shares.
FRAME_REPORT_S = 0.1


class _Signals(QObject):
    loaded = Signal(int, object, object)  # generation, OctVolume, its uint8 display array
    opened = Signal(int, object, object)  # generation, ProgressiveVolume, its uint8 display array
    frames = Signal(int, object)  # generation, list of B-scan indices just decoded
    load_done = Signal(int, object)  # generation, None or the error message naming the file
    load_failed = Signal(int, str)  # generation, message naming the file
    batch = Signal(int, object)  # generation, BatchResult
    progress = Signal(int, int, int)  # generation, done, total
    finished = Signal(int, object)  # generation, Prediction
    analysis_failed = Signal(int, str)  # generation, message
    cancelled = Signal(int)


class _Job(QRunnable):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def run(self):
        self.fn()


class Workers(QObject):
    """Owns the thread pool and the signals; one object per window."""

    #: False: read each volume whole before showing it (the pre-issue-16 path; benchmark baseline)
    progressive = True

    def __init__(self, parent=None):
        super().__init__(parent)
        self.signals = _Signals()
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(2)
        self._load_cancel = threading.Event()  # set: the read not yet on screen stops
        self._load_lock = threading.Lock()
        self._cancel = threading.Event()
        self._idle = threading.Event()  # set while no analysis is running
        self._idle.set()

    def connect(self, controller) -> None:
        s = self.signals
        s.loaded.connect(controller.on_loaded)
        s.opened.connect(controller.on_opened)
        s.frames.connect(controller.on_frames)
        s.load_done.connect(controller.on_load_done)
        s.load_failed.connect(controller.on_load_failed)
        s.batch.connect(controller.on_batch)
        s.progress.connect(controller.on_progress)
        s.finished.connect(controller.on_finished)
        s.analysis_failed.connect(controller.on_analysis_failed)
        s.cancelled.connect(controller.on_cancelled)

    def load(self, generation: int, path: str) -> None:
        """Read ``path``; a read not yet on screen is cancelled (its results would be dropped anyway).
        A scan already on screen keeps decoding: the controller stops it once the new scan is shown,
        so a file that fails to open does not take the scan on screen with it."""
        with self._load_lock:
            self._load_cancel.set()
            cancel = self._load_cancel = threading.Event()
        if self.progressive:
            self.pool.start(_Job(lambda: self._read_progressively(generation, path, cancel)))
        else:
            self._read_whole(generation, path)

    def _read_progressively(self, generation: int, path: str, cancel: threading.Event) -> None:
        import numpy as np

        from octviewer import VolumeReadError
        from octviewer.io import open_volume_progressive

        s = self.signals
        gate = threading.Lock()
        opened, pending, landed, last = [False], [], [], [0.0]

        def frames(indices):
            with gate:
                if not opened[0]:  # the mask read with ``opened`` covers them
                    return
                landed.extend(indices)
                now = time.monotonic()
                if now - last[0] >= FRAME_REPORT_S:
                    s.frames.emit(generation, landed.copy())
                    landed.clear()
                    last[0] = now

        def done(error):
            message = None if error is None else str(error)
            with gate:
                if opened[0]:
                    if landed:
                        s.frames.emit(generation, landed.copy())
                    s.load_done.emit(generation, message)
                else:
                    pending.append(message)

        try:
            progressive = open_volume_progressive(path, on_frames=frames, on_done=done, cancel=cancel)
            volume = progressive.volume
            if volume.data.dtype != np.uint8 or volume.intensity_transform != "identity":
                whole = progressive.wait()  # the display contrast needs every frame
                s.loaded.emit(generation, whole, whole.display())
                return
            with gate:
                with self._load_lock:  # on screen from now on: only the controller stops its decoding
                    if self._load_cancel is cancel:
                        self._load_cancel = threading.Event()
                s.opened.emit(generation, progressive, volume.data)  # uint8 shown as stored: no copy
                opened[0], last[0] = True, time.monotonic()
                for message in pending:
                    s.load_done.emit(generation, message)
        except VolumeReadError as exc:
            s.load_failed.emit(generation, str(exc))
        except Exception:  # never let a reader bug take the window down
            s.load_failed.emit(generation, f"{path}: unexpected error\n{traceback.format_exc(limit=3)}")

    def _read_whole(self, generation: int, path: str) -> None:
        from octviewer import VolumeReadError, load_volume

        def work():
            try:
                volume = load_volume(path)
                # the display transform (e.g. Spectralis float -> uint8) is done here, off the GUI thread
                self.signals.loaded.emit(generation, volume, volume.display())
            except VolumeReadError as exc:
                self.signals.load_failed.emit(generation, str(exc))
            except Exception:  # never let a reader bug take the window down
                self.signals.load_failed.emit(generation, f"{path}: unexpected error\n"
                                                          f"{traceback.format_exc(limit=3)}")
        self.pool.start(_Job(work))

    def analyse(self, generation: int, predictor, volume, first: int) -> None:
        from octviewer.model import Cancelled, ScanNotSupported

        self._cancel.set()  # stop any previous analysis
        cancel = self._cancel = threading.Event()
        previous_idle, idle = self._idle, threading.Event()
        self._idle = idle
        s = self.signals

        def work():
            previous_idle.wait()  # one analysis at a time holds the model
            try:
                prediction = predictor.predict(
                    volume, first=first, cancel=cancel,
                    on_batch=lambda b: s.batch.emit(generation, b),
                    progress=lambda d, t: s.progress.emit(generation, d, t))
                s.finished.emit(generation, prediction)
            except Cancelled:
                s.cancelled.emit(generation)
            except ScanNotSupported as exc:
                s.analysis_failed.emit(generation, str(exc))
            except Exception as exc:
                s.analysis_failed.emit(generation, f"analysis failed: {type(exc).__name__}: {exc}")
            finally:
                idle.set()
        self.pool.start(_Job(work))

    def cancel(self) -> None:
        self._cancel.set()

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once no analysis is running (the model it used is free)."""
        return self._idle.wait(timeout_s)

    def shutdown(self) -> None:
        self._load_cancel.set()
        self._cancel.set()
        self.pool.waitForDone(5000)
