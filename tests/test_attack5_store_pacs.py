"""Attack run 5 (session 13), results store, PACS, signing keys and settings: each test fails on the
code before its fix (F4, F5, F8, F10, F14, F15, F16, F22 in /tmp/attack5/LOG.md)."""

import os
import sqlite3
import time

import pytest

from octviewer.pipeline import store as store_mod
from octviewer.pipeline.store import ResultsStore, StoreError

# ---------------------------------------------------------------- F5: a locked store is not damaged

def test_locked_store_is_left_alone_not_moved_aside(tmp_path, monkeypatch):
    """Another process holding the store (BEGIN EXCLUSIVE) made the opener wait 30 s, call the live
    store 'damaged (database is locked)' and move it aside from under its owner."""
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        with pytest.raises(StoreError, match="in use by another program.*not remembered while it is"):
            ResultsStore(path)
        assert time.monotonic() - start < 10
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sorted(p.name for p in tmp_path.iterdir() if "damaged" in p.name) == []
    assert ResultsStore(path).notice == ""


def test_store_locked_mid_run_is_given_up_once(tmp_path, monkeypatch):
    """Locked after it was opened: the first write says so, the later ones do not wait again."""
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 0.5)
    path = tmp_path / "results.sqlite"
    store = ResultsStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store.put_study_headers("/x", {"a": {"kind": "oct"}})
        assert "in use by another program" in store.notice
        start = time.monotonic()
        for _ in range(5):
            store.put_study_headers("/x", {"a": {"kind": "oct"}})
            assert store.get("k") is None
        assert time.monotonic() - start < 0.3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()


def test_a_store_locked_once_is_tried_again_after_the_retry_period(tmp_path, monkeypatch):
    """A viewer keeps one store all day: one long lock (a batch run, a backup) turned remembered results off
    until it was restarted (review of F5)."""
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(store_mod, "BUSY_RETRY_S", 0.5)
    path = tmp_path / "results.sqlite"
    store = ResultsStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    store.put_study_headers("/x", {"a": {"kind": "oct"}})
    holder.execute("ROLLBACK")
    holder.close()
    assert store.study_headers("/x") == {}  # left alone: not asked while the period runs
    time.sleep(0.6)
    store.put_study_headers("/x", {"a": {"kind": "oct"}})
    assert store.study_headers("/x") == {"a": {"kind": "oct"}}
    store.close()


# ---------------------------------------------------------------- F4: backups are never overwritten

def test_move_aside_never_replaces_an_earlier_backup(tmp_path):
    path = tmp_path / "results.sqlite"
    now = time.time()
    planted = []
    for dt in (0, 1, 2):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now + dt))
        planted.append(tmp_path / f"results.sqlite.damaged-{stamp}")
        planted[-1].write_bytes(b"EARLIER backup")
    path.write_bytes(b"SQLite format 3\x00" + b"NOW damaged store " * 10)  # only SQLite is damaged (A7-23)
    store = ResultsStore(path)
    store.close()
    assert all(p.read_bytes() == b"EARLIER backup" for p in planted)
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("results.sqlite.damaged-") and p not in planted]
    assert len(moved) == 1 and moved[0].read_bytes()[16:].startswith(b"NOW damaged")
    assert moved[0].name in store.notice


# ---------------------------------------------------------------- F15: no store through a link

def test_store_path_that_is_a_link_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "data" / "results.sqlite"
    link.parent.mkdir()
    os.symlink(elsewhere / "created_here.db", link)
    with pytest.raises(StoreError, match="symbolic link"):
        ResultsStore(link)
    assert not (elsewhere / "created_here.db").exists()
    (elsewhere / "notes.txt").write_bytes(b"")
    link.unlink()
    os.symlink(elsewhere / "notes.txt", link)
    with pytest.raises(StoreError, match="symbolic link"):
        ResultsStore(link)
    assert (elsewhere / "notes.txt").read_bytes() == b""


# ---------------------------------------------------------------- F14: keys others may write are not trusted

@pytest.mark.parametrize("folder_mode, file_mode, trusted", [(0o777, 0o644, False), (0o755, 0o666, False),
                                                             (0o755, 0o664, False), (0o755, 0o644, True)])
