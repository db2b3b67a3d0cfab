"""The label-scarce ablation (trainer/label_scarce.py, trainer/gpu_label_scarce.sh): which labels a fit
may see, that the fit and its loss honour it, the split, the pooled paired summary, and the whole
GPU script at toy scale on the CPU."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer import label_scarce as ls
from trainer.config import Config, run_identity
from trainer.loss import SemtLoss
from trainer.manifest import Record

ROOT = Path(__file__).resolve().parents[1]


def _records(n_patients=40, seed=0):
    """Training, validation and test records, one to three volumes per patient, a third glaucoma."""
    rng = np.random.default_rng(seed)
    out, row = [], 2
    for p in range(n_patients):
        label = int(p % 3 == 0)
        split = "test" if p % 5 == 0 else "val" if p % 5 == 1 else "train"
        for k in range(int(rng.integers(1, 4))):
            md = None if k == 1 else float(-8 * label - rng.random())
            out.append(Record(row, Path(f"v{row}.dcm"), f"P{p:03d}", "OD", "1", label,
                              {"vfi": None, "md": md, "psd": None}, split))
            row += 1
    return out


def test_labelled_patients_are_per_class_nested_and_depend_on_the_split_seed_only():
    records = _records()
    train_patients = {r.patient_id: r.label for r in records if r.split == "train"}
    sets = {f: ls.labelled_patients(records, f, seed=0) for f in (0.1, 0.25, 0.5, 1.0)}
    assert sets[0.1] <= sets[0.25] <= sets[0.5] <= sets[1.0] == set(train_patients)
    for f, keep in sets.items():  # ceil(f * n) of each class: both classes keep a label even at 10 %
        for label in (0, 1):
            n = sum(v == label for v in train_patients.values())
            assert sum(train_patients[p] == label for p in keep) == int(np.ceil(f * n))
    assert ls.labelled_patients(records, 0.25, seed=0) == sets[0.25]  # deterministic
    assert ls.labelled_patients(records, 0.25, seed=1) != sets[0.25]
    assert not any(p in sets[1.0] for p in {r.patient_id for r in records if r.split != "train"})


def test_hidden_rows_are_training_rows_of_unlabelled_patients_and_none_at_full_fraction():
    records = _records()
    assert ls.hidden_label_rows(records, 1.0, 0) == set()
    hidden = ls.hidden_label_rows(records, 0.25, 0)
    keep = ls.labelled_patients(records, 0.25, 0)
    assert hidden == {r.row for r in records if r.split == "train" and r.patient_id not in keep}
    assert all(r.split == "train" for r in records if r.row in hidden)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="label_fraction"):
            ls.hidden_label_rows(records, bad, 0)


def test_loss_skips_missing_labels_and_is_unchanged_without_them():
    logit = torch.tensor([2.0, -1.0, 0.5, 0.0])
    label = torch.tensor([1.0, float("nan"), 0.0, float("nan")])
    loss = SemtLoss()
    known = torch.tensor([True, False, True, False])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logit[known], label[known])
    assert float(loss({"logit": logit}, label)) == pytest.approx(float(expected))
    full = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.equal(loss({"logit": logit}, full),
                       torch.nn.functional.binary_cross_entropy_with_logits(logit, full))
    # a batch of VF-only volumes: no classification term, the VF term still trains
    scaling, std = {"md": {"lo": -30.0, "hi": 10.0}}, {"md": 2.0}
    vf_loss = SemtLoss(("md",), {"md": 1.0}, scaling, std)
    out = {"logit": torch.zeros(2, requires_grad=True), "vf": torch.full((2, 1), 0.5, requires_grad=True)}
    value = vf_loss(out, torch.full((2,), float("nan")), torch.tensor([[-12.0], [-8.0]]))
    assert float(value.detach()) == pytest.approx(1.0)  # both 1 SD (2 dB) off; BCE contributes 0
    value.backward()
    assert float(out["vf"].grad.abs().sum()) > 0 and float(out["logit"].grad.abs().sum()) == 0


def test_label_fraction_is_a_result_changing_option_that_old_runs_lack():
    assert "label_fraction" not in run_identity(Config(data=__file__))  # default: identity as before
    assert run_identity(Config(data=__file__, label_fraction=0.25))["label_fraction"] == 0.25


@pytest.mark.timeout(600)
@pytest.mark.slow  # three fits' inference and reports: a minute or two on a loaded 2-core machine
def test_fit_trains_stage1_and_the_2d_resnet_on_labelled_volumes_only(tiny_cohort, tmp_path, monkeypatch):
    """What each stage is given, captured in place of the training itself (the stages are tested elsewhere)."""
    from trainer import train as train_module
    from trainer.checkpoint import atomic_save
    from trainer.manifest import assign_splits, read_manifest

    seen = {}

    def fake_stage(name, network, train, val, loss_fn, cfg, out, *args, **kwargs):
        seen[(cfg.variant, name)] = ([r.row for r in train.records], train.labels.copy())
        (out / name).mkdir(parents=True, exist_ok=True)
        atomic_save({"model": network.state_dict(), "score": 0.0}, out / name / "done.pt")
        return network
    monkeypatch.setattr(train_module, "run_stage", fake_stage)
    records = assign_splits(read_manifest(tiny_cohort)[0], 0)
    hidden = ls.hidden_label_rows(records, 0.5, 0)
    has_vf = {r.row for r in records if any(v is not None for v in r.vf.values())}
    assert hidden and hidden & has_vf and hidden - has_vf  # the cohort exercises every case
    opts = dict(data=str(tiny_cohort), label_fraction=0.5, epochs=1, image_size=16, init="random", device="cpu",
                reg_channels=4, bscans_per_volume=1, cache_dir=str(tmp_path / "cache"))
    reports = {v: train_module.fit(Config(out=str(tmp_path / v), variant=v, **opts)) for v in ("semt", "mt")}
    rows, labels = seen[("semt", "stage1")]
    assert rows and not set(rows) & hidden and not np.isnan(labels).any()  # stage 1 is a classifier
    for variant in ("semt", "mt"):
        rows, labels = seen[(variant, "stage2")]
        unlabelled = {r for r, lab in zip(rows, labels) if np.isnan(lab)}
        assert unlabelled == hidden & has_vf  # VF-only volumes train the VF heads; no-VF hidden ones are left out
        counts = reports[variant]["splits"]["train"]
        assert counts["label_hidden"] == len(hidden & has_vf) and counts["volumes"] == len(rows)
    seen.clear()
    report = train_module.fit(Config(out=str(tmp_path / "r2d"), variant="resnet2d", **opts))
    rows, labels = seen[("resnet2d", "stage1")]
    train_rows = {r.row for r in records if r.split == "train"}
    assert set(rows) == train_rows - hidden and report["splits"]["train"]["label_hidden"] == 0
    assert report["splits"]["test"]["volumes"] == sum(r.split == "test" for r in records)  # test untouched


def test_prepare_splits_patients_per_class_and_keeps_every_row(tmp_path):
    cohort = tmp_path / "manifest.csv"
    _made_up_runs(tmp_path / "unused", cohort, np.random.default_rng(1))
    with open(cohort, newline="") as f:  # prepare opens the volumes, as validate does (A14-13): tiny distinct ones
        made_up = list(csv.DictReader(f))
    for k, r in enumerate(made_up):
        r["path"] = r["path"].replace(".dcm", ".npy")
        np.save(tmp_path / r["path"], np.full((4, 16, 16), k, dtype=np.uint8))
    with open(cohort, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(made_up[0]))
        w.writeheader()
        w.writerows(made_up)
    counts = ls.prepare(cohort, tmp_path / "split.csv", test_patients=4, val_patients=2, seed=0)
    with open(cohort) as f:
        before = list(csv.DictReader(f))
    with open(tmp_path / "split.csv") as f:
        after = list(csv.DictReader(f))
    assert [r["path"] for r in after] == [r["path"] for r in before]
    assert all({k: v for k, v in a.items() if k != "split"} == {k: v for k, v in b.items() if k != "split"}
               for a, b in zip(after, before))
    split_of, label_of = {}, {}
    for r in after:
        assert split_of.setdefault(r["patient_id"], r["split"]) == r["split"]  # a patient in one split
        label_of[r["patient_id"]] = r["label"]
    test_glaucoma = sum(label_of[p] == "glaucoma" for p, s in split_of.items() if s == "test")
    assert test_glaucoma == 2  # in proportion to the classes (half the made-up patients)
    assert sum(s == "test" for s in split_of.values()) == counts["test"]["patients"] == 4
    assert counts["val"]["patients"] == 2 and counts["train"]["patients"] == len(split_of) - 6
    with pytest.raises(ValueError, match="folder"):
        ls.prepare(cohort, tmp_path / "elsewhere" / "split.csv", 4, 2)
    with pytest.raises(ValueError, match="keep any for training"):
        ls.prepare(cohort, tmp_path / "split.csv", len(split_of) - 1, 1)


def _made_up_runs(root: Path, manifest: Path, rng):
    """Reports as ``fit`` writes them, for two regimes and two seeds: SEMT separates the classes,
    MT is SEMT plus noise, the 2D-ResNet guesses; VF: SEMT exact, MT 3 dB off."""
    header = ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split", "rnfl_T_um",
              "rnfl_N_um", "cup_to_disc"]
    rows, test = [], []
    for p in range(60):
        label = p % 2
        for k in range(2):
            rnfl, cdr = 100 - 30 * label + rng.normal(0, 5), 0.4 + 0.3 * label
            md = -0.2 * (100 - rnfl) + 1.0 * cdr  # exactly linear in the structure
            row = {"path": f"v{p}_{k}.dcm", "patient_id": f"P{p}", "eye": "OD", "visit": "1",
                   "label": "glaucoma" if label else "normal", "vfi": "", "md": f"{md:.6f}", "psd": "",
                   "split": "test" if p < 40 else "train", "rnfl_T_um": f"{rnfl:.6f}",
                   "rnfl_N_um": f"{rnfl:.6f}", "cup_to_disc": f"{cdr}"}
            rows.append(row)
            if row["split"] == "test":
                test.append((len(rows) + 1, f"P{p}", label, md))
    with open(manifest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    for fraction in (0.25, 1.0):
        regime = root / ls.regime_name(fraction)
        (regime).mkdir(parents=True)
        (regime / "regime.json").write_text(json.dumps({"label_fraction": fraction}))
        for seed in (0, 1):
            for variant, ts in (("semt", "all"), ("mt", "all"), ("mt", "part"), ("resnet2d", "all")):
                vols = []
                for row, patient, label, md in test:
                    p = {"semt": 0.2 + 0.6 * label, "resnet2d": rng.random()}.get(variant, 0.2 + 0.6 * label)
                    if variant == "mt":
                        p = float(np.clip(p + rng.normal(0, 0.5), 0, 1))
                    vf = {} if variant == "resnet2d" else {"vf_md": md + (0.0 if variant == "semt" else 3.0)}
                    vols.append({"volume": f"v{row}", "row": row, "patient": patient, "label": label,
                                 "probability": p, **vf})
                y = np.array([v["label"] for v in vols])
                probs = np.array([v["probability"] for v in vols])
                from trainer.evaluate import roc_auc
                metric = {"auc": roc_auc(y, probs), "accuracy": 0.5, "f1": 0.5, "ece": 0.1,
                          "ci95": {"auc": [0.4, 0.9], "accuracy": [0.4, 0.6], "f1": [0.4, 0.6]}}
                report = {"variant": variant, "requested_variant": variant, "train_set": ts, "seed": seed,
                          "image_level": metric, "case_level": metric, "test_volumes": vols,
                          "vf_mae": {} if variant == "resnet2d" else {"md": {"mae": 0.0 if variant == "semt" else 3}},
                          "splits": {"train": {"volumes": 40, "label_hidden": 0 if fraction == 1 else 30}}}
                run = regime / f"seed{seed}" / f"{variant}-{ts}-seed{seed}"
                run.mkdir(parents=True)
                (run / "report.json").write_text(json.dumps(report))


def test_summary_pools_seeds_into_paired_verdicts(tmp_path):
    root, manifest = tmp_path / "runs", tmp_path / "m.csv"
    _made_up_runs(root, manifest, np.random.default_rng(0))
    (root / "labels100" / "seed1" / "mt-part-seed1" / "report.json").unlink()  # a run the time limit stopped
    result = ls.write_summary(root, manifest, n_boot=200)
    assert result["regimes"]["labels100"]["missing"] == ["mt (Part) seed 1"]
    assert result["regimes"]["labels025"]["missing"] == []
    assert result["regimes"]["labels100"]["claims"]["All beats Part: MT"]["seeds"] == [0]
    assert set(result["regimes"]) == {"labels025", "labels100"}
    for regime in result["regimes"].values():
        claims = regime["claims"]
        assert claims["SEMT beats the 2D-ResNet"]["verdict"] == "shown"
        assert claims["SEMT beats the 2D-ResNet"]["seeds"] == [0, 1]
        assert claims["MT beats the 2D-ResNet"]["verdict"] == "shown"
        assert claims["SEMT beats MT"]["delta"] > 0
        assert claims["SEMT beats the 3D-CNN"]["verdict"] == "not run"
        vf = regime["vf"]
        assert vf["mae"]["semt (All)"]["md"]["mean"] == pytest.approx(0.0, abs=1e-5)
        assert vf["mae"]["structure_oracle"]["md"]["mean"] < 0.01  # the made-up field is linear in structure
        assert vf["semt_vs"]["mt (All)"]["md"]["delta"] == pytest.approx(3.0, abs=1e-4)
        assert vf["semt_vs"]["mt (All)"]["md"]["verdict"] == "shown"
        assert vf["semt_vs"]["class_mean"]["md"]["verdict"] == "shown"
    with open(root / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == ls.CSV_COLUMNS
    keys = {(r["regime"], r["system"], r["seed"]) for r in rows}
    expected = {(g, s, str(k)) for g in ("labels025", "labels100") for k in (0, 1)
                for s in ("semt (All)", "mt (All)", "mt (Part)", "resnet2d (All)")}
    assert keys == expected - {("labels100", "mt (Part)", "1")}
    hidden = {r["regime"]: r["train_hidden_volumes"] for r in rows}
    assert hidden == {"labels025": "30", "labels100": "0"}
    text = (root / "summary.md").read_text()
    assert "SYNTHETIC" in text and "| SEMT beats the 2D-ResNet" in text and "25 % labelled" in text
    assert "structure oracle" in text and "class-mean predictor" in text and "Not finished" in text


@pytest.mark.timeout(900)  # many fits; minutes on a loaded 2-core machine
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_label_scarce_script_at_toy_scale(tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    # one training seed: each of the 12 fits costs ~2 s of CI, and the summary's handling of several
    # seeds is tested on synthetic rows (test_summary_pools_seeds_into_paired_verdicts)
    env = dict(os.environ, OUT=str(out), LS_WORK=str(work), LS_SCALE="toy", PYTHON=sys.executable,
               LS_BUDGET_S="840", LS_SEEDS="0")
    result = subprocess.run(["bash", str(ROOT / "trainer" / "gpu_label_scarce.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=870)
    assert result.returncode == 0, result.stderr[-2000:]
    timings = (out / "timings.txt").read_text()
    for step in ("ls_cohort", "ls_prepare", "ls_runs", "ls_summary"):
        assert f"{step} " in timings and "failed" not in timings.split(step)[1].splitlines()[0], timings
    with open(work / "runs" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and tuple(rows[0]) == ls.CSV_COLUMNS
    systems = ("semt (All)", "mt (All)", "mt (Part)", "resnet2d (All)", "resnet2d (Part)", "cnn3d (All)")
    keys = {(r["regime"], r["system"], r["seed"]) for r in rows}
    assert keys == {(g, s, "0") for g in ("labels050", "labels100") for s in systems}
    half = [r for r in rows if r["regime"] == "labels050"]
    assert all(int(r["train_hidden_volumes"]) > 0 for r in half if r["system"].startswith(("mt", "semt")))
    assert all(r["train_hidden_volumes"] == "0" for r in rows if r["regime"] == "labels100")
    assert all(np.isfinite(float(r["delta_auc_semt_minus_system"])) for r in rows if r["system"] != "semt (All)")
    summary = (out / "summary.md").read_text()
    assert "SYNTHETIC" in summary and "## Verdicts" in summary and "50 % labelled" in summary
    assert sorted(p.name for p in out.iterdir()) == ["results.tar.gz", "summary.md", "timings.txt"]
    assert not list(work.rglob("*.pt")) and not list(work.rglob("model.safetensors"))  # deleted after each run


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_script_stops_at_once_when_a_package_did_not_travel(tmp_path):
    """A GPU call must not spend minutes before finding that a wheel was not carried."""
    fake = tmp_path / "site"
    (fake / "cryptography").mkdir(parents=True)
    (fake / "cryptography" / "__init__.py").write_text("raise ImportError('simulated: cryptography not carried')\n")
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), LS_WORK=str(tmp_path / "work"), LS_SCALE="toy", PYTHON=sys.executable,
               PYTHONPATH=str(fake))
    result = subprocess.run(["bash", str(ROOT / "trainer" / "gpu_label_scarce.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "preflight failed" in result.stderr
    assert "simulated: cryptography not carried" in (out / "preflight.log").read_text()
    assert not (tmp_path / "work" / "cohort").exists()


def test_train_with_a_bad_option_is_one_line_exit_2(tmp_path, capsys):
    """The fit options' checks (attack run 5, F12) raise ConfigFileError; ``label_scarce train`` caught only
    ManifestError, so a bad --batch-size there ended in a traceback."""
    code = ls.main(["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out"),
                    "--fractions", "0.5", "--batch-size", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --batch-size must be") and err.count("\n") == 1, err
