"""What the batch commands share: input expansion, output checks, exit codes, and the CSV written
row by row so that a killed run can be resumed.

Exit codes (the same for ``octviewer-predict`` and ``octviewer-measure``, listed in their --help):
0 every scan analysed; 1 some scans failed or were refused (their rows say why); 2 the model file
cannot be used, or the command line is wrong; 3 an output cannot be written where it was asked
(a folder, a read-only place, a path under a file, or an input file). A script can tell "fix the
command" (2, 3) from "look at the rows" (1).
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import math
import os
import re
import stat
import sys
from pathlib import Path

from ..core import VF_INDICES
from ..core.files import FileRefused, check_writable, csv_header, csv_is_ours, open_for_writing, same_file
from ..core.pseudonym import KEY_FILE_COLUMNS
from ..core.stop import EXIT_STOPPED, stoppable  # noqa: F401  (re-exported: the one stop rule, A10-1)

EXIT_OK, EXIT_SCANS_FAILED, EXIT_MODEL, EXIT_OUTPUT = 0, 1, 2, 3


EXIT_CODES_HELP = ("exit status: 0 every scan analysed; 1 some scans failed or were refused (see their rows); "
                   "2 the model file cannot be used or the command line is wrong; 3 an output cannot be written "
                   "there (a folder, a read-only place, a path under a file, or one of the inputs)")


class OutputError(Exception):
    """An output path that cannot be used; the message is one line naming the path."""


def shown(path) -> str:
    """``path`` for a message: whole unless it is over 200 characters (a path over PATH_MAX made a
    4,500-character line), then its start and its end."""
    text = str(path)
    return text if len(text) <= 200 else f"{text[:100]}...{text[-80:]}"


#: Said after a write that failed midway: the journal holds every row written before it.
RESUME_HINT = "; the rows written so far are kept: run again with --resume when it can be"


def write_failed(option: str, path: Path, exc: OSError, after: str = "") -> OutputError:
    """The one line for a write that failed midway (a full disk: "No space left on device")."""
    return OutputError(f"{option} {shown(path)} cannot be written: {exc.strerror or type(exc).__name__}{after}")


def expand(inputs: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(volumes, skipped with the reason): files as given; folders searched for volume files by the
    io registry (``octviewer.io.find_volumes``), or taken as one volume (image stack, HEYEX export).
    Entries that are no regular file (FIFOs, devices, broken links) and unreadable subfolders are
    returned as skipped, never opened (opening a FIFO blocks)."""
    from ..io import find_volumes

    paths, skipped = [], []
    for item in inputs:
        p = Path(item)
        try:
            folder = p.is_dir()
        except OSError:  # a path longer than PATH_MAX: load_volume names the file and the reason in its row
            folder = False
        if folder:
            found, passed_over = find_volumes(p)
            paths.extend(found)
            skipped.extend(passed_over)
        else:
            paths.append(p)
    return _once(paths), skipped


