"""Manifests for the public glaucoma OCT datasets, in the layouts their publishers document.

- Harvard-GF and Harvard-FairVision (glaucoma part), Harvard Ophthalmology AI Lab: ``train/``,
  ``val/``, ``test/`` folders of ``data_XXXXX.npz`` with ``oct_bscans`` (200 x 200 x 200),
  ``slo_fundus``, ``glaucoma`` (0/1), Harvard-GF also ``md`` (dB) and ``tds``; demographic fields
  (``race``, ``male``, ``hispanic``, ...); sometimes ``pid`` whose part before ``_`` is the patient.
  Licence: CC BY-NC-ND 4.0 (non-commercial).
- Maetschke et al. (2019, arXiv:1807.04855) optic-disc cubes on Zenodo:
  ``{Normal|POAG}-{patient}-{YYYY-MM-DD}-{OD|OS}.npy``, 64 x 128 x 64 uint8. Non-commercial licence.

The publishers' loaders open the npz files with ``allow_pickle=True``; we never do: a field that
would need it is skipped with a warning naming it.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from octviewer.core.files import open_for_writing
from octviewer.core.text import text_problem
from octviewer.io import VolumeReadError
from octviewer.io.formats import walk_files
from octviewer.io.limits import open_regular
from octviewer.io.stacks import _npy_header, parse_zenodo_name
from octviewer.study.vf_values import vf_value_problem

from . import stop

DEMOGRAPHICS = ("race", "male", "hispanic", "ethnicity", "maritalstatus", "language", "gender", "age")
COLUMNS = ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split"]


#: Members read in full by nothing here: the volume, the fundus image, the total deviation map.
BIG_FIELDS = ("oct_bscans", "slo_fundus", "tds")

#: A scalar field (a label, MD, a pid string) is a few bytes; one whose header declares more is not read.
MAX_SCALAR_BYTES = 4096


def _scalar_fields(path: Path, warnings: list[str]) -> dict:
    """Small fields of one npz, without unpickling anything and without decompressing big members.

    Opened with ``open_regular`` (non-blocking, checked with ``fstat``): a FIFO named ``data_1.npz``
    blocked ``np.load`` in ``open()`` for good, and Ctrl-C could not end it (attack run 3 F4).
    Each member's .npy header is read first (with load_volume's npz header reader) and only a scalar
    of at most MAX_SCALAR_BYTES is read: loading every member whole to test its size let a 1.46 MB file
    holding a deflated member of 1.5e9 zero bytes take 17 s and 2.24 GB (attack run 4, F7)."""
    out = {}
    with open_regular(path) as f, zipfile.ZipFile(f) as archive:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if key in BIG_FIELDS:
                continue
            try:
                with archive.open(info) as member:
                    shape, dtype = _npy_header(path, member, info.file_size, key, allow_pickle=True)
            except VolumeReadError as exc:  # implausible size, truncated: not a field we could use
                warnings.append(f"{path.name}: field '{key}' was skipped ({exc.problem})")
                continue
            except (ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile) as exc:
                warnings.append(f"{path.name}: field '{key}' was skipped (not a readable NumPy array: "
                                f"{type(exc).__name__})")
                continue
            if dtype.hasobject:  # would need pickle
                warnings.append(f"{path.name}: field '{key}' holds Python objects and was skipped "
                                "(it would need allow_pickle=True)")
                continue
            if math.prod(shape) != 1 or dtype.itemsize > MAX_SCALAR_BYTES:
                continue
            with archive.open(info) as member:
                out[key] = np.lib.format.read_array(member, allow_pickle=False).item()
            if isinstance(out[key], bytes):
                out[key] = out[key].decode(errors="replace")
    return out


def _label(value) -> str | None:
    """'glaucoma' / 'normal' for a 0/1 field (bool, int, or a float or text that is 0 or 1), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return {0.0: "normal", 1.0: "glaucoma"}.get(number)


def _md(value) -> str | None:
    """The MD cell: "" when absent, the dB to two decimals, None when it is no finite number."""
    if isinstance(value, str) and not value:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return f"{number:.2f}" if math.isfinite(number) and not isinstance(value, bool) else None


#: Years: the oldest age a file may state.
MAX_AGE = 120


def _row_problem(pid: str, fields: dict, pid_name: str = "field 'pid'") -> str:
    """Why a file's pid or demographics cannot go into the manifest, or "". The pid gets the check
    ``validate`` gives every patient_id (``core.text.text_problem``), the text fields too, and the age
    a range: a pid holding U+202E and an ESC sequence, and ages of 1e308 and -5, were written as they
    were, and ``validate`` then refused the manifest the import had just made (attack run 6, A6-16).
    Both importers use it: the Zenodo one for the patient part of a file's name (attack run 7, A7-14)."""
    texts = [(pid_name, pid)] + [(f"field '{k}'", v) for k, v in fields.items()
                                 if k in DEMOGRAPHICS and isinstance(v, str)]
    if problem := next((p for k, v in texts if (p := text_problem(k, v))), ""):
        return problem
    if "age" in fields:
        age = fields["age"]
        try:
            years = float(age) if not isinstance(age, bool) else math.nan
        except (TypeError, ValueError):
            years = math.nan
        if not 0 <= years <= MAX_AGE:  # NaN too
            return f"field 'age' is not an age in years (0 to {MAX_AGE})"
    return ""


