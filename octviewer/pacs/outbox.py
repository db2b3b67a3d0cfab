"""Results waiting for the archive: a small SQLite outbox in the user's data folder.

A send first writes every object into the outbox (one transaction), then sends; an object leaves
the outbox only after the archive confirmed it. So a send that fails (archive down, refused,
timeout, the program closed) loses nothing: the objects wait, with the last error, and go out with
the next send or ``retry``. The file holds the objects themselves (patient module included), so it
is created owner-only (0600) like the settings.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
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
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', data BLOB NOT NULL)"""


@dataclass(frozen=True)
class Pending:
    sop_instance_uid: str
    kind: str  # "the structured report" / "the PDF report"
    queued: str
    attempts: int
    last_error: str


@dataclass(frozen=True)
class SendOutcome:
    sent: int
    waiting: int  # still in the outbox (this send's and older ones)
    error: str = ""  # why the last attempt failed, "" when everything went

    @property
    def message(self) -> str:
        if not self.error:
            return f"{self.sent} object(s) sent to the archive; nothing is waiting"
        return (f"{self.sent} object(s) sent; {self.waiting} kept in the outbox and retried with the next send "
                f"(File > Send results to PACS, or octviewer-pacs retry): {self.error}")


class Outbox:
    def __init__(self, path=None):
        self.path = Path(path) if path is not None else data_folder() / OUTBOX_FILE
        try:  # a read-only HOME (no OCTVIEWER_DATA) raised a raw OSError
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise PacsConfigError(folder_problem(self.path.parent, exc)) from None
        with self._db() as db:
            db.execute(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def queue(self, datasets: list[Dataset]) -> None:
        rows = []
        for ds in datasets:
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            rows.append((str(ds.SOPInstanceUID), describe_object(ds), dt.datetime.now().isoformat(timespec="seconds"),
                         buffer.getvalue()))
        db = self._db()
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO outbox (sop_instance_uid, kind, queued, data) "
                               "VALUES (?, ?, ?, ?)", rows)
        finally:
            db.close()

    def pending(self) -> list[Pending]:
        db = self._db()
        try:
            rows = db.execute("SELECT sop_instance_uid, kind, queued, attempts, last_error FROM outbox "
                              "ORDER BY queued").fetchall()
        finally:
            db.close()
        return [Pending(*row) for row in rows]

    def flush(self, settings: PacsSettings, progress=None) -> SendOutcome:
        """Send everything waiting, oldest first; what the archive confirmed leaves the outbox.

        An object the archive refuses stays, with the refusal as its error, and the others still go
        (one refused report must not hold up every later one); a connection that fails stops the
        send, and everything not confirmed stays for the next one.
        """
        db = self._db()
        try:
            rows = db.execute("SELECT sop_instance_uid, data FROM outbox ORDER BY queued").fetchall()
        finally:
            db.close()
        if not rows:
            return SendOutcome(0, 0)
        remaining = [(uid, pydicom.dcmread(BytesIO(data))) for uid, data in rows]
        sent: list[str] = []
        failed: dict[str, str] = {}
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
        db = self._db()
        try:
            with db:
                db.executemany("DELETE FROM outbox WHERE sop_instance_uid = ?", [(uid,) for uid in sent])
                db.executemany("UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE sop_instance_uid = ?",
                               [(error, uid) for uid, error in failed.items()])
            waiting = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        finally:
            db.close()
        log.info("outbox: %d sent, %d waiting", len(sent), waiting)
        return SendOutcome(len(sent), waiting, next(iter(failed.values()), ""))

    def send(self, settings: PacsSettings, datasets: list[Dataset], progress=None) -> SendOutcome:
        """Queue ``datasets`` (durably), then send everything waiting."""
        self.queue(datasets)
        return self.flush(settings, progress)