def test_a_trusted_key_others_may_write_is_not_trusted(folder_mode, file_mode, trusted, tmp_path, monkeypatch,
                                                      caplog):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from octviewer.model import signing

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    shared = tmp_path / "shared_keys"
    shared.mkdir()
    public = Ed25519PrivateKey.generate().public_key()
    pub = shared / "Clinic research group.pub"
    pub.write_text(signing.public_key_text(public) + "\n")
    os.chmod(pub, file_mode)
    os.chmod(shared, folder_mode)
    monkeypatch.setenv("OCTVIEWER_TRUSTED_KEYS", str(shared))
    with caplog.at_level("WARNING"):
        keys = signing.trusted_keys()
    assert (signing.key_id(public) in keys) is trusted
    if not trusted:
        assert "other users may write" in caplog.text
        assert str(shared if folder_mode & 0o022 else pub) in caplog.text


# ---------------------------------------------------------------- F8: metadata keys given twice

def test_model_metadata_giving_a_key_twice_is_refused():
    from safetensors import safe_open

    from octviewer.model import ModelFileError
    from octviewer.model.meta import ModelMeta
    from octviewer.resources import RESOURCES

    with safe_open(str(RESOURCES / "models" / "demo_semt.safetensors"), "pt") as f:
        text = f.metadata()["octviewer"]
    assert ModelMeta.from_json(text) is not None
    twice = '{"threshold": 0.99, ' + text[1:]
    with pytest.raises(ModelFileError, match="gives 'threshold' twice"):
        ModelMeta.from_json(twice)


# ---------------------------------------------------------------- F16: archive/outbox text on stdout

HOSTILE = "OCT\x1b[2J\x1b]0;PWNED\x07\u202eTXET"


def _no_controls(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b" in text


def test_pacs_outbox_prints_no_terminal_controls(tmp_path, monkeypatch, capsys):
    from octviewer.pacs import cli
    from octviewer.pacs.outbox import Outbox

    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path))
    box = Outbox()
    db = sqlite3.connect(box.path)
    db.execute("INSERT INTO outbox (sop_instance_uid, kind, queued, attempts, last_error, data) VALUES (?,?,?,?,?,?)",
               ("1.2.3", HOSTILE, "2026-01-01T00:00:00\u202e", 1, "refused\x1b[1A\x1b[K", b"not dicom"))
    db.commit()
    db.close()
    assert cli.main(["outbox"]) == 0
    _no_controls(capsys.readouterr().out)


def test_pacs_find_prints_no_terminal_controls(tmp_path, monkeypatch, capsys):
    from types import SimpleNamespace

    from octviewer.pacs import cli

    hit = SimpleNamespace(patient_id="P1", patient_name="DOE^JOHN", study_date="2024-01-01", modalities=("OPT",),
                          description=HOSTILE, study_uid="1.2.3.4")
    series = SimpleNamespace(modality="OPT", laterality="", series_number=1, n_instances=1,
                             description="disc\x1b[31mRED", series_uid="1.2.3.4.5")
    monkeypatch.setattr(cli, "find_studies", lambda *a, **k: [hit])
    monkeypatch.setattr(cli, "find_series", lambda *a, **k: [series])
    assert cli.main(["--settings", str(tmp_path / "pacs.json"), "find", "--series", "--patient-id", "P1"]) == 0
    out = capsys.readouterr().out
    _no_controls(out)
    assert "\\x1b[31mRED" in out


# ---------------------------------------------------------------- F22: pacs.json as editors save it

def _good_settings(tmp_path):
    from octviewer.pacs.config import PacsSettings, save_settings

    path = tmp_path / "pacs.json"
    save_settings(PacsSettings(archive_ae="ARCH", archive_host="127.0.0.1", archive_port=11112), path)
    return path, path.read_text(encoding="utf-8")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le-bom"])
