"""Ctrl-C and SIGTERM as one line and exit 130 for the console commands, from their first moment.

Here, below the pipeline and with nothing but the standard library, so that an entry point installs
the handlers before it loads its command (torch, pydicom, the network stack take seconds): a stop
while those loaded was a KeyboardInterrupt traceback or a silent kill, exit 143 (attack run 10,
A10-1, A10-16; the trainer got the same in attack run 8).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading

EXIT_STOPPED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)


@contextlib.contextmanager
def term_as_interrupt():
    """SIGTERM (a scheduler's time limit, a service stop) ends a command as Ctrl-C does: one line, exit
    130, a batch's journal kept for --resume. It killed the command without a word, exit 143 (attack run
    9, A9-13)."""
    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    earlier = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, earlier)


def stoppable(prog: str, hint: str = "run again with --resume to continue"):
    """``main`` with Ctrl-C and SIGTERM as one line (``prog: stopped; hint``) and exit 130, not a
    KeyboardInterrupt traceback (attack run 2 L1)."""
    def wrap(main):
        @functools.wraps(main)
        def stopped_cleanly(*args, **kwargs):
            try:
                with term_as_interrupt():
                    return main(*args, **kwargs)
            except KeyboardInterrupt:
                print(f"{prog}: stopped; {hint}", file=sys.stderr)
                return EXIT_STOPPED
        return stopped_cleanly
    return wrap


def run_module(module: str, hint: str = "run it again", prog: str | None = None, entry: str = "main") -> None:
    """``python -m MODULE`` with ``stoppable``'s one line and exit 130 from its first moment.

    Called from the top of a runnable module, before the module's own imports (numpy, the generator,
    pydicom: half a second or more), which ran before its ``if __name__ == "__main__"`` block at the
    end and so before any handler: a stop then was a KeyboardInterrupt traceback (attack run 10's
    note). It imports the module again under its package name, runs its ``main`` and exits; ``prog``
    names the command in the stop line when it is not ``python -m MODULE``; ``entry`` the function to run.
    """
    import importlib

    def run():
        return getattr(importlib.import_module(module), entry)()
    raise SystemExit(stoppable(prog or f"python -m {module}", hint)(run)())
