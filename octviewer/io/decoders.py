"""Decoding processes for progressive reading, kept between volumes.

OpenJPEG holds the GIL, so JPEG 2000 frames decode in parallel only in separate processes: plain
``python -m octviewer.io.frame_worker`` children (see that module for why not multiprocessing).
The pool keeps idle ones so that only the first volume pays their start-up (~0.2 s).
"""

from __future__ import annotations

import atexit
import os
import queue
import select
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from .frame_worker import QUIT, REPLY, REQUEST

#: A decoding process that answers nothing for this long is stuck (a frame takes ~20 ms): it is
#: killed and the load fails with a message, rather than the viewer waiting forever.
FRAME_TIMEOUT_S = 60.0


class _DecoderProcess:
    """One ``frame_worker`` child; used by one thread at a time."""

    def __init__(self):
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", "octviewer.io.frame_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0)

    def decode(self, index: int, frame: bytes) -> tuple[int, np.ndarray | str]:
        """(status, pixels or reason); raises OSError if the process died."""
        self.proc.stdin.write(REQUEST.pack(index, len(frame)))
        self.proc.stdin.write(frame)
        head = self._read(REPLY.size)
        got, status, rows, cols, char, length = REPLY.unpack(head)
        payload = self._read(length)
        if got != index:
            raise OSError("decoder process answered out of turn")
        if status:
            return status, payload.decode("utf-8", "replace")
        return 0, np.frombuffer(payload, dtype=np.dtype(char.decode())).reshape(rows, cols)

    def _read(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            if os.name == "posix":
                ready, _, _ = select.select([self.proc.stdout], [], [], FRAME_TIMEOUT_S)
                if not ready:
                    self.proc.kill()
                    raise TimeoutError(f"no decoded frame within {FRAME_TIMEOUT_S:.0f} s")
            chunk = self.proc.stdout.read(left)
            if not chunk:
                raise OSError("decoder process ended")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        try:
            self.proc.stdin.write(REQUEST.pack(QUIT, 0))
            self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class DecoderPool:
    """Idle decoding processes kept between volumes, so only the first volume pays their start-up."""

    def __init__(self):
        self._idle: queue.SimpleQueue[_DecoderProcess] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._all: list[_DecoderProcess] = []

    def warm(self, count: int) -> None:
        """Start processes until ``count`` exist (they start in the background)."""
        with self._lock:
            self._all = [p for p in self._all if p.alive()]
            for _ in range(max(0, count - len(self._all))):
                try:
                    process = _DecoderProcess()
                except OSError:  # no interpreter to start (a frozen app): frames decode in-thread
                    return
                self._all.append(process)
                self._idle.put(process)

    def acquire(self) -> _DecoderProcess | None:
        """An idle process, or a new one; None if processes cannot be started (decode in-thread)."""
        for _ in range(4):
            try:
                process = self._idle.get_nowait()
            except queue.Empty:
                try:
                    process = _DecoderProcess()
                except OSError:
                    return None
                with self._lock:
                    self._all.append(process)
            if process.alive():
                return process
        return None

    def release(self, process: _DecoderProcess) -> None:
        if process.alive():
            self._idle.put(process)

    def pids(self) -> list[int]:
        """Process ids of the decoding processes (for benchmarks that read their CPU time)."""
        with self._lock:
            return [p.proc.pid for p in self._all if p.alive()]

    def shutdown(self) -> None:
        with self._lock:
            processes, self._all = self._all, []
        for process in processes:
            process.close()
        self._idle = queue.SimpleQueue()


POOL = DecoderPool()
atexit.register(POOL.shutdown)


def default_workers() -> int:
    """One decoding process per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
