"""Attack run 5, trainer findings (F11, F12, F19, F20, F21): each refused in one line, at once."""

from __future__ import annotations

import os
import time

import pytest

pytest.importorskip("torch")


def _fit(tmp_path, *flags):
    """``fit`` with a manifest that does not exist: an option refused before any work never reaches it."""
    from trainer.cli import main

    return main(["fit", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "run"), *flags])


# -- F11: a --config nesting YAML aliases (an "alias bomb") is refused at read ------------------------------
def test_a_config_with_yaml_aliases_is_refused_at_once(tmp_path, capsys):
    """A 422-byte file nesting aliases 9 deep expanded to 9^9 numbers: 11.8 GB after 10 minutes."""
    def level(k):
        if k == 0:
            return "&l0 [" + ", ".join(["1.0"] * 9) + "]"
        return f"&l{k} [" + level(k - 1) + f", *l{k - 1}" * 8 + "]"

    (tmp_path / "bomb.yaml").write_text("alpha_grid: " + level(8) + "\n")
    start = time.monotonic()
    assert _fit(tmp_path, "--config", str(tmp_path / "bomb.yaml")) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert "bomb.yaml" in err and "aliases" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_config_with_one_plain_alias_is_refused_too(tmp_path):
    from trainer.config import ConfigFileError, read_config_file

    (tmp_path / "c.yaml").write_text("alpha_grid: &g [1.0, 2.0]\nvolume_shape: *g\n")
    with pytest.raises(ConfigFileError, match="aliases"):
        read_config_file(tmp_path / "c.yaml")


# -- F12: every option's type and range is checked before any work ------------------------------------------
@pytest.mark.parametrize("flags, option", [
    (["--batch-size", "0"], "--batch-size"), (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"),
    (["--lr", "0"], "--lr"), (["--label-fraction", "0"], "--label-fraction"),
    (["--label-fraction", "1.5"], "--label-fraction"), (["--image-size", "8"], "--image-size"),
    (["--weight-decay", "-1"], "--weight-decay"), (["--reg-channels", "0"], "--reg-channels"),
    (["--alpha-grid", "nan"], "--alpha-grid"), (["--alpha", "md=-1"], "--alpha"),
    (["--volume-shape", "1", "64", "64"], "--volume-shape"), (["--bscans-per-volume", "0"], "--bscans-per-volume"),
    (["--aggregation", "mode"], "--aggregation"), (["--train-set", "some"], "--train-set"),
])
def test_a_bad_option_on_the_command_line_is_one_line_exit_2_before_any_work(tmp_path, capsys, flags, option):
    assert _fit(tmp_path, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} must be") and err.count("\n") == 1, err
    assert "missing.csv" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, option", [
    ("epochs: ten", "--epochs"), ("epochs: true", "--epochs"), ("lr: .nan", "--lr"), ("batch_size: 0", "--batch-size"),
    ("cache_dir: [1, 2]", "--cache-dir"), ("synthetic: 'no'", "--synthetic"), ("variant: gpt", "--variant"),
    ("alpha_grid: 2.0", "--alpha-grid"), ("alpha_grid: [" + ", ".join(["1.0"] * 101) + "]", "--alpha-grid"),
    ("alpha: [1, 2]", "--alpha"), ("volume_shape: [64, 128]", "--volume-shape"), ("image_size: 8", "--image-size"),
    ("seed: -1", "--seed"), ("split_seed: 1.5", "--split-seed"),
])
def test_a_bad_value_in_a_config_file_is_one_line_exit_2_before_any_work(tmp_path, capsys, text, option):
    (tmp_path / "c.yaml").write_text(text + "\n")
    assert _fit(tmp_path, "--config", str(tmp_path / "c.yaml")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} must be") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_good_values_pass_and_numbers_written_as_text_are_numbers(tmp_path):
    """PyYAML reads ``lr: 1e-3`` as the text '1e-3': taken as the number it says."""
    import argparse

    from trainer.cli import _config

    (tmp_path / "c.yaml").write_text("lr: 1e-3\nepochs: 3\nalpha: {md: 2}\nalpha_grid: [0.5, 1]\n"
                                     "volume_shape: [32, 64, 32]\nsynthetic: null\ncache_dir: null\n")
    args = argparse.Namespace(command="fit", config=tmp_path / "c.yaml", data="m.csv", out="r", seed=2)
    cfg = _config(args)
    assert (cfg.lr, cfg.epochs, cfg.alpha, cfg.alpha_grid, cfg.seed) == (0.001, 3, {"md": 2.0}, [0.5, 1.0], 2)


