"""The configuration folder (salt, signing keys) is made owner-only by whichever part of the program makes it
first (Qt makes its own settings folder 0700 already), as the data folder is (attack run 11, A11-1's note: it was
mkdir's default, 0755 under umask 022, so other users of the workstation could list it)."""

import os
import stat

import pytest


@pytest.fixture
def fresh_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("OCTVIEWER_PSEUDONYM_SALT", raising=False)
    old = os.umask(0o022)
    yield tmp_path / "cfg"
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_salt_makes_the_folders_owner_only(fresh_config):
    from octviewer.core.pseudonym import install_salt

    install_salt()
    assert _mode(fresh_config) == 0o700 and _mode(fresh_config / "octviewer") == 0o700
    assert _mode(fresh_config / "octviewer" / "pseudonym.salt") == 0o600


def test_a_signing_key_makes_the_folders_owner_only(fresh_config):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from octviewer.model.signing import config_dir, write_private_key

    key = config_dir() / "keys" / "workstation.pem"
    write_private_key(key, Ed25519PrivateKey.generate())
    assert {_mode(p) for p in (fresh_config, fresh_config / "octviewer", key.parent)} == {0o700}

