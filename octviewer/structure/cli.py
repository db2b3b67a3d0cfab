"""``octviewer-measure FILES... --out rnfl.csv [--segmentation vendor|own]``: one row per volume.

Unreadable files are listed on stderr and in the CSV (with the error in ``quality``); the rest go
on. Cells that a spreadsheet would run as a formula are quoted with a leading apostrophe.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .columns import COLUMNS

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in text cells; numbers pass unchanged."""
    text = str(value)
    if text.startswith(_FORMULA_START):
        try:
            float(text)
            return text
        except ValueError:
            return "'" + text
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="octviewer-measure", description=(
        "Peripapillary RNFL and optic-disc measurements per OCT file (research use only; normal figures are "
        "published population data, not a licensed normative database)"))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--segmentation", choices=("vendor", "own"), default="vendor",
                        help="use the file's own layer segmentation when present (vendor) or always ours (own)")
    args = parser.parse_args(argv)

    from ..core.csv_safe import notice
    from ..io import load_volume
    from .columns import structure_columns

    failed = []
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", *COLUMNS, "notice"])
        writer.writeheader()
        refused = 0
        for path in args.files:
            try:
                volume = load_volume(path)
                row = structure_columns(volume, source=args.segmentation)
                row["notice"] = notice(volume)
                refused += row["quality"].startswith("refused")
            except Exception as exc:  # one bad file must not stop the batch
                failed.append((path, exc))
                row = {c: "" for c in COLUMNS}
                row["quality"] = f"unreadable: {exc}"
                row["notice"] = notice()
            writer.writerow({k: safe_cell(v) for k, v in {"file": str(path), **row}.items()})
    for path, exc in failed:
        print(f"octviewer-measure: could not read {path}: {exc}", file=sys.stderr)
    measured = len(args.files) - len(failed) - refused
    print(f"wrote {args.out} ({measured} measured, {refused} refused by the quality check, {len(failed)} unreadable)")
    return 1 if failed and len(failed) == len(args.files) else 0


if __name__ == "__main__":
    sys.exit(main())
