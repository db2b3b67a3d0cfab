"""Opening a file a user named, to read it or to write it, without being led somewhere else.

Why: a path given on a command line or in a settings field can be a FIFO (an open or a read blocks
for good), a link to ``/dev/zero`` (a read never ends and fills memory), or a link to another file
(a write lands in that file: a results journal linked to a clinic's key file overwrote it). The
scan readers have their own guard (``octviewer.io.limits``); this is the same for settings, keys
and the batch commands' outputs, which must not depend on the io layer.
"""

from __future__ import annotations

import csv
import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path

_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class FileRefused(ValueError):
    """A path that is not a file this program reads or writes there. The message says why, in
    words, without the path: the caller names the file (or the option) in front of it."""


def user_folder(kind: str) -> Path:
    """This user's ``config`` or ``data`` folder for octviewer (XDG, else under the home folder).

    One answer for every part of the program (window settings, pseudonym salt, signing keys, results
    store, PACS settings): with ``HOME`` unset Qt alone would fall back to ``/.config`` at the
    filesystem root while Python finds the home in the password database, and one program kept two
    homes (attack run 8, A8-13). A relative ``XDG_*`` is ignored, as the XDG specification says (each
    working folder got its own salt), and an empty or relative ``HOME`` is looked up in the password
    database (``HOME=`` put everything under ``/``; attack run 9, A9-2).
    """
    env, default = {"config": ("XDG_CONFIG_HOME", ".config"), "data": ("XDG_DATA_HOME", ".local/share")}[kind]
    given = os.environ.get(env, "")
    return Path(given if os.path.isabs(given) else os.path.join(_home(), default)) / "octviewer"


class NoHomeFolder(OSError):
    """No absolute home folder can be found for this user, and the XDG folder needed is not given."""


def home_problem() -> str | None:
    """Why this user's octviewer folders cannot be found, in one sentence, or None.

    The entry points ask this before any work, so that a user ID with no entry in the password
    database and HOME unset (a container run with ``--user``) gets one line saying what to set: the
    folders went under a relative ``~`` in the working folder, a new salt and a new store in each
    (attack run 10, A10-18)."""
    try:
        user_folder("config")
        user_folder("data")
    except NoHomeFolder as exc:
        return str(exc)
    return None


def no_home(prog: str) -> bool:
    """Whether this user's folders cannot be found, said on stderr as ``prog: <home_problem>``: the
    commands that keep a salt, keys or a store ask it before any work."""
    if problem := home_problem():
        import sys

        print(f"{prog}: {problem}", file=sys.stderr)
    return problem is not None


def _home() -> str:
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return home
    try:
        import pwd

        home = pwd.getpwuid(os.getuid()).pw_dir
    except ImportError:  # Windows (no HOME: expanduser reads USERPROFILE)
        home = os.path.expanduser("~")
    except KeyError:  # a user ID the password database does not know
        home = ""
    if not os.path.isabs(home):
        raise NoHomeFolder("no home folder: HOME is not set to an absolute folder and this user ID has none in "
                           "the password database; set HOME (or XDG_CONFIG_HOME and XDG_DATA_HOME) to an "
                           "absolute folder of this user's")
    return home


def private_folder(path, tighten: bool = False) -> Path:
    """Make the folder ``path`` and any missing parents owner-only (0700); return it.

    The one maker of the data folder and of what goes into it (the results store, the PACS settings
    and outbox, retrieved series): ``Path.mkdir(parents=True, mode=0o700)`` gives the parents it
    makes the default mode, so whichever command made the data folder first decided whether other
    users of the workstation could read the patients' retrieved studies (0755 when ``configure``
    or a retrieve came before the store; attack run 11, A11-1). Each missing level is made here
    with 0700. ``tighten``: a folder that is there already and belongs to this user is made 0700
    too (octviewer's own folders, e.g. ``pacs/<study>``, left 0755 by an earlier version); a folder
    the user chose, such as ``$OCTVIEWER_DATA`` itself, is left as it is. OSError is the caller's
    to word."""
    path = Path(path)
    missing, level = [], path
    while not os.path.lexists(level) and level.parent != level:
        missing.append(level)
        level = level.parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:  # made meanwhile by another of this user's processes
            pass
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    if tighten and not missing and hasattr(os, "getuid"):
        st = os.stat(path)
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, 0o700)
    return path


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB pieces (scans are tens of MB)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def same_file(a, b) -> bool:
    """Whether two paths name one file (links and hard links included); by their resolved paths
    where one does not exist yet."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def file_kind(mode: int) -> str:
    """What a ``st_mode`` that is no regular file is, in words: "a named pipe (FIFO)", "a folder"."""
    return _kind(mode)


def read_small_file(path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them, else FileRefused (see
    ``opened_small_file``). OSError (missing, permission denied) is the caller's to word."""
    with opened_small_file(path, limit) as (data, _fd):
        return data


