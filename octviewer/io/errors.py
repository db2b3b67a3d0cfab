"""The one error type of the io layer."""

from __future__ import annotations

import os


class VolumeReadError(Exception):
    """A file could not be turned into an OctVolume.

    The message names the file and says what is wrong in words a clinician can act on; the
    viewer shows it in a dialog as is. Patient identifiers never appear in it.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = os.fspath(path) if path is not None else ""
        self.problem = problem
        where = os.path.basename(self.path) or "<input>"
        super().__init__(f"{where}: {problem}")
