"""Settings and outputs of the batch commands under a hostile or failing file system (issue 27,
fresh attack run: H4 the pseudonym salt file, H5/M6 a full disk and over-long paths, H7 a read-only
HOME)."""

import csv
import os
import stat

import pytest

from octviewer.pipeline.outputs import EXIT_OUTPUT


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=3)
    return sorted((study / "scans").rglob("*.dcm"))[:2]


def _measure(argv):
    from octviewer.pipeline import measure_cli

    return measure_cli.main(["--no-store", *map(str, argv)])


@pytest.mark.parametrize("kind, words", [("fifo", "named pipe"), ("zero", "character device"), ("dir", "a folder"),
                                         ("link", "symbolic link")])
def test_a_salt_file_that_is_no_small_file_is_one_line_and_exit_3(kind, words, scans, tmp_path, monkeypatch, capsys):
    """A FIFO as the salt file hung every batch command, a link to /dev/zero read until memory ran out,
    a folder was a raw IsADirectoryError, and a link to a short file had that file overwritten."""
    salt = tmp_path / "p.salt"
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"short\n")
    {"fifo": lambda: os.mkfifo(salt), "zero": lambda: salt.symlink_to("/dev/zero"), "dir": salt.mkdir,
     "link": lambda: salt.symlink_to(victim)}[kind]()
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(salt))
    out = tmp_path / "m.csv"
    assert _measure([scans[0], "--out", out]) == EXIT_OUTPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(salt) in err[0] and words in err[0] and "Traceback" not in err[0]
    assert victim.read_bytes() == b"short\n" and not out.exists()


def test_an_existing_salt_is_narrowed_to_owner_only_and_kept(tmp_path, monkeypatch):
    from octviewer.core.pseudonym import install_salt

    salt = tmp_path / "p.salt"
    salt.write_bytes(b"s" * 32)
    salt.chmod(0o644)
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(salt))
    assert install_salt() == b"s" * 32
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    salt.unlink()
    made = install_salt()  # a new one: 32 random bytes, owner-only
    assert len(made) == 32 and salt.read_bytes() == made and stat.S_IMODE(salt.stat().st_mode) == 0o600


_CUT_RUN = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as a full disk with ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from octviewer.pipeline import {module}
sys.exit({module}.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("module", ["measure_cli", "predict_cli"])
def test_a_journal_write_that_fails_midway_is_one_line_exit_3_and_resumable(module, scans, tmp_path):
    """A full disk at --out ended in a raw OSError traceback, exit 1 ("some scans failed"), the
    journal cut mid-row. Now: one line naming the journal and the reason, exit 3, and --resume
    (with room again) drops the cut row and finishes."""
    extra = ["--no-store"]
    if module == "predict_cli":
        from test_pipeline import tiny_model

        extra += ["--model", str(tiny_model(tmp_path / "model")), "--device", "cpu"]
    out = tmp_path / "r.csv"
    argv = [*map(str, scans), "--out", str(out), *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.path.dirname(__file__),
                                                                        os.environ.get("PYTHONPATH")]))}
    from octviewer.pipeline import measure_cli, predict_cli

    main, columns = {"measure_cli": (measure_cli.main, measure_cli._columns()),
                     "predict_cli": (predict_cli.main, predict_cli.COLUMNS)}[module]
    header = len(",".join(columns)) + 2
    code = _cut_run(module, header + 300, argv, env)
    assert code.returncode == EXIT_OUTPUT, code.stderr[-2000:]
    lines = [line for line in code.stderr.splitlines() if "Traceback" in line or "r.csv.partial" in line]
    assert len(lines) == 1 and "cannot be written: File too large" in lines[0] and "--resume" in lines[0]
    journal = out.with_name("r.csv.partial")
    assert journal.exists() and not journal.read_text().endswith("\n") and not out.exists()
    assert main([*argv, "--resume"]) in (0, 1)
    with open(out, newline="") as f:
        assert len(list(csv.DictReader(f))) == len(scans)


def _cut_run(module, limit, argv, env):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", _CUT_RUN.format(limit=limit, module=module), *argv],
                          capture_output=True, text=True, env=env, timeout=240)


def test_a_path_longer_than_path_max_is_a_listed_failure_as_input_and_exit_3_as_out(scans, tmp_path, capsys):
    """An input or --out path over PATH_MAX raised a raw ENAMETOOLONG from ``outputs.expand``."""
    long = tmp_path.joinpath(*["x" * 250] * 18, "a.dcm")
    out = tmp_path / "lp.csv"
    assert _measure([long, "--out", out]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "could not read" in err
    assert _measure([scans[0], "--out", long]) == EXIT_OUTPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too long" in err[0] and len(err[0]) < 400


@pytest.fixture
def unwritable_home(tmp_path, monkeypatch):
    """HOME where no folder can be made (a file stands there; a read-only mount does the same), with
    OCTVIEWER_DATA and the XDG folders unset, as on a locked-down clinic workstation."""
    home = tmp_path / "home"
    home.write_text("not a folder")
    for name in ("OCTVIEWER_DATA", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "OCTVIEWER_PSEUDONYM_SALT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.mark.parametrize("command", [["outbox"], ["configure", "--host", "pacs.example"]])
def test_pacs_names_the_data_folder_it_cannot_make(command, unwritable_home, capsys):
    """``octviewer-pacs outbox`` / ``configure`` with a HOME that cannot hold the data folder ended in a
    raw OSError (exit 1); now one line naming the folder, the settings-error exit status."""
    from octviewer.pacs.cli import EXIT_USAGE, main

    assert main(command) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not writable" in err[0] and str(unwritable_home / ".local" / "share") in err[0]


def test_measure_with_an_unwritable_home_skips_the_store_and_names_the_salt(scans, unwritable_home, tmp_path,
                                                                            capsys):
    """The store is passed over with a note and the scans are measured; the salt that cannot be made is
    one line naming it (it was a raw OSError), since pseudonyms need a salt that outlives the run."""
    from octviewer.pipeline import measure_cli

    out = tmp_path / "m.csv"
    assert measure_cli.main([str(scans[0]), "--out", str(out)]) == EXIT_OUTPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pseudonym salt file" in err[0] and "--no-pseudonymise" in err[0]
    assert measure_cli.main([str(scans[0]), "--out", str(out), "--no-pseudonymise"]) in (0, 1)
    assert "results store not used" in capsys.readouterr().err and out.exists()


def test_no_pseudonymise_with_cams_of_one_stem_names_a_bad_salt_in_one_line(scans, tmp_path, monkeypatch, capsys):
    """--no-pseudonymise reads the salt only to tell apart two CAMs of one file stem; a FIFO there is the
    same one line and exit 3, not a raw traceback midway through the run."""
    import shutil

    from test_pipeline import tiny_model

    from octviewer.pipeline import predict_cli

    twins = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        twins.append(shutil.copy(scans[0], tmp_path / folder / "scan.dcm"))
    salt = tmp_path / "p.salt"
    os.mkfifo(salt)
    monkeypatch.setenv("OCTVIEWER_PSEUDONYM_SALT", str(salt))
    argv = [*map(str, twins), "--out", str(tmp_path / "p.csv"), "--cam-out", str(tmp_path / "cams"),
            "--no-pseudonymise", "--no-store", "--model", str(tiny_model(tmp_path / "m")), "--device", "cpu"]
    assert predict_cli.main(argv) == EXIT_OUTPUT
    err = [line for line in capsys.readouterr().err.splitlines() if "salt" in line or "Traceback" in line]
    assert len(err) == 1 and "named pipe" in err[0]