@contextmanager
def opened_small_file(path, limit: int):
    """``(bytes, descriptor)`` of the regular file ``path``, the descriptor open until the block ends
    (to change the very file that was read, e.g. its mode); FileRefused for anything else.

    Looked at with ``stat`` first (a device is never opened), then opened without blocking and
    checked again with ``fstat`` (a path swapped for a FIFO after the look opens at once and is
    refused), and read no further than the limit (a file that grows while read cannot fill memory)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise FileRefused(f"this is {_kind(mode)}, not a file")
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"this is {_kind(st.st_mode)}, not a file")
        if st.st_size > limit:
            raise FileRefused(f"it holds {st.st_size} bytes, more than the {limit} such a file may hold")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 16, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileRefused(f"it holds more than the {limit} bytes such a file may hold")
        yield b"".join(chunks), fd
    finally:
        os.close(fd)


#: the byte-order marks of UTF-16 text, as Notepad's and Excel's "Unicode" write it
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def settings_text(data: bytes) -> str:
    """The text of a settings file a person edited: UTF-8, with or without the BOM Windows Notepad
    writes, or UTF-16 with its BOM (Notepad's "Unicode"). Both are an editor's doing, not damage, and
    were refused as "(JSONDecodeError)" / "(UnicodeDecodeError)" (attack run 5, F22; run 6, A6-5).
    UnicodeDecodeError for anything else: the caller words it."""
    if data.startswith(UTF16_BOMS):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def table_encoding(raw) -> str:
    """The encoding of a table (a buffered binary file) a person saved: UTF-16 with its BOM (Excel's and PowerShell's
    "Unicode text"), else UTF-8 with or without the BOM, as ``settings_text`` reads settings: a VF table saved as
    UTF-16 was refused whole where the settings files were read (attack run 27, A27-7). Also UTF-32, and UTF-16
    without its BOM where the first two characters are ASCII (a header's)."""
    head = raw.peek(4)[:4]
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"  # before UTF-16: UTF-32's little-endian BOM starts with UTF-16's (A28-10)
    if head.startswith(UTF16_BOMS):
        return "utf-16"
    if len(head) == 4 and not head[1] | head[3] and head[0] and head[2]:
        return "utf-16-le"  # no BOM, as some exports write it: ASCII letters with a zero byte after each (A28-10)
    if len(head) == 4 and not head[0] | head[2] and head[1] and head[3]:
        return "utf-16-be"
    return "utf-8-sig"


def csv_header(path) -> list[str] | None:
    """The column names on the first line of the CSV file ``path``; None when it is not there or is
    empty (nothing to lose). FileRefused when it is no regular file, or its first 64 KiB hold no
    UTF-8 CSV line. The one reader of a CSV's header, for ``csv_is_ours`` and ``--resume``: the two
    had a copy each, reading the file differently (review H36, item 9); it is here, below the
    pipeline, because ``octviewer-synth`` (a lower layer) asks it of its manifest too."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(mode):
        raise FileRefused(f"is {_kind(mode)}, not a file")
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileRefused("is not a regular file")
        start = os.read(fd, 64 * 1024)
    finally:
        os.close(fd)
    if not start:
        return None
    first = start.split(b"\n", 1)[0]
    try:
        return next(csv.reader([first.decode("utf-8").rstrip("\r")]), [])
    except (UnicodeDecodeError, csv.Error):
        raise FileRefused("does not start with a CSV header") from None


def csv_is_ours(path, columns: list[str], retired: list[str] | tuple = (), required: tuple = ()) -> bool:
    """True when ``path`` is not there or empty, or is a CSV that a command writing ``columns`` wrote:
    its first column is ``columns[0]``, every column is one of ``columns`` or of ``retired`` (the
    names an older version wrote), and the ``required`` ones, which every version wrote and which set
    the command's file apart, are there. An older version's CSV, with fewer or retired columns, is
    the command's own: exact equality refused it after every upgrade (review H36, item 1). Anything
    else (a study's manifest or VF table, a clinic's file, one that cannot be read) is not ours
    (attack run 6, A6-17, A6-14)."""
    try:
        header = csv_header(path)
    except (FileRefused, OSError):
        return False
    return header is None or (header[:1] == list(columns[:1]) and set(header) <= {*columns, *retired}
                              and set(required) <= set(header))


def check_writable(st: os.stat_result) -> None:
    """FileRefused unless ``st`` (from ``lstat``) is a regular file of one name: what
    ``open_for_writing`` may overwrite. Public so that a command can refuse before any work."""
    if stat.S_ISLNK(st.st_mode):
        raise FileRefused("is a symbolic link; refusing to write through it (the file it points to would be "
                          "overwritten): remove the link or give another name")
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"is {_kind(st.st_mode)}, not a file; give a file name")
    if st.st_nlink > 1:
        raise FileRefused(f"has {st.st_nlink - 1} other hard link(s); refusing to overwrite the file they share: "
                          "remove it or give another name")


def open_for_writing(path, mode: int = 0o666, truncate: bool = True) -> int:
    """A descriptor that writes ``path`` from its first byte, never through a link; FileRefused when
    the path is a symbolic link, shares its file with other hard links, or is no regular file.

    A new file is created with O_EXCL (a link put there after the look is not followed); an existing
    one is opened with O_NOFOLLOW and without blocking, checked with ``fstat``, and only then
    truncated, so a hard link swapped in between is refused before a byte of it is lost.
    ``truncate=False`` keeps the bytes (a journal read back for ``--resume`` after its lock is taken).
    OSError (no permission, read-only place) is the caller's to word."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        check_writable(st)
    flags = os.O_WRONLY | _NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | (os.O_CREAT | os.O_EXCL if st is None else 0), mode)
    except OSError:
        if os.path.islink(path):  # O_NOFOLLOW's ELOOP: a link made after the look
            raise FileRefused("is a symbolic link; refusing to write through it") from None
        raise
    try:
        check_writable(os.fstat(fd))
        if truncate:
            os.ftruncate(fd, 0)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
