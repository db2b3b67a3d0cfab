"""Attack run 11, the trainer's findings: fit's reports owner-only (A11-2), fit --init checked before any work
(A11-10), the Harvard import's VF range (A11-9), evaluate/recalibrate --attach by the volumes' content (A11-3) and
the split by the DICOM header's patient (A11-4)."""

import os
import stat

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIT = ["--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a11_2_fit_report_paths_writes_its_reports_owner_only(tiny_cohort, tmp_path, monkeypatch, umask022, capsys):
    """semt with --report-paths: report.json and surrogates.csv name volumes by path; both (and report.md) are
    written as evaluate's --out is, 0600, even over an earlier 0644 file. Training itself is skipped (minutes)."""
    from trainer.cli import main

    monkeypatch.setattr("trainer.train.run_stage", lambda name, network, *a, **k: network)
    monkeypatch.setattr("trainer.train.stage_score", lambda *a: 0.0)
    run = tmp_path / "run"
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), "--variant", "semt", *FIT,
                 "--report-paths", "--synthetic"]) == 0, capsys.readouterr().err
    volumes = str(tiny_cohort.parent / "volumes")
    assert volumes in (run / "report.json").read_text() and volumes in (run / "surrogates.csv").read_text()
    for name in ("report.json", "report.md", "surrogates.csv"):
        assert _mode(run / name) == 0o600, name


def test_a11_2_ablation_tables_are_owner_only(tiny_cohort, tmp_path, monkeypatch, umask022, capsys):
    from trainer.cli import main

    report = {"image_level": {"auc": 0.7}, "test_volumes": [{"volume": "a", "label": 1, "probability": 0.6,
                                                             "patient": "p"}]}
    monkeypatch.setattr("trainer.ablation.fit", lambda cfg: report)
    monkeypatch.setattr("trainer.ablation.markdown_table", lambda first, synthetic: "| table |\n")
    out = tmp_path / "abl"
    assert main(["ablation", "--data", str(tiny_cohort), "--out", str(out), "--variants", "resnet2d",
                 "--seeds", "0", *FIT]) == 0, capsys.readouterr().err
    for name in ("ablation.json", "ablation.md"):
        assert _mode(out / name) == 0o600, name


@pytest.mark.parametrize("command", ["fit", "ablation", "label_scarce"])
@pytest.mark.parametrize("kind", ["fifo", "missing"])
def test_a11_10_init_is_checked_before_any_work_and_a_fifo_is_a_fifo(command, kind, tiny_cohort, tmp_path,
                                                                      monkeypatch, capsys):
    """--init naming a FIFO or a missing file: one line, exit 2, before the run folder is made (the same check
    fit, ablation and label_scarce train make through ``config.checked_values``)."""
    import trainer.label_scarce as ls
    from trainer.cli import main

    worked = []
    for target in ("trainer.cli.fit", "trainer.ablation.run_ablation", "trainer.label_scarce.train"):
        monkeypatch.setattr(target, lambda *a, **k: worked.append(1) or {"table": ""})
    init = tmp_path / "weights.pth"
    if kind == "fifo":
        os.mkfifo(init)
    out = tmp_path / "run"
    flags = ["--data", str(tiny_cohort), "--out", str(out), "--init", str(init), "--epochs", "1", "--device", "cpu"]
    if command == "label_scarce":
        rc = ls.main(["train", *flags, "--fractions", "0.5"])
    else:
        rc = main([command, *flags])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--init" in err, err
    assert ("named pipe (FIFO), not a file" if kind == "fifo" else "no such file") in err, err
    assert not worked and not out.exists()