def test_ablation_keeps_its_own_train_set_both(tmp_path):
    import argparse

    from trainer.cli import _config

    args = argparse.Namespace(command="ablation", config=None, data="m.csv", out="r", train_set="both")
    assert _config(args).train_set == "all"


# -- F20: --resume reads <out>/config.json as a settings file ------------------------------------------------
@pytest.mark.parametrize("kind", ["devzero", "fifo", "big"])
def test_resume_with_a_config_json_that_is_no_small_file_is_one_line(tmp_path, kind):
    """A config.json linked to /dev/zero was read by read_text(): 3.5 GB in 5 s; a FIFO blocked for good."""
    from trainer.config import Config, RunMismatch, check_and_record

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,patient_id,eye,visit,label\n")
    out = tmp_path / "run"
    out.mkdir()
    if kind == "devzero":
        (out / "config.json").symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(out / "config.json")
    else:
        (out / "config.json").write_text('{"identity": {}, "x": "' + "a" * (2 << 20) + '"}')
    with pytest.raises(RunMismatch, match="config.json is unreadable") as info:
        check_and_record(Config(data=str(manifest), out=str(out), resume=True), out, write=False)
    assert {"devzero": "character device", "fifo": "named pipe", "big": "more than"}[kind] in str(info.value)


# -- F21: a checkpoint that is a FIFO or a device is refused, not opened blocking ---------------------------
@pytest.fixture
def alarm():
    """A hang fails the test after 10 s instead of blocking the run (old code blocked in open())."""
    import signal

    def hung(*_args):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind, words", [("fifo", "named pipe (FIFO), not a file"),
                                         ("devzero", "character device, not a file")])
def test_resume_with_a_last_pt_that_is_a_fifo_or_device_is_refused_at_once(tmp_path, alarm, kind, words):
    from octviewer.model.archive import torch_archive_problem
    from trainer.checkpoint import CheckpointError, load_checkpoint

    path = tmp_path / "last.pt"
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/zero")
    assert words in torch_archive_problem(path)
    with pytest.raises(CheckpointError, match="last.pt") as info:
        load_checkpoint(path, "cpu")
    assert words in str(info.value)


# -- F19: cache entries and their records are opened as files only -----------------------------------------
@pytest.fixture
def cached_entry(tmp_path):
    from pathlib import Path

    import numpy as np

    from octviewer.model import Preprocess
    from trainer.cache import build_cache
    from trainer.manifest import Record

    demo = Path("resources/samples/demo_normal_OD.dcm").resolve()
    rec = Record(2, demo, "P1", "OD", "2020-01-01", 0, {}, "", {}, "x")
    pre = Preprocess(size=32)
    [good] = build_cache([rec], pre, tmp_path / "cache", workers=1)
    [entry] = (tmp_path / "cache").glob("*.npy")
    return rec, pre, np.array(good), entry


def _spoil(path, kind):
    path.unlink()
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/zero")


@pytest.mark.parametrize("part, kind, words", [
    (".npy", "fifo", "named pipe (FIFO), not a file"), (".npy", "devzero", "character device, not a file"),
    (".json", "fifo", "record that cannot be used (this is a named pipe (FIFO)"),
    (".json", "devzero", "record that cannot be used (this is a character device"),
])
def test_a_cache_entry_or_record_that_is_no_file_is_refused_at_once(cached_entry, alarm, part, kind, words):
    """A record linked to /dev/zero was read to 3.3 GB in 5 s; an entry that is a FIFO blocked np.load."""
    from trainer.cache import _entry_problem

    _rec, pre, _good, entry = cached_entry
    _spoil(entry.with_suffix(part), kind)
    array, why = _entry_problem(entry, pre)
    assert array is None and words in why


def test_a_cache_record_linked_to_dev_zero_is_rebuilt_with_a_note(cached_entry, capsys):
    import numpy as np

    from trainer.cache import build_cache

    rec, pre, good, entry = cached_entry
    _spoil(entry.with_suffix(".json"), "devzero")
    capsys.readouterr()
    [again] = build_cache([rec], pre, entry.parent, workers=1)
    assert np.array_equal(np.asarray(again), good)
    assert f"cache entry {entry.name} has a record that cannot be used" in capsys.readouterr().err
    assert entry.with_suffix(".json").is_file() and not entry.with_suffix(".json").is_symlink()
