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


def salt_path() -> Path:
    if os.environ.get("OCTVIEWER_PSEUDONYM_SALT"):
        return Path(os.environ["OCTVIEWER_PSEUDONYM_SALT"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "octviewer" / "pseudonym.salt"


def install_salt() -> bytes:
    """This installation's salt, created (owner-only) on first use."""
    path = salt_path()
    try:
        salt = path.read_bytes()
        if len(salt) >= 16:
            return salt
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(salt)
    return salt


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


def write_key_file(path: str | os.PathLike, mapping: dict[str, str]) -> Path:
    """key -> path CSV, readable by the owner only: the one place the link back is kept.

    UTF-8; a path that is not UTF-8 is written as its own bytes (``surrogateescape``), so the key
    leads back to the very file (a strict encoder cut the file short with a traceback, attack run H2).
    Never written through a link (``core.files.open_for_writing``): an existing key file that is a
    symbolic link or shares its file with another hard link is refused (FileRefused), where the
    key -> path lines overwrote the file it led to."""
    from .files import open_for_writing

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_for_writing(path, 0o600)
    if hasattr(os, "fchmod"):  # a file that existed keeps its mode through open(): owner-only before any line
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "path"])
        for key, p in sorted(mapping.items()):
            w.writerow([key, p])
    return path
