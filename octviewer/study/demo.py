"""A small SYNTHETIC study folder for the study browser: patients, both eyes, yearly visits, VF files.

The cohort generator makes cross-sectional data; the study browser needs the same eye seen over
years with damage that grows. Here each eye keeps its anatomy (disc, vessels, RNFL profile) and
only its glaucomatous damage grows linearly with time, so the OU view shows asymmetry and the
trend view a real slope. Measured VF come from the same structure-function model as the cohort,
written as DICOM OPV files for some patients and as a ``visual_fields.csv`` for the others, so
both readers are exercised. Everything here is synthetic (the files say so).
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (core.stop.run_module)
    from octviewer.core.stop import run_module

    run_module("octviewer.study.demo", "run it again to write the study whole")

import csv
import datetime as dt
import os
from pathlib import Path

import numpy as np

from ..io import save_volume
from ..io.limits import FIRST_OCT, today
from ..synth import synth_scan, visual_field
from ..synth.disease import Disease, apply_disease, random_anatomy, random_disease
from .vf import write_opv


def first_date(visits: int, years_between: float = 1.0) -> dt.date:
    """The earliest first visit of the study: 2018-01-15, or earlier so that every date (a visit's scans,
    300 days of start offset, 10 of jitter and its perimetry up to 13 days later) lies before today. A study
    whose last visits lay after today opened with its own scans refused (attack run 7, A7-15). ValueError
    when the visits cannot fit after 1991 (the earliest scan date the index takes)."""
    span = dt.timedelta(days=int(round(365.25 * years_between * (visits - 1))) + 300 + 24)
    first = min(dt.date(2018, 1, 15), today() - span)
    if first < FIRST_OCT:
        raise ValueError(f"{visits} visits {years_between:g} year(s) apart do not fit between {FIRST_OCT.year} "
                         "and today")
    return first


def write_demo_study(out, patients: int = 3, visits: int = 4, preset: str = "tiny", seed: int = 0,
                     years_between: float = 1.0) -> Path:
    """Write the study under ``out`` (``scans/``, ``perimetry/``, ``visual_fields.csv``); returns ``out``.

    Patient 0 progresses in its right eye (severity +0.15 per year) and is stable in the left;
    the other patients alternate glaucoma and normal, stable or slowly progressing. The first visits
    are in 2018, or earlier where the visits would otherwise reach past today; ValueError when they
    cannot fit after 1991 (the index's earliest scan date).
    """
    out = Path(out)
    first = first_date(visits, years_between)
    rng = np.random.default_rng(seed)
    csv_rows = []
    for p in range(patients):
        pid = f"DEMO{seed:02d}-{p:03d}"
        start = first + dt.timedelta(days=int(rng.integers(0, 300)))
        eyes = {}
        age = float(rng.uniform(50, 75))
        for eye in ("OD", "OS"):
            glaucoma = (p % 2 == 0) or eye == "OD"
            healthy = random_anatomy(rng, eye, age)  # the eye's own disc, vessels and RNFL profile
            disease = random_disease(rng) if glaucoma else Disease()
            # a start well inside the range, so growth stays visible
            start_severity, rate = (0.25, 0.15 if eye == "OD" else 0.03) if glaucoma else (0.0, 0.0)
            eyes[eye] = (healthy, disease, start_severity, rate)
        for v in range(visits):
            date = start + dt.timedelta(days=int(round(365.25 * years_between * v)) + int(rng.integers(-10, 10)))
            years = (date - start).days / 365.25
            for eye, (healthy, disease, start_severity, rate) in eyes.items():
                anatomy = apply_disease(healthy, disease, min(1.0, start_severity + rate * years))
                scan = synth_scan(anatomy, preset, seed=int(rng.integers(1 << 31)), acquired=date, patient_id=pid)
                save_volume(scan.volume, out / "scans" / pid / f"{eye}_{date:%Y%m%d}.dcm")
                vf = visual_field(anatomy, rng)
                vf_date = date + dt.timedelta(days=int(rng.integers(0, 14)))  # perimetry often another day
                if p % 2 == 0:
                    write_opv(out / "perimetry" / f"{pid}_{eye}_{vf_date:%Y%m%d}.dcm", pid, eye, vf_date,
                              md_db=vf["md"], psd_db=vf["psd"], vfi=vf["vfi"])
                else:
                    csv_rows.append({"patient_id": pid, "eye": eye, "date": vf_date.isoformat(),
                                     "vfi": f"{vf['vfi']:.1f}", "md": f"{vf['md']:.2f}", "psd": f"{vf['psd']:.2f}"})
    if csv_rows:
        with open(out / "visual_fields.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["patient_id", "eye", "date", "vfi", "md", "psd"])
            writer.writeheader()
            writer.writerows(csv_rows)
    return out


#: What the demo writes in --out: anything else there is someone else's (counted, never named).
_OWN_ENTRIES = {"scans", "perimetry", "visual_fields.csv"}
#: The columns of the demo's visual_fields.csv (``write_demo_study``).
_VF_COLUMNS = ["patient_id", "eye", "date", "vfi", "md", "psd"]


def _vf_csv_ours(path: Path) -> bool:
    """True when ``path`` is absent or is a visual_fields.csv an earlier demo wrote: the demo's header
    and DEMO... patients only. A clinic's own table of the same name was taken as the demo's by its
    name and replaced, its patients' fields lost (attack run 10, A10-12)."""
    from ..core.files import FileRefused, csv_is_ours

    if not os.path.lexists(path):
        return True
    if not csv_is_ours(path, _VF_COLUMNS, required=tuple(_VF_COLUMNS)) or path.stat().st_size > 10 << 20:
        return False  # another header, no regular file, or larger than a demo writes
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return all(row.get("patient_id", "").startswith("DEMO") for row in csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error, FileRefused):
        return False


def _demo_files(out: Path) -> list[Path]:
    """Every entry the demo may have written under its own names: in scans/DEMO.../ and perimetry/DEMO...
    (OSError when a folder cannot be read)."""
    found = [out / "perimetry" / n for n in (os.listdir(out / "perimetry") if (out / "perimetry").is_dir() else ())
             if n.startswith("DEMO")]
    for name in os.listdir(out / "scans") if (out / "scans").is_dir() else ():
        patient = out / "scans" / name
        if name.startswith("DEMO") and patient.is_dir() and not patient.is_symlink():
            found += [patient / n for n in os.listdir(patient)]
    return found


def _demo_dicom(path: Path) -> bool:
    """True when ``path`` is a file the demo writes: a regular file, a DICOM whose header says SYNTHETIC
    (Manufacturer or ImageComments, as the study index tells a synthetic scan) of a DEMO... patient. As
    octviewer-synth checks its earlier output by content, so the demo does: a file at one of its scan paths was
    replaced without being looked at (attack run 14, A14-12)."""
    import pydicom

    from ..io.limits import check_dicom_start

    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            check_dicom_start(f, str(path))
            ds = pydicom.dcmread(f, stop_before_pixels=True,
                                 specific_tags=["Manufacturer", "ImageComments", "PatientID"])
    except Exception:  # noqa: BLE001 - pydicom raises anything on a file that is not DICOM: not ours
        return False
    said = f"{ds.get('Manufacturer', '')} {ds.get('ImageComments', '')}".upper()
    return "SYNTHETIC" in said and str(ds.get("PatientID", "") or "").startswith("DEMO")


def not_ours(out: Path) -> str:
    """What in ``out`` this command did not write ("" when nothing): an entry but scans/, perimetry/ and
    visual_fields.csv, or in scans/ and perimetry/ an entry not named DEMO..., or under the DEMO... names a file
    that is not the demo's SYNTHETIC DICOM (``_demo_dicom``), or a visual_fields.csv with other patients.
    Written into a clinic's folder of scans, the demo put SYNTHETIC patients beside the real ones, one study of
    both (attack run 8, A8-9; octviewer-synth has the same rule, ``synth.cli.not_ours``). An earlier demo's
    output is ours."""
    # a link was followed (the SYNTHETIC scans written into its target) and 'scans' a file was a
    # NotADirectoryError traceback (attack run 10, A10-13)
    for name in sorted(_OWN_ENTRIES):
        if (out / name).is_symlink():
            return f"{out / name} is a symbolic link; refusing to write through it (give a new or empty folder)"
        if name != "visual_fields.csv" and os.path.lexists(out / name) and not (out / name).is_dir():
            return f"{out / name} is not a folder; give a new or empty folder"
    try:
        others = [name for name in os.listdir(out) if name not in _OWN_ENTRIES]
        for sub in ("scans", "perimetry"):
            for name in os.listdir(out / sub) if (out / sub).is_dir() else ():
                if not name.startswith("DEMO"):
                    others.append(name)
                elif (out / sub / name).is_symlink():  # written through, into a folder elsewhere
                    return f"{out / sub} holds a symbolic link; the demo writes none (give a new or empty folder)"
        # at the demo's own names, by content: a user's file at scans/DEMO00-000/OD_20190924.dcm was replaced
        # unread (attack run 14, A14-12)
        foreign = [path for path in _demo_files(out) if not _demo_dicom(path)]
    except OSError as exc:
        return f"{out} cannot be read ({exc.strerror or type(exc).__name__})"
    if others:
        return f"{out} holds {len(others)} file(s) or folder(s) the demo did not write; give a new or empty folder"
    if foreign:
        return f"{out} holds {len(foreign)} file(s) under the demo's names that are not its SYNTHETIC DICOM; give " \
               "a new or empty folder"
    if not _vf_csv_ours(out / "visual_fields.csv"):
        return f"{out / 'visual_fields.csv'} was not written by the demo (other patients or columns); give a new " \
               "or empty folder"
    return ""


def main(argv=None) -> int:
    """``python -m octviewer.study.demo --out DIR``: a study folder to try the study browser on."""
    import argparse
    import sys

    from ..synth import PRESETS

    parser = argparse.ArgumentParser(prog="python -m octviewer.study.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write (created)")
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--visits", type=int, default=4)
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS), help="volume size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.patients < 1 or args.visits < 1:
        parser.error("--patients and --visits must be at least 1")
    try:
        first_date(args.visits)
    except ValueError as exc:  # visits that cannot all lie in the past
        parser.error(f"--visits {args.visits}: {exc}")
    if args.seed < 0:  # numpy's "expected non-negative integer" came as a traceback (attack run 3 F25)
        parser.error("--seed must be 0 or more")
    try:  # --out a file, under a file, in /proc: one line before any rendering, as octviewer-synth says it
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        what = "is a file, not a folder" if isinstance(exc, FileExistsError) else \
            f"cannot be made ({exc.strerror or type(exc).__name__})"
        print(f"error: --out {args.out} {what}", file=sys.stderr)
        return 3
    if problem := not_ours(Path(args.out)):
        print(f"error: --out {problem}", file=sys.stderr)
        return 3
    try:
        out = write_demo_study(args.out, args.patients, args.visits, args.preset, args.seed)
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback (attack run 4, F10)
        print(f"stopped: {args.out} holds part of the study; run again to write it whole", file=sys.stderr)
        return 130
    print(f"wrote a SYNTHETIC study of {args.patients} patients x 2 eyes x {args.visits} visits to {out}")
    return 0

