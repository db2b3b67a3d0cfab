"""The results store: what the pipeline computed for a scan, remembered between openings and shared
between the viewer and batch runs; and the study index's header records.

Why SQLite (stdlib ``sqlite3``) in WAL mode: several processes (the viewer, an ``octviewer-predict``
run) read and write at once, a write is one transaction, and a process killed mid-write leaves the
database as it was before that transaction (the WAL is rolled back on the next open). Values are
never pickled: a result is JSON for its numbers and words plus one compressed ``.npz`` blob for its
arrays (probabilities per B-scan, VF, CAM, RNFL profile and maps, segmentation lines), rebuilt
into the same dataclasses from a fixed list of types, so opening a store runs no code from it.

Two keys, because the network's output depends on less than the whole result:

- a result (gate verdict, structure report, reasons; table ``results``) is keyed by a content hash
  of the scan (pixels, layers, geometry), the model's identity (a digest of its weights and
  metadata, and the precision and device it ran at), the options (gate, segmentation source,
  network, measurement) and the measurement's version (a digest of the structure and pipeline
  code), so a changed model or measurement never returns a stale result;
- the network's output (the Prediction: probabilities, VF, CAM; table ``predictions``) is keyed by
  the scan, the model and the version of the code that runs it (``octviewer.model``). The options
  decide whether the network runs, never what it gives, so switching the segmentation source (or
  the gate) runs only the gate and the measurement again; the result key holds the network key.
  A result row names the prediction it shows (column ``network``); one whose prediction is gone is
  not returned (it is computed again).

A result carries the analysis settings it was made with (``ScanResult.settings``: the quality gate and
segmentation source in ``scan.analysis_settings``'s words), in its JSON document, so the integrity
check covers them and no schema step is needed: a row written before results carried them reads
back with ``settings`` None (not known), and ``analyse_scan`` makes such a result again rather than
show one whose report could not say how it was made (attack run 13, A13-11). The network's output
alone carries none: it is the same under every option, and stands only behind a gate run with the
options of the result that names it.

A database this version cannot use (corrupt, another program's, or a newer schema) is moved aside
(``results.sqlite.<why>-<time>``) with a message (``ResultsStore.notice``, and the log), and a new
one is started; the application never stops for it. A file that is no SQLite database at all (its
first 16 bytes) is never taken for a damaged store: it is refused and left where it is. The schema carries its version
(``PRAGMA user_version``) and is brought up to date by ``MIGRATIONS`` in order.

The file holds patient IDs (study headers): the folder is made 0700 and the file 0600.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import numpy as np

from ..core.files import private_folder, user_folder

log = logging.getLogger(__name__)

APPLICATION_ID = 0x4F435652  # "OCVR": this file is an octviewer results store
SCHEMA_VERSION = 4
#: step n brings a store from version n-1 to n; a store is never taken back down
MIGRATIONS = {
    1: ["CREATE TABLE results (key TEXT PRIMARY KEY, scan TEXT NOT NULL, model TEXT NOT NULL, created REAL NOT NULL,"
        " doc TEXT NOT NULL, arrays BLOB NOT NULL)",
        "CREATE INDEX results_scan ON results (scan)"],
    2: ["CREATE TABLE study_headers (root TEXT NOT NULL, rel TEXT NOT NULL, record TEXT NOT NULL,"
        " PRIMARY KEY (root, rel))"],
    3: ["CREATE TABLE predictions (key TEXT PRIMARY KEY, scan TEXT NOT NULL, created REAL NOT NULL,"
        " doc TEXT NOT NULL, arrays BLOB NOT NULL)",
        "ALTER TABLE results ADD COLUMN network TEXT"],  # NULL: the prediction (if any) is in the row itself
    # each value carries a MAC with this workstation's secret: rows written before cannot be vouched for
    4: ["DELETE FROM results", "DELETE FROM predictions",
        "ALTER TABLE results ADD COLUMN mac TEXT", "ALTER TABLE predictions ADD COLUMN mac TEXT"],
}
FORGED = ("a stored value fails its integrity check (not written by octviewer on this workstation: "
          "copied, restored or edited); it is computed again")
#: how long a read or write waits for another process's write; a viewer or batch run holds the lock
#: for milliseconds, so a store still locked after this is held by something else (a backup tool, a
#: sqlite3 shell): the store is then left alone for the run (it used to wait 30 s per scan)
BUSY_TIMEOUT_S = 5.0
#: how long a store found locked is left alone before it is tried again
BUSY_RETRY_S = 60.0
#: the first 16 bytes of every SQLite database. Only a file that starts so can be a damaged store and be moved
#: aside; any other file named as the store (a scan, a user's document) was renamed away and replaced by an
#: empty database (attack run 7, A7-23): it is refused and left as it is
SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(Exception):
    """The store cannot be opened at all (no writable data folder, a link, locked by another process)."""


def _locked(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another process holds the store, which is not damaged."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)
    return "locked" in str(exc) or "busy" in str(exc)


def _damaged(exc: sqlite3.Error) -> bool:
    """SQLITE_CORRUPT or SQLITE_NOTADB: the file itself is bad and may be moved aside. Any other error
    (SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN: a full disk, EFBIG, a read error) says nothing about
    the file, and a good store moved aside for it lost every remembered result (attack run 6, A6-7)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (11, 26)
    return "malformed" in str(exc) or "not a database" in str(exc)