@pytest.mark.parametrize("md", [-500.0, 5.5, -35.004])
def test_a11_9_import_harvard_leaves_out_an_impossible_md_naming_the_file(md, tmp_path, capsys):
    import numpy as np

    from trainer.cli import main

    root = tmp_path / "h"
    (root / "train").mkdir(parents=True)
    good = dict(oct_bscans=np.zeros((2, 8, 8), np.uint8), glaucoma=np.array(1), md=np.array(-1.5), pid=np.array("P1"))
    np.savez(root / "train" / "data_0001.npz", **good)
    np.savez(root / "train" / "data_0002.npz", **{**good, "pid": np.array("P2"), "md": np.array(md)})
    out = tmp_path / "m.csv"
    assert main(["import", "harvard", str(root), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "data_0002.npz" in err and "MD is" in err and "this file was left out" in err, err
    assert out.read_text().count("\n") == 2 and "data_0002" not in out.read_text()


@pytest.mark.parametrize("cell", ["9_9", "\u0669\u0669", "nan", "-500"])
def test_a11_9_manifest_vf_cells_are_read_as_the_study_readers_read_them(cell, tmp_path, capsys):
    """validate names the row and the index; float() took "9_9" as 99 and Arabic-Indic digits as 99."""
    from trainer.cli import main

    (tmp_path / "v.npz").write_bytes(b"")
    rows = ["path,patient_id,eye,label,visit,vfi,md"] + [f"v.npz,P{i},OD,{'glaucoma' if i % 2 else 'normal'},1,"
                                                         f"{cell if i == 0 else '90'},-2" for i in range(4)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["validate", "--data", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert "row 2: vfi " in err and ("not a number" in err or "outside the plausible range" in err), err


def _rekeyed(cohort, folder, rows=8):
    """The first ``rows`` scans of the cohort exported again under other patient IDs (a second project's
    pseudonymisation): each DICOM's PatientID rewritten (other bytes, the same pixels), the rows renamed."""
    import csv

    import pydicom

    with open(cohort, newline="") as f:
        records = list(csv.DictReader(f))[:rows]
    folder.mkdir()
    for i, r in enumerate(records):
        ds = pydicom.dcmread(cohort.parent / r["path"])
        ds.PatientID = ds.PatientName = f"STUDY2-{i // 2:04d}"
        ds.save_as(folder / f"scan{i}.dcm")
        r.update(path=f"scan{i}.dcm", patient_id=f"STUDY2-{i // 2:04d}", split="")
    with open(folder / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    return folder / "manifest.csv"


def _model_trained_on(cohort, path, **data):
    """A model whose provenance keeps the cohort's patients' keys and, unless given, its volumes' digests."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from trainer.manifest import read_manifest
    from trainer.pseudonym import cohort_keys, volume_digests

    torch.manual_seed(0)
    records = read_manifest(cohort)[0]
    meta = default_metadata("resnet2d", preprocess=Preprocess(size=32))
    meta.update(name="a11", synthetic_data=True)
    meta["provenance"].update(split_seed=0, data={"manifest_sha256": "0" * 64,
                                                  "patient_keys": cohort_keys(r.patient_id for r in records),
                                                  "volume_digests": volume_digests(r.path for r in records), **data})
    return save_model(path, build_network("resnet2d", init="random"), meta)


def test_a11_3_attach_and_recalibrate_refuse_the_training_scans_under_other_ids(tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    model = _model_trained_on(tiny_cohort, tmp_path / "m.safetensors")
    before = model.read_bytes()
    rekeyed = _rekeyed(tiny_cohort, tmp_path / "study2")
    rc = main(["evaluate", "--model", str(model), "--data", str(rekeyed), "--split", "all", "--attach",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "not independent" in err and "8 of its 8 volumes are scans the model was trained on" in err, err
    assert model.read_bytes() == before
    out = tmp_path / "recal.safetensors"
    rc = main(["recalibrate", "--model", str(model), "--data", str(rekeyed), "--split", "all", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "scans the model was trained on" in err and not out.exists(), err


def test_a11_3_a_recalibrated_model_keeps_its_cohorts_digests_and_attach_refuses_them(tiny_cohort, tmp_path):
    """recalibrate records the digests of the volumes it refitted on; evaluate --attach counts them as training."""
    from octviewer.model import load_model
    from trainer.evaluate_model import not_independent
    from trainer.pseudonym import volume_digests
    from trainer.recalibrate import recalibrate

    model = _model_trained_on(tiny_cohort, tmp_path / "m.safetensors", patient_keys=[], volume_digests=[])
    out = tmp_path / "recal.safetensors"
    recalibrate(model, tiny_cohort, out, split="all")
    meta = load_model(out, "cpu").meta.to_dict()
    kept = meta["provenance"]["recalibration"]["data"]["volume_digests"]
    rekeyed = _rekeyed(tiny_cohort, tmp_path / "study2", rows=4)
    assert set(volume_digests(sorted(rekeyed.parent.glob("*.dcm")))) <= set(kept)
    why = not_independent(meta, "1" * 64, "all", 0, ["STUDY2-0000"], volume_paths=sorted(rekeyed.parent.glob("*.dcm")))
    assert "4 of its 4 volumes are scans the model was recalibrated on" in why, why


@pytest.mark.parametrize("digests", ["abc", ["0123456789abcdeF"], ["0123456789abcde"], [12], ["g" * 16]])
def test_a11_3_the_digests_field_is_validated_as_the_rest(digests, tmp_path):
    from octviewer.model.meta import ModelFileError

    with pytest.raises(ModelFileError, match="volume_digests"):
        _model_trained_on(_cohort_stub(tmp_path), tmp_path / "m.safetensors", volume_digests=digests)


def _cohort_stub(tmp_path):
    (tmp_path / "v.npz").write_bytes(b"x")
    (tmp_path / "m.csv").write_text("path,patient_id,eye,label,visit\nv.npz,P1,OD,glaucoma,1\n")
    return tmp_path / "m.csv"


def _per_eye(cohort, name):
    """The cohort's manifest with one patient ID per eye ("<id>-OD", "<id>-OS"), split emptied, beside it."""
    import csv

    with open(cohort, newline="") as f:
        records = list(csv.DictReader(f))
    for r in records:
        r.update(patient_id=f"{r['patient_id']}-{r['eye']}", split="")
    out = cohort.parent / name
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(records[0]))
        w.writeheader()
        w.writerows(records)
    return out


def test_a11_4_validate_warns_and_the_split_keeps_a_persons_eyes_together(tiny_cohort, capsys):
    from trainer.cli import main
    from trainer.manifest import assign_splits, header_patients, read_manifest

    manifest = _per_eye(tiny_cohort, "per_eye_validate.csv")
    assert main(["validate", "--data", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert "rows: the DICOM headers name" in err and "person(s) each filed under several patient IDs" in err, err
    assert "SYN" not in err  # counted, never named
    for seed in (0, 1, 2):
        records = assign_splits(read_manifest(manifest)[0], seed)
        header, splits = header_patients(records), {}
        for r in records:
            splits.setdefault(header[r.row], set()).add(r.split)
        assert all(len(s) == 1 for s in splits.values()), seed


def test_a11_4_fit_warns_before_the_cache(tiny_cohort, tmp_path, monkeypatch, capsys):
    from trainer import stop
    from trainer.cli import main

    def stopped(*a, **k):
        raise stop.Stopped("stopped at the cache")

    monkeypatch.setattr("trainer.train.build_cache", stopped)
    manifest = _per_eye(tiny_cohort, "per_eye_fit.csv")
    assert main(["fit", "--data", str(manifest), "--out", str(tmp_path / "run"), "--variant", "resnet2d", *FIT]) == 130
    err = capsys.readouterr().err
    assert "filed under several patient IDs of the manifest (one per eye?)" in err and "SYN" not in err, err


def test_a11_4_an_agreeing_cohort_keeps_its_split_and_a_placeholder_id_joins_no_one(tiny_cohort, tmp_path):
    import shutil

    import pydicom

    from trainer.manifest import assign_splits, header_warnings, read_manifest, split_groups

    records = read_manifest(tiny_cohort)[0]
    assert split_groups(records) == {r.row: r.patient_id for r in records} and not header_warnings(records)
    # an anonymised export: every header says ANONYMOUS
    folder = tmp_path / "anon"
    shutil.copytree(tiny_cohort.parent / "volumes", folder / "volumes")
    for path in (folder / "volumes").glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientID = "ANONYMOUS"
        ds.save_as(path)
    shutil.copy(tiny_cohort, folder / "manifest.csv")
    anon = read_manifest(folder / "manifest.csv")[0]
    assert split_groups(anon) == {r.row: r.patient_id for r in anon}
    assert [r.split for r in assign_splits(anon, 0)] == [r.split for r in assign_splits(records, 0)]
    assert "it is not used to group the split" in header_warnings(anon)[0]


def test_a11_4_label_scarce_prepare_keeps_a_persons_eyes_together(tiny_cohort, capsys):
    import trainer.label_scarce as ls
    from trainer.manifest import header_patients, read_manifest

    manifest = _per_eye(tiny_cohort, "per_eye_prepare.csv")
    out = tiny_cohort.parent / "per_eye_prepared.csv"
    assert ls.main(["prepare", "--cohort", str(manifest), "--out", str(out), "--test-patients", "3",
                    "--val-patients", "2"]) == 0
    err = capsys.readouterr().err
    assert "filed under several patient IDs" in err and "SYN" not in err, err
    records = read_manifest(out)[0]
    header, splits = header_patients(records), {}
    for r in records:
        splits.setdefault(header[r.row], set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values()) and {"train", "val", "test"} <= set.union(*splits.values())
