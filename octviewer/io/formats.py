"""The one registry of volume file formats.

``load_volume`` dispatches on it, the viewer's file dialog builds its filters from it
(``dialog_filters()``) and ``octviewer-predict`` scans folders with it (``find_volumes`` /
``is_volume_file``), so a format is added or changed in this one place.

Detection goes by content first (magic bytes at fixed offsets), by suffix second: a DICOM saved
as ``.bin`` still opens, and an ``.npz`` that is really a TIFF is read as a TIFF.
"""

from __future__ import annotations

import importlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.cancel import Cancelled
from .errors import VolumeReadError
from .limits import open_regular, require_readable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


@dataclass(frozen=True)
class VolumeFormat:
    """One readable format.

    ``sniff(head, path)`` looks at the first 132 bytes (enough for the DICOM preamble) and says
    whether the content is this format; None means the format has no magic and goes by suffix.
    ``reader`` is ``"module:function"`` inside ``octviewer.io``, imported only when used, so a
    missing optional library matters only for its own format. ``folder`` formats are opened as a
    directory (their ``suffixes`` are then what the folder holds, or the file that stands for it).
    """

    name: str
    description: str
    suffixes: tuple[str, ...]
    reader: str
    sniff: Callable[[bytes, Path], bool] | None = None
    folder: bool = False
    options: tuple[str, ...] = field(default=())  # load_volume keyword arguments the reader takes

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(f"*{s}" for s in self.suffixes)

    def read(self, path: Path, **options):
        module, function = self.reader.split(":")
        reader = getattr(importlib.import_module(f"octviewer.io.{module}"), function)
        return reader(path, **{k: v for k, v in options.items() if k in self.options})


FORMATS: tuple[VolumeFormat, ...] = (
    VolumeFormat("dicom", "DICOM Ophthalmic Tomography", (".dcm", ".dicom"), "progressive:read_dicom",
                 sniff=lambda head, path: head[128:132] == b"DICM"),
    VolumeFormat("heidelberg_vol", "Heidelberg Spectralis raw export", (".vol",), "heidelberg:read_vol",
                 sniff=lambda head, path: head.startswith(b"HSF-OCT")
                 or (path.suffix.lower() == ".vol" and head.startswith(b"ep-v"))),
    VolumeFormat("heidelberg_e2e", "Heidelberg E2E", (".e2e", ".sdb"), "heidelberg:read_with_eyepy"),
    VolumeFormat("heyex_xml", "Heidelberg HEYEX XML export", (".xml",), "heidelberg:read_with_eyepy", folder=True),
    VolumeFormat("topcon", "Topcon FDS / FDA", (".fds", ".fda"), "topcon:read_topcon",
                 sniff=lambda head, path: head.startswith(b"FOCT")),
    VolumeFormat("vendor", "Zeiss Cirrus raw / Bioptigen / Optovue (OCT-Converter extra)", (".img", ".oct"),
                 "vendor:read_vendor"),
    VolumeFormat("tiff", "TIFF stack", (".tif", ".tiff"), "stacks:read_tiff",
                 sniff=lambda head, path: head[:4] in TIFF_MAGIC),
    VolumeFormat("npy", "NumPy array", (".npy",), "stacks:read_npy",
                 sniff=lambda head, path: head.startswith(b"\x93NUMPY")),
    VolumeFormat("npz", "NumPy archive", (".npz",), "stacks:read_npz", options=("allow_pickle",),
                 sniff=lambda head, path: head.startswith(b"PK\x03\x04") and path.suffix.lower() == ".npz"),
    VolumeFormat("image_folder", "Folder of B-scan images", IMAGE_SUFFIXES, "stacks:read_image_folder", folder=True),
)

BY_NAME = {f.name: f for f in FORMATS}
_FILE_SUFFIXES = {s: f for f in FORMATS if not f.folder for s in f.suffixes}


def heyex_export(entries) -> bool:
    """Whether a folder's ``entries`` make a Heidelberg HEYEX XML export (an XML beside its B-scan images) rather
    than a plain folder of B-scan images: the one rule for opening such a folder and for counting its B-scans
    (``content.bscan_count``)."""
    return any(p.suffix.lower() == ".xml" for p in entries)


def detect(path: Path) -> VolumeFormat:
    """The format of a file or folder, or VolumeReadError saying why none fits.

    Refuses FIFOs, devices and sockets before opening anything (see ``limits.require_readable``).
    """
    st = require_readable(path)
    if stat.S_ISDIR(st.st_mode):
        return BY_NAME["heyex_xml" if heyex_export(path.iterdir()) else "image_folder"]
    with open_regular(path) as f:  # the path may have changed since the stat: never block on it
        head = f.read(132)
    if not head:
        raise VolumeReadError(path, "the file is empty")
    for fmt in FORMATS:
        if fmt.sniff is not None and fmt.sniff(head, path):
            return fmt
    suffix = path.suffix.lower()
    if suffix == ".xml":
        return BY_NAME["heyex_xml"]
    if suffix in _FILE_SUFFIXES and suffix not in (".tif", ".tiff", ".npy", ".npz"):
        return _FILE_SUFFIXES[suffix]
    if suffix in IMAGE_SUFFIXES:
        raise VolumeReadError(path, "this is a single 2-D image, not an OCT volume; open the folder of B-scans instead")
    if suffix in _FILE_SUFFIXES:  # NumPy / TIFF suffix without the format's magic bytes
        raise VolumeReadError(path, f"the file has a '{suffix}' name but not the content of one "
                                    "(damaged or mislabelled)")
    raise VolumeReadError(path, "unknown file format (not DICOM, Heidelberg, Topcon, TIFF, NumPy "
                                "or a vendor format we read)")