def test_pacs_settings_saved_with_a_bom_or_as_utf16_are_read(encoding, tmp_path):
    from octviewer.pacs.config import load_settings

    path, text = _good_settings(tmp_path)
    data = (b"\xff\xfe" + text.encode("utf-16-le")) if encoding == "utf-16-le-bom" else text.encode(encoding)
    path.write_bytes(data)
    assert load_settings(path).archive_ae == "ARCH"


def test_pacs_settings_problems_are_said_in_words_and_cut(tmp_path):
    import json

    from octviewer.pacs.config import PacsConfigError, load_settings

    path, text = _good_settings(tmp_path)
    path.write_bytes(b"\xe9\xff{}")
    with pytest.raises(PacsConfigError, match="not UTF-8 text") as info:
        load_settings(path)
    path.write_text('{"archive_ae": "A", ')
    with pytest.raises(PacsConfigError, match="not valid JSON .*line 1") as info:
        load_settings(path)
    assert "Error" not in str(info.value)
    d = json.loads(text)
    d["archive_ae"] = "A" * 60000
    path.write_text(json.dumps(d))
    with pytest.raises(PacsConfigError, match="60000 characters") as info:
        load_settings(path)
    assert len(str(info.value)) < 300


# ---------------------------------------------------------------- F10: a stored grey window that draws black

@pytest.mark.parametrize("stored", [["nan", "nan"], ["1e308", "-1e308"], ["-1e308", "1e308"], ["100", "100"],
                                    ["inf", "255"]])
def test_a_stored_grey_window_that_cannot_be_drawn_is_ignored(stored, caplog):
    from octviewer.gui.settings import WindowSettings

    settings = WindowSettings()
    device = f"attack5 device {'_'.join(stored)}"
    settings.set(settings.levels_key(device), stored)
    with caplog.at_level("WARNING"):
        assert settings.levels(device) == (0.0, 255.0)
    assert "grey window" in caplog.text
    settings.set(settings.levels_key(device), ["30", "200"])
    assert settings.levels(device) == (30.0, 200.0)


def test_archive_text_in_an_unknown_character_set_warns_nothing_on_stderr():
    """pydicom warned "Found unknown escape sequence ..." with its own path on stderr (F16)."""
    import subprocess
    import sys

    code = ("import octviewer.pacs.net\nfrom pydicom.charset import decode_bytes\n"
            "print(repr(decode_bytes(b'OCT\\x1b[2J', ['UTF8'], set())))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "OCT" in done.stdout
    assert done.stderr == ""


def test_clearing_a_store_another_process_holds_is_said(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "results.sqlite"
    store = ResultsStore(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="in use by another program.*not cleared"):
            store.clear()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        store.close()


def test_octviewer_pacs_reads_archive_headers_without_quoting_invalid_values():
    """The F9 fix (pydicom's reading validation off: it warned and logged an invalid UID quoted, e.g. made
    from a patient's name) lived in the reader, which octviewer-pacs never imported (review)."""
    import subprocess
    import sys

    code = ("import octviewer.pacs.cli, pydicom; "
            "assert pydicom.config.settings.reading_validation_mode == pydicom.config.IGNORE")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_trusted_key_permissions_are_checked_on_posix_only(tmp_path, monkeypatch):
    """Windows reports folders as 0o777 and has no os.getuid: the F14 check raised AttributeError on every
    model load there and would have refused every clinic key (review)."""
    import os

    from octviewer.model import signing

    folder = tmp_path / "keys"
    folder.mkdir()
    folder.chmod(0o777)
    st = os.stat(folder)
    assert signing._open_to_others(st)  # on this POSIX machine: refused, as F14 wants
    monkeypatch.setattr(signing.os, "name", "nt")
    monkeypatch.delattr(signing.os, "getuid")
    assert not signing._open_to_others(st)


def test_clear_store_that_fails_otherwise_is_one_line(monkeypatch, capsys):
    """A sqlite error other than a lock (a full disk, a read-only file) escaped --clear-store as a traceback."""
    import sqlite3

    from octviewer.pipeline import batch

    def fail(self):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(store_mod.ResultsStore, "clear", fail)
    assert batch.clear_store("octviewer-predict") == 3
    assert capsys.readouterr().err == ("octviewer-predict: the results store could not be cleared "
                                       "(database or disk is full)\n")