def _once(paths: list[Path]) -> list[Path]:
    """``paths`` with each scan once: one file named several ways (``a.dcm ./a.dcm /abs/a.dcm``, a
    folder holding it, a hard link to it) gave a row for each, and a cohort summary made from the CSV
    counted one eye six times (attack run 4, F13). The same file is the same (device, inode); one that
    cannot be looked at is compared by its resolved path. A note on stderr says how many were dropped
    (never which: the names may be patients')."""
    seen, kept = set(), []
    for p in paths:
        try:
            st = os.stat(p)
            # no file IDs (some FAT and network shares report inode 0): every input looked like one file
            identity = (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(p)
        except (OSError, ValueError):
            identity = os.path.realpath(p)
        if identity not in seen:
            seen.add(identity)
            kept.append(p)
    if len(kept) < len(paths):
        print(f"note: {len(paths) - len(kept)} input(s) name a scan given already; each scan is analysed once",
              file=sys.stderr)
    return kept


def _protected(model: Path | None) -> dict[str, Path]:
    """Files a command reads besides its scans, which an output must never replace: the model file
    and the results store (with SQLite's -wal/-shm beside it), and octviewer's own secrets."""
    from .store import default_path

    store = default_path()
    named = {"the results store": store, "the results store's journal": store.with_name(store.name + "-wal"),
             "the results store's index": store.with_name(store.name + "-shm"), **own_secrets()}
    if model is not None:
        named["the model file"] = Path(model)
    return named


def protected_as(path, model: Path | None = None) -> str:
    """What ``path`` is among the files no output may replace (``_protected``), or ""."""
    return next((what for what, kept in _protected(model).items() if same_file(Path(path), kept)), "")


#: pacs.config.SETTINGS_FILE and pacs.outbox.OUTBOX_FILE, named here because the pipeline may not import the
#: PACS layer (tests/test_attack3_fixes_a.py checks that they agree)
PACS_SETTINGS_FILE, PACS_OUTBOX_FILE = "pacs.json", "pacs_outbox.sqlite"


def own_secrets() -> dict[str, Path]:
    """octviewer's own secret and trust files, which no output may replace (attack run 3 F13, F14):
    ``--out`` naming the pseudonym salt made the handed-out CSV the salt (every key changed, and the
    CSV's holder could test guessed paths against the keys); naming the workstation's signing key
    destroyed it (every model signed here became "signed by an unknown key"). Also the pinned public
    keys, and the PACS settings and outbox (which hold the archive's address and queued reports)."""
    from ..core.pseudonym import salt_path
    from ..model.signing import trusted_key_dirs, workstation_key_path
    from .store import default_path

    key, data = workstation_key_path(), default_path().parent  # pacs.config.data_folder(): the layer above
    named = {"the pseudonym salt": salt_path(), "this workstation's signing key": key,
             "this workstation's public key": key.with_suffix(".pub"),
             "the PACS settings": data / PACS_SETTINGS_FILE, "the PACS outbox": data / PACS_OUTBOX_FILE}
    for folder in trusted_key_dirs():
        try:
            pinned = sorted(folder.glob("*.pub")) if folder.is_dir() else []
        except OSError:
            pinned = []
        named.update({f"the pinned public key {p.name}": p for p in pinned})
    return named


def check_outputs(inputs: list[Path], out: Path, folders: dict[str, Path] | None = None,
                  files: dict[str, Path] | None = None, model: Path | None = None,
                  columns: list[str] | None = None, retired: list[str] | tuple = (), required: tuple = ()) -> None:
    """Raise OutputError for an output that cannot be written, or that names an input, before
    anything is written: ``--out`` naming the scan it was given truncated that scan before it was read,
    and naming the model file or the results store destroyed them.

    ``out`` and ``files`` (option -> path) are files to write, ``folders`` (option -> path) folders
    to write into. An output that exists as a device, FIFO or socket is refused too: writing to a
    FIFO blocks for good, and the CSV would be renamed over a device node. ``columns``: the header of
    the command's CSV, ``retired``: the column names its older versions wrote, ``required``: the ones
    every version wrote that set its CSV apart; an ``out`` that exists and is not such a CSV is refused
    (``core.files.csv_is_ours``; without ``required`` a user's list of scans, one column 'file', was
    replaced: attack run 10, A10-14), and so is a ``--key-file`` in ``files`` that exists and is not a
    key file (``key,path``)."""
    named = {"--out": out, **{k: v for k, v in (files or {}).items() if v is not None}}
    for option, path in named.items():  # "" (an unset $OUT) is Path("."): with_name raised ValueError (attack 3 F10)
        if not Path(path).name or Path(path).name == "..":
            raise OutputError(f"{option} {str(path)!r} names no file; give a file name, e.g. results.csv")
    # the journal and the temporary CSV are written too: a link there to the model or a scan was overwritten
    named |= {f"--out's {what}": out.with_name(out.name + end) for what, end in (("journal", ".partial"),
                                                                                  ("temporary file", ".tmp"))}
    for option, path in [*named.items(), *((k, v) for k, v in (folders or {}).items() if v is not None)]:
        try:
            os.lstat(path)
        except OSError as exc:  # a path over PATH_MAX raised a raw ENAMETOOLONG from is_dir() below
            if exc.errno == errno.ENAMETOOLONG:
                raise OutputError(f"{option} {shown(path)}: the path is too long for this system "
                                  f"({len(os.fsencode(path))} bytes)") from None
    for option, path in named.items():
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise OutputError(f"{option} {path} is a device, FIFO or socket, not a file; give a file name")
    for option, path in named.items():
        if what := protected_as(path, model):
            raise OutputError(f"{option} {path} is {what}; refusing to overwrite it")
    folder_opts = {k: v for k, v in (folders or {}).items() if v is not None}
    seen: dict[str, Path] = {}
    for option, path in [*named.items(), *folder_opts.items()]:
        for other, earlier in seen.items():
            if same_file(path, earlier):
                raise OutputError(f"{option} {path} is the same path as {other}; give each output its own name")
        seen[option] = path
        for given in inputs:
            if same_file(path, given):
                raise OutputError(f"{option} {path} is one of the inputs; refusing to overwrite a scan")
    for option, path in named.items():
        if option != "--out":  # written in place (--out itself is renamed over, which replaces a link)
            try:
                check_writable(os.lstat(path))
            except OSError:  # not there, or under a file: _check_parent below says so
                pass
            except FileRefused as exc:
                raise OutputError(f"{option} {path} {exc}") from None
    # before the CSV's own check: --out a.dcm/x.csv (under a file) was said to exist (attack run 24, A24-6)
    for option, path in named.items():
        if path.is_dir():
            raise OutputError(f"{option} {path} is a folder; give a file name, e.g. {path / 'results.csv'}")
        _check_parent(option, path)
    if columns is not None and not out.is_dir() and not csv_is_ours(out, columns, retired, required):
        raise OutputError(f"--out {out} exists and is not a results CSV of this command (its first line is "
                          "not this command's header); refusing to overwrite it: give another file name")
    key_file = (files or {}).get("--key-file")  # --key-file STUDY/vf.csv replaced the study's VF table (H36, 2)
    if key_file is not None and not Path(key_file).is_dir() and not csv_is_ours(key_file, KEY_FILE_COLUMNS):
        raise OutputError(f"--key-file {key_file} exists and is not a key file of this command (its first line is "
                          "not key,path); refusing to overwrite it: give another file name")
    for option, path in folder_opts.items():
        if path.exists() and not path.is_dir():
            raise OutputError(f"{option} {path} is a file, not a folder")
        _check_parent(option, path / "x")


def _check_parent(option: str, path: Path) -> None:
    """The nearest existing folder above ``path`` must be a folder we can write into."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: {parent} is not writable")


def open_output(option: str, path: Path, lock_for: Path | None = None, private: bool = False):
    """Create the folders above ``path`` and open it for writing; OutputError with one line if the
    place refuses (read-only file system, /proc, no permission).

    UTF-8, and a file name that is not UTF-8 (a str with surrogate escapes) is written as its own
    bytes (``surrogateescape``): the cell names the file on disk, as ``ls`` would, where a strict
    encoder ended the run with a traceback and no CSV (attack run H2). ``--resume`` reads the same way.

    Never through a link (``core.files.open_for_writing``): a journal or temporary CSV that is a
    symbolic or hard link to any other file is refused, where the rows used to overwrite that file.

    ``lock_for`` (the results CSV the file is the journal of): the file is opened without emptying it,
    locked (``flock``, exclusive) and left for the caller to read and empty, so a second run with the same --out is
    refused (OutputError, "another run is writing") before it truncates the first's live journal
    (attack run 2 M2). ``flock`` is let go by the kernel when a run dies, so no stale lock is left.

    ``private``: owner-only (0600) from the first byte, also a file that was there: rows that name the scans'
    files (``--no-pseudonymise``) carry the patients' names, as the key file does (attack run 13, A13-2)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if lock_for is None:
            fd = open_for_writing(path, mode=0o600 if private else 0o666)
        else:
            fd = _locked(path, lock_for)
        if private:
            os.fchmod(fd, 0o600)
        return open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="")
    except FileRefused as exc:
        raise OutputError(f"{option} {path} {exc}") from None
    except OSError as exc:
        raise OutputError(f"{option} {path} cannot be written: {exc.strerror or type(exc).__name__}") from None


