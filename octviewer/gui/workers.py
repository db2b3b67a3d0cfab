"""Background work for the viewer: reading files and running the Predictor off the GUI thread.

Workers never touch widgets: they emit signals that the GUI thread applies. Each request carries a
generation number; the window drops results whose generation is no longer current (the reader has
opened another scan), following ndv's pattern. Cancellation is cooperative (a threading.Event the
Predictor checks between batches).
"""

from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Signals(QObject):
    loaded = Signal(int, object, object)  # generation, OctVolume, its uint8 display array
    batch = Signal(int, object)  # generation, BatchResult
    progress = Signal(int, int, int)  # generation, done, total
    finished = Signal(int, object)  # generation, Prediction
    failed = Signal(int, str)  # generation, message
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

    def load(self, generation: int, path: str) -> None:
        from .. import VolumeReadError, load_volume

        def work():
            try:
                volume = load_volume(path)
                # the display transform (e.g. Spectralis float -> uint8) is done here, off the GUI thread
                self.signals.loaded.emit(generation, volume, volume.display())
            except VolumeReadError as exc:
                self.signals.failed.emit(generation, str(exc))
            except Exception:  # never let a reader bug take the window down
                self.signals.failed.emit(generation, f"{path}: unexpected error\n{traceback.format_exc(limit=3)}")
        self.pool.start(_Job(work))

    def analyse(self, generation: int, predictor, volume, first: int) -> None:
        from ..model import Cancelled, ScanNotSupported

        self._cancel.set()  # stop any previous analysis
        cancel = self._cancel = threading.Event()
        s = self.signals

        def work():
            try:
                prediction = predictor.predict(
                    volume, first=first, cancel=cancel,
                    on_batch=lambda b: s.batch.emit(generation, b),
                    progress=lambda d, t: s.progress.emit(generation, d, t))
                s.finished.emit(generation, prediction)
            except Cancelled:
                s.cancelled.emit(generation)
            except ScanNotSupported as exc:
                s.failed.emit(generation, str(exc))
            except Exception as exc:
                s.failed.emit(generation, f"analysis failed: {type(exc).__name__}: {exc}")
        self.pool.start(_Job(work))

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        self._cancel.set()
        self.pool.waitForDone(5000)
