"""Background work for the viewer: reading files and running the Predictor off the GUI thread.

Workers never touch widgets or the state: they emit signals that the controller applies on the GUI
thread. Each request carries a generation number; reads and analyses report on separate signals,
so a read error can never be mistaken for an analysis error. Cancellation is cooperative (a
threading.Event the Predictor checks between batches); ``wait_idle`` lets the controller wait
until no analysis holds the model before it builds another Predictor.
"""

from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    loaded = Signal(int, object, object)  # generation, OctVolume, its uint8 display array
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

    def __init__(self, parent=None):
        super().__init__(parent)
        self.signals = _Signals()
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(2)
        self._cancel = threading.Event()
        self._idle = threading.Event()  # set while no analysis is running
        self._idle.set()

    def connect(self, controller) -> None:
        s = self.signals
        s.loaded.connect(controller.on_loaded)
        s.load_failed.connect(controller.on_load_failed)
        s.batch.connect(controller.on_batch)
        s.progress.connect(controller.on_progress)
        s.finished.connect(controller.on_finished)
        s.analysis_failed.connect(controller.on_analysis_failed)
        s.cancelled.connect(controller.on_cancelled)

    def load(self, generation: int, path: str) -> None:
        from .. import VolumeReadError, load_volume

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
        from ..model import Cancelled, ScanNotSupported

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
        self._cancel.set()
        self.pool.waitForDone(5000)