def dialog_filters() -> str:
    """Qt file-dialog filter string: all supported files first, then one filter per format."""
    file_formats = [f for f in FORMATS if f.name != "image_folder"]
    everything = " ".join(p for f in file_formats for p in f.patterns)
    return ";;".join([f"OCT scans ({everything})", *(f"{f.description} ({' '.join(f.patterns)})"
                                                      for f in file_formats), "All files (*)"])


def is_volume_file(path: str | os.PathLike) -> bool:
    """True for a regular file whose suffix is a single-file volume format (never opens it)."""
    path = Path(path)
    if path.suffix.lower() not in _FILE_SUFFIXES:
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


#: Folders nested deeper than this below the folder given are not searched (and are named). No
#: device or export nests scans this deep; a folder nested a thousand deep is a trap, not a study.
MAX_FOLDER_DEPTH = 64


#: The reason ``walk_files`` gives for a link to a folder that it did not follow.
LINKED_FOLDER = "a link to a folder: not followed (only the folder's own subfolders are searched)"


def walk_files(root: str | os.PathLike, hidden: bool = True,
               cancelled=None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every entry under ``root`` that is not a folder (sorted), and the folders that could not be
    listed with the reason: a folder the user may not read is named, never passed over in silence.

    Links to folders below ``root`` are not followed, and are named with ``LINKED_FOLDER`` (``root``
    itself may be a link). Why not follow any: a link that stays inside ``root`` leads to a folder
    that is walked anyway, so nothing is lost; a link that leaves it brought in whatever it points at.
    A study folder holding ``usb_link -> /`` walked the whole machine (4,380 other patients' scans
    indexed as this study, tens of seconds, unbounded over network mounts), and ``up -> ..`` added the
    neighbouring patient's scans (attack run 3, F2). Telling "inside" from "outside" would need every
    link resolved and is still fooled by bind mounts; not following is plain and cannot loop. Each
    folder is still listed once (by device and inode), so a bind mount back up ends too.

    ``cancelled`` (a callable, or a threading.Event) is checked before each folder is listed and
    raises ``octviewer.core.cancel.Cancelled``: a walk over a large or slow tree stops on Cancel.

    Walked with a list of folders to visit, not by recursion: Python's own ``os.walk`` (3.11) recurses
    once per level, and a folder nested about a thousand deep ended the study index and
    ``octviewer-predict FOLDER`` in a RecursionError (attack run M9). Below ``MAX_FOLDER_DEPTH`` levels
    the subfolders are not searched, and the folder where the search stopped is named."""
    stop = getattr(cancelled, "is_set", cancelled)
    files, unreadable, seen = [], [], set()
    todo = [(os.fspath(root), 0)]
    while todo:
        if stop is not None and stop():
            raise Cancelled()
        folder, depth = todo.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:  # reached again (a bind mount): listed already
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            unreadable.append((Path(folder), _os_reason(exc)))
            continue
        subfolders, names = [], []
        for entry in entries:
            if not hidden and entry.name.startswith("."):
                continue
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                linked_folder = not is_folder and entry.is_symlink() and entry.is_dir()
            except OSError:
                is_folder = linked_folder = False
            if linked_folder:
                unreadable.append((Path(folder) / entry.name, LINKED_FOLDER))
            else:
                (subfolders if is_folder else names).append(entry.name)
        files.extend(Path(folder) / name for name in sorted(names))
        if subfolders and depth >= MAX_FOLDER_DEPTH:
            unreadable.append((Path(folder), f"folders nested more than {MAX_FOLDER_DEPTH} deep: its "
                                             f"{len(subfolders)} subfolder(s) were not searched"))
            continue
        todo.extend((os.path.join(folder, name), depth + 1) for name in sorted(subfolders, reverse=True))
    return files, sorted(unreadable)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied: this folder cannot be read"
    return f"this folder cannot be read ({exc.strerror or type(exc).__name__})"


def find_volumes(root: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Volume files under ``root`` (sorted), and the entries skipped with the reason.

    Entries that carry a volume suffix but are no regular file (FIFOs, devices, broken links) are
    listed as skipped rather than dropped silently, and so are subfolders that cannot be read. A
    folder with no volume files is itself one volume (a HEYEX export or a folder of B-scan images)
    and is returned as such.
    """
    root = Path(root)
    found, skipped = [], []
    entries, unreadable = walk_files(root)
    skipped.extend(unreadable)
    for entry in entries:
        if entry.suffix.lower() not in _FILE_SUFFIXES:
            continue
        try:
            mode = os.stat(entry).st_mode
        except OSError as exc:
            skipped.append((entry, f"cannot be read ({exc.strerror or type(exc).__name__})"))
            continue
        if stat.S_ISREG(mode):
            found.append(entry)
        elif not stat.S_ISDIR(mode):
            skipped.append((entry, "not a regular file (a FIFO, device or socket); skipped"))
    return (found or ([root] if not skipped else [])), skipped


#: For older callers: (description, glob patterns) per file format. New code uses ``dialog_filters``.
SUPPORTED_FORMATS = tuple((f.description, f.patterns) for f in FORMATS if f.name != "image_folder")
