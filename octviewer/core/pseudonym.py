"""Stable pseudonymous keys for file paths, so outputs can be linked back only by whoever holds the key file.

In the clinic's own naming schemes a volume's path carries the patient ID and the visit date
(``PAT-0042/2024-03-01_OD.dcm``), so any output that names files leaks identifiers. Outputs name a
volume by ``vol-`` plus 16 hex digits of HMAC-SHA256(salt, absolute path): the same file gets the
same key on this installation (results of two runs can be joined), and nobody without the salt
can test a guessed name against a key. The salt is 32 random bytes made once per installation
(``$OCTVIEWER_PSEUDONYM_SALT`` names another file). A mapping key -> path is written only when
asked for (``write_key_file``), to a separate file with owner-only permissions.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .files import private_folder, user_folder


def salt_path() -> Path:
    if os.environ.get("OCTVIEWER_PSEUDONYM_SALT"):
        return Path(os.environ["OCTVIEWER_PSEUDONYM_SALT"])
    return user_folder("config") / "pseudonym.salt"


#: A salt file is 32 bytes; anything much larger is no salt file of ours (a link to ``/dev/zero``).
SALT_LIMIT = 4096


class SaltError(Exception):
    """The salt file cannot be read or made: one line naming it and why (the batch commands print it
    and stop with their output/settings exit status)."""


def install_salt() -> bytes:
    """This installation's salt, created (owner-only) on first use.

    Read as a small regular file (``core.files.read_small_file``'s checks): a FIFO there hung every
    batch command, and a link to ``/dev/zero`` read until memory ran out. Written with
    ``open_for_writing``, never through a link: a symbolic link to a short file had that file
    overwritten with the salt. An existing salt readable by others is narrowed to 0600, since anyone
    who reads it can test guessed paths against ``vol-`` keys. SaltError for everything else."""
    from .files import FileRefused, open_for_writing, opened_small_file

    path = salt_path()
    for _attempt in range(2):  # a second run may create the file between our look and our O_EXCL
        try:
            with opened_small_file(path, SALT_LIMIT) as (salt, fd):
                if len(salt) >= 16:
                    if os.fstat(fd).st_mode & 0o077 and hasattr(os, "fchmod"):
                        os.fchmod(fd, 0o600)
                    return salt
        except (FileNotFoundError, NotADirectoryError):  # not made yet (or cannot be: said below)
            pass
        except FileRefused as exc:
            raise SaltError(f"the pseudonym salt file {path}: {exc}") from None
        except OSError as exc:
            raise SaltError(f"the pseudonym salt file {path} cannot be read or made owner-only: "
                            f"{exc.strerror or type(exc).__name__}") from None
        salt = secrets.token_bytes(32)
        try:
            private_folder(path.parent)  # owner-only, as the data folder (attack run 11, A11-1's note)
            try:
                fd = open_for_writing(path, 0o600)
            except FileExistsError:
                continue
        except FileRefused as exc:
            raise SaltError(f"the pseudonym salt file {path} {exc}") from None
        except OSError as exc:
            raise SaltError(f"the pseudonym salt file {path} cannot be made: {exc.strerror or type(exc).__name__} "
                            "(set OCTVIEWER_PSEUDONYM_SALT to a writable place, or use --no-pseudonymise)") from None
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(salt)
        except OSError as exc:
            raise SaltError(f"the pseudonym salt file {path} cannot be written: "
                            f"{exc.strerror or type(exc).__name__}") from None
        return salt
    raise SaltError(f"the pseudonym salt file {path} keeps changing while it is read")


def keyed_digest(text: str, salt: bytes | None = None) -> str:
    """HMAC-SHA256 of ``text`` under the installation's salt, as hex: the one way outputs derive a
    key from an identifier. A plain hash would not do: patient IDs and file names are guessable, so
    anyone could hash guesses and match them against a published key."""
    return hmac.new(salt if salt is not None else install_salt(), text.encode("utf-8", "surrogateescape"),
                    hashlib.sha256).hexdigest()


def pseudonym(path: str | os.PathLike, salt: bytes | None = None) -> str:
    """``vol-`` + 16 hex digits, stable for the same absolute path and salt."""
    return f"vol-{keyed_digest(os.path.abspath(os.fspath(path)), salt)[:16]}"


def scrub(text: str, path: str | os.PathLike, key: str) -> str:
    """``text`` with the path, its absolute form and its file name replaced by ``key``.

    Not the bare stem: a file called ``truncated.dcm`` turned "the file is truncated or damaged"
    into "the file is <key> or damaged". The io layer names files by their full name, which is
    replaced; a stem appears in no message."""
    p = Path(path)
    for form in sorted({str(p), os.path.abspath(p), p.name} - {""}, key=len, reverse=True):
        text = text.replace(form, key)
    return text


#: The key file's header: an existing --key-file is overwritten only when it starts so (review H36, item 2).
KEY_FILE_COLUMNS = ["key", "path"]


def write_key_file(path: str | os.PathLike, mapping: dict[str, str]) -> Path:
    """key -> path CSV, readable by the owner only: the one place the link back is kept.

    UTF-8; a path that is not UTF-8 is written as its own bytes (``surrogateescape``), so the key
    leads back to the very file (a strict encoder cut the file short with a traceback, attack run H2).
    Never written through a link (``core.files.open_for_writing``): an existing key file that is a
    symbolic link or shares its file with another hard link is refused (FileRefused), where the
    key -> path lines overwrote the file it led to."""
    from .files import open_for_writing

    path = Path(path)
    private_folder(path.parent)
    fd = open_for_writing(path, 0o600)
    if hasattr(os, "fchmod"):  # a file that existed keeps its mode through open(): owner-only before any line
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        w = csv.writer(f)
        w.writerow(KEY_FILE_COLUMNS)
        for key, p in sorted(mapping.items()):
            w.writerow([key, p])
    return path
