"""Where the window may write a file the user named (an export, a screenshot), and how. Qt-free.

Why: the batch commands refuse an output that is a FIFO, a device, a link or a file they read, and
write to a temporary file renamed into place. The window's exports wrote with a plain open on the GUI
thread: a FIFO froze the window for good, a link had its target overwritten, the scan on screen became
the CSV (or the PDF) with "saved to", and a device node was replaced by the report (attack run 7, A7-1,
A7-2, A7-3, A7-13). The same rules now, from the same places: ``core.files.check_writable`` for what
the path is, ``pipeline.outputs.protected_as`` for the files no output may replace.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

#: What a file the window writes begins with: an existing file is replaced only by its own kind. A PDF
#: export named over another scan (not open, not in the study) replaced the scan after Qt's "Replace?"
#: (eighth walk-through); the screenshot's PNG check (A7-20) was the same rule on its own.
KINDS = {"pdf": (b"%PDF", "PDF"), "png": (b"\x89PNG\r\n\x1a\n", "PNG image"), "csv": (b"level,", "results CSV")}


def _other_kind(path, kind: str) -> str:
    """"" when ``path`` is not there, empty or of ``kind``; else what to say."""
    magic, words = KINDS[kind]
    try:
        with open(path, "rb") as f:  # a regular file by now (check_writable)
            start = f.read(len(magic))
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if not start or start == magic:
        return ""
    return f"exists and is not a {words}; refusing to overwrite it: give another name"


def target_problem(path, in_use=(), model=None, kind: str | None = None) -> str:
    """Why the window may not write ``path``, or "" (the words follow the path in a message): it is a
    link, a hard link, a folder, a FIFO or device, one of the files ``in_use`` (the scan on screen, the
    study's scans), the model file, the results store or one of octviewer's own secrets, or (``kind``,
    a key of ``KINDS``) an existing file of another kind."""
    from octviewer.core.files import FileRefused, check_writable, same_file
    from octviewer.pipeline.outputs import protected_as

    try:
        check_writable(os.lstat(path))
    except FileNotFoundError:
        pass
    except FileRefused as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot be written ({exc.strerror or type(exc).__name__})"
    if any(used and same_file(Path(path), Path(used)) for used in in_use):
        return ("is a file the window has open (the scan, or a file of the study); refusing to overwrite it: "
                "give another name")
    if what := protected_as(path, model):
        return f"is {what}; refusing to overwrite it: give another name"
    return _other_kind(path, kind) if kind else ""


@contextmanager
def replaced(path, prefix: str = ".export-"):
    """``(descriptor, temporary path)`` of a new owner-only (0600) file beside ``path``, renamed over
    ``path`` when the block ends without an error and removed otherwise: all or nothing, so a failed
    export leaves an existing file as it was (a half-written CSV replaced it), and the rename never
    writes through a link or into a device. The caller closes the descriptor."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
    except OSError as exc:  # its message names the hidden file beside the target, never chosen by the user
        raise OSError(exc.errno, f"{exc.strerror}: the folder {target.parent} does not take new files") from None
    try:
        yield fd, tmp
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
