"""Attack run 8, the trainer's leftovers: fit/ablation/label_scarce train --out only new, empty or (with
--resume) the same run's folder (A8-10)."""

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIT = ["--variant", "resnet2d", "--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]


def _clinic(tmp_path):
    """A clinic's study folder: scans and a VF table."""
    clinic = tmp_path / "clinic"
    (clinic / "scans" / "PAT123").mkdir(parents=True)
    (clinic / "scans" / "PAT123" / "OD_20190101.dcm").write_bytes(b"scan")
    (clinic / "vf.csv").write_text("patient_id,md\nPAT123,-2\n")
    return clinic


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _run(tmp_path, name="run"):
    """A finished run's folder as fit leaves it (config.json of ours, a model)."""
    run = tmp_path / name
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": {"seed": 0}, "identity": {"seed": 0}}))
    (run / "model.safetensors").write_bytes(b"the model in use")
    (run / "stage1").mkdir()
    return run


def test_a8_10_fit_refuses_a_folder_it_did_not_write(tiny_cohort, tmp_path, monkeypatch, capsys):
    from trainer.cli import main

    worked = []
    monkeypatch.setattr("trainer.cli.fit", lambda *a, **k: worked.append(1))
    clinic = _clinic(tmp_path)
    before = _listing(clinic)
    for flags in ([], ["--resume"]):
        assert main(["fit", "--data", str(tiny_cohort), "--out", str(clinic), *FIT, *flags]) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "2 file(s) or folder(s) octviewer-train did not write" in err, err
        assert "PAT123" not in err and "vf.csv" not in err  # counted, never named
    assert _listing(clinic) == before and not worked


def test_a8_10_a_finished_run_is_continued_only_with_resume(tiny_cohort, tmp_path, monkeypatch, capsys):
    from trainer.cli import main

    worked = []
    monkeypatch.setattr("trainer.cli.fit", lambda cfg: worked.append(cfg.resume))
    run = _run(tmp_path)
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), *FIT, "--seed", "5"]) == 3
    assert "holds an earlier run; --resume continues it" in capsys.readouterr().err
    assert (run / "model.safetensors").read_bytes() == b"the model in use" and not worked
    # the same run's folder with --resume, a new folder and an empty one: as before
    empty = tmp_path / "empty"
    empty.mkdir()
    for out, flags in ((run, ["--resume"]), (tmp_path / "new", []), (empty, [])):
        assert main(["fit", "--data", str(tiny_cohort), "--out", str(out), *FIT, *flags]) == 0, capsys.readouterr()
    assert worked == [True, False, False]


def test_a8_10_a_start_refused_before_training_takes_a_new_start(tiny_cohort, tmp_path, monkeypatch):
    """A fit refused by its data (a pickled npz field) leaves its config.json and cache: nothing trained, so the
    fit after the data's fix starts there without --resume (which would refuse the changed data); the
    harvard import test's second fit was refused "holds an earlier run"."""
    from trainer.cli import main

    worked = []
    monkeypatch.setattr("trainer.cli.fit", lambda cfg: worked.append(cfg.resume))
    run = _run(tmp_path)
    (run / "model.safetensors").unlink()
    (run / "stage1").rmdir()
    (run / "cache").mkdir()
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), *FIT]) == 0 and worked == [False]


def test_a8_10_a_progress_file_in_the_run_folder_is_the_runs(tiny_cohort, tmp_path, monkeypatch):
    from trainer.cli import main

    monkeypatch.setattr("trainer.cli.fit", lambda cfg: None)
    run = _run(tmp_path)
    (run / "progress.jsonl").write_text('{"stage": "cache"}\n')
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), *FIT, "--resume",
                 "--progress-json", str(run / "progress.jsonl")]) == 0


def test_a8_10_ablation_and_label_scarce_train_refuse_a_clinic_folder(tiny_cohort, tmp_path, monkeypatch, capsys):
    import trainer.ablation
    import trainer.label_scarce as ls
    from trainer.cli import main

    worked = []
    monkeypatch.setattr("trainer.ablation.run_ablation", lambda *a, **k: worked.append(1) or {"table": ""})
    monkeypatch.setattr(trainer.ablation, "fit", lambda cfg: worked.append(1))
    monkeypatch.setattr("trainer.cli.fit", lambda cfg: worked.append(1))
    clinic = _clinic(tmp_path)
    before = _listing(clinic)
    assert main(["ablation", "--data", str(tiny_cohort), "--out", str(clinic), *FIT[2:]]) == 3
    assert "did not write" in capsys.readouterr().err
    assert ls.main(["train", "--data", str(tiny_cohort), "--out", str(clinic), "--fractions", "0.5",
                    *FIT[2:]]) == 3
    assert "did not write" in capsys.readouterr().err
    assert _listing(clinic) == before and not worked
    # an earlier label-scarce run's seed folder: only with --resume; another fraction beside it is new
    root = tmp_path / "runs"
    seed0 = root / "labels050" / "seed0"
    (seed0 / "mt-all-seed0").mkdir(parents=True)
    (seed0 / "mt-all-seed0" / "config.json").write_text(json.dumps({"config": {}, "identity": {}}))
    (seed0.parent / "regime.json").write_text('{"label_fraction": 0.5}')
    argv = ["train", "--data", str(tiny_cohort), "--out", str(root), *FIT[2:]]
    assert ls.main([*argv, "--fractions", "0.5"]) == 3
    assert "holds an earlier run" in capsys.readouterr().err and not worked
    assert ls.main([*argv, "--fractions", "0.25"]) == 0 and ls.main([*argv, "--fractions", "0.5", "--resume"]) == 0
    assert len(worked) == 2


