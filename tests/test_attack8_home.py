"""Attack run 8 leftovers outside the trainer: one home folder for the whole program (A8-13)."""

import os
import pwd
from types import SimpleNamespace

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
