"""Stop requests: SIGINT/SIGTERM set a flag that the training loop and the cache build read.

Only the command-line entry point installs the handlers (``install_signal_handlers``); a caller
that runs ``fit`` in its own process (a test, a notebook, the GUI's worker) keeps its own signal
handling and may call ``request_stop`` itself.
"""

from __future__ import annotations

import signal


class Stopped(Exception):
    """A stop was requested; the message says what was (and was not) saved."""


_STOP = {"flag": False}


def request_stop(*_args) -> None:
    _STOP["flag"] = True


def clear() -> None:
    _STOP["flag"] = False


def requested() -> bool:
    return _STOP["flag"]


def install_signal_handlers() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
