"""``octviewer-synth``: write a SYNTHETIC optic-disc OCT cohort (DICOM OPT volumes + manifest.csv).

In the synth package (not octviewer/cli.py) so that ``python -m octviewer.synth`` imports nothing
above its layer.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from ..core.text import printable_stderr

#: the names ``generate_cohort`` gives volumes and truth files (``<patient>_<eye>_<date>_<n>.<format>``)
_OWN_NAME = re.compile(r"SYN[0-9]+-[0-9]+_O[DS]_[0-9]{8}_[0-9]+\.[A-Za-z0-9.]+")


#: what octviewer-synth writes in --out, and nothing else
_OWN_ENTRIES = {"manifest.csv", "volumes", "truth"}


def not_ours(out: Path) -> str:
    """What in ``out`` octviewer-synth did not write ("" when nothing): any entry but its manifest.csv,
    volumes/ and truth/, a manifest.csv with another header, or a file in volumes/ or truth/ not named
    as ours. A clinic's manifest was replaced and synthetic volumes were put beside its real ones
    (attack run 6, A6-14); a clinic's folder of scans without a manifest.csv was written into, a study
    of synthetic and real patients (review H36, item 3). An earlier run's output, whole or stopped
    part-way (volumes without a manifest), is ours and is written again. Entries are counted, not
    named: a scan's name may be a patient's."""
    from ..core.files import csv_is_ours
    from .cohort import MANIFEST_COLUMNS, RETIRED_MANIFEST_COLUMNS

    try:
        others = [name for name in os.listdir(out) if name not in _OWN_ENTRIES]
    except OSError as exc:
        return f"{out} cannot be read ({exc.strerror or type(exc).__name__})"
    if others:
        return f"{out} holds {len(others)} file(s) or folder(s) octviewer-synth did not write"
    # "synthetic": a clinic's study manifest starts with path too, and may hold only columns synth writes
    if not csv_is_ours(out / "manifest.csv", MANIFEST_COLUMNS, RETIRED_MANIFEST_COLUMNS, required=("synthetic",)):
        return f"{out / 'manifest.csv'} was not written by octviewer-synth (its first line is another header)"
    for sub in ("volumes", "truth"):
        folder = out / sub
        if os.path.lexists(folder) and not folder.is_dir():
            return f"{folder} is not a folder"
        try:
            names = os.listdir(folder) if folder.is_dir() else []
        except OSError as exc:
            return f"{folder} cannot be read ({exc.strerror or type(exc).__name__})"
        if any(not _OWN_NAME.fullmatch(name) for name in names):
            return f"{folder} holds files octviewer-synth did not write"
    return ""


@printable_stderr
def main(argv: list[str] | None = None) -> int:
    from . import PRESETS, generate_cohort

    parser = argparse.ArgumentParser(
        prog="octviewer-synth",
        description="Write a SYNTHETIC optic-disc OCT cohort (DICOM OPT volumes + manifest.csv) for "
                    "demos, tests and benchmarks. Not patient data.")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small",
                        help="volume size: tiny (tests), small, demo, cirrus (200 x 1024 x 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--missing-vf", type=float, default=1 / 3, help="share of visits without VF")
    parser.add_argument("--format", choices=["dcm", "npz"], default="dcm")
    parser.add_argument("--compression", choices=["rle", "jpeg2000"], default=None,
                        help="lossless DICOM compression")
    parser.add_argument("--workers", type=int, default=1,
                        help="render in this many processes (the files do not depend on it)")
    args = parser.parse_args(argv)
    if args.patients < 1:
        parser.error("--patients must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.seed < 0:  # numpy's "expected non-negative integer" came as a traceback (attack run 3 F7)
        parser.error("--seed must be 0 or more")
    if not 0.0 <= args.missing_vf <= 1.0:
        parser.error("--missing-vf must lie between 0 and 1")
    from tqdm import tqdm

    from ..core.files import FileRefused, check_writable

    try:  # --out a file, under a file, in /proc: one line before any rendering, not a traceback (attack run 3 F7)
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "is a file, not a folder" if isinstance(exc, FileExistsError) else \
            f"cannot be made ({exc.strerror or type(exc).__name__})"
        print(f"error: --out {args.out} {what}", file=sys.stderr)
        return 3
    try:  # before hours of rendering: the manifest is never written through a link (attack run 2 L4)
        check_writable(os.lstat(args.out / "manifest.csv"))
    except FileNotFoundError:
        pass
    except FileRefused as exc:
        print(f"error: {args.out / 'manifest.csv'} {exc}", file=sys.stderr)
        return 3
    if problem := not_ours(args.out):
        print(f"error: --out {problem}; octviewer-synth writes only into a new folder or its own earlier output",
              file=sys.stderr)
        return 3
    try:
        with tqdm(desc="synthesising volumes", unit="vol") as bar:
            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)
            manifest = generate_cohort(args.out, patients=args.patients, preset=args.preset, seed=args.seed,
                                       missing_vf=args.missing_vf, fmt=args.format, compression=args.compression,
                                       progress=progress, workers=args.workers)
    except KeyboardInterrupt:  # Ctrl-C: one line, as octviewer-predict and -train say it (attack run 4, F10)
        print(f"stopped: {args.out} holds part of the cohort; run again to write it whole",
              file=sys.stderr)
        return 130
    print(f"wrote {manifest} (SYNTHETIC data, for engineering only)")
    return 0
