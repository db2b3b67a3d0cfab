"""Attack run 8 leftovers outside the trainer: one home folder for the whole program (A8-13)."""

import os
import pwd
from types import SimpleNamespace

import pytest

from octviewer.core.pseudonym import salt_path
from octviewer.gui.settings import WindowSettings, qsettings
from octviewer.model.signing import config_dir
from octviewer.pipeline.store import default_path


def test_without_home_every_setting_goes_to_the_password_databases_home(monkeypatch, tmp_path, qapp):
    """HOME unset: Qt alone wrote the window settings (recent scan paths) under /.config at the filesystem
    root while the salt and the results store went to the user's home from the password database."""
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "OCTVIEWER_DATA", "OCTVIEWER_PSEUDONYM_SALT"):
        monkeypatch.delenv(name, raising=False)
    real = pwd.getpwuid
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: SimpleNamespace(**{**{k: getattr(real(uid), k) for k in (
        "pw_name", "pw_uid", "pw_gid", "pw_shell")}, "pw_dir": str(tmp_path)}))
    config = tmp_path / ".config" / "octviewer"
    assert qsettings().fileName() == str(config / "octviewer.conf")
    assert salt_path() == config / "pseudonym.salt"
    assert config_dir() == config
    assert default_path() == tmp_path / ".local" / "share" / "octviewer" / "results.sqlite"
    settings = WindowSettings()
    settings.set("device", "cpu")
    settings.qsettings.sync()
    assert (config / "octviewer.conf").is_file()
    assert not os.path.exists("/.config/octviewer")


def test_xdg_config_home_still_decides(monkeypatch, tmp_path, qapp):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert qsettings().fileName() == str(tmp_path / "octviewer" / "octviewer.conf")


def test_pacs_send_names_a_pdf_that_is_not_one_before_the_analysis_and_exits_2(tmp_path, monkeypatch, capsys):
    """`send SCAN --pdf notes.txt` analysed the scan (9 s), then "the report is not a PDF file" without naming
    it, exit 1 (the archive's "try again" code); bad input is 2, as for the batch commands (A8-16)."""
    from octviewer.pacs import cli
    from octviewer.resources import DEMO_SCAN

    notes = tmp_path / "notes.txt"
    notes.write_text("secret notes\n")
    monkeypatch.setattr(cli, "_settings", lambda args: None)
    monkeypatch.setattr("octviewer.model.Predictor", lambda *a, **k: pytest.fail("analysed before the check"))
    assert cli.main(["send", str(DEMO_SCAN), "--pdf", str(notes)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"PACS: --pdf {notes}: not a PDF file (it does not begin with %PDF)"
    assert cli.main(["send", str(notes)]) == 2  # a scan that is no DICOM
    assert "notes.txt: the scan is not a DICOM file" in capsys.readouterr().err
    assert "exit status" in cli.parser().format_help()


@pytest.mark.parametrize("home, xdg", [("", None), ("relative/home", None), (None, "cfg")])
def test_an_empty_or_relative_home_or_xdg_is_not_a_place(home, xdg, monkeypatch, tmp_path):
    """HOME= (left empty by some service wrappers) put the settings, salt and results store under /, and a
    relative XDG_* under whichever folder the program was started in: one salt per folder (A9-2)."""
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "OCTVIEWER_DATA", "OCTVIEWER_PSEUDONYM_SALT"):
        monkeypatch.delenv(name, raising=False)
    if home is not None:
        monkeypatch.setenv("HOME", home)
    if xdg is not None:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    real = pwd.getpwuid
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: SimpleNamespace(**{**{k: getattr(real(uid), k) for k in (
        "pw_name", "pw_uid", "pw_gid", "pw_shell")}, "pw_dir": str(tmp_path)}))
    if xdg is not None:
        monkeypatch.setenv("HOME", str(tmp_path))
    assert salt_path() == tmp_path / ".config" / "octviewer" / "pseudonym.salt"
    assert default_path() == tmp_path / ".local" / "share" / "octviewer" / "results.sqlite"