def _locked(path: Path, out: Path) -> int:
    """A descriptor of ``path``, exclusively locked, its bytes kept; OutputError if another run holds it."""
    busy = OutputError(f"another run is writing {out}; wait for it to end or give another --out")
    try:
        fd = open_for_writing(path, truncate=False)
    except FileExistsError:  # the other run created it between our look and our O_EXCL
        raise busy from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # the lock is on the file we opened: the one at the path now (not one the other run removed)
        if os.fstat(fd).st_ino != os.lstat(path).st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        raise busy from None
    except BaseException:
        os.close(fd)
        raise
    return fd


#: the quality check's state a row's result was made with: "on", "off" (the result's own settings, never a menu's
#: tick at export time), blank where not known. One column and one notice sentence for the window's CSV and
#: ``octviewer-predict``'s: a scan the check refuses, analysed with it off, was exported "normal" beside its quality
#: "refused" with no word of the check, in the window's CSV (walk-through H91, W4) and then in the command's, whose
#: header lacked the column the window's had gained (attack run 15, A15-11).
QUALITY_CHECK_COLUMN = "quality_check"

#: said beside "refused" wherever the structure measurement's verdict is printed (the Structure panel's header, the
#: scan PDF, the window's CSV): a scan analysed with the quality check off read "REFUSED" beside the network's result,
#: and the check being off seemed to have changed nothing; it lets the network read the scan, never the RNFL and disc
#: measurement (walk-through H104, X5)
REFUSED_EITHER_WAY = "RNFL and disc not measured on a scan failing the quality check, whether the check is on or off"


