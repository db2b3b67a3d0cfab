"""``octviewer-measure FILES... --out rnfl.csv [--segmentation vendor|own]``: one row per volume.

Unreadable files are listed on stderr and in the CSV (with the error in ``quality``); the rest go
on; the exit status is non-zero if any file was unreadable or refused (as ``octviewer-predict``).
Files are named by a pseudonymous key unless ``--no-pseudonymise`` (``--key-file`` keeps the
mapping), and cells a spreadsheet would run as a formula are neutralised, both as in
``octviewer-predict`` (``octviewer.core.pseudonym``, ``octviewer.core.csv_safe``).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .columns import COLUMNS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="octviewer-measure", description=(
        "Peripapillary RNFL and optic-disc measurements per OCT file (research use only; normal figures are "
        "published population data, not a licensed normative database)"))
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--segmentation", choices=("vendor", "own"), default="vendor",
                        help="use the file's own layer segmentation when present (vendor) or always ours (own)")
    parser.add_argument("--pseudonymise", action=argparse.BooleanOptionalAction, default=True,
                        help="name files by a stable pseudonymous key instead of their path (default: on)")
    parser.add_argument("--key-file", type=Path, default=None,
                        help="also write the key -> path mapping to this CSV (owner-readable only)")
    args = parser.parse_args(argv)

    import os

    from ..core.csv_safe import csv_row, notice
    from ..core.pseudonym import install_salt, pseudonym, scrub, write_key_file
    from ..io import load_volume
    from .columns import structure_columns

    salt = install_salt() if args.pseudonymise else None
    keys: dict[str, str] = {}

    def name_of(path: Path) -> str:
        if not args.pseudonymise:
            return str(path)
        key = pseudonym(path, salt)
        keys[key] = os.path.abspath(path)
        return key

    failed = []
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", *COLUMNS, "notice"])
        writer.writeheader()
        refused = 0
        for path in args.files:
            name = name_of(path)
            try:
                volume = load_volume(path)
                row = structure_columns(volume, source=args.segmentation)
                row["notice"] = notice(volume)
                refused += row["quality"].startswith("refused")
            except Exception as exc:  # one bad file must not stop the batch
                text = scrub(str(exc), path, name) if args.pseudonymise else str(exc)
                failed.append((name, text))
                row = {c: "" for c in COLUMNS}
                row["quality"] = f"unreadable: {text}"
                row["notice"] = notice()
            writer.writerow(csv_row({"file": name, **row}))
    for name, text in failed:
        print(f"octviewer-measure: could not read {name}: {text}", file=sys.stderr)
    if args.key_file is not None and args.pseudonymise:
        write_key_file(args.key_file, keys)
        print(f"wrote the key file {args.key_file}: keep it apart from the results", file=sys.stderr)
    measured = len(args.files) - len(failed) - refused
    print(f"wrote {args.out} ({measured} measured, {refused} refused by the quality check, {len(failed)} unreadable)")
    if args.pseudonymise and args.key_file is None:
        print("files are named by pseudonymous keys (vol-...): --key-file KEYS.csv writes the key -> path "
              "mapping, --no-pseudonymise writes paths", file=sys.stderr)
    return 1 if failed or refused else 0


if __name__ == "__main__":
    sys.exit(main())
