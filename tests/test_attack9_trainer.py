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