def refused_quality_text(text: str) -> str:
    """A structure quality verdict "refused; signal ...: <why>" (``structure.Quality.summary``) as a reader is given it:
    "refused (``REFUSED_EITHER_WAY``); signal ...". Any other verdict as it is. It still begins "refused", which
    the CSV's readers filter on."""
    for word in ("refused", "REFUSED"):
        if text.startswith(word + ";"):
            return f"{word} ({REFUSED_EITHER_WAY}){text[len(word):]}"
    return text


def quality_check_cells(prediction, quality, settings) -> tuple[str, str]:
    """(``QUALITY_CHECK_COLUMN``'s cell, the notice's sentence or "") of a result: ``prediction`` (None: no
    result), ``quality`` (the scan's ``structure.Quality``: the measurement's verdict, else the gate's) and
    ``settings`` (the ``analysis_settings`` words the result was made with; None: not known).

    The sentence is said beside a decision that stands only because the check was off: "quality check off: this
    scan fails it (signal 0.02: <why>); with the check on it gets no result". A result made with the check on
    says nothing; one whose settings are not known is judged by what stands (with the check on, no result stands
    on a scan it refuses). It names no menu, key or state of the app: a report read weeks later printed "it is on
    now: Analysis > Analyse (F5) applies it", true only of the window at export time (walk-through H95, V3); the
    Results panel adds that on screen (``results_panel.quality_check_off_note``)."""
    from ..core.text import printable
    from . import ScanOptions
    from .scan import analysis_settings

    on, off = (analysis_settings(ScanOptions(gate=g))[0] for g in (True, False))
    gate = (settings or ("",))[0]
    cell = {on: "on", off: "off"}.get(gate, "")
    if prediction is None or quality is None or getattr(quality, "ok", True) or (gate and gate != off):
        return cell, ""
    score = getattr(quality, "score", None)
    finite = isinstance(score, (int, float)) and math.isfinite(score)
    signal = f"signal {score:.2f}" if finite else "signal not measured"
    reasons = tuple(getattr(quality, "reasons", ()) or ())
    why = ""
    if reasons:
        text = " ".join(printable(str(reasons[0])).split())
        why = ": " + (text if len(text) <= 120 else text[:119] + "…")
    return cell, f"quality check off: this scan fails it ({signal}{why}); with the check on it gets no result"


#: A number cell as this program writes it: ASCII digits, a point, an optional minus (no exponent,
#: no "nan", no underscores).
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
#: The cells that decide what a reader concludes, and their ranges; other number cells need only be numbers.
_RANGES = {"probability": (0.0, 1.0), "threshold": (0.0, 1.0), **{k: v["range"] for k, v in VF_INDICES.items()}}
_NUMBER_CELLS = {"probability", "threshold", "vfi", "md", "psd", "seconds", "rnfl_global_um", "rnfl_T_um",
                 "rnfl_TS_um", "rnfl_TI_um", "rnfl_N_um", "rnfl_NS_um", "rnfl_NI_um", "cup_to_disc", "rim_area_mm2",
                 "cup_to_disc_average", "disc_area_mm2", "cup_area_mm2", "bmo_mrw_um", "rnfl_unsure_pct"}


