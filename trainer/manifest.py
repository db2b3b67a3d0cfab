"""Dataset intake: read and validate a manifest before any work, and split it by patient.

Manifest CSV, one row per volume: ``path, patient_id, eye (OD/OS), visit, label
(glaucoma/normal), vfi, md, psd`` (blank = not measured), optional ``split`` (train/val/test) and
any extra columns (carried along, e.g. demographics). Every problem is collected and reported at
once with its row number, so a clinic fixes its file in one pass.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from octviewer.core import VF_INDICES

REQUIRED = ("path", "patient_id", "eye", "visit", "label")
SPLITS = ("train", "val", "test")


class ManifestError(Exception):
    def __init__(self, path, problems: list[str]):
        self.problems = problems
        head = f"{Path(path).name}: {len(problems)} problem(s) in the manifest"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class Record:
    row: int  # 1-based line number in the CSV (header is line 1)
    path: Path
    patient_id: str = field(repr=False)
    eye: str
    visit: str
    label: int  # 1 = glaucoma
    vf: dict[str, float | None]
    split: str = ""
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def case(self) -> tuple[str, str, str]:
        """The paper's "case": one eye at one visit."""
        return (self.patient_id, self.eye, self.visit)


def read_manifest(path: str | Path, skip_bad: bool = False,
                  check_files: bool = True) -> tuple[list[Record], list[str]]:
    """Parse and validate; returns (records, skipped-row messages). Raises ManifestError unless
    ``skip_bad``, in which case bad rows are left out and listed."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, [f"manifest not found: {path}"])
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ManifestError(path, [f"missing column(s): {', '.join(missing)} (found: {', '.join(columns)})"])
    root = path.parent
    records, problems, bad_rows = [], [], set()
    seen_paths = {}
    for i, r in enumerate(rows, start=2):
        row_problems = []
        file = Path(r["path"].strip())
        file = file if file.is_absolute() else root / file
        if not r["path"].strip():
            row_problems.append("empty path")
        elif check_files and not file.exists():
            row_problems.append(f"file not found: {r['path']}")
        if file in seen_paths:
            row_problems.append(f"duplicate path (also row {seen_paths[file]})")
        seen_paths.setdefault(file, i)
        label = r["label"].strip().lower()
        if label not in ("glaucoma", "normal", "1", "0"):
            row_problems.append(f"unknown label {r['label']!r} (glaucoma or normal)")
        eye = r["eye"].strip().upper()
        if eye not in ("OD", "OS", ""):  # blank: not recorded (public datasets)
            row_problems.append(f"eye must be OD or OS (or blank if unknown), got {r['eye']!r}")
        if not r["patient_id"].strip():
            row_problems.append("empty patient_id")
        vf = {}
        for name, spec in VF_INDICES.items():
            text = (r.get(name) or "").strip()
            if not text:
                vf[name] = None
                continue
            try:
                value = float(text)
            except ValueError:
                row_problems.append(f"{name} is not a number: {text!r}")
                continue
            lo, hi = spec["range"]
            if not (lo <= value <= hi) or not np.isfinite(value):
                row_problems.append(f"{name} {value} outside the plausible range {lo}..{hi} {spec['unit']}")
            vf[name] = value
        split = (r.get("split") or "").strip().lower()
        if split and split not in SPLITS:
            row_problems.append(f"split must be train, val or test, got {split!r}")
        problems += [f"row {i}: {p}" for p in row_problems]
        if row_problems:
            bad_rows.add(i)
            continue
        extra = {k: v for k, v in r.items() if k not in (*REQUIRED, "vfi", "md", "psd", "split")}
        records.append(Record(i, file, r["patient_id"].strip(), eye, r["visit"].strip(),
                              1 if label in ("glaucoma", "1") else 0, vf, split, extra))
    # one patient in two splits leaks information between training and testing
    splits_of = defaultdict(set)
    for rec in records:
        if rec.split:
            splits_of[rec.patient_id].add(rec.split)
    for rec in records:
        if len(splits_of[rec.patient_id]) > 1:
            names = ", ".join(sorted(splits_of[rec.patient_id]))
            problems.append(f"row {rec.row}: patient appears in several splits ({names})")
            bad_rows.add(rec.row)
    if not rows:
        problems.append("the manifest has no rows")
    if problems and not skip_bad:
        raise ManifestError(path, problems)
    records = [r for r in records if r.row not in bad_rows]
    return records, problems


def assign_splits(records: list[Record], seed: int = 0, fractions=(0.6, 0.2, 0.2)) -> list[Record]:
    """Patient-level, label-stratified, seeded split for records without one."""
    if all(r.split for r in records):
        return records
    by_patient = defaultdict(list)
    for r in records:
        by_patient[r.patient_id].append(r)
    rng = np.random.default_rng(seed)
    for label in (1, 0):  # a patient counts as glaucoma if any of their volumes is
        patients = sorted(p for p, rs in by_patient.items() if max(x.label for x in rs) == label)
        rng.shuffle(patients)
        n = len(patients)
        n_train = int(round(fractions[0] * n))
        n_val = int(round(fractions[1] * n))
        if n >= 3:
            n_val, n_train = max(n_val, 1), min(n_train, n - 2)
        for k, p in enumerate(patients):
            split = "train" if k < n_train else "val" if k < n_train + n_val else "test"
            for r in by_patient[p]:
                r.split = r.split or split
    return records


def summary(records: list[Record]) -> dict:
    """Counts per split: volumes, glaucoma share, and how many have each VF index ("Part" vs "All")."""
    out = {}
    for split in SPLITS:
        rs = [r for r in records if r.split == split]
        out[split] = {"volumes": len(rs), "glaucoma": sum(r.label for r in rs),
                      "patients": len({r.patient_id for r in rs}), "cases": len({r.case for r in rs}),
                      "with_vf": {n: sum(r.vf[n] is not None for r in rs) for n in VF_INDICES}}
    return out


def vf_names_present(records: list[Record]) -> tuple[str, ...]:
    return tuple(n for n in VF_INDICES if any(r.vf[n] is not None for r in records if r.split == "train"))
