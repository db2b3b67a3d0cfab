"""Attack run 9, the trainer's findings: run 8's rules applied to the commands they missed (label_scarce
train, cache and summary, recalibrate, evaluate --attach, the Retrain dialog's check, a fine-tune's start)."""

import hashlib
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TRAIN = ["--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]


def _digest(path) -> str:
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


@pytest.fixture
def no_training(monkeypatch):
    """label_scarce's train replaced by a recorder: a check that comes too late shows as work done."""
    import trainer.label_scarce

    worked = []
    monkeypatch.setattr(trainer.label_scarce, "train", lambda *a, **k: worked.append(a))
    return worked


def test_a9_3_label_scarce_progress_json_naming_the_manifest_is_refused(tiny_cohort, tmp_path, no_training,
                                                                        capsys):
    from trainer.label_scarce import main

    before = _digest(tiny_cohort)
    rc = main(["train", "--data", str(tiny_cohort), "--out", str(tmp_path / "root"), "--fractions", "1.0",
               "--variants", "resnet2d", *TRAIN, "--progress-json", str(tiny_cohort)])
    err = capsys.readouterr().err
    assert rc == 3 and "--progress-json" in err and "Traceback" not in err, err
    assert _digest(tiny_cohort) == before and not no_training and not (tmp_path / "root").exists()


@pytest.fixture
def model_of(tmp_path):
    """A tiny model file whose provenance names ``manifest`` as its training manifest (split seed 0)."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from trainer.manifest import content_hash

    def make(manifest, name="m.safetensors"):
        torch.manual_seed(0)
        meta = default_metadata("resnet2d", preprocess=Preprocess(size=32))
        meta.update(name="a9", synthetic_data=True)
        meta.setdefault("provenance", {}).update(data={"manifest_sha256": content_hash(manifest)}, split_seed=0)
        return save_model(tmp_path / name, build_network("resnet2d", init="random"), meta)
    return make


@pytest.mark.parametrize("split", ["train", "all"])
def test_a9_8_recalibrate_refuses_the_models_own_training_data(split, model_of, tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    model, out = model_of(tiny_cohort), tmp_path / "recal.safetensors"
    rc = main(["recalibrate", "--model", str(model), "--data", str(tiny_cohort), "--split", split,
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "not independent" in err and "nothing written" in err, err
    assert not out.exists()


def test_a9_8_recalibrate_takes_another_cohort(model_of, tiny_cohort, tmp_path):
    from trainer.recalibrate import _independent

    other = tmp_path / "other.csv"
    other.write_text(tiny_cohort.read_text() + "\n")  # other content, so another cohort by its hash
    assert _independent(model_of(other), tiny_cohort, "all", None) == 0


def test_a9_11_attach_refuses_an_evaluation_of_one_class(model_of, tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    normal = tiny_cohort.parent / "allnormal_a9.csv"  # beside the cohort: its paths are relative
    normal.write_text(tiny_cohort.read_text().replace(",glaucoma,", ",normal,"))
    other = tmp_path / "other.csv"
    other.write_text("x")
    model = model_of(other)  # trained elsewhere: the evaluation is independent, but of one class
    before = _digest(model)
    rc = main(["evaluate", "--model", str(model), "--data", str(normal), "--split", "all", "--attach",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "--attach" in err and "nothing stored" in err and "no glaucoma volume" in err, err
    assert _digest(model) == before


@pytest.mark.parametrize("option", [["--image-size", "0"], ["--image-size", "100000"],
                                    ["--image-size", "32", "--volume-shape", "0", "0", "0"], ["--cache-dir=DATA"]])
def test_a9_14_label_scarce_cache_checks_its_options_before_any_work(option, tiny_cohort, tmp_path, monkeypatch,
                                                                     capsys):
    import trainer.label_scarce
    from trainer.label_scarce import main

    worked = []
    monkeypatch.setattr(trainer.label_scarce, "warm_cache", lambda *a, **k: worked.append(a) or 0)
    cache = tmp_path / "cache"
    option = [o.replace("DATA", str(tiny_cohort)) for o in option]
    argv = ["cache", "--data", str(tiny_cohort), "--cache-dir", str(cache), "--image-size", "32", *option]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == (3 if "--cache-dir" in option[0] else 2), err
    assert err.startswith("error: --") and len(err.strip().splitlines()) == 1 and not worked and not cache.exists()


@pytest.mark.parametrize("bad", [["--fractions", "0"], ["--fractions", "1.5"], ["--fractions", "nan"],
                                 ["--fractions", "0.5", "0.5"], ["--fractions", "1", "--seeds", "0", "0"],
                                 ["--fractions", "1", "--variants", "bogus"]])
def test_a9_15_label_scarce_train_arguments_are_checked_before_any_folder(bad, tiny_cohort, tmp_path, no_training,
                                                                         capsys):
    from trainer.label_scarce import main

    root = tmp_path / "root"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(tiny_cohort), "--out", str(root), *TRAIN, *bad])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and not no_training and not root.exists(), err


def test_a9_15_ablation_variants_are_checked_before_any_folder(tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    out = tmp_path / "abl"
    with pytest.raises(SystemExit) as stop:
        main(["ablation", "--data", str(tiny_cohort), "--out", str(out), "--variants", "bogus", *TRAIN])
    assert stop.value.code == 2 and "unknown network 'bogus'" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("regime", ['{"label_fraction": null}', "[0.1]", '"0.1"', '{"label_fraction": NaN}'])
def test_a9_1_label_scarce_summary_reads_a_regime_file_of_another_shape_with_a_warning(regime, tmp_path, capsys):
    from trainer.label_scarce import load_runs

    (tmp_path / "labels010").mkdir()
    (tmp_path / "labels010" / "regime.json").write_text(regime)
    assert load_runs(tmp_path)["labels010"]["fraction"] == 0.1
    assert "labels010/regime.json: not a regime file" in capsys.readouterr().err


def test_a9_4_label_scarce_train_checks_the_salt_before_any_work(tiny_cohort, tmp_path, no_training, monkeypatch,
                                                                 capsys):
    from trainer.label_scarce import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(afile / "octviewer" / "pseudonym.salt"))
    root = tmp_path / "root"
    rc = main(["train", "--data", str(tiny_cohort), "--out", str(root), "--fractions", "1.0", "--variants",
               "resnet2d", *TRAIN])
    err = capsys.readouterr().err
    assert rc == 3 and "salt" in err and len(err.strip().splitlines()) == 1, err
    assert "--no-pseudonymise" not in err and "OCTVIEWER_PSEUDONYM_SALT" in err  # a hint true for the trainer
    assert not no_training and not root.exists()


def test_a9_5_the_retrain_check_shows_validates_warnings(tiny_cohort):
    import csv

    from octviewer.gui.model.retrain_checks import validate_manifest

    rows = list(csv.DictReader(open(tiny_cohort, newline="")))
    seen = {}
    for k, r in enumerate(rows):  # two volumes of one eye at one visit, labelled apart
        if (case := (r["patient_id"], r["eye"], r["visit"])) in seen:
            rows[seen[case]]["label"], r["label"] = "glaucoma", "normal"
            break
        seen[case] = k
    mixed = tiny_cohort.parent / "mixed_a9_5.csv"
    with open(mixed, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ok, text = validate_manifest(str(mixed))
    assert ok and f"rows {seen[case] + 2}, {k + 2}: one eye at one visit labelled both glaucoma and normal" in text


def test_a9_12_a_fine_tune_records_and_shows_an_unsigned_start(model_of, tiny_cohort):
    from dataclasses import replace

    from octviewer.gui.model.card import identity, model_card_text
    from octviewer.model import load_model
    from octviewer.model.signing import Trust
    from trainer.train import start_record

    start = load_model(model_of(tiny_cohort))  # unsigned, as a bent file would be
    record = start_record(start, "bent.safetensors")
    assert record["trusted"] is False and record["signature"] == "unsigned"
    # the fine-tuned file, signed by this workstation's trusted key, with that start in its provenance
    tuned = replace(load_model(model_of(tiny_cohort, "tuned.safetensors")), trust=Trust("trusted", "here", "k1"))
    tuned.meta.provenance["selection"] = {"fine_tuned_from": record}
    shown = identity(tuned)
    assert "fine-tuned from a model file that was unsigned" in shown["file_warning"]
    card = model_card_text({**tuned.meta.to_dict(), **shown})
    assert "its start model was unsigned" in card and "WARNING: it was fine-tuned" in card
    tuned.meta.provenance["selection"] = {"fine_tuned_from": dict(record, trusted=True)}  # a trusted start
    assert identity(tuned)["file_warning"] == ""
