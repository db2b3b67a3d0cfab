"""Attack run 8, the trainer's findings: a manifest of one class (A8-6), the pseudonym salt checked
before any work (A8-12), --progress-json under the outputs' rules (A8-18), --attach of an evaluation
on the model's own training data (A8-15)."""

import json
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIT = ["--variant", "resnet2d", "--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]


def _one_class(tiny_cohort, name="allnormal_a8.csv"):
    """The tiny cohort's manifest with every label normal (a wrong export), beside it (paths are relative)."""
    text = tiny_cohort.read_text().replace(",glaucoma,", ",normal,")
    out = tiny_cohort.parent / name
    out.write_text(text)
    return out


def test_a8_6_validate_refuses_a_manifest_of_one_class(tiny_cohort, capsys):
    from trainer.cli import main

    assert main(["validate", "--data", str(_one_class(tiny_cohort))]) == 2
    assert "holds no glaucoma volume" in capsys.readouterr().err
    assert main(["validate", "--data", str(tiny_cohort)]) == 0


def test_a8_6_fit_refuses_a_manifest_of_one_class_before_training(tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    out = tmp_path / "run"
    assert main(["fit", "--data", str(_one_class(tiny_cohort)), "--out", str(out), *FIT]) == 2
    assert "training split holds no glaucoma volume" in capsys.readouterr().err
    assert not (out / "cache").exists() and not (out / "model.safetensors").exists()


def test_a8_6_the_retrain_check_refuses_one_class(tiny_cohort):
    from octviewer.gui.model.retrain_checks import validate_manifest

    ok, text = validate_manifest(str(_one_class(tiny_cohort)))
    assert not ok and "no glaucoma volume" in text


def test_a8_6_the_retrain_dialog_never_offers_a_model_with_a_nan_auc(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from octviewer.gui.model import retrain_checks, retrain_dialog

    warned, asked, ready = [], [], []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    monkeypatch.setattr(retrain_checks, "confirm", lambda *a: asked.append(a[2]) or True)
    dialog = retrain_dialog.RetrainDialog(None, manifest="m.csv", out=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.model_ready.connect(ready.append)
    dialog.run_dir, dialog.result_model = tmp_path, str(tmp_path / "model.safetensors")
    (tmp_path / "report.json").write_text(json.dumps({"image_level": {"auc": float("nan"), "accuracy": 1.0,
                                                                      "n": 5}}))
    assert "could not be evaluated" in dialog.evaluation_text()
    dialog._load()
    assert warned and not asked and not ready
    (tmp_path / "report.json").write_text(json.dumps({"image_level": {"auc": 0.9, "n": 5}}))
    dialog._load()
    assert asked and ready


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_a8_12_no_place_for_the_salt_is_one_line_exit_3_before_any_work(command, tiny_cohort, tmp_path,
                                                                         monkeypatch, capsys):
    import trainer.evaluate_model
    import trainer.train
    from trainer.cli import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(afile / "octviewer" / "pseudonym.salt"))
    worked = []
    monkeypatch.setattr(trainer.train, "build_cache", lambda *a, **k: worked.append(1))
    monkeypatch.setattr(trainer.evaluate_model, "evaluate_model", lambda *a, **k: worked.append(1))
    out = tmp_path / "run"
    if command == "fit":
        argv = ["fit", "--data", str(tiny_cohort), "--out", str(out), *FIT]
    else:
        argv = ["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(tiny_cohort)]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "salt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not worked and not out.exists()


def test_a8_18_progress_json_gets_the_outputs_rules_before_any_work(tiny_cohort, tmp_path, monkeypatch, capsys):
    import hashlib

    import trainer.train
    from trainer.cli import main

    worked = []
    monkeypatch.setattr(trainer.train, "fit", lambda *a, **k: worked.append(1))
    monkeypatch.setattr("trainer.cli.fit", lambda *a, **k: worked.append(1))
    notes = tmp_path / "notes.txt"
    notes.write_text("secret notes\n")
    link = tmp_path / "link.json"
    link.symlink_to(notes)
    scan = next(p for p in (tiny_cohort.parent / "volumes").iterdir() if p.suffix == ".dcm")

    def digest(p):
        return hashlib.sha1(p.read_bytes()).hexdigest()

    before = {p: digest(p) for p in (notes, tiny_cohort, scan)}
    for target in (link, tiny_cohort, scan):
        out = tmp_path / f"run_{target.name}"
        rc = main(["fit", "--data", str(tiny_cohort), "--out", str(out), *FIT, "--progress-json", str(target)])
        err = capsys.readouterr().err
        assert rc == 3 and "--progress-json" in err, (target, err)
    assert {p: digest(p) for p in before} == before and not worked


def test_a8_18_progress_never_opens_a_fifo(tmp_path):
    from trainer.command import OutputPathError
    from trainer.progress import Progress

    fifo = tmp_path / "p.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the old code did not hang here
    try:
        with pytest.raises(OutputPathError, match="--progress-json"):
            Progress(str(fifo))
    finally:
        os.close(reader)
    good = tmp_path / "p.json"
    Progress(str(good)).log(stage="x")
    Progress(str(good)).log(stage="y")  # appended
    assert [json.loads(line)["stage"] for line in good.read_text().splitlines()] == ["x", "y"]


@pytest.fixture
def model_of(tmp_path):
    """A tiny model file whose provenance names ``manifest`` as its training manifest (split seed 0)."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from trainer.manifest import content_hash

    def make(manifest):
        torch.manual_seed(0)
        meta = default_metadata("resnet2d", preprocess=Preprocess(size=32))
        meta.update(name="a8-15", synthetic_data=True)
        meta.setdefault("provenance", {}).update(data={"manifest_sha256": content_hash(manifest)}, split_seed=0)
        return save_model(tmp_path / "m.safetensors", build_network("resnet2d", init="random"), meta)
    return make


@pytest.mark.parametrize("split", ["train", "all", "val"])
def test_a8_15_attach_refuses_the_models_own_training_data(split, model_of, tiny_cohort, capsys):
    import hashlib

    from trainer.cli import main

    model = model_of(tiny_cohort)
    before = hashlib.sha1(model.read_bytes()).hexdigest()
    rc = main(["evaluate", "--model", str(model), "--data", str(tiny_cohort), "--split", split, "--attach",
               "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "--attach" in err and "nothing" in err, err
    assert hashlib.sha1(model.read_bytes()).hexdigest() == before


def test_a8_4_label_scarce_help_says_its_whole_first_sentence(capsys):
    """`python -m trainer.label_scarce --help` took the docstring's first line, cut mid-sentence."""
    from trainer.label_scarce import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the rest keep only their visual field (VF)." in text