def default_path() -> Path:
    """``$OCTVIEWER_DATA/results.sqlite``, else the user's data folder (XDG)."""
    base = os.environ.get("OCTVIEWER_DATA")
    return (Path(base) if base else user_folder("data")) / "results.sqlite"


class ResultsStore:
    """``get(key)`` / ``put(key, result, network)``, ``get_prediction`` / ``put_prediction`` for the
    network's output alone, ``clear()``; thread-safe (one connection behind a lock)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.notice = ""  # what happened to a store that could not be used, for the reader
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self._busy_until = 0.0  # found locked by another process: left alone until then (time.monotonic)
        try:
            private_folder(self.path.parent)  # every level it makes owner-only (A11-1)
        except OSError as exc:
            raise StoreError(f"results store folder {self.path.parent} cannot be made "
                             f"({exc.strerror or type(exc).__name__})") from None
        self._refuse_link()
        try:
            self._db = self._open()
        except OSError as exc:  # the file itself cannot be opened or made (permissions, a read-only disk)
            raise StoreError(f"results store {self.path} cannot be opened "
                             f"({exc.strerror or type(exc).__name__})") from None

    def _refuse_link(self) -> None:
        """A link (dangling too) as the store made the database, with patient IDs, wherever it pointed
        (attack run 5, F15); a link as its -wal / -shm companion made SQLite fail, and the fresh store was
        moved aside as "damaged" on every run, the link never named (attack run 6, A6-3)."""
        for suffix, what in (("", "the results store"), ("-wal", "the results store's journal"),
                             ("-shm", "the results store's journal index")):
            link = Path(str(self.path) + suffix)
            if link.is_symlink():
                raise StoreError(f"{what} {link} is a symbolic link; octviewer does not follow it "
                                 "(remove the link, or put the file itself there)")

    def _in_use(self) -> str:
        return (f"the results store {self.path} is in use by another program (locked); "
                f"results are not remembered while it is (tried again every {BUSY_RETRY_S:g} s)")

    @property
    def _busy(self) -> bool:
        return time.monotonic() < self._busy_until

    def _gave_up(self, exc: sqlite3.Error) -> bool:
        """True when ``exc`` says another process holds the store (a warning the first time): it is then
        left alone for ``BUSY_RETRY_S``, so a run does not wait the busy timeout on every scan, and tried
        again after it, so a viewer open all day does not lose its store to one long lock (review)."""
        if not _locked(exc):
            return False
        if not self.notice:
            self.notice = self._in_use()[0].upper() + self._in_use()[1:] + "."
            log.warning("%s", self._in_use())
        self._busy_until = time.monotonic() + BUSY_RETRY_S
        return True

    # -- integrity -----------------------------------------------------------------------------
    def _mac(self, table: str, key: str, doc: str, blob: bytes, network: str | None = None) -> str | None:
        """HMAC-SHA256 of a row with a key derived from this workstation's pseudonym salt (kept outside
        the data folder, owner-only). Why: an in-range value edited in the store, or a store copied
        from another workstation or restored from a backup, was served as this program's result -- a
        0.01 "normal" for an advanced eye, under the signed model's label (attack run 4, F11). None
        when the salt cannot be had: then nothing is read back or kept."""
        if self._secret is None:
            from ..core.pseudonym import SaltError, install_salt

            try:
                self._secret = hmac.new(install_salt(), b"octviewer results store", hashlib.sha256).digest()
            except SaltError as exc:
                log.warning("results store not used: %s", exc)
                self._secret = b""
        if not self._secret:
            return None
        h = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in (table.encode(), key.encode(), (network or "").encode(), doc.encode(), bytes(blob)):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
        return h.hexdigest()

    def _vouched(self, mac, *row) -> bool:
        """The stored ``mac`` is this workstation's for ``row``; else a warning (the value is computed again)."""
        expected = self._mac(*row)
        if expected is not None and isinstance(mac, str) and hmac.compare_digest(mac, expected):
            return True
        if expected is not None:
            self.notice = f"The results store {self.path}: {FORGED}."
            log.warning("results store: %s", FORGED)
        return False

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        why, db = None, None
        try:
            db = self._connect()
            why = self._unusable(db)
            if why is None:
                self._migrate(db)
                return db
            db.close()
        except sqlite3.DatabaseError as exc:  # not a database, or damaged beyond reading
            if db is not None:  # closed before the file is left, moved or named: no handle outlives the refusal
                db.close()
            if _locked(exc):  # a live store another process holds is not damaged: never moved aside
                raise StoreError(self._in_use()) from None
            if not _damaged(exc):  # a full disk or a read error: the store is left as it is
                self._refuse_link()  # a link put there meanwhile is named, not a "disk full?"
                raise StoreError(f"results store {self.path} cannot be written ({exc}; disk full?); "
                                 "it is left as it is and not used this run") from None
            why = f"damaged ({exc})"
        self._move_aside(why)
        try:
            db = self._connect()
            self._migrate(db)
            return db
        except sqlite3.Error as exc:
            raise StoreError(f"results store {self.path} cannot be made ({exc})") from None

    def _connect(self) -> sqlite3.Connection:
        try:  # owner-only from the first byte; never through a link put there meanwhile
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            self._refuse_link()
            raise
        try:  # a FIFO or a device is no store: SQLite's "disk I/O error" on it said nothing (attack run 6)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"the results store {self.path} is not a regular file; it is left as it is")
            if os.pread(fd, len(SQLITE_HEADER), 0) not in (b"", SQLITE_HEADER):
                raise StoreError(f"{self.path} is not an SQLite database, so not a results store; it is left as it "
                                 "is and not used (remove it, or give the store another name)")
        finally:
            os.close(fd)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("results store: journal mode %s (WAL not available here)", mode)
        db.execute("PRAGMA synchronous = NORMAL")  # WAL: a crash loses at most the last transactions, never the file
        return db

    def _unusable(self, db: sqlite3.Connection) -> str | None:
        """Why this database is not ours to use, or None."""
        app = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app == 0 and version == 0 and tables == 0:
            return None  # new and empty
        if app != APPLICATION_ID:
            return "foreign (not an octviewer results store)"
        if version > SCHEMA_VERSION:
            return f"newer (schema {version}; this octviewer reads up to {SCHEMA_VERSION})"
        check = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            return f"damaged ({check})"
        return None

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for sql in MIGRATIONS[step]:
                    db.execute(sql)
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _move_aside(self, why: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kind = why.split(" ", 1)[0]
        target = self.path.with_name(f"{self.path.name}.{kind}-{stamp}")
        # two moves in one second, or a clock set back, replaced an earlier backup (attack run 5, F4)
        n = 1
        while any(os.path.lexists(str(target) + suffix) for suffix in ("", "-wal", "-shm")):
            n += 1
            target = self.path.with_name(f"{self.path.name}.{kind}-{stamp}-{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                try:
                    os.replace(src, Path(str(target) + suffix))
                except OSError as exc:
                    raise StoreError(f"results store {self.path} is {why} and cannot be moved aside "
                                     f"({exc.strerror})") from None
        self.notice = f"The results store {self.path} was {why}; it was moved to {target.name} and a new one started."
        log.warning("%s", self.notice)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- results -------------------------------------------------------------------------------
    def keys(self, volume, predictor, options) -> tuple[str, str | None]:
        """(the key of ``volume``'s result with ``predictor`` (None: no network) and ``options``,
        the key of the network's output: the scan and the model only; None without a predictor).
        The scan is hashed once for both."""
        scan = scan_digest(volume)
        network = None
        if predictor is not None:
            network = hashlib.sha256("\n".join([scan, model_identity(predictor), network_version()]).encode())
        opts = json.dumps(dataclasses.asdict(options), sort_keys=True)
        result = hashlib.sha256("\n".join([scan, network.hexdigest() if network else "no-model", opts,
                                           measurement_version()]).encode())
        return f"{scan[:16]}-{result.hexdigest()}", (f"{scan[:16]}-{network.hexdigest()}" if network else None)

    def get(self, key: str):
        """The ScanResult stored under ``key``, with the prediction it names, or None (never stored,
        its prediction gone, or unreadable: then computed again)."""
        if self._busy:
            return None
        try:
            with self._lock:
                row = self._db.execute("SELECT doc, arrays, network, mac FROM results WHERE key = ?",
                                       (key,)).fetchone()
                held = None
                if row is not None and row[2] is not None:
                    held = self._db.execute("SELECT doc, arrays, mac FROM predictions WHERE key = ?",
                                            (row[2],)).fetchone()
        except sqlite3.Error as exc:
            if not self._gave_up(exc):
                log.warning("results store not read (%s)", exc)
            return None
        if row is None or (row[2] is not None and held is None):
            return None
        if not self._vouched(row[3], "results", key, row[0], row[1], row[2]) or (
                held is not None and not self._vouched(held[2], "predictions", row[2], held[0], held[1])):
            return None
        try:
            result = decode(row[0], row[1])
            if held is not None:
                result = dataclasses.replace(result, prediction=_prediction(decode(held[0], held[1])))
            return result
        except Exception as exc:  # a damaged value costs a recomputation, never the scan
            log.warning("results store: a stored result could not be read (%s: %s)", type(exc).__name__, exc)
            return None

    def put(self, key: str, result, network: str | None = None) -> bool:
        """Keep ``result`` under ``key``; with ``network`` (the network output's key) its prediction
        is kept there, in the same transaction, for the results of this scan and model under other
        options. False (and a log line) when the store cannot take it."""
        result = dataclasses.replace(result, from_store=False)
        prediction = result.prediction if network is not None else None
        if prediction is not None:
            result = dataclasses.replace(result, prediction=None)
        doc, blob = encode(result)
        network = network if prediction is not None else None
        mac = self._mac("results", key, doc, blob, network)
        if mac is None or self._busy:
            return False
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    if prediction is not None:
                        self._put_prediction(network, prediction)
                    self._db.execute("INSERT OR REPLACE INTO results (key, scan, model, created, doc, arrays, network, "
                                     "mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     (key, key.split("-", 1)[0], "", time.time(), doc, blob, network, mac))
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            return True
        except sqlite3.Error as exc:
            if not self._gave_up(exc):
                log.warning("results store not written (%s)", exc)
            return False

    def get_prediction(self, network: str):
        """The network's output stored under ``network`` (``keys()[1]``), or None."""
        if self._busy:
            return None
        try:
            with self._lock:
                row = self._db.execute("SELECT doc, arrays, mac FROM predictions WHERE key = ?",
                                       (network,)).fetchone()
        except sqlite3.Error as exc:
            if not self._gave_up(exc):
                log.warning("results store not read (%s)", exc)
            return None
        if row is None or not self._vouched(row[2], "predictions", network, row[0], row[1]):
            return None
        try:
            return _prediction(decode(row[0], row[1]))
        except Exception as exc:  # a damaged value costs a network run, never the scan
            log.warning("results store: a stored prediction could not be read (%s: %s)", type(exc).__name__, exc)
            return None

    def put_prediction(self, network: str, prediction) -> bool:
        """Keep the network's output as soon as it is there, so that an analysis stopped before its
        measurement (the user switched the segmentation) still leaves it for the next one."""
        if self._busy:
            return False
        try:
            with self._lock:
                self._put_prediction(network, prediction)
            return True
        except sqlite3.Error as exc:
            if not self._gave_up(exc):
                log.warning("results store not written (%s)", exc)
            return False

    def _put_prediction(self, network: str, prediction) -> None:
        doc, blob = encode(dataclasses.replace(prediction, remembered=False))
        mac = self._mac("predictions", network, doc, blob)
        if mac is None:
            raise sqlite3.OperationalError("no secret to vouch for the value with")
        self._db.execute("INSERT OR REPLACE INTO predictions (key, scan, created, doc, arrays, mac) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (network, network.split("-", 1)[0], time.time(), doc, blob, mac))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM results").fetchone()[0]

    def clear(self) -> int:
        """Forget every result, network output and study header; returns how many results there were."""
        with self._lock:
            n = self._db.execute("SELECT count(*) FROM results").fetchone()[0]
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # held by another process: said, not a traceback
                if _locked(exc):
                    raise StoreError(f"the results store {self.path} is in use by another program (locked); "
                                     "it was not cleared") from None
                raise
            self._db.execute("DELETE FROM results")
            self._db.execute("DELETE FROM predictions")
            self._db.execute("DELETE FROM study_headers")
            self._db.execute("COMMIT")
            try:
                self._db.execute("VACUUM")  # give the space back; skipped while another process reads
            except sqlite3.OperationalError:
                pass
        return n

    # -- the study index's header records ------------------------------------------------------
    def study_headers(self, root: str) -> dict[str, dict]:
        """Header records of the files under study folder ``root`` (relative path -> record)."""
        if self._busy:
            return {}
        try:
            with self._lock:
                rows = self._db.execute("SELECT rel, record FROM study_headers WHERE root = ?",
                                        (db_path(root),)).fetchall()
            return {os.fsdecode(rel): json.loads(record) for rel, record in rows}
        except (sqlite3.Error, ValueError) as exc:
            if isinstance(exc, sqlite3.Error) and self._gave_up(exc):
                return {}
            log.warning("study headers not read from the results store (%s)", type(exc).__name__)
            return {}

    def put_study_headers(self, root: str, entries: dict[str, dict]) -> None:
        """Replace the header records of study folder ``root`` by ``entries`` (in one transaction)."""
        rows = [(db_path(root), db_path(rel), json.dumps(record)) for rel, record in entries.items()]
        if self._busy:
            return
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute("DELETE FROM study_headers WHERE root = ?", (db_path(root),))
                    self._db.executemany("INSERT INTO study_headers (root, rel, record) VALUES (?, ?, ?)", rows)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            if self._gave_up(exc):
                return
            log.warning("study headers not written to the results store (%s)", type(exc).__name__)


def db_path(path: str) -> str | bytes:
    """A path as the store keeps it: its text where that is valid UTF-8, else its bytes (a BLOB).

    A file name that is not UTF-8 (a Latin-1 ``M\xfcller.dcm`` on Linux) reaches Python as a str
    with surrogate escapes, which SQLite's TEXT refuses (UnicodeEncodeError: the whole study folder
    was refused for one such name, attack run H2). Its bytes (``os.fsencode``) name the same file,
    ``os.fsdecode`` gives the str back, and a BLOB never equals a TEXT, so no two names meet."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


# ---------------------------------------------------------------- keys

def scan_digest(volume) -> str:
    """A hash of what the analysis reads from a scan: pixels, layers, geometry, laterality, device."""
    h = hashlib.blake2b(digest_size=20)
    data = np.ascontiguousarray(volume.data)
    h.update(repr((data.shape, data.dtype.str, volume.scan_pattern, volume.laterality, volume.spacing,
                   volume.device, tuple(volume.notes))).encode())
    h.update(memoryview(data).cast("B"))
    for name in sorted(volume.layers):
        layer = np.ascontiguousarray(volume.layers[name], dtype=np.float64)
        h.update(name.encode())
        h.update(memoryview(layer).cast("B"))
    return h.hexdigest()


_file_digests: dict[tuple, str] = {}


def model_identity(predictor) -> str:
    """The model's digest (weights and metadata: ``LoadedModel.digest`` where the model layer gives
    one, else the file's bytes, else the weights in memory), the precision the predictor runs at and
    what the file's signature says (its warning is stored with the result)."""
    model = predictor.model
    digest = getattr(model, "digest", None)
    if callable(digest):
        digest = digest()
    if not digest and getattr(model, "path", "") and os.path.isfile(model.path):
        st = os.stat(model.path)
        cached = (model.path, st.st_size, st.st_mtime_ns)
        if cached not in _file_digests:
            h = hashlib.sha256()
            with open(model.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            _file_digests[cached] = h.hexdigest()
        digest = _file_digests[cached]
    if not digest:
        h = hashlib.sha256(json.dumps(model.meta.to_dict(), sort_keys=True, default=str).encode())
        for name, tensor in sorted(model.network.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest = h.hexdigest()
    precision = getattr(predictor, "precision", None) or ("bf16" if getattr(predictor, "bf16", False) else "fp32")
    device = getattr(getattr(predictor, "device", None), "type", "cpu")
    # who vouches for the file is part of the result: a result stored while its key was trusted must
    # not come back without the "not verified" warning once that trust is withdrawn (attack run H3)
    trust = getattr(model, "trust", None)
    vouched = trust.text() if trust is not None and hasattr(trust, "text") else "unknown"
    return f"{digest}:{precision}:{device}:{vouched}"


_code_digests: dict[str, str] = {}


def _code_digest(name: str, paths) -> str:
    if name not in _code_digests:
        h = hashlib.sha256()
        for path in sorted(paths):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _code_digests[name] = h.hexdigest()[:16]
    return _code_digests[name]


def measurement_version() -> str:
    """A digest of the code that turns a scan into its result (structure measurement, the pipeline's
    rule): a changed measurement gets new keys, so no stale result is returned."""
    here = Path(__file__).resolve().parent
    return _code_digest("measurement", [*(here.parent / "structure").glob("*.py"), here / "scan.py"])


def network_version() -> str:
    """A digest of the code that runs the network (``octviewer.model``: preprocessing, aggregation,
    calibration): changed code gets new keys, so no stale prediction is returned."""
    here = Path(__file__).resolve().parent
    return _code_digest("network", (here.parent / "model").glob("*.py"))


# ---------------------------------------------------------------- values

def _types() -> dict[str, type]:
    """The only types a stored value is rebuilt into."""
    from ..core import Prediction
    from ..structure import Quality, Segmentation, StructureReport
    from .scan import ScanResult

    return {t.__name__: t for t in (ScanResult, Prediction, StructureReport, Quality, Segmentation)}


def _prediction(value):
    """``value`` if it is a Prediction (a row of ``predictions`` holds nothing else), marked
    ``remembered``: the results panel says a result read back was not computed just now."""
    from ..core import Prediction

    if not isinstance(value, Prediction):
        raise TypeError(f"a {type(value).__name__} where a Prediction was stored")
    return dataclasses.replace(value, remembered=True)


def encode(value) -> tuple[str, bytes]:
    """(JSON document, compressed npz of the arrays) for a ScanResult or a Prediction."""
    arrays: dict[str, np.ndarray] = {}

    def enc(value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {"__type__": type(value).__name__,
                    **{f.name: enc(getattr(value, f.name)) for f in dataclasses.fields(value)}}
        if isinstance(value, np.ndarray):
            name = f"a{len(arrays)}"
            arrays[name] = value
            return {"__array__": name}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, tuple):
            return {"__tuple__": [enc(v) for v in value]}
        if isinstance(value, list):
            return [enc(v) for v in value]
        if isinstance(value, dict):
            return {"__dict__": [[enc(k), enc(v)] for k, v in value.items()]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot store a {type(value).__name__}")

    doc = json.dumps(enc(value))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return doc, buffer.getvalue()


def decode(doc: str, blob: bytes):
    types = _types()
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}

    def dec(value):
        if isinstance(value, dict):
            if "__array__" in value:
                return arrays[value["__array__"]]
            if "__tuple__" in value:
                return tuple(dec(v) for v in value["__tuple__"])
            if "__dict__" in value:
                return {dec(k): dec(v) for k, v in value["__dict__"]}
            cls = types[value["__type__"]]  # KeyError for anything else: not ours, not rebuilt
            known = {f.name for f in dataclasses.fields(cls) if f.init}
            return cls(**{k: dec(v) for k, v in value.items() if k in known})
        if isinstance(value, list):
            return [dec(v) for v in value]
        return value

    return dec(json.loads(doc))
