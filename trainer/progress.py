"""Progress for people (tqdm on a terminal) and for programs (one JSON object per line).

The viewer's retrain dialog starts the trainer as a separate process and reads these lines:
``{"stage": ..., "event": "step"|"epoch"|..., "epoch": .., "step": .., "total": .., "loss": ..,
"eta_s": ..}``. Patient identifiers never appear in them.
"""

from __future__ import annotations

import json
import os
import sys
import time


def _append(target: str):
    """The progress file, appended to, never through a link or into a FIFO (core.files.open_for_writing;
    OutputPathError): a FIFO with no reader hung the command in open() for good (A8-18)."""
    from octviewer.core.files import FileRefused, open_for_writing

    from .command import OutputPathError

    try:
        fd = open_for_writing(target, 0o600, truncate=False)
    except FileRefused as exc:
        raise OutputPathError(f"--progress-json {target}: {exc}") from None
    except OSError as exc:
        raise OutputPathError(f"--progress-json {target}: cannot be written ({exc.strerror})") from None
    os.lseek(fd, 0, os.SEEK_END)
    return os.fdopen(fd, "a", buffering=1, encoding="utf-8")


class Progress:
    def __init__(self, target: str | None = None, enabled: bool = True):
        self.enabled = enabled
        self.stream = None
        if enabled and target:
            self.stream = sys.stdout if target == "-" else _append(target)
        self._bar = None
        self._last = 0.0

    def _emit(self, record: dict) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(record, default=float) + "\n")
            self.stream.flush()

    def log(self, **record) -> None:
        if not self.enabled:
            return
        record.setdefault("time", time.time())
        self._emit(record)
        if self.stream is not sys.stdout:
            print(" ".join(f"{k}={v}" for k, v in record.items() if k != "time" and not isinstance(v, dict)),
                  file=sys.stderr)

    def step(self, **record) -> None:
        if not self.enabled:
            return
        now = time.time()
        done, total = record.get("step", 0), record.get("total", 0)
        if "elapsed" in record and done:
            record["eta_s"] = record["elapsed"] / done * (total - done)
        if now - self._last > 0.5 or done == total:  # throttle: a GUI needs a few updates a second
            self._last = now
            self._emit({"event": "step", "time": now, **record})
