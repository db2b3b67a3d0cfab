"""Attack run 3 (issue 27), part A: the trainer's import, outputs naming octviewer's own secrets, and
command arguments that ended in a traceback. Each test failed on the code before its fix."""

from __future__ import annotations

import os

import numpy as np
import pytest


def _zenodo(tmp_path):
    root = tmp_path / "zen"
    root.mkdir()
    cube = root / "POAG-001-2019-03-02-OD.npy"
    np.save(cube, np.zeros((4, 8, 8), np.uint8))
    np.save(root / "Normal-002-2019-03-02-OS.npy", np.zeros((4, 8, 8), np.uint8))
    return root, cube


# -- F1: import --out is checked like the other trainer outputs -----------------------------------------
def test_import_out_naming_an_imported_cube_is_refused_and_the_cube_kept(tmp_path, capsys):
    from trainer.cli import main

    root, cube = _zenodo(tmp_path)
    before = cube.read_bytes()
    assert main(["import", "zenodo-onh", str(root), "--out", str(cube)]) == 3
    assert cube.read_bytes() == before
    assert "names an input" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["link", "folder", "under_a_file", "proc"])
def test_import_out_that_cannot_be_written_is_one_line_exit_3(case, tmp_path, capsys):
    from trainer.cli import main

    root, _ = _zenodo(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("clinic notes")
    out = {"link": tmp_path / "link.csv", "folder": tmp_path, "under_a_file": notes / "x.csv",
           "proc": "/proc/x.csv"}[case]
    if case == "link":
        out.symlink_to(notes)
    assert main(["import", "zenodo-onh", str(root), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --out")
    assert notes.read_text() == "clinic notes"


def test_import_out_writes_the_manifest(tmp_path):
    from trainer.cli import main

    root, _ = _zenodo(tmp_path)
    assert main(["import", "zenodo-onh", str(root), "--out", str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") == 3


# -- F4, F5, F3: import harvard / zenodo-onh on hostile layouts ------------------------------------------
def _harvard(tmp_path, **fields):
    (tmp_path / "h" / "train").mkdir(parents=True)
    good = dict(oct_bscans=np.zeros((2, 8, 8), np.uint8), glaucoma=np.array(1), md=np.array(-1.5), pid=np.array("P1_1"))
    np.savez(tmp_path / "h" / "train" / "data_0001.npz", **good)
    np.savez(tmp_path / "h" / "train" / "data_0002.npz", **{**good, "pid": np.array("P2_1"), **fields})
    return tmp_path / "h"


def test_import_harvard_skips_a_fifo_without_opening_it(tmp_path, capsys):
    """It blocked in open() for good, and Ctrl-C/SIGTERM did not end it (attack run 3 F4)."""
    import subprocess
    import sys

    root = _harvard(tmp_path)
    os.mkfifo(root / "train" / "data_0003.npz")
    code = "import sys; from trainer.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["import", "harvard", str(root), "--out", str(tmp_path / "m.csv")]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "data_0003.npz" in done.stderr and "named pipe" in done.stderr
    assert (tmp_path / "m.csv").read_text().count("\n") == 3


@pytest.mark.parametrize("field, value", [("glaucoma", "abc"), ("md", "x"), ("glaucoma", np.nan), ("md", np.inf)])
def test_import_harvard_names_the_file_and_field_of_a_wrong_value(field, value, tmp_path, capsys):
    from trainer.cli import main

    root = _harvard(tmp_path, **{field: np.array(value)})
    assert main(["import", "harvard", str(root), "--out", str(tmp_path / "m.csv")]) == 0
    err = capsys.readouterr().err
    assert "data_0002.npz" in err and f"field '{field}'" in err and "Traceback" not in err
    assert (tmp_path / "m.csv").read_text().count("\n") == 2  # the good file is imported


def test_import_harvard_ends_on_a_stop_request(tmp_path):
    from trainer import stop
    from trainer.public import import_harvard

    root = _harvard(tmp_path)
    stop.request_stop()
    try:
        with pytest.raises(stop.Stopped):
            import_harvard(root)
    finally:
        stop.clear()


def test_import_zenodo_on_a_folder_nested_1100_deep_is_no_recursion_error(tmp_path):
    """rglob recursed once per level (Python 3.11): RecursionError, exit 1 (attack run 3 F3)."""
    from trainer.public import import_zenodo

    root, _ = _zenodo(tmp_path)
    path = str(root)
    for _ in range(1100):  # os.makedirs recurses too
        path = os.path.join(path, "d")
        os.mkdir(path)
    try:
        rows, problems = import_zenodo(root)
        assert len(rows) == 2 and any("nested" in p for p in problems)
    finally:  # removed here, deepest first: pytest's rmtree recurses too
        while path != str(root):
            os.rmdir(path)
            path = os.path.dirname(path)


# -- F13, F14: octviewer's own secrets are no output ------------------------------------------------------
def _secrets(tmp_path, monkeypatch):
    from octviewer.model.signing import workstation_key_path
    from octviewer.pacs.config import settings_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(tmp_path / "salt"))
    pinned = tmp_path / "config" / "octviewer" / "trusted_keys" / "clinic.pub"
    secrets = [tmp_path / "salt", workstation_key_path(), settings_path(), pinned]
    for path in secrets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"secret")
        path.chmod(0o600)
    scan = tmp_path / "scan.npy"
    np.save(scan, np.zeros((4, 16, 16), np.uint8))
    return scan, secrets


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("option", ["--out", "--key-file"])
def test_measure_refuses_to_write_over_a_secret(which, option, tmp_path, monkeypatch, capsys):
    """--out salt made the handed-out CSV the salt; --out the signing key destroyed it (attack run 3 F13, F14)."""
    from octviewer.pipeline import measure_cli

    scan, secrets = _secrets(tmp_path, monkeypatch)
    args = ["--out", str(secrets[which])] if option == "--out" else \
        ["--out", str(tmp_path / "r.csv"), "--key-file", str(secrets[which])]
    assert measure_cli.main([str(scan), "--no-store", *args]) == 3
    assert all(p.read_bytes() == b"secret" for p in secrets)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "refusing to overwrite" in err
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("which", range(4))
def test_trainer_outputs_refuse_to_write_over_a_secret(which, tmp_path, monkeypatch, capsys):
    from trainer.cli import main

    _, secrets = _secrets(tmp_path, monkeypatch)
    root, _ = _zenodo(tmp_path)
    assert main(["import", "zenodo-onh", str(root), "--out", str(secrets[which])]) == 3
    assert main(["evaluate", "--model", "m.safetensors", "--data", "m.csv", "--out", str(secrets[which])]) == 3
    assert all(p.read_bytes() == b"secret" for p in secrets)
    assert "refusing to overwrite" in capsys.readouterr().err


# -- F24: octviewer --screenshot PATH that cannot be written ------------------------------------------------
@pytest.mark.parametrize("case", ["folder", "under_a_file", "missing_folder", "link"])
def test_screenshot_path_that_cannot_be_written_is_refused_before_the_analysis(case, tmp_path, capsys):
    from octviewer.gui.app import main

    (tmp_path / "afile").write_text("x")
    shot = {"folder": tmp_path, "under_a_file": tmp_path / "afile" / "x.png",
            "missing_folder": tmp_path / "missing" / "x.png", "link": tmp_path / "link.png"}[case]
    if case == "link":
        shot.symlink_to(tmp_path / "afile")
    assert main(["--demo", "--screenshot", str(shot)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--screenshot" in err
    assert (tmp_path / "afile").read_text() == "x"


def test_screenshot_that_the_place_refuses_is_one_line_and_not_exit_0(tmp_path):
    """/proc/x.png: the analysis ran, nothing was saved, exit 0 without a word (attack run 3 F24)."""
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run([sys.executable, "-m", "octviewer", "--device", "cpu", "--screenshot", "/proc/x.png"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "--screenshot /proc/x.png: cannot be written" in result.stderr


# -- F7, F8, F10, F11, F12, F15, F20, F6, F26: command arguments that ended in a traceback ------------------
@pytest.mark.parametrize("case", ["file", "under_a_file", "proc"])
def test_synth_out_that_cannot_be_a_folder_is_one_line_exit_3(case, tmp_path, capsys):
    from octviewer.synth.cli import main

    (tmp_path / "afile").write_text("x")
    out = {"file": tmp_path / "afile", "under_a_file": tmp_path / "afile" / "sub", "proc": "/proc/c"}[case]
    assert main(["--out", str(out), "--patients", "1", "--preset", "tiny"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["octviewer-synth", "--out", "c", "--seed", "-1"],
                                  ["octviewer-train", "validate", "--data", "m.csv", "--seed", "-1"],
                                  ["octviewer-train", "fit", "--data", "m.csv", "--out", "r", "--seed", "-1"],
                                  ["octviewer-train", "fit", "--data", "m.csv", "--out", "r", "--split-seed", "-1"],
                                  ["octviewer-predict", "s.npy", "--out", "a.csv", "--cluster", "not a url"]])
def test_a_bad_seed_or_cluster_address_is_a_command_line_error(argv, tmp_path, monkeypatch, capsys):
    from octviewer.pipeline.predict_cli import main as predict
    from octviewer.synth.cli import main as synth
    from trainer.cli import main as train

    monkeypatch.chdir(tmp_path)
    run = {"octviewer-synth": synth, "octviewer-train": train, "octviewer-predict": predict}[argv[0]]
    with pytest.raises(SystemExit) as stopped:
        run(argv[1:])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "must be 0 or more" in err or "no scheduler address" in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "r").exists()


def test_a_seed_below_zero_in_a_config_file_is_exit_2(tmp_path, capsys):
    from trainer.cli import main

    (tmp_path / "c.yaml").write_text("seed: -1\n")
    assert main(["fit", "--data", "m.csv", "--out", str(tmp_path / "r"), "--config", str(tmp_path / "c.yaml")]) == 2
    assert "seed" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "measure"])
def test_an_empty_out_is_one_line_exit_3(command, tmp_path, capsys):
    """--out "$OUT" with OUT unset: "ValueError: PosixPath('.') has an empty name" (attack run 3 F10)."""
    from octviewer.pipeline import measure_cli, predict_cli

    scan = tmp_path / "s.npy"
    np.save(scan, np.zeros((4, 16, 16), np.uint8))
    main = {"predict": predict_cli.main, "measure": measure_cli.main}[command]
    assert main([str(scan), "--out", "", "--no-store"]) == 3
    err = capsys.readouterr().err
    assert "names no file" in err and err.count("\n") == 1


@pytest.mark.parametrize("case", ["file", "under_a_file", "proc", "fifo"])
def test_fit_out_that_cannot_be_a_run_folder_is_one_line_exit_3(case, tmp_path, capsys):
    from trainer.cli import main

    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    out = {"file": tmp_path / "afile", "under_a_file": tmp_path / "afile" / "sub", "proc": "/proc/run",
           "fifo": tmp_path / "fifo"}[case]
    assert main(["fit", "--data", str(tmp_path / "m.csv"), "--out", str(out), "--epochs", "1"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and err.count("\n") == 1


def test_device_meta_is_refused_as_a_command_line_error(tmp_path, capsys):
    """Every scan was "internal error (RuntimeError); please report it" (attack run 3 F12)."""
    from octviewer.model.predictor import select_device
    from octviewer.pipeline import predict_cli

    with pytest.raises(RuntimeError, match="none of auto, cpu"):
        select_device("meta")
    scan = tmp_path / "s.npy"
    np.save(scan, np.zeros((4, 16, 16), np.uint8))
    assert predict_cli.main([str(scan), "--out", str(tmp_path / "a.csv"), "--no-store", "--device", "meta"]) == 2
    assert "'meta' is none of" in capsys.readouterr().err


def test_sign_new_key_with_an_empty_name_and_sign_on_a_fifo_are_one_line(tmp_path, capsys):
    from octviewer.model.sign import main

    assert main(["new-key", ""]) == 2
    assert "names no file" in capsys.readouterr().out
    os.mkfifo(tmp_path / "fifo.safetensors")
    assert main(["new-key", str(tmp_path / "k.pem")]) == 0
    assert main(["sign", str(tmp_path / "fifo.safetensors"), "--key", str(tmp_path / "k.pem")]) == 2
    assert "named pipe (FIFO), not a model file" in capsys.readouterr().out


@pytest.mark.parametrize("field", ["timeout_s", "archive_port"])
def test_a_401_digit_number_in_the_pacs_settings_is_a_settings_error(field):
    from octviewer.pacs.config import PacsConfigError, PacsSettings

    with pytest.raises(PacsConfigError, match=r"between .*, got 1000000000") as refused:
        PacsSettings(**{field: 10 ** 400})
    assert len(str(refused.value)) < 120


@pytest.mark.parametrize("extra, code", [(["--out", "/proc/x.csv"], 3),
                                         (["--out", "r.csv", "--", "--model", "/nonexistent.safetensors"], 2)])
def test_pacs_screen_checks_out_and_model_before_asking_the_archive(extra, code, tmp_path, monkeypatch):
    """The patient's series were retrieved first, then the run failed (attack run 3 F26)."""
    from octviewer.pacs import cli

    def asked(*_args, **_kw):
        raise AssertionError("the archive was asked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "find_studies", asked)
    monkeypatch.setattr(cli, "retrieve", asked)
    assert cli.main(["screen", "--patient-id", "X", *extra]) == code


def test_the_pipelines_names_of_the_pacs_files_are_the_pacs_layers():
    """outputs.own_secrets names the PACS settings and outbox without importing the PACS layer (the import
    contract): the names must stay the ones that layer writes."""
    from octviewer.pacs import config, outbox
    from octviewer.pipeline import outputs

    assert outputs.PACS_SETTINGS_FILE == config.SETTINGS_FILE and outputs.PACS_OUTBOX_FILE == outbox.OUTBOX_FILE
    secrets = outputs.own_secrets()
    assert secrets["the PACS settings"] == config.settings_path()
    assert secrets["the PACS outbox"] == config.data_folder() / outbox.OUTBOX_FILE


@pytest.mark.parametrize("args, code, words", [
    (["--seed", "-1"], 2, "--seed must be 0 or more"),
    (["--preset", "nope"], 2, "invalid choice"),
    (["--out", "FILE"], 3, "is a file, not a folder"),
    (["--out", "FILE/sub"], 3, "cannot be made"),
])
def test_the_study_demo_refuses_bad_arguments_in_one_line(tmp_path, capsys, args, code, words):
    """`python -m octviewer.study.demo` gave tracebacks with exit 1 for these (attack run 3 F25)."""
    from octviewer.study.demo import main

    (tmp_path / "FILE").write_text("precious")
    args = [a.replace("FILE", str(tmp_path / "FILE")) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "study")]
    try:
        got = main(args + ["--patients", "1", "--visits", "1", "--preset", "tiny"] if "--preset" not in args
                   else args + ["--patients", "1", "--visits", "1"])
    except SystemExit as exc:  # argparse's own refusals
        got = exc.code
    assert got == code and words in capsys.readouterr().err
    assert (tmp_path / "FILE").read_text() == "precious" and not (tmp_path / "study").exists()
