"""``octviewer-measure FILES_OR_FOLDERS... --out rnfl.csv [--segmentation vendor|own]``: one row per volume.

The structure half of the one pipeline (``analyse_scan`` without the network): the whole
measurement, which assesses the full scan. Folders are searched for volume files as
``octviewer-predict`` does. Unreadable files are listed on stderr and in the CSV (with the error in
``quality``); the rest go on; the exit status is 1 if any file was unreadable or refused (as
``octviewer-predict``). Files are named by a pseudonymous key unless ``--no-pseudonymise``
(``--key-file`` keeps the mapping), and cells a spreadsheet would run as a formula are neutralised,
both as in ``octviewer-predict``. ``--resume`` finishes a killed run, and refuses rows measured
with other settings (the ``settings`` column: segmentation source, measurement version).
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (attack run 12, A12-5)
    from octviewer.core.stop import run_module

    run_module("octviewer.pipeline.measure_cli", hint="run again with --resume to continue", prog="octviewer-measure")

import argparse
import sys
from pathlib import Path

from ..core.text import printable_stderr
from .outputs import (
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SCANS_FAILED,
    OutputError,
    check_outputs,
    expand,
    stoppable,
)


def _columns() -> list[str]:
    from ..structure import COLUMNS

    return ["file", *COLUMNS, "notice", "settings"]


#: Column names older versions wrote and this one no longer does (see predict_cli.RETIRED_COLUMNS):
#: their CSV is still this command's own (review H36, item 1). None so far; a name removed belongs here.
RETIRED_COLUMNS: list[str] = []
#: A column every version wrote and that sets the CSV apart from a list of scans (A10-14).
REQUIRED_COLUMNS = ("quality",)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="octviewer-measure", epilog=EXIT_CODES_HELP, description=(
        "Peripapillary RNFL and optic-disc measurements per OCT file (research use only; normal figures are "
        "published population data, not a licensed normative database)"))
    p.add_argument("files", nargs="+", help="volume files or folders")
    p.add_argument("--out", type=Path, required=True, help="CSV to write")
    p.add_argument("--segmentation", choices=("vendor", "own"), default="vendor",
                   help="use the file's own layer segmentation when present (vendor) or always ours (own)")
    p.add_argument("--pseudonymise", action=argparse.BooleanOptionalAction, default=True,
                   help="name files by a stable pseudonymous key instead of their path (default: on)")
    p.add_argument("--key-file", type=Path, default=None,
                   help="also write the key -> path mapping to this CSV (owner-readable only)")
    p.add_argument("--resume", action="store_true",
                   help="after a killed run: keep the rows already written to --out, measure only the rest")
    p.add_argument("--store", action=argparse.BooleanOptionalAction, default=True,
                   help="read and keep results in the results store, where the viewer finds them (default: on)")
    return p


def _failed(row: dict) -> bool:
    return row.get("quality", "").startswith(("unreadable", "refused"))


@stoppable("octviewer-measure")
@printable_stderr
def main(argv: list[str] | None = None) -> int:
    from . import ScanOptions
    from .batch import Batch, settings

    args = parser().parse_args(argv)
    files, skipped = expand(args.files)
    try:
        check_outputs(files + [p for p, _ in skipped], args.out, files={"--key-file": args.key_file},
                      columns=_columns(), retired=RETIRED_COLUMNS, required=REQUIRED_COLUMNS)
        batch = Batch("octviewer-measure", args, _columns(), skipped, failed=_failed,
                      skipped_row=lambda name, reason: {"file": name, "quality": f"unreadable: {reason}",
                                                        "notice": _notice()},
                      run_cells={"settings": settings(ScanOptions(network=False, segmentation=args.segmentation))},
                      files=files)
    except OutputError as exc:
        print(f"octviewer-measure: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    unreadable = [(name, reason) for _, name, reason in batch.skipped]
    try:
        with batch:
            for path in batch.scans(files, "measuring"):
                name = batch.name_of(path)
                if batch.finished(name):
                    continue
                row, error = _measured(batch, path, name, args.segmentation)
                if error:
                    unreadable.append((name, error))
                batch.write({"file": name, **row})
            if batch.finish(files) == EXIT_OUTPUT:
                return EXIT_OUTPUT
    except OutputError as exc:  # the journal cannot be written (a full disk): the rows so far are kept
        print(f"octviewer-measure: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    for name, text in unreadable:
        print(f"octviewer-measure: could not read {name}: {text}", file=sys.stderr)
    rows = batch.order_rows
    refused = sum(r["quality"].startswith("refused") for r in rows)
    failed = sum(r["quality"].startswith("unreadable") for r in rows)
    print(f"wrote {args.out} ({len(rows) - failed - refused} measured, {refused} refused by the quality check, "
          f"{failed} unreadable)")
    batch.say_how_files_are_named()
    return EXIT_SCANS_FAILED if batch.failures else EXIT_OK


def _notice(volume=None) -> str:
    from ..core.csv_safe import notice

    return notice(volume)


def _measured(batch, path: Path, name: str, source: str) -> tuple[dict, str]:
    """(the row's cells, "" or why the file could not be measured)."""
    from ..io import load_volume
    from ..structure import COLUMNS, report_columns
    from . import ScanOptions, analyse_scan

    try:
        volume = load_volume(path)
        result = analyse_scan(volume, None, ScanOptions(network=False, segmentation=source), store=batch.store)
        if result.structure is None:
            raise ValueError(result.structure_error)
        return {**report_columns(result.structure), "notice": _notice(volume)}, ""
    except Exception as exc:  # one bad file must not stop the batch
        text = batch.named_message(str(exc), path, name).removeprefix(f"{name}: ")
        row = {c: "" for c in COLUMNS}
        row["quality"] = f"unreadable: {text}"
        row["notice"] = _notice()
        return row, text

