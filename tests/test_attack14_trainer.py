"""Attack run 14, A14-1: the trainer's content digest of a scan exported to a format without spacing."""
from __future__ import annotations

import pytest
from test_attack12_trainer import _model_trained_on, _rows, _write  # noqa: E402


def _exported(cohort, folder, kind, rows):
    """The cohort's first rows exported under new patient IDs (EXPORT-NNNN), split emptied, as a folder of PNG
    B-scans, a TIFF stack or a float32 .npy: formats without a physical spacing (a public dataset's layout)."""
    import cv2
    import numpy as np
    import tifffile

    from octviewer.io import load_volume

    records = _rows(cohort)[:rows]
    folder.mkdir()
    for i, r in enumerate(records):
        data = load_volume(cohort.parent / r["path"]).data
        if kind == "png":
            target = folder / f"scan{i}"
            target.mkdir()
            for k, bscan in enumerate(data):
                cv2.imwrite(str(target / f"B{k + 1:03d}.png"), bscan)
        elif kind == "tif":
            target = folder / f"scan{i}.tif"
            tifffile.imwrite(target, data.astype(np.uint16))
        else:
            target = folder / f"scan{i}.npy"
            np.save(target, data.astype(np.float32))
        r.update(path=target.name, patient_id=f"EXPORT-{i // 2:04d}", split="")
    return _write(records, folder / "manifest.csv")


