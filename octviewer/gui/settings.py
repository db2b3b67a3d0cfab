"""What the window remembers between sessions (QSettings): the display (CAM, axial stretch, the
grey window per device), the device chosen, the last folder and the recent files.

The recent files and the last folder are full paths, and clinic file names carry patients' names,
IDs and birth dates: the settings file is kept owner-only (0600), including a file an earlier
version left readable by others. Qt rewrites the file through a temporary file that keeps the
target's permissions, so the mode is set once the file exists and checked after every write.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
import sys
from pathlib import Path

from PySide6.QtCore import QSettings

from ..core.files import user_folder

RECENT_FILES = 10
log = logging.getLogger(__name__)


def qsettings() -> QSettings:
    """The window's settings, kept where the rest of the program keeps its configuration.

    On Linux and other XDG systems the file is ``core.files.user_folder("config")/octviewer.conf``, the
    file Qt would choose itself, except with ``HOME`` unset: Qt then fell back to ``/.config`` at the
    filesystem root (attack run 8, A8-13). Elsewhere (Windows registry, macOS) Qt's native place.
    """
    if sys.platform in ("win32", "darwin"):
        return QSettings("octviewer", "octviewer")
    return QSettings(str(user_folder("config") / "octviewer.conf"), QSettings.Format.IniFormat)


class WindowSettings:
    def __init__(self):
        self.qsettings = qsettings()
        self.protect()

    def protect(self) -> None:
        """Make the settings file (and its folder) owner-only, whatever they were."""
        path = Path(self.qsettings.fileName())
        try:
            if path.parent.is_dir() and stat.S_IMODE(path.parent.stat().st_mode) & 0o077:
                os.chmod(path.parent, 0o700)
            if path.is_file() and stat.S_IMODE(path.stat().st_mode) != 0o600:
                os.chmod(path, 0o600)
        except OSError:  # a settings folder we may not change: Qt reports its own write errors
            pass

    def value(self, key: str, default=None, type=None):  # noqa: A002 (QSettings' name)
        return self.qsettings.value(key, default) if type is None else self.qsettings.value(key, default, type=type)

    def set(self, key: str, value) -> None:
        self.qsettings.setValue(key, value)
        self.qsettings.sync()
        self.protect()

    # -- files ----------------------------------------------------------------------------------
    def recent(self) -> list[str]:
        return [str(p) for p in self.value("recent", [], type=list)][:RECENT_FILES]

    def opened(self, path) -> None:
        """``path`` goes to the top of the recent files; its folder is where File > Open starts."""
        path = str(path)
        self.set("recent", ([path] + [p for p in self.recent() if p != path])[:RECENT_FILES])
        self.set("last_folder", str(Path(path).parent))

    def export_folder(self) -> str:
        """Where a save dialog starts: the folder of the last export while it exists, else the home folder.
        Every export dialog started in the program's working folder, never in the one the user had just
        chosen (walk-through H65, W20)."""
        folder = self.value("export_folder", "", type=str)
        if folder and os.path.isdir(folder):
            return folder
        home = os.path.expanduser("~")
        return home if os.path.isdir(home) else ""

    def exported(self, path) -> None:
        """An export was written to ``path``: the next save dialog starts in its folder."""
        self.set("export_folder", str(Path(path).resolve().parent))

    def forget(self, path) -> None:
        """A file that failed to open leaves the recent files (it would fail again from there)."""
        self.set("recent", [p for p in self.recent() if p != str(path)])

    # -- display ----------------------------------------------------------------------------------
    @staticmethod
    def levels_key(device: str) -> str:
        return "display/levels/" + re.sub(r"[^\w .-]+", "_", device or "unknown device")[:60]

    def levels(self, device: str) -> tuple[float, float]:
        """The grey window last used for this device: a Cirrus and a Spectralis need different ones.
        A stored window that is not finite, empty or inverted, or outside the display data's 0-255
        (a hand-edited NaN or 1e308), drew every B-scan black on every start with no word (attack
        run 5, F10): it is ignored, with a log line, as a missing one is. A window that only reaches past
        0-255 (30 to 300) is clamped to it, with a log line: discarding it lost the reader's low end."""
        saved = self.value(self.levels_key(device), None)
        try:
            lo, hi = (float(saved[0]), float(saved[1])) if saved else (0.0, 255.0)
        except (TypeError, ValueError, IndexError):
            return (0.0, 255.0)
        clamped = (min(max(lo, 0.0), 255.0), min(max(hi, 0.0), 255.0))
        if not (math.isfinite(lo) and math.isfinite(hi) and clamped[0] < clamped[1]):
            log.warning("settings: the saved grey window %s is not usable (it must overlap 0-255, low below "
                        "high); the full range is used", self.levels_key(device))
            return (0.0, 255.0)
        if clamped != (lo, hi):
            log.warning("settings: the saved grey window %s reaches outside 0-255; clamped to %g-%g",
                        self.levels_key(device), *clamped)
        return clamped

    def display(self, axial_modes) -> dict:
        mode = self.value("display/axial_mode", "fit", type=str)
        opacity = self.value("cam/opacity", 0.5, type=float)
        if not math.isfinite(opacity):  # NaN passed np.clip and drew every B-scan with a CAM black (attack run 6)
            log.warning("settings: the saved CAM opacity is not a number; 0.5 is used")
            opacity = 0.5
        return dict(show_cam=self.value("cam/visible", False, type=bool), cam_opacity=opacity,
                    axial_mode=mode if mode in axial_modes else "fit")

    def save_display(self, display, device: str | None) -> None:
        q = self.qsettings
        q.setValue("cam/visible", display.show_cam)
        q.setValue("cam/opacity", display.cam_opacity)
        q.setValue("display/axial_mode", display.axial_mode)
        if device is not None:
            q.setValue(self.levels_key(device), list(display.levels))
        self.qsettings.sync()
        self.protect()