def row_problem(row: dict, run_cells: dict) -> str:
    """Why a results row read back (``--resume``) cannot be passed on as this run's, or "".

    It must carry this run's ``run_cells`` (a row of another model, precision or measurement code
    would sit beside this run's rows unmarked), its number cells must be finite decimals (the
    probability and the VF indices within their ranges), and its decision must be the one its
    probability and threshold give. A row with more or fewer cells than the header, a row naming no
    file or holding neither a result nor an error, or a text cell a spreadsheet would run as a formula
    (``csv_cell`` never writes one), is no row of this program's."""
    from ..core.csv_safe import csv_cell

    if None in row or None in row.values():  # csv.DictReader's marks of a row longer or shorter than the header
        return "the row has another number of cells than the header"
    if not row.get("file"):
        return "the row names no file"
    # every row says what came of its scan: octviewer-predict a probability or an error,
    # octviewer-measure a quality (or why the file is unreadable)
    outcome = ("probability", "error") if "probability" in row else ("quality",)
    if not any(row.get(c) for c in outcome):
        return f"the row holds neither a result nor an error (no {' or '.join(outcome)})"
    for column, value in run_cells.items():
        if row.get(column, "") != csv_cell(value):
            return f"made with another {column}: {row.get(column, '')!r:.40} (this run: {csv_cell(value)!r})"
    for column in _NUMBER_CELLS & row.keys():
        text = row[column]
        if text == "":
            continue
        if not _DECIMAL.fullmatch(text) or not math.isfinite(float(text)):
            return f"{column} is {text!r:.20}, not a number"
        lo, hi = _RANGES.get(column, (-math.inf, math.inf))
        if not lo <= float(text) <= hi:
            return f"{column} is {text}, outside {lo:g} to {hi:g}"
    if row.get("probability") or row.get("decision"):
        try:
            p, t = float(row["probability"]), float(row["threshold"])
        except (KeyError, ValueError):
            return "a decision without its probability and threshold"
        if row.get("decision") not in ({"glaucoma", "normal"} if p == t else {"glaucoma" if p > t else "normal"}):
            return f"decision {row.get('decision', '')!r:.20} does not follow from probability {p} and threshold {t}"
    if bad := next((c for c, v in row.items() if v != csv_cell(v)), None):  # every cell went through csv_cell
        return f"{bad} holds {row[bad]!r:.30}, a formula this program never writes"
    return ""


def _whole_rows(text: str) -> str:
    """``text`` up to its last line end outside quotes: a row cut just after a line break inside a
    quoted file name (a name holding a newline) was taken as whole, and --resume refused the
    journal (attack run 2 M11). A ``"`` inside a cell is written doubled, so the parity holds."""
    end, inside = 0, False
    for m in re.finditer(r'["\n]', text):
        if m.group() == '"':
            inside = not inside
        elif not inside:
            end = m.end()
    return text[:end]