def _label_conflict(tiny_cohort):
    """The tiny cohort's manifest with two scans of one eye at one visit labelled glaucoma and normal; returns
    (manifest, their row numbers)."""
    import csv

    rows = list(csv.DictReader(open(tiny_cohort, newline="")))
    seen = {}
    for k, r in enumerate(rows):
        case = (r["patient_id"], r["eye"], r["visit"])
        if case in seen:
            break
        seen[case] = k
    first, second = seen[case], k
    rows[first]["label"], rows[second]["label"] = "glaucoma", "normal"
    out = tiny_cohort.parent / "mixed_a8_3.csv"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out, (first + 2, second + 2)


def test_a8_3_validate_and_prepare_warn_of_an_eye_labelled_both(tiny_cohort, capsys):
    import trainer.label_scarce as ls
    from trainer.cli import main

    manifest, (a, b) = _label_conflict(tiny_cohort)
    assert main(["validate", "--data", str(manifest)]) == 0
    err = capsys.readouterr().err
    assert f"warning: rows {a}, {b}: one eye at one visit labelled both glaucoma and normal" in err, err
    assert "SYN" not in err  # rows, never the patient
    assert ls.main(["prepare", "--cohort", str(manifest), "--out", str(manifest.parent / "split_a8_3.csv"),
                    "--test-patients", "3", "--val-patients", "2"]) == 0
    assert f"warning: rows {a}, {b}: one eye at one visit" in capsys.readouterr().err
    assert main(["validate", "--data", str(tiny_cohort)]) == 0
    assert "labelled both" not in capsys.readouterr().err


def test_a8_14_summary_leaves_out_a_report_of_another_shape_in_words(tiny_cohort, tmp_path, capsys):
    import trainer.label_scarce as ls

    root = tmp_path / "runs"
    report = root / "labels010" / "seed0" / "semt-all-seed0" / "report.json"
    report.parent.mkdir(parents=True)
    for body in ({"variant": "semt"}, [1, 2], {"variant": "semt", "train_set": "part", "seed": "x"}, "text", None):
        report.write_text(json.dumps(body))
        assert ls.main(["summary", str(root), "--data", str(tiny_cohort), "--n-boot", "10"]) == 0, body
        err = capsys.readouterr().err
        assert f"warning: {report}: not a run report (" in err and "Traceback" not in err, (body, err)
        assert json.loads((root / "summary.json").read_text())["rows"] == []


def test_a8_the_stop_message_starts_a_line_of_its_own(tiny_cohort, tmp_path, monkeypatch, capsys):
    import trainer.evaluate_model
    from trainer import stop
    from trainer.cli import main

    def stopped_mid_way(*args, progress, **kwargs):
        progress(1, 3)
        raise stop.Stopped("stopped after 1 of 3 volumes; nothing was written")

    monkeypatch.setattr(trainer.evaluate_model, "evaluate_model", stopped_mid_way)
    assert main(["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(tiny_cohort)]) == 130
    err = capsys.readouterr().err
    assert err.endswith("running the network: 1/3 volumes\nstopped after 1 of 3 volumes; nothing was written\n"), err


#: Runs a trainer command with a signal sent to itself when torch starts to load (argv: signal name, module, args).
_SIGNAL_AT_TORCH = """
import importlib, os, signal, sys
class SignalAtTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        return None
sys.meta_path.insert(0, SignalAtTorch())
sys.exit(importlib.import_module(sys.argv[2]).main(sys.argv[3:]))
"""


def test_a8_a_stop_while_torch_loads_is_one_line_exit_130(tiny_cohort, tmp_path):
    import subprocess
    import sys

    for sig, module, argv in (("SIGINT", "trainer.cli", ["fit", "--out", str(tmp_path / "a")]),
                              ("SIGTERM", "trainer.cli", ["fit", "--out", str(tmp_path / "b")]),
                              ("SIGINT", "trainer.label_scarce", ["train", "--out", str(tmp_path / "c"),
                                                                  "--fractions", "0.5"])):
        result = subprocess.run([sys.executable, "-c", _SIGNAL_AT_TORCH, sig, module, *argv, "--data",
                                 str(tiny_cohort), *FIT[2:]], capture_output=True, text=True, timeout=240)
        assert result.returncode == 130, (sig, module, result.returncode, result.stderr[-1500:])
        assert result.stderr == "stopped before any work; nothing was written\n", result.stderr[-1500:]
    assert not any(tmp_path.iterdir())