@pytest.mark.parametrize("kind", ["png", "tif", "npy"])
def test_a14_1_validate_and_attach_know_a_training_scan_exported_without_its_spacing(kind, tiny_cohort, tmp_path,
                                                                                     capsys):
    """The digest hashed the spacing and the dtype, so a DICOM and its PNG-folder / 16-bit TIFF / float32 .npy
    export (the same voxel values) were two scans: validate passed both in one manifest (one could train, the other
    test) and evaluate --attach stored a 'not independent' evaluation as independent."""
    from trainer.cli import main

    copies = _exported(tiny_cohort, tmp_path / kind, kind, rows=4)
    rows = _rows(tiny_cohort)[:4]
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    both = _write([*rows, *_rows(copies)], tmp_path / kind / "both.csv")
    assert main(["validate", "--data", str(both)]) == 2
    err = capsys.readouterr().err
    for k in range(4):
        assert f"row {k + 6}: duplicate scan: the same content as row {k + 2}" in err, err
    model = _model_trained_on(tiny_cohort, tmp_path / "m.safetensors")
    rc = main(["evaluate", "--model", str(model), "--data", str(copies), "--split", "all", "--attach",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "4 of its 4 volumes are scans the model was trained on" in err, err


def test_a14_9_validate_refuses_a_row_whose_scan_header_names_two_patients(tiny_cohort, tmp_path, capsys):
    """The folder study, the viewer and PACS send refuse a header PatientID with two values; validate took the
    row's patient ID and trained on it. One rule now (study.index.check_header)."""
    import pydicom

    from trainer.cli import main

    rows = _rows(tiny_cohort)
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    ds = pydicom.dcmread(rows[0]["path"])
    ds.PatientID = [rows[0]["patient_id"], "SOMEONE-ELSE"]
    ds.save_as(tmp_path / "two.dcm")
    rows[0]["path"] = str(tmp_path / "two.dcm")
    assert main(["validate", "--data", str(_write(rows, tmp_path / "m.csv"))]) == 2
    err = capsys.readouterr().err
    assert "row 2: the row lists a scan whose PatientID holds 2 values: one scan belongs to one patient; it is not " \
           "used" in err and "SOMEONE-ELSE" not in err, err


def test_a14_11_a_rekeyed_code_equal_to_another_patients_header_id_refuses_no_one(tiny_cohort, tmp_path, capsys):
    """A13-16's swap rule refused a consistent re-key where one patient's code happened to be another patient's
    header ID: the OTHER patient's rows, 'rows swapped?'. Only headers that name each other in a cycle are a
    swap; the swap itself is still refused."""
    from octviewer.study.index import index_manifest
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    people = list(dict.fromkeys(r["patient_id"] for r in rows))
    codes = {p: f"C{k:03d}" for k, p in enumerate(people)}
    codes[people[0]] = people[1]  # a study code that equals another patient's header ID
    for r in rows:
        r["path"], r["patient_id"] = str(tiny_cohort.parent / r["path"]), codes[r["patient_id"]]
    manifest = _write(rows, tmp_path / "rekeyed.csv")
    main(["validate", "--data", str(manifest)])
    err = capsys.readouterr().err
    assert "rows swapped" not in err and "it is not used" not in err, err
    assert len(index_manifest(manifest).scans) == len(rows)
    codes[people[1]] = people[0]  # and now a swap of the two codes: each header names the other's row
    for r, original in zip(rows, _rows(tiny_cohort)):
        r["patient_id"] = codes[original["patient_id"]]
    assert main(["validate", "--data", str(_write(rows, tmp_path / "swapped.csv"))]) == 2
    assert "(rows swapped?)" in capsys.readouterr().err


def test_a14_17_a_new_patients_row_pointing_at_a_listed_patients_scan_of_the_same_eye_is_refused(tiny_cohort,
                                                                                                 tmp_path, capsys):
    """One row of a new patient pointing at another listed patient's scan (that patient listed with this eye under
    their own ID), label flipped: neither the majority rule nor the swap cycle saw it; validate passed it as 'one per
    eye?' and Open study manifest used it. Refused by both now (study.index.mixed_patient_scans)."""
    from octviewer.study.index import index_manifest
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    k = next(k for k, r in enumerate(rows) if sum(o["patient_id"] == r["patient_id"] and o["eye"] == r["eye"]
                                                   for o in rows) > 1)
    rows[k].update(patient_id="NEWP-01", label="normal" if rows[k]["label"] == "glaucoma" else "glaucoma")
    manifest = _write(rows, tmp_path / "mispointed.csv")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert f"row {k + 2}: its scan's own header names the patient of row" in err and \
        "listed with this eye at this visit under their own ID (another patient's scan?); it is not used" in err, err
    index = index_manifest(manifest)
    assert rows[k]["path"] not in {s.path for s in index.scans}
    assert any("listed with this eye at this visit under their own ID" in why for _, why in index.problems), \
        index.problems


def test_a15_7_a_partly_rekeyed_export_earlier_visits_under_a_code_is_not_refused(tiny_cohort, tmp_path, capsys):
    """A14-17's rule refused one person's earlier visits listed under a study code while the later ones kept the
    MRN, as 'another patient's scan' (attack run 15, A15-7): nothing collides at a visit. Only the same eye at the
    same visit under both IDs is refused. The earlier visit is a visit of the scans' own (their headers' dates): a
    row re-dated to 2001 while its scan's header is dated at a visit the MRN's rows list is A14-17's mis-pointed row
    (attack run 16, A16-4)."""
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    person = next(p for p in dict.fromkeys(r["patient_id"] for r in rows)
                  if len({r["visit"] for r in rows if r["patient_id"] == p}) > 1)
    first = min(r["visit"] for r in rows if r["patient_id"] == person)
    for r in rows:  # the earlier visit's rows, listed under the study's code
        if r["patient_id"] == person and r["visit"] == first:
            r.update(patient_id="STUDY-7")
    main(["validate", "--data", str(_write(rows, tmp_path / "partly.csv"))])
    err = capsys.readouterr().err
    assert "it is not used" not in err and "another patient's scan" not in err, err


def test_a15_6_attach_says_when_the_models_digests_are_of_an_older_kind(tiny_cohort, tmp_path, capsys):
    """A model fitted before 84a37dd keeps digests of an older kind: the content check found nothing and said
    nothing, and its own training scans re-keyed were stored as independent figures. Said now; a model fitted
    now (digest_kind 3) gets no such note."""
    from test_attack11_trainer import _model_trained_on as trained_on

    from trainer.cli import main

    old = trained_on(tiny_cohort, tmp_path / "old.safetensors", patient_keys=[], volume_digests=["0" * 16])
    main(["evaluate", "--model", str(old), "--data", str(tiny_cohort), "--split", "all", "--device", "cpu"])
    assert "note: the model's content digests of its training scans were made by an older version" in \
        capsys.readouterr().err
    new = trained_on(tiny_cohort, tmp_path / "new.safetensors", patient_keys=[], volume_digests=["0" * 16],
                     digest_kind=3)
    main(["evaluate", "--model", str(new), "--data", str(tiny_cohort), "--split", "all", "--device", "cpu"])
    assert "older version" not in capsys.readouterr().err
