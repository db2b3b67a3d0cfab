"""Results waiting for the archive: a small SQLite outbox in the user's data folder.

A send first writes every object into the outbox (one transaction), then sends; an object leaves
the outbox only after the archive confirmed it. So a send that fails (archive down, refused,
timeout, the program closed) loses nothing: the objects wait, with the last error, and go out with
the next send or ``retry`` to the same archive: each object keeps the archive it was queued for (AE
title, host, port), and a flush sends only the objects of the archive it is connected to. The file
holds the objects themselves (patient module included), so it is created owner-only (0600) like the
settings.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from .config import PacsConfigError, PacsSettings, data_folder, folder_problem
from .net import PacsError, PacsRefused, describe_object, store

log = logging.getLogger(__name__)
OUTBOX_FILE = "pacs_outbox.sqlite"
SCHEMA = """CREATE TABLE IF NOT EXISTS outbox (
    sop_instance_uid TEXT PRIMARY KEY, kind TEXT NOT NULL, queued TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', data BLOB NOT NULL,
    archive_ae TEXT, archive_host TEXT, archive_port INTEGER)"""
#: The archive each object is for (attack run 12, A12-8); added to an older outbox's table, NULL in its rows.
DESTINATION = ("archive_ae TEXT", "archive_host TEXT", "archive_port INTEGER")


COLUMNS = {"sop_instance_uid", "kind", "queued", "attempts", "last_error", "data"}


class OutboxError(PacsConfigError):
    """The outbox file cannot be used (a link, a FIFO, not a database, another table): one line
    naming the file and what to do, exit 2. Its rows may be unsent reports, so it is never removed."""


@dataclass(frozen=True)
class Pending:
    sop_instance_uid: str
    kind: str  # "the structured report" / "the PDF report"
    queued: str
    attempts: int
    last_error: str
    destination: str = ""  # "ORTHANC at host:port"; "" for a row queued before destinations were recorded


@dataclass(frozen=True)
class SendOutcome:
    sent: int
    waiting: int  # still in the outbox for this archive (this send's and older ones)
    error: str = ""  # why the last attempt failed, "" when everything went
    elsewhere: tuple[str, ...] = ()  # one line per other archive (or none recorded) whose objects wait

    @property
    def message(self) -> str:
        if not self.error:
            text = f"{self.sent} object(s) sent to the archive" + ("" if self.elsewhere else "; nothing is waiting")
        else:
            text = (f"{self.sent} object(s) sent; {self.waiting} kept in the outbox and retried with the next send "
                    f"(File > Send results to PACS, or octviewer-pacs retry): {self.error}")
        return "; ".join([text, *self.elsewhere])


def destination(settings: PacsSettings) -> tuple[str, str, int]:
    """The archive an object is queued for, as the settings name it."""
    return settings.archive_ae, settings.archive_host, int(settings.archive_port)


def _where(ae, host, port) -> str:
    return f"{ae} at {host}:{port}"


class Outbox:
    """Every method raises OutboxError naming the file where SQLite would have raised its own words
    ("file is not a database", "disk I/O error" for a FIFO, "no such column"), which named no file
    (attack run 4, F6)."""

    def __init__(self, path=None):
        from octviewer.core.files import file_kind, private_folder

        self.path = Path(path) if path is not None else data_folder() / OUTBOX_FILE
        try:  # a read-only HOME (no OCTVIEWER_DATA) raised a raw OSError
            private_folder(self.path.parent)  # the data folder, 0700 whoever makes it first (A11-1)
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:  # made owner-only, never through a link put there meanwhile
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                                 0o600))
                st = os.lstat(self.path)
        except OSError as exc:
            raise PacsConfigError(folder_problem(self.path.parent, exc)) from None
        if stat.S_ISLNK(st.st_mode):  # a dangling link made the outbox wherever it pointed
            raise OutboxError(f"the PACS outbox {self.path} is a symbolic link; octviewer does not follow it "
                              "(remove the link, or put the outbox file itself there)")
        if not stat.S_ISREG(st.st_mode):
            raise OutboxError(f"the PACS outbox {self.path} is {file_kind(st.st_mode)}, not a file; remove it")
        with self._using() as db:
            db.execute(SCHEMA)
            found = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
            if not COLUMNS <= found:
                raise sqlite3.DatabaseError(f"its table has other columns ({', '.join(sorted(found))[:200]})")
            with db:  # an older outbox: its rows keep no archive (NULL) and are not sent anywhere unasked
                for column in DESTINATION:
                    if column.split()[0] not in found:
                        db.execute(f"ALTER TABLE outbox ADD COLUMN {column}")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    @contextmanager
    def _using(self):
        """A connection, closed after; a damaged file is OutboxError naming it."""
        try:
            db = self._db()
            try:
                yield db
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):
                raise OutboxError(f"the PACS outbox {self.path} is in use by another octviewer; try again") from None
            raise OutboxError(f"the PACS outbox {self.path} cannot be used ({exc}); move it aside (it may hold "
                              "unsent reports) and send again") from None

    def queue(self, datasets: list[Dataset], settings: PacsSettings) -> None:
        """Store ``datasets`` for the archive of ``settings`` (AE title, host, port)."""
        rows = []
        for ds in datasets:
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            rows.append((str(ds.SOPInstanceUID), describe_object(ds), dt.datetime.now().isoformat(timespec="seconds"),
                         buffer.getvalue(), *destination(settings)))
        with self._using() as db, db:
            db.executemany("INSERT OR REPLACE INTO outbox (sop_instance_uid, kind, queued, data, archive_ae, "
                           "archive_host, archive_port) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def pending(self) -> list[Pending]:
        with self._using() as db:
            rows = db.execute("SELECT sop_instance_uid, kind, queued, attempts, last_error, archive_ae, archive_host, "
                              "archive_port FROM outbox ORDER BY queued").fetchall()
        return [Pending(*row[:5], _where(*row[5:]) if row[5] is not None else "") for row in rows]

    def drop(self, uids: list[str]) -> int:
        """Remove the queued objects ``uids`` (SOP instance UIDs, as ``octviewer-pacs outbox`` lists them)
        unsent; how many there were."""
        with self._using() as db, db:
            return sum(db.execute("DELETE FROM outbox WHERE sop_instance_uid = ?", (uid,)).rowcount for uid in uids)

    def _waiting_elsewhere(self, db, settings: PacsSettings) -> tuple[str, ...]:
        """A line for each other archive whose objects wait, and one for rows that record none."""
        lines = []
        for ae, host, port, n in db.execute(
                "SELECT archive_ae, archive_host, archive_port, COUNT(*) FROM outbox WHERE archive_ae IS NOT NULL "
                "AND NOT (archive_ae = ? AND archive_host = ? AND archive_port = ?) GROUP BY archive_ae, "
                "archive_host, archive_port", destination(settings)):
            lines.append(f"{n} object(s) wait for the archive {_where(ae, host, port)}, not sent to "
                         f"{_where(*destination(settings))} (octviewer-pacs retry with that archive's settings sends "
                         "them; octviewer-pacs outbox --drop UID drops one)")
        unaddressed = db.execute("SELECT COUNT(*) FROM outbox WHERE archive_ae IS NULL").fetchone()[0]
        if unaddressed:
            lines.append(f"{unaddressed} object(s) queued by an earlier version, which did not record their archive, "
                         "wait and are sent nowhere (octviewer-pacs retry --unaddressed sends them to this archive; "
                         "octviewer-pacs outbox --drop UID drops one)")
        return tuple(lines)

    def flush(self, settings: PacsSettings, progress=None, unaddressed: bool = False) -> SendOutcome:
        """Send everything waiting for this archive, oldest first; what the archive confirmed leaves the outbox.

        Only the objects queued for the archive of ``settings`` (AE title, host, port) go; those of
        another archive, and with ``unaddressed`` False those an earlier version queued without one,
        wait and are said: a report queued for the clinic's archive went to whichever archive the
        next send named, with the patient's name, ID and birth date (attack run 12, A12-8).
        An object the archive refuses stays, with the refusal as its error, and the others still go
        (one refused report must not hold up every later one); a connection that fails stops the
        send, and everything not confirmed stays for the next one.
        """
        here = destination(settings)
        with self._using() as db:
            if unaddressed:  # the user's choice: this archive is theirs
                with db:
                    db.execute("UPDATE outbox SET archive_ae = ?, archive_host = ?, archive_port = ? "
                               "WHERE archive_ae IS NULL", here)
            rows = db.execute("SELECT sop_instance_uid, data FROM outbox WHERE archive_ae = ? AND archive_host = ? "
                              "AND archive_port = ? ORDER BY queued", here).fetchall()
            elsewhere = self._waiting_elsewhere(db, settings)
        if not rows:
            return SendOutcome(0, 0, elsewhere=elsewhere)
        sent: list[str] = []
        failed: dict[str, str] = {}
        remaining = []
        for uid, data in rows:  # one row that is no DICOM object held up every queued report (F6)
            try:
                remaining.append((uid, pydicom.dcmread(BytesIO(data))))
            except Exception as exc:
                failed[uid] = (f"a queued object is not DICOM ({type(exc).__name__}); it is not sent and stays "
                               f"in the outbox {self.path.name}")
                log.warning("outbox: a queued object is not DICOM; skipped")
        total = len(remaining)
        while remaining:
            batch = remaining

            def confirmed(done, _total, batch=batch):
                sent.append(batch[done - 1][0])
                if progress is not None:
                    progress(len(sent), total)

            try:
                store(settings, [ds for _, ds in batch], progress=confirmed)
                remaining = []
            except PacsRefused as exc:
                failed[batch[exc.index][0]] = str(exc)
                remaining = batch[exc.index + 1:]
            except PacsError as exc:
                failed.update({uid: str(exc) for uid, _ in batch if uid not in sent})
                remaining = []
        with self._using() as db:
            with db:
                db.executemany("DELETE FROM outbox WHERE sop_instance_uid = ?", [(uid,) for uid in sent])
                db.executemany("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE sop_instance_uid = ?",
                               [(error, uid) for uid, error in failed.items()])
            waiting = db.execute("SELECT COUNT(*) FROM outbox WHERE archive_ae = ? AND archive_host = ? AND "
                                 "archive_port = ?", here).fetchone()[0]
        log.info("outbox: %d sent, %d waiting", len(sent), waiting)
        return SendOutcome(len(sent), waiting, next(iter(failed.values()), ""), elsewhere)

    def send(self, settings: PacsSettings, datasets: list[Dataset], progress=None) -> SendOutcome:
        """Queue ``datasets`` (durably) for this archive, then send everything waiting for it."""
        self.queue(datasets, settings)
        return self.flush(settings, progress)