def _other_columns(header: list[str] | None, columns: list[str]) -> str:
    """Why a CSV of other columns cannot be resumed, after its name. An older version's CSV (its columns all this
    version's, some missing) is said to be one, with the columns it lacks: its rows hold no cell for them (the
    quality_check column, attack run 15, A15-11), and filled blank they would read "not known" beside this run's."""
    missing = [c for c in columns if c not in (header or ())]
    if header and missing and set(header) <= set(columns):
        named = ", ".join(missing[-3:]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        return (f"is not a results CSV of this command or version: an older version wrote it (it has no column "
                f"{named}); its rows cannot be continued: run without --resume to start over, or give another --out")
    return "is not a results CSV of this command or version (other columns)"


class ResumableCsv:
    """The results CSV of a batch command, resumable after a kill.

    Rows go to a journal, ``<out>.partial``, one line at a time and flushed (a SIGKILL loses at most
    the row being written); ``finish`` writes ``out`` from it in the order of the run's inputs and
    removes the journal. ``resume=True`` keeps the journal's finished rows (or those of an earlier
    complete ``out``), keyed by their ``file`` cell: the caller skips those scans, so a resumed run
    writes the same CSV as an uninterrupted one. A last row cut off by the kill (no line end) is
    dropped and its scan analysed again. A journal of another command or column set is refused
    (OutputError), never overwritten by surprise.

    ``run_cells`` (column -> text: the model's digest, the settings) say what made a row; every row
    carries them. A row to be resumed must carry this run's, and hold numbers a row can hold
    (``row_problem``): otherwise the whole file is refused, since rows of another model, precision or
    measurement, or an edited file, would be passed on beside this run's as if they were one run's."""

    def __init__(self, out: Path, columns: list[str], resume: bool = False, run_cells: dict | None = None,
                 private: bool = False):
        self.out = Path(out)
        self.private = private  # the journal and the CSV owner-only (``open_output``)
        self.journal = self.out.with_name(self.out.name + ".partial")
        self.columns = columns
        self.run_cells = run_cells or {}
        self.rows: dict[str, dict] = {}
        # locked before it is read or emptied: a second run with this --out is refused here
        self._file = open_output("--out", self.journal, lock_for=self.out, private=private)
        try:
            if resume:
                self.rows = self._finished_rows(self.journal) or self._finished_rows(self.out)
        except BaseException:
            self.close()
            raise
        self._writer = csv.DictWriter(self._file, fieldnames=columns)
        try:
            self._file.truncate(0)
            self._writer.writeheader()
            for row in self.rows.values():
                self._writer.writerow(row)
            self._file.flush()
        except OSError as exc:
            self.close()
            raise write_failed("--out's journal", self.journal, exc) from None

    @property
    def done(self) -> set[str]:
        return set(self.rows)

    def _finished_rows(self, path: Path) -> dict[str, dict]:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
                text = f.read()
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise OutputError(f"--resume: {path} cannot be read ({type(exc).__name__})") from None
        text = _whole_rows(text)  # the row the kill cut off is dropped
        if not text:
            return {}
        reader = csv.DictReader(io.StringIO(text, newline=""))  # rows end at CR/LF only, as the writer ends them
        rows = {}
        try:
            header = csv_header(path)  # the one reader of a header, as check_outputs' (review H36, item 9)
        except (FileRefused, OSError):
            header = None
        if header != self.columns:  # exactly: rows of another version's columns are not this run's rows
            raise OutputError(f"--resume: {path} {_other_columns(header, self.columns)}")
        try:
            for row in reader:
                problem = row_problem(row, self.run_cells)
                if problem:
                    raise OutputError(f"--resume: {path} line {reader.line_num}: {problem}; "
                                      "run without --resume to start over")
                rows[row["file"]] = row
        except csv.Error as exc:  # a cell over the csv module's 128 KiB limit: no row this program writes
            raise OutputError(f"--resume: {path} line {reader.line_num + 1}: not a results CSV ({exc})") from None
        return rows

    def write(self, row: dict) -> None:
        row = {c: row.get(c, "") for c in self.columns}
        try:
            self._writer.writerow(row)
            self._file.flush()
        except OSError as exc:  # a full disk: the rows before are in the journal, a cut last one is dropped on --resume
            self.close()
            raise write_failed("--out's journal", self.journal, exc, RESUME_HINT) from None
        self.rows[row["file"]] = row

    def finish(self, order: list[str]) -> None:
        """Write ``out`` with the rows in ``order`` (the ``file`` cells of the run's inputs). The
        journal stays open (and locked) until it is removed, so no second run starts in between."""
        try:
            self._finish(order)
        finally:
            self.close()

    def _finish(self, order: list[str]) -> None:
        tmp = self.out.with_name(self.out.name + ".tmp")
        f = open_output("--out", tmp, private=self.private)
        try:
            with f:
                writer = csv.DictWriter(f, fieldnames=self.columns)
                writer.writeheader()
                for name in order:
                    if name in self.rows:
                        writer.writerow(self.rows[name])
        except OSError as exc:  # a full disk: the journal keeps the rows
            tmp.unlink(missing_ok=True)
            raise write_failed("--out", self.out, exc, f" (the rows are in {shown(self.journal)})") from None
        try:
            os.replace(tmp, self.out)
        except OSError as exc:
            raise OutputError(f"--out {self.out} cannot be written: {exc.strerror or type(exc).__name__} "
                              f"(the rows are in {self.journal})") from None
        self.journal.unlink(missing_ok=True)

    def close(self) -> None:
        """Close the journal; a flush that fails here (a full disk, said already) is not raised again."""
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass
