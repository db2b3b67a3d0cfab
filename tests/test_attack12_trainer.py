"""Attack run 12, the trainer's findings: a split column filled for some of a patient's rows (A12-1), volume
digests of the decoded voxels (A12-3), a row whose eye the scan's header contradicts (A12-4) and label_scarce
with no home folder (A12-6). Each through the command (trainer.cli.main, trainer.label_scarce.main)."""

import csv
import json
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def _write(rows, out):
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def test_a12_1_a_split_given_on_some_rows_of_a_patient_holds_for_all_its_rows(tiny_cohort, capsys):
    """'train' on each patient's first row only, the others empty: every patient is in train alone (the old
    code filled the empty rows by the random split, and validate counted 16 + 3 + 4 patients of 16)."""
    from trainer.cli import main

    rows, seen = _rows(tiny_cohort), set()
    for r in rows:
        r["split"] = "" if r["patient_id"] in seen else "train"
        seen.add(r["patient_id"])
    manifest = _write(rows, tiny_cohort.parent / "a12_1_partial.csv")
    assert main(["validate", "--data", str(manifest)]) == 0, capsys.readouterr().err
    counts = json.loads(capsys.readouterr().out)
    assert counts["train"]["patients"] == len(seen) and not counts["val"]["patients"] + counts["test"]["patients"]
    # the split itself, as fit/evaluate/recalibrate take it
    from trainer.manifest import assign_splits, read_manifest

    splits = {}
    for r in assign_splits(read_manifest(manifest)[0], 0):
        splits.setdefault(r.patient_id, set()).add(r.split)
    assert all(s == {"train"} for s in splits.values()), splits


def test_a12_1_a_patient_given_train_on_one_row_keeps_train_and_others_are_split(tiny_cohort, capsys):
    """Two patients marked 'test' on one row each, the rest unsplit: validate passes and those two patients
    are in test alone, counted once."""
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    for r in rows:
        r["split"] = ""
    marked = sorted({r["patient_id"] for r in rows})[:2]
    for p in marked:
        next(r for r in rows if r["patient_id"] == p)["split"] = "test"
    manifest = _write(rows, tiny_cohort.parent / "a12_1_two_marked.csv")
    assert main(["validate", "--data", str(manifest)]) == 0, capsys.readouterr().err
    counts = json.loads(capsys.readouterr().out)
    patients = {r["patient_id"] for r in rows}
    assert sum(counts[s]["patients"] for s in ("train", "val", "test")) == len(patients), counts
    from trainer.manifest import assign_splits, read_manifest

    for seed in (0, 1, 2):
        got = {}
        for r in assign_splits(read_manifest(manifest)[0], seed):
            got.setdefault(r.patient_id, set()).add(r.split)
        assert all(len(s) == 1 for s in got.values()) and all(got[p] == {"test"} for p in marked), seed


def test_a12_1_one_person_under_two_ids_in_two_given_splits_is_refused_naming_the_rows(tiny_cohort, tmp_path,
                                                                                      monkeypatch, capsys):
    """Per-eye IDs ('<id>-OD', '<id>-OS') that the scans' headers name as one person, one eye given train and
    the other test: refused (exit 2) naming the rows; it was a warning and the person was trained and tested on."""
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    person = next(p for p in sorted({r["patient_id"] for r in rows})
                  if {r["eye"] for r in rows if r["patient_id"] == p} == {"OD", "OS"})
    for r in rows:
        r["split"] = ""
        if r["patient_id"] == person:
            r["split"] = "train" if r["eye"] == "OD" else "test"
            r["patient_id"] = f"{person}-{r['eye']}"
    assert {r["split"] for r in rows if r["patient_id"].startswith(person)} == {"train", "test"}
    manifest = _write(rows, tiny_cohort.parent / "a12_1_parted.csv")
    monkeypatch.setattr("trainer.train.build_cache", lambda *a, **k: pytest.fail("fit went on to the cache"))
    fit = ["fit", "--data", str(manifest), "--out", str(tmp_path / "run"), "--epochs", "1", "--image-size", "32",
           "--init", "random", "--device", "cpu"]
    for argv in (["validate", "--data", str(manifest)], fit):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "one patient's rows are in several splits (row " in err and " test" in err and " train" in err, err
        assert person not in err  # rows named, never the patient


@pytest.mark.parametrize("command", ["train", "summary"])
def test_a12_6_label_scarce_with_no_home_folder_says_one_line(command, tiny_cohort, tmp_path, monkeypatch, capsys):
    """HOME unset and this user ID unknown to the password database (A10-18's case): one line, exit 2, before any
    work, as octviewer-train says; `train` ended in a NoHomeFolder traceback from its salt check."""
    import pwd

    import trainer.label_scarce as ls

    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "OCTVIEWER_DATA", "OCTVIEWER_PSEUDONYM_SALT"):
        monkeypatch.delenv(name, raising=False)

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", unknown)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "ls"
    argv = (["train", "--data", str(tiny_cohort), "--out", str(out), "--fractions", "1", "--seeds", "0",
             "--variants", "resnet2d", "--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]
            if command == "train" else ["summary", str(out), "--data", str(tiny_cohort)])
    assert ls.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m trainer.label_scarce: no home folder: ") and err.count("\n") == 1, err
    assert os.listdir(tmp_path) == []  # no run folder, no "~" folder


def _wrong_eye(cohort, name):
    """The cohort's manifest with its first OD row's eye given as OS (its header says R), and that row's number."""
    rows = _rows(cohort)
    k = next(k for k, r in enumerate(rows) if r["eye"] == "OD")
    rows[k]["eye"] = "OS"
    return _write(rows, cohort.parent / name), k + 2


def test_a12_4_validate_refuses_a_row_whose_eye_the_scans_header_contradicts(tiny_cohort, capsys):
    """The study index's rule and words (study.index.check_header): validate took the row without a word."""
    from trainer.cli import main

    manifest, row = _wrong_eye(tiny_cohort, "a12_4_validate.csv")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert f"row {row}: the row gives the eye OS, the scan's own header says OD; it is not used (correct the row or " \
           "the file)" in err, err
    assert "1 problem(s)" in err, err


def test_a12_4_fit_skip_bad_leaves_the_row_out_and_says_so(tiny_cohort, tmp_path, monkeypatch, capsys):
    from trainer import stop
    from trainer.cli import main

    manifest, row = _wrong_eye(tiny_cohort, "a12_4_fit.csv")
    seen = {}

    def cache(records, *a, **k):
        seen["rows"] = {r.row for r in records}
        raise stop.Stopped("stopped at the cache")

    monkeypatch.setattr("trainer.train.build_cache", cache)
    fit = ["fit", "--data", str(manifest), "--out", str(tmp_path / "run"), "--variant", "resnet2d", "--epochs", "1",
           "--image-size", "32", "--init", "random", "--device", "cpu"]
    assert main(fit) == 2
    assert f"row {row}: the row gives the eye OS, the scan's own header says OD" in capsys.readouterr().err
    assert main([*fit, "--skip-bad"]) == 130
    err = capsys.readouterr().err
    assert f"row {row}: the row gives the eye OS, the scan's own header says OD" in err, err
    assert seen["rows"] and row not in seen["rows"] and row + 1 in seen["rows"]  # the next row stays


def _copies(cohort, folder, kind, rows=8):
    """The cohort's first rows re-exported under new patient IDs (STUDY2-NNNN), split emptied: each DICOM re-encoded
    RLE Lossless (the same pixels, other stored bytes) or converted to .npz (``io.stacks.write_npz``)."""
    import pydicom
    from pydicom.uid import RLELossless

    from octviewer.io import load_volume
    from octviewer.io.stacks import write_npz

    records = _rows(cohort)[:rows]
    folder.mkdir()
    for i, r in enumerate(records):
        pid = f"STUDY2-{i // 2:04d}"
        if kind == "rle":
            ds = pydicom.dcmread(cohort.parent / r["path"])
            ds.PatientID = ds.PatientName = pid
            ds.compress(RLELossless)
            ds.save_as(folder / f"scan{i}.dcm")
            r["path"] = f"scan{i}.dcm"
        else:
            write_npz(load_volume(cohort.parent / r["path"]), folder / f"scan{i}.npz")
            r["path"] = f"scan{i}.npz"
        r.update(patient_id=pid, split="")
    return _write(records, folder / "manifest.csv")


def _model_trained_on(cohort, path):
    """A model whose provenance keeps the cohort's patients' keys and its volumes' digests (as fit writes them)."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from trainer.manifest import read_manifest
    from trainer.pseudonym import cohort_keys, volume_digests

    torch.manual_seed(0)
    records = read_manifest(cohort)[0]
    meta = default_metadata("resnet2d", preprocess=Preprocess(size=32))
    meta.update(name="a12", synthetic_data=True)
    meta["provenance"].update(split_seed=0, data={"manifest_sha256": "0" * 64,
                                                  "patient_keys": cohort_keys(r.patient_id for r in records),
                                                  "volume_digests": volume_digests(r.path for r in records)})
    return save_model(path, build_network("resnet2d", init="random"), meta)


@pytest.mark.parametrize("kind", ["rle", "npz"])
def test_a12_3_attach_and_recalibrate_refuse_the_training_scans_re_encoded_or_converted(kind, tiny_cohort, tmp_path,
                                                                                         capsys):
    """The training scans RLE-compressed (lossless) or converted to .npz, under other patient IDs: not independent
    data (they were stored 'On independent data': the digest was of the stored PixelData bytes)."""
    from trainer.cli import main

    model = _model_trained_on(tiny_cohort, tmp_path / "m.safetensors")
    before = model.read_bytes()
    copies = _copies(tiny_cohort, tmp_path / kind, kind)
    rc = main(["evaluate", "--model", str(model), "--data", str(copies), "--split", "all", "--attach",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "not independent" in err and "8 of its 8 volumes are scans the model was trained on" in err, err
    assert model.read_bytes() == before
    out = tmp_path / "recal.safetensors"
    rc = main(["recalibrate", "--model", str(model), "--data", str(copies), "--split", "all", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "scans the model was trained on" in err and not out.exists(), err


@pytest.mark.parametrize("kind", ["rle", "npz"])
def test_a12_3_validate_refuses_a_scan_entered_twice_in_two_encodings_or_formats(kind, tiny_cohort, tmp_path, capsys):
    """A manifest of the cohort's rows plus their RLE (or .npz) copies under other IDs: each copy is refused as the
    same scan (validate passed it, one copy could train and the other test); a plain byte copy was refused already."""
    from trainer.cli import main

    copies = _copies(tiny_cohort, tmp_path / kind, kind, rows=4)
    rows = _rows(tiny_cohort)[:4]
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
    manifest = _write([*rows, *_rows(copies)], tmp_path / kind / "both.csv")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    for k in range(4):
        assert f"row {k + 6}: duplicate scan: the same content as row {k + 2} (the same pixel data under other " \
               "header fields, encoding or format)" in err, err


def test_a12_4_rows_pointing_at_another_patients_scan_are_refused_as_the_study_index_leaves_them_out(tiny_cohort,
                                                                                                     capsys):
    """Two rows' paths swapped between a normal and a glaucoma patient (same eye): each scan's header names the
    other patient. Refused, both rows named and no patient; validate passed them with A11-4's 'one per eye?'."""
    from trainer.cli import main

    rows = _rows(tiny_cohort)
    a = next(k for k, r in enumerate(rows) if r["label"] == "normal" and r["eye"] == "OD")
    b = next(k for k, r in enumerate(rows) if r["label"] == "glaucoma" and r["eye"] == "OD")
    rows[a]["path"], rows[b]["path"] = rows[b]["path"], rows[a]["path"]
    manifest = _write(rows, tiny_cohort.parent / "a12_4_swapped.csv")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    for k in (a, b):
        assert f"row {k + 2}: its scan's own header names another patient than the other scans of its patient ID " \
               "do (another patient's scan?); it is not used" in err, err
    assert "2 problem(s)" in err and "one per eye" not in err and "SYN" not in err, err


def test_a12_12_evaluate_counts_and_clusters_people_not_per_eye_ids_and_warns(tiny_cohort, tmp_path, capsys):
    """A per-eye manifest ('<id>-OD', '<id>-OS', one person by the headers): evaluate's report keys each test volume
    by the person the split keeps together (the patient-cluster bootstrap's clusters and the model card's patient
    count), not by eye, and evaluate and recalibrate say what validate says of the IDs."""
    from trainer.cli import main
    from trainer.manifest import header_patients, read_manifest

    rows = _rows(tiny_cohort)
    for r in rows:
        r.update(patient_id=f"{r['patient_id']}-{r['eye']}", split="")
    manifest = _write(rows, tiny_cohort.parent / "a12_12_per_eye.csv")
    model = _model_trained_on(tiny_cohort, tmp_path / "m.safetensors")
    assert main(["evaluate", "--model", str(model), "--data", str(manifest), "--split", "test", "--json",
                 "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "filed under several patient IDs of the manifest (one per eye?)" in err and "SYN" not in err, err
    volumes = json.loads(out)["test_volumes"]
    header = header_patients(read_manifest(manifest)[0])
    people = {header[v["row"]] for v in volumes}
    ids = {rows[v["row"] - 2]["patient_id"] for v in volumes}
    assert len(ids) > len(people)  # some test person has both eyes: the case this is about
    assert len({v["patient"] for v in volumes}) == len(people)
    rc = main(["recalibrate", "--model", str(model), "--data", str(manifest), "--out", str(tmp_path / "r.safetensors")])
    err = capsys.readouterr().err
    assert rc == 2 and "filed under several patient IDs of the manifest (one per eye?)" in err, err
