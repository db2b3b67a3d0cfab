"""The run of a batch command (``octviewer-predict``, ``octviewer-measure``): naming files by
pseudonymous keys, the resumable CSV, the results store, the key file and the counts.

Why shared: the two commands promised the same things (no identifiers in the outputs, formula-safe
cells, the same exit codes, ``--resume``) and had drifted apart (one expanded folders, the other did
not); what they differ in is only what a row holds.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from .outputs import EXIT_OK, EXIT_OUTPUT, OutputError, ResumableCsv
from .scan import analysis_settings


class Batch:
    """One command's run. ``skipped`` (path, reason) entries the folder search passed over become
    rows of their own (``skipped_row(name, reason)``); ``failed(row)`` says whether a row counts
    as a failure for the exit status. ``run_cells`` (column -> text) say what made the rows (model
    digest, settings): every row gets them, and ``--resume`` takes only rows that carry them."""

    def __init__(self, prog: str, args, columns: list[str], skipped: list[tuple[Path, str]],
                 skipped_row: Callable[[str, str], dict] | None = None,
                 failed: Callable[[dict], bool] = lambda row: bool(row.get("error")),
                 run_cells: dict[str, str] | None = None, files: list[Path] = ()):
        from ..core.pseudonym import SaltError, install_salt

        self.prog, self.args = prog, args
        try:
            self.salt = install_salt() if args.pseudonymise else None
        except SaltError as exc:  # a setting the run cannot go without: one line, exit status 3
            raise OutputError(str(exc)) from None
        self.keys: dict[str, str] = {}
        self.failed = failed
        self.run_cells = run_cells or {}
        self.store = _open_store(prog) if getattr(args, "store", False) else None
        # rows that name the scans' files (--no-pseudonymise) are owner-only, as the key file is (A13-2)
        self.csv = ResumableCsv(args.out, columns, resume=args.resume, run_cells=self.run_cells,
                                private=not args.pseudonymise)
        self.done = set(self.csv.done)
        self.skipped = [(path, self.name_of(path), reason) for path, reason in skipped]
        if self.done:
            self._say_resumed(files)
        self.total = len(self.skipped)
        for path, name, reason in self.skipped:
            if self.finished(name):
                continue
            reason = self.named_message(reason, path, name).removeprefix(f"{name}: ")
            row = skipped_row(name, reason) if skipped_row else {"file": name, "error": f"{name}: {reason}"}
            self.write(row)
            self.note("skipped", f"{name}: {reason}")

    def _say_resumed(self, files: list[Path]) -> None:
        """How many of this run's scans the CSV being resumed holds, and how many of its rows are of other scans:
        those are dropped (a resumed run keeps only rows it would have written). "resuming: 1 scans already in
        rs.csv" counted a row of another patient's screen that the run then dropped (attack run 12, A12-11)."""
        mine = {_cell(name) for _, name, _ in self.skipped} | {_cell(self.name_of(p)) for p in files}
        kept, other = len(self.done & mine), len(self.done - mine)
        line = f"{self.prog}: resuming: {kept} scans already in {self.args.out}"
        if other:
            line += f"; {other} row(s) of scans not in this run are dropped from it"
        print(line, file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.csv.close()
        if self.store is not None:
            self.store.close()
        return False

    # -- names ---------------------------------------------------------------------------------
    def pseudonym(self, path: Path) -> str:
        from ..core.pseudonym import SaltError, install_salt, pseudonym

        try:  # --no-pseudonymise reads the salt only here (two CAMs of one stem)
            return pseudonym(path, self.salt or install_salt())
        except SaltError as exc:
            raise OutputError(str(exc)) from None

    def name_of(self, path: Path) -> str:
        if not self.args.pseudonymise:
            return str(path)
        key = self.pseudonym(path)
        self.keys[key] = os.path.abspath(path)
        return key

    def named_message(self, text: str, path: Path, name: str) -> str:
        """``text`` with the path replaced by the key (when pseudonymised), starting with the name."""
        from ..core.pseudonym import scrub

        if self.args.pseudonymise:
            text = hide_file_names(scrub(text, path, name), path)
        return text if text.startswith(f"{name}:") else f"{name}: {text}"

    # -- rows ----------------------------------------------------------------------------------
    def finished(self, name: str) -> bool:
        """The scan named ``name`` has its row from the run being resumed."""
        return _cell(name) in self.done

    def scans(self, files: list[Path], desc: str) -> Iterator[Path]:
        from tqdm import tqdm

        self.total += len(files)
        yield from tqdm(files, desc=desc, unit="vol")

    def write(self, row: dict) -> None:
        from ..core.csv_safe import csv_row

        self.csv.write(csv_row({**row, **self.run_cells}))

    def note(self, kind: str, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(f"{kind} {text}", file=sys.stderr)

    def rows(self) -> list[dict]:
        return list(self.csv.rows.values())

    @property
    def failures(self) -> int:
        return sum(self.failed(row) for row in self.order_rows)

    def finish(self, files: list[Path]) -> int:
        """Write the CSV in input order and the key file; EXIT_OUTPUT if the CSV cannot be moved in place."""
        order = [_cell(name) for _, name, _ in self.skipped] + [_cell(self.name_of(p)) for p in files]
        self.order_rows = [self.csv.rows[n] for n in order if n in self.csv.rows]
        try:
            self.csv.finish(order)
        except OutputError as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return EXIT_OUTPUT
        if self.args.key_file is not None:
            if not self.args.pseudonymise:
                print("note: --key-file ignored with --no-pseudonymise (the CSV holds the paths)", file=sys.stderr)
            else:
                from ..core.files import FileRefused
                from ..core.pseudonym import write_key_file

                try:
                    write_key_file(self.args.key_file, self.keys)
                except FileRefused as exc:  # a link made after check_outputs looked
                    print(f"{self.prog}: --key-file {self.args.key_file} {exc}", file=sys.stderr)
                    return EXIT_OUTPUT
                except OSError as exc:
                    print(f"{self.prog}: --key-file {self.args.key_file} cannot be written: "
                          f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
                    return EXIT_OUTPUT
                print(f"wrote the key file {self.args.key_file}: keep it apart from the results", file=sys.stderr)
        return EXIT_OK

    def say_how_files_are_named(self) -> None:
        if self.args.pseudonymise and self.args.key_file is None:
            print("files are named by pseudonymous keys (vol-...): --key-file KEYS.csv writes the key -> path "
                  "mapping, --no-pseudonymise writes paths", file=sys.stderr)


COMPANION = "a companion file"
# A file name with an extension (letters first: not "1.5e9"; two characters before the dot: not
# "e.g."), with the folders before it.
_FILE_NAME = re.compile(r"(?<![\w.\-])(?:[^\s'\"<>|]*[\\/])?[\w\-+@#~]{2,}(?:\.[\w\-+@#~]+)*"
                        r"\.[A-Za-z][A-Za-z0-9]{0,4}(?!\w)")


def hide_file_names(text: str, path) -> str:
    """``text`` (already ``scrub``-bed of the scan's own path) with every other file named replaced by
    "a companion file". Why: the readers name a scan's companions (an Optovue description file, one
    B-scan image of a folder, the image a HEYEX XML lists), and those names carry what the scan's own
    name did -- patient names, IDs, birth dates (attack run 4, F15). The names of the files beside or
    inside the scan are replaced whole (they may hold spaces), then anything shaped like a file name
    (a name with an extension, a missing file's too)."""
    p = Path(path)
    try:
        folder = p if p.is_dir() else p.parent
    except OSError:  # a path longer than PATH_MAX
        folder = p.parent
    for form in sorted({str(folder), os.path.abspath(folder)} - {"", "."}, key=len, reverse=True):
        text = text.replace(form + os.sep, "")
    try:
        with os.scandir(folder) as entries:
            names = [e.name for _, e in zip(range(5000), entries)]
    except OSError:
        names = []
    # only names the text holds (one substring test each: a regex per entry of a 3,000-file folder took
    # 0.12 s a message), and not plain words: a sibling folder "DICOM" turned "the DICOM header" into "the
    # a companion file header" (review). A companion's name has an extension, digits or separators.
    for entry in sorted((n for n in names if len(n) >= 3 and n in text and not n.isalpha()), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.\-]){re.escape(entry)}(?![\w])", COMPANION, text)
    return _FILE_NAME.sub(COMPANION, text)


def settings(options, predictor=None) -> str:
    """The ``settings`` cell: what besides the scan and the model file decides a row (the precision
    and device the network ran at, the quality gate, the segmentation source, the versions of the
    network's and the measurement's code), as the results store keys on them."""
    from .store import measurement_version, network_version

    gate, wanted = analysis_settings(options)
    parts = []
    if predictor is not None:
        parts += [f"{predictor.precision} on {predictor.device.type}", gate, f"network {network_version()}"]
    parts += [wanted, f"measurement {measurement_version()}"]
    return ", ".join(parts)


def _cell(name: str) -> str:
    """A file name as its CSV cell holds it (neutralised against formula injection): rows are found by it."""
    from ..core.csv_safe import csv_cell

    return csv_cell(name)


def _open_store(prog: str):
    """The results store, or None with a line on stderr when it cannot be opened (the run goes on)."""
    from .store import ResultsStore, StoreError

    try:
        return ResultsStore()
    except StoreError as exc:
        print(f"{prog}: note: results store not used: {exc}", file=sys.stderr)
        return None


def clear_store(prog: str) -> int:
    import sqlite3

    from .store import ResultsStore, StoreError

    try:
        store = ResultsStore()
        removed = store.clear()
        store.close()
    except StoreError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    except sqlite3.Error as exc:  # a full disk, a read-only file: one line, not a traceback (review)
        print(f"{prog}: the results store could not be cleared ({exc})", file=sys.stderr)
        return EXIT_OUTPUT
    print(f"cleared the results store {store.path} ({removed} results removed)")
    return EXIT_OK
