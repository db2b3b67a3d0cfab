"""Attack run 16: which patient a manifest row's scan belongs to (A16-11 the split, A16-4 the 'eye' rule,
A16-10 an old ID before a record merge, A16-2/A16-5 a field's person), through `octviewer-train validate`,
`python -m trainer.label_scarce prepare` and File > Open study manifest."""
from __future__ import annotations

import shutil

from test_attack12_trainer import _rows, _write  # noqa: E402


def _resave(path, **fields) -> None:
    """The DICOM at ``path`` with ``fields`` set in its header (the pixels unchanged)."""
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in fields.items():
        setattr(ds, key, value)
    ds.save_as(path)


def _copy(tiny_cohort, folder):
    """A copy of the tiny cohort (its files may be re-saved); (manifest, rows with absolute paths)."""
    root = shutil.copytree(tiny_cohort.parent, folder)
    rows = _rows(root / tiny_cohort.name)
    for r in rows:
        r["path"] = str(root / r["path"])
    return root / tiny_cohort.name, rows


# ---------------------------------------------------------------- A16-11: the split joins by the header's ID


def _per_eye(tiny_cohort, folder, od_name: str, os_name: str) -> tuple:
    """The cohort keyed per eye ("<ID>-OD" / "<ID>-OS", the export A11-4 is about) for every patient with both eyes,
    their OD scans' headers naming ``od_name``, the OS scans' ``os_name`` (one birth date): (manifest, rows, the
    per-eye patients' base IDs)."""
    manifest, rows = _copy(tiny_cohort, folder)
    both = {r["patient_id"] for r in rows if {o["eye"] for o in rows if o["patient_id"] == r["patient_id"]}
            == {"OD", "OS"}}
    for r in rows:
        if r["patient_id"] in both:
            _resave(r["path"], PatientName=od_name if r["eye"] == "OD" else os_name, PatientBirthDate="19500101")
            r["patient_id"] = f"{r['patient_id']}-{r['eye']}"
        r["split"] = ""
    return _write(rows, manifest.with_name("per_eye.csv")), rows, both


def test_a16_11_prepare_keeps_one_persons_per_eye_ids_in_one_split_whatever_the_names_spelling(tiny_cohort, tmp_path,
                                                                                               capsys):
    """One person keyed per eye, the two devices spelling the name two ways (a typo here, as a name written two ways
    by two devices): the split told them apart by name (7562edd) and put one person's eyes in train and test (A11-4's
    leak back). The split joins everyone under one header PatientID; the names only change the warning's words."""
    from trainer.label_scarce import main

    manifest, _, both = _per_eye(tiny_cohort, tmp_path / "c", "DOE^JOHN", "DOE^JHON")
    out = manifest.with_name("split.csv")
    assert main(["prepare", "--cohort", str(manifest), "--out", str(out), "--test-patients", "2",
                 "--val-patients", "2"]) == 0
    splits = {}
    for r in _rows(out):
        splits.setdefault(r["patient_id"].removesuffix("-OD").removesuffix("-OS"), set()).add(r["split"])
    parted = [p for p in both if len(splits[p]) > 1]
    assert len(both) >= 3 and not parted, splits
    err = capsys.readouterr().err
    assert "whose headers tell them apart" in err and "the split keeps each such ID's rows in one split" in err, err


def test_a16_11_validate_refuses_a_given_split_that_parts_one_header_ids_per_eye_ids(tiny_cohort, tmp_path, capsys):
    """The same per-eye cohort with a split column putting each person's right eye in train, the left in test:
    validate took it (the names told the eyes apart) and fit trained on the eyes it tested on."""
    from trainer.cli import main

    manifest, rows, _ = _per_eye(tiny_cohort, tmp_path / "c", "O'BRIEN^SEAN", "OBRIEN^SEAN")
    for r in rows:
        r["split"] = "test" if r["patient_id"].endswith("-OS") else "train"
        if r["patient_id"].endswith("-OS"):  # and a birth date apart: still one header ID, one split (the safe side)
            _resave(r["path"], PatientBirthDate="19510101")
    assert main(["validate", "--data", str(_write(rows, manifest))]) == 2
    err = capsys.readouterr().err
    assert "one patient's rows are in several splits" in err, err
