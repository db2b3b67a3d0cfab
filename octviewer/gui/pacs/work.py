"""Running archive work in the background: an expected failure (the archive down, a refusal, a
file that does not read) comes back as a ``Failure`` with its message, so the dialogs show the
sentence and never a traceback."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from ..background import TaskSlot


@dataclass(frozen=True)
class Failure:
    message: str


def expected_errors() -> tuple[type[BaseException], ...]:
    from octviewer.io import VolumeReadError
    from octviewer.pacs import PacsConfigError, PacsError, SrError
    from octviewer.study import VfReadError

    return PacsError, PacsConfigError, SrError, VolumeReadError, VfReadError, OSError


class PacsWork(QObject):
    """One request at a time (a TaskSlot with its progress bar and Cancel button); ``finished``
    carries the result or a ``Failure``, ``stopped`` a cancel."""

    finished = Signal(object)
    stopped = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.slot = TaskSlot(self)
        self.slot.done.connect(self.finished.emit)
        self.slot.failed.connect(lambda text: self.finished.emit(Failure(text.splitlines()[0])))
        self.slot.cancelled.connect(self.stopped.emit)

    def start(self, fn, name: str) -> None:
        """``fn(progress, cancel)``; expected errors become a ``Failure``."""
        errors = expected_errors()

        def run(progress, cancel):
            try:
                return fn(progress, cancel)
            except errors as exc:
                return Failure(str(exc))

        self.slot.start(run, name)

    def busy(self) -> bool:
        return self.slot.busy()

    def shutdown(self) -> None:
        self.slot.shutdown(2.0)
