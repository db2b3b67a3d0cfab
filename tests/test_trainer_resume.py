"""Stop, resume and failure paths of ``fit`` (issue 11 #5, #14; issue 10 item 3).

A run stopped at any stage boundary (and inside stage 2 before its first checkpoint) and then
resumed must give the same weights and test probabilities as the uninterrupted run, bit for bit.
"""

import errno
import json
import shutil
import signal

import numpy as np
import pytest
import torch

import trainer.train as train_module
from trainer import stop
from trainer.cache import build_cache
from trainer.checkpoint import CheckpointError, atomic_save
from trainer.config import Config, RunMismatch, check_and_record
from trainer.progress import Progress

TINY = dict(variant="semt", epochs=1, stage1_epochs=1, image_size=32, init="random", batch_size=16,
            bscans_per_volume=2, reg_channels=8, device="cpu")


@pytest.fixture(autouse=True)
def _clear_stop():
    stop.clear()
    yield
    stop.clear()


def _weights(path):
    from safetensors.torch import load_file
    return load_file(str(path))


def _probabilities(out):
    return [v["probability"] for v in json.loads((out / "report.json").read_text())["test_volumes"]]


@pytest.fixture(scope="module")
def reference(tiny_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    before = signal.getsignal(signal.SIGTERM)
    train_module.fit(Config(data=str(tiny_cohort), out=str(out / "run"), cache_dir=str(out / "cache"), **TINY))
    assert signal.getsignal(signal.SIGTERM) is before  # fit never installs signal handlers; the CLI does
    yield out
    shutil.rmtree(out, ignore_errors=True)  # ~0.5 GB of checkpoints: CI's disk filled once (stop 48)


def _stopped_then_resumed(tiny_cohort, reference, tmp_path, monkeypatch, stop_when):
    out = tmp_path / "run"
    cfg = Config(data=str(tiny_cohort), out=str(out), cache_dir=str(reference / "cache"), **TINY)
    original = train_module.boundary

    def boundary(name, progress):
        if stop_when(name):
            stop.request_stop()
        original(name, progress)
    monkeypatch.setattr(train_module, "boundary", boundary)
    with pytest.raises(stop.Stopped):
        train_module.fit(cfg)
    assert not (out / "model.safetensors").exists()
    stop.clear()
    monkeypatch.setattr(train_module, "boundary", original)
    cfg.resume = True
    train_module.fit(cfg)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("where", ["cache", "stage1", "surrogates", "stage2"])
def test_stop_at_every_boundary_then_resume_is_identical(where, tiny_cohort, reference, tmp_path, monkeypatch):
    out = _stopped_then_resumed(tiny_cohort, reference, tmp_path, monkeypatch, lambda name: name == where)
    a, b = _weights(reference / "run" / "model.safetensors"), _weights(out / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _probabilities(reference / "run") == _probabilities(out)


@pytest.mark.slow
def test_stop_inside_stage2_before_its_first_checkpoint(tiny_cohort, reference, tmp_path, monkeypatch):
    """The path the GUI's Stop + Start hit: stage 1 finished, stage 2 not yet checkpointed."""
    out = tmp_path / "run"
    cfg = Config(data=str(tiny_cohort), out=str(out), cache_dir=str(reference / "cache"), **TINY)
    original = Progress.step

    def step(self, **record):
        if record.get("stage") == "stage2":
            stop.request_stop()
        original(self, **record)
    monkeypatch.setattr(Progress, "step", step)
    with pytest.raises(stop.Stopped, match="last completed epoch"):
        train_module.fit(cfg)
    assert (out / "stage1" / "done.pt").exists() and not (out / "stage2" / "last.pt").exists()
    monkeypatch.setattr(Progress, "step", original)
    stop.clear()
    cfg.resume = True
    train_module.fit(cfg)
    a, b = _weights(reference / "run" / "model.safetensors"), _weights(out / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stop_during_cache_build_says_nothing_was_trained(tiny_cohort, tmp_path):
    from octviewer.model import Preprocess
    from trainer.manifest import read_manifest

    records, _ = read_manifest(tiny_cohort)
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 3
    with pytest.raises(stop.Stopped) as info:
        build_cache(records, Preprocess(size=32), tmp_path / "cache", should_stop=should_stop)
    message = str(info.value)
    assert "3 of" in message and "no training had started" in message and "epoch" not in message
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3 and not list((tmp_path / "cache").glob("*.part"))


def test_corrupt_last_checkpoint_gives_clear_message(reference, tiny_cohort, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference / "run", out)
    (out / "stage2" / "done.pt").unlink()
    (out / "stage2" / "last.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    cfg = Config(data=str(tiny_cohort), out=str(out), cache_dir=str(reference / "cache"), resume=True, **TINY)
    with pytest.raises(CheckpointError) as info:
        train_module.fit(cfg)
    text = str(info.value)
    assert "last.pt is unreadable" in text and "start over without --resume" in text
    cfg.resume = False  # the offered way out works
    train_module.fit(cfg)
    assert (out / "model.safetensors").exists()


def test_disk_full_during_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    atomic_save({"model": {"w": torch.ones(3)}, "epoch": 0}, target)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("trainer.checkpoint.os.fsync", full)
    with pytest.raises(CheckpointError, match="disk is full"):
        atomic_save({"model": {"w": torch.zeros(3)}, "epoch": 1}, target)
    assert not list(tmp_path.glob("*.part"))  # no half-written file left behind
    assert torch.load(target, weights_only=True)["epoch"] == 0  # the previous checkpoint is intact


def test_resume_check_covers_manifest_content_and_options(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,patient_id,eye,visit,label\na.npy,P1,OD,,normal\n")
    out = tmp_path / "run"
    out.mkdir()
    check_and_record(Config(data=str(manifest), out=str(out)), out)
    check_and_record(Config(data=str(manifest), out=str(out), resume=True, progress_json="-"), out)  # harmless
    with pytest.raises(RunMismatch, match="different lr, alpha_grid"):
        check_and_record(Config(data=str(manifest), out=str(out), resume=True, lr=0.5, alpha_grid=[1, 3]), out)
    manifest.write_text("path,patient_id,eye,visit,label\na.npy,P1,OD,,glaucoma\n")  # edited in place
    with pytest.raises(RunMismatch, match="different manifest content"):
        check_and_record(Config(data=str(manifest), out=str(out), resume=True), out)


def test_seeded_boundaries_do_not_depend_on_prior_random_use():
    train_module.seed_boundary(3, "stage2-init")
    a = torch.rand(4), np.random.rand(2)
    torch.rand(100)
    train_module.seed_boundary(3, "stage2-init")
    b = torch.rand(4), np.random.rand(2)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