def import_harvard(root: Path) -> tuple[list[dict], list[str]]:
    rows, warnings, errors = [], [], []
    for split in ("train", "val", "test"):
        for path in sorted((root / split).glob("data_*.npz")) if (root / split).is_dir() else []:
            if stop.requested():  # the command turns Ctrl-C/SIGTERM into this flag: it must end the import
                raise stop.Stopped("stopped; no manifest was written")
            try:
                fields = _scalar_fields(path, warnings)
            except VolumeReadError as exc:  # a FIFO, a device: names itself and the reason
                errors.append(f"{exc}")
                continue
            except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
                errors.append(f"{path}: unreadable ({exc})")
                continue
            if "glaucoma" not in fields:
                errors.append(f"{path}: no 'glaucoma' field")
                continue
            label, md = _label(fields["glaucoma"]), _md(fields.get("md", ""))
            if label is None or md is None:  # "abc", NaN: a traceback with no file named (attack run 3 F5)
                field, value = ("glaucoma", fields["glaucoma"]) if label is None else ("md", fields["md"])
                errors.append(f"{path}: field '{field}' is {str(value)[:40]!r}, not "
                              f"{'0 or 1' if field == 'glaucoma' else 'a number of dB'}; this file was left out")
                continue
            if md and (problem := vf_value_problem("md", float(fields["md"]))):  # -500 dB (attack run 11, A11-9)
                errors.append(f"{path}: {problem}; this file was left out")
                continue
            pid = str(fields.get("pid", "")).split("_")[0] or ""
            if problem := _row_problem(pid, fields):
                errors.append(f"{path}: {problem}; this file was left out")
                continue
            row = {"path": str(path.relative_to(root)), "patient_id": pid or path.stem, "eye": "",
                   "visit": "", "label": label, "vfi": "", "md": md, "psd": "", "split": split}
            row.update({k: fields[k] for k in DEMOGRAPHICS if k in fields})
            rows.append(row)
    if not rows and not errors:
        errors.append(f"{root}: no train/val/test folders of data_*.npz found (Harvard-GF / FairVision layout)")
    if rows and not any(r["patient_id"] != Path(r["path"]).stem for r in rows):
        warnings.append("the files carry no 'pid': each volume is its own patient, so the publisher's split "
                        "cannot be checked at patient level")
    return rows, warnings + errors


def import_zenodo(root: Path) -> tuple[list[dict], list[str]]:
    rows, problems = [], []
    # the bounded walk, not rglob: a folder nested 1,100 deep was a RecursionError (attack run 3 F3)
    files, unreadable = walk_files(root)
    problems.extend(f"{folder}: {reason}" for folder, reason in unreadable)
    for path in sorted(p for p in files if p.suffix == ".npy"):
        parsed = parse_zenodo_name(path.stem)
        if parsed is None:
            pattern = "{Normal|POAG}-{patient}-{YYYY-MM-DD}-{OD|OS}.npy"
            problems.append(f"{path.name}: name does not follow {pattern}")
            continue
        if problem := _row_problem(parsed["patient_id"], {}, "the patient part of the name"):
            problems.append(f"{path.name}: {problem}; this file was left out")
            continue
        rows.append({"path": str(path.relative_to(root)), "patient_id": parsed["patient_id"], "eye": parsed["eye"],
                     "visit": parsed["visit"].isoformat(), "label": parsed["label"], "vfi": "", "md": "", "psd": "",
                     "split": ""})
    if not rows:
        problems.append(f"{root}: no Zenodo optic-disc cubes (*.npy) found")
    return rows, problems


def write_manifest(rows: list[dict], out: Path, root: Path) -> Path:
    """Paths are written relative to the manifest's folder so the dataset can move with it.

    Written with ``open_for_writing`` (never through a link, never into a FIFO or folder); the
    command checks beforehand that ``out`` names no input (attack run 3 F1: an --out naming one of the
    cubes truncated it to the manifest). FileRefused / OSError are the caller's to word."""
    out = Path(out)
    with os.fdopen(open_for_writing(out, 0o600), "w", encoding="utf-8", newline="") as f:
        f.write(manifest_text(rows, out, root))
    return out


def manifest_text(rows: list[dict], out: Path, root: Path) -> str:
    from octviewer.core.csv_safe import csv_row

    text = io.StringIO()
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    w = csv.DictWriter(text, fieldnames=COLUMNS + extra)
    w.writeheader()
    for r in rows:
        absolute = (root / r["path"]).resolve()
        try:
            r = dict(r, path=str(absolute.relative_to(Path(out).parent.resolve())))
        except ValueError:
            r = dict(r, path=str(absolute))
        w.writerow(csv_row(r, keep=("path",)))  # IDs from a dataset's files: never a formula (attack run 2 L8)
    return text.getvalue()
