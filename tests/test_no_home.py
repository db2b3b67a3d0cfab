"""A user ID with no entry in the password database and HOME unset (a container run with ``--user``):
one line saying what to set, before any work, from every command that keeps a salt, keys or a store, and
the window (attack run 10, A10-18). The folders went under a relative ``~`` in the working folder."""

import os
import pwd
import subprocess
import sys

import pytest

from octviewer.core.files import NoHomeFolder, home_problem, user_folder

ENV = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "OCTVIEWER_DATA", "OCTVIEWER_PSEUDONYM_SALT")


@pytest.fixture
def nobody(monkeypatch, tmp_path):
    """HOME unset, this user ID unknown to the password database, the working folder empty."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)

    def unknown(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_folder_is_made_up(nobody):
    with pytest.raises(NoHomeFolder, match="set HOME"):
        user_folder("config")
    assert "XDG_CONFIG_HOME and XDG_DATA_HOME" in home_problem()


def test_absolute_xdg_folders_are_enough(nobody, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(nobody / "c"))
    assert home_problem() is not None  # the data folder still has no place
    monkeypatch.setenv("XDG_DATA_HOME", str(nobody / "d"))
    assert home_problem() is None
    assert user_folder("data") == nobody / "d" / "octviewer"


@pytest.mark.parametrize("command, status", [("predict", 3), ("measure", 3), ("pacs", 2)])
def test_the_batch_commands_refuse_in_one_line(nobody, capsys, command, status):
    from octviewer import cli

    assert getattr(cli, f"{command}_main")(["--out", "x.csv", "scan.dcm"]) == status
    err = capsys.readouterr().err
    assert err.startswith(f"octviewer-{command}: no home folder: ") and err.count("\n") == 1
    assert os.listdir(nobody) == []  # no "~" folder, no output


def test_the_trainer_refuses_in_one_line(nobody, capsys):
    from trainer.cli import main

    assert main(["fit", "--data", "m.csv", "--out", "run"]) == 2
    assert capsys.readouterr().err.startswith("octviewer-train: no home folder: ")
    assert os.listdir(nobody) == []


def test_the_window_says_so_in_a_dialog(nobody, monkeypatch, qapp, capsys):
    from PySide6.QtWidgets import QMessageBox

    from octviewer.gui import app

    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append((title, text)))
    monkeypatch.setattr("octviewer.gui.main_window.MainWindow", lambda *a, **k: pytest.fail("window opened"))
    assert app.main([]) == 2
    [(title, text)] = shown
    assert title == "OCT viewer cannot start" and text.startswith("No home folder: ") and "set HOME" in text
    assert os.listdir(nobody) == []


def test_as_a_process(tmp_path):
    """The installed command, with the password database's answer removed by a ``sitecustomize``."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import pwd\n\ndef _unknown(uid):\n    raise KeyError(uid)\n\npwd.getpwuid = _unknown\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ENV}
    env["PYTHONPATH"] = str(hook)
    out = subprocess.run([sys.executable, "-c", "import sys; from octviewer.cli import predict_main; "
                          "sys.exit(predict_main(['--out', 'r.csv', 'scan.dcm']))"],
                         capture_output=True, text=True, env=env, cwd=work, timeout=120)
    assert out.returncode == 3 and out.stderr.startswith("octviewer-predict: no home folder: "), out.stderr
    assert os.listdir(work) == []
