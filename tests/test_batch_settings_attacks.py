"""Settings and outputs of the batch commands under a hostile or failing file system (issue 27,
fresh attack run: H4 the pseudonym salt file, H5/M6 a full disk and over-long paths, H7 a read-only
HOME)."""

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
