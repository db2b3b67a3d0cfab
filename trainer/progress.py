"""Progress for people (tqdm on a terminal) and for programs (one JSON object per line).

The viewer's retrain dialog starts the trainer as a separate process and reads these lines:
``{"stage": ..., "event": "step"|"epoch"|..., "epoch": .., "step": .., "total": .., "loss": ..,
"eta_s": ..}``. Patient identifiers never appear in them.
"""

from __future__ import annotations

import json
import sys
import time


class Progress:
    def __init__(self, target: str | None = None, enabled: bool = True):
        self.enabled = enabled
        self.stream = None
        if enabled and target:
            self.stream = sys.stdout if target == "-" else open(target, "a", buffering=1)
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
