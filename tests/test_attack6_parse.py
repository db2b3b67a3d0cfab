"""Attack run 6, parsing findings (A6-4, A6-5, A6-12, A6-13, A6-15, A6-16, A6-18): each refused or read
in one line, before any work."""

from __future__ import annotations

import pytest

BIG = "9" * 5000  # beyond Python's int-from-text limit (4300 digits)


def _fit(tmp_path, *flags):
    """``fit`` with a manifest that does not exist: an option refused before any work never reaches it."""
    pytest.importorskip("torch")
    from trainer.cli import main

    return main(["fit", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "run"), *flags])


# -- A6-13: a 5000-digit number in --config is one line naming the file and the option, exit 2 ------------
def test_a_config_number_of_5000_digits_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text(f"epochs: {BIG}\n")
    assert _fit(tmp_path, "--config", str(tmp_path / "c.yaml")) == 2
    err = capsys.readouterr().err
    assert "c.yaml" in err and "'epochs'" in err and "too long" in err and err.count("\n") == 1, err
    assert BIG[:100] not in err and not (tmp_path / "run").exists()


def test_a_config_number_of_5000_digits_in_a_list_names_its_option(tmp_path):
    from trainer.config import ConfigFileError, read_config_file

    (tmp_path / "c.yaml").write_text(f"alpha_grid: [1.0, {BIG}]\n")
    with pytest.raises(ConfigFileError, match="'alpha_grid' is a number too long"):
        read_config_file(tmp_path / "c.yaml")


# -- A6-4: a key given twice is refused, not "last wins" ----------------------------------------------------
def test_a_config_giving_an_option_twice_is_refused(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("epochs: 1\nlr: 0.01\nepochs: 50000\n")
    assert _fit(tmp_path, "--config", str(tmp_path / "c.yaml")) == 2
    err = capsys.readouterr().err
    assert "c.yaml gives 'epochs' twice" in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_a_config_giving_a_nested_key_twice_is_refused(tmp_path):
    from trainer.config import ConfigFileError, read_config_file

    (tmp_path / "c.yaml").write_text("alpha: {md: 1, md: 2}\n")
    with pytest.raises(ConfigFileError, match="gives 'md' twice"):
        read_config_file(tmp_path / "c.yaml")


# -- A6-5: a --config saved as UTF-16 with its BOM (Notepad's "Unicode") is read, as pacs.json is ----------
@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_config_saved_with_a_bom_or_as_utf16_is_read(tmp_path, encoding):
    from trainer.config import read_config_file

    (tmp_path / "c.yaml").write_bytes("epochs: 3\nlr: 0.01\n".encode(encoding))
    assert read_config_file(tmp_path / "c.yaml") == {"epochs": 3, "lr": 0.01}


def test_a_config_that_is_no_text_is_refused_in_words(tmp_path):
    from trainer.config import ConfigFileError, read_config_file

    (tmp_path / "c.yaml").write_bytes(b"epochs: \xe9\xff\n")
    with pytest.raises(ConfigFileError, match="not UTF-8 text") as info:
        read_config_file(tmp_path / "c.yaml")
    assert "Error" not in str(info.value)


# -- A6-12: pacs.json with a 5000-digit number is the F22 message, exit 2 -----------------------------------
def test_pacs_settings_with_a_5000_digit_number_are_refused_in_words(tmp_path, monkeypatch, capsys):
    from octviewer.pacs.cli import main
    from octviewer.pacs.config import PacsConfigError, load_settings

    path = tmp_path / "pacs.json"
    path.write_text(f'{{"archive_port": {BIG}}}')
    path.chmod(0o600)
    with pytest.raises(PacsConfigError, match="pacs.json: not readable as PACS settings"):
        load_settings(path)
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path))
    assert main(["echo"]) == 2
    err = capsys.readouterr().err
    assert "not readable as PACS settings" in err and "Traceback" not in err and BIG[:100] not in err


# -- A6-15: a UID from the archive is checked whole (no trailing newline) and at most 64 characters -------
@pytest.mark.parametrize("uid", ["1.2.3\n", "1" * 65])
def test_a_uid_with_a_trailing_newline_or_over_64_characters_names_no_folder(tmp_path, monkeypatch, uid):
    from octviewer.pacs.net import PacsError, retrieved_folder

    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path))
    with pytest.raises(PacsError, match="not a DICOM UID"):
        retrieved_folder(uid, "4.5")
    with pytest.raises(PacsError, match="not a DICOM UID"):
        retrieved_folder("4.5", uid)


def test_the_one_uid_check_used_for_received_files_too():
    from octviewer.pacs.net import is_uid

    assert [is_uid(u) for u in ("1.2.3\n", "1" * 65, "1.2.3 ", "1..2", "", None, "1.2.840.10008")] == [
        False, False, False, False, False, False, True]


def test_a_uid_of_64_characters_is_one(tmp_path, monkeypatch):
    from octviewer.pacs.net import retrieved_folder

    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path))
    uid = "1." + "2" * 62
    assert retrieved_folder(uid, "4.5").parts[-2:] == (uid, "4.5")


# -- A6-16: import harvard applies validate's patient_id check to pid, and a range to age -----------------
def test_import_harvard_leaves_out_a_hidden_character_pid_and_an_impossible_age(tmp_path):
    import numpy as np

    from trainer.public import import_harvard

    (tmp_path / "train").mkdir()

    def npz(name, **fields):
        np.savez(tmp_path / "train" / name, oct_bscans=np.zeros((4, 8, 8), np.uint8), glaucoma=np.array(1),
                 md=np.array(-3.0), **{k: np.array(v) for k, v in fields.items()})

    npz("data_00001.npz", pid="P\u202e123\x1b[2J_1")
    npz("data_00002.npz", pid="P2", age=1e308)
    npz("data_00003.npz", pid="P3", age=-5)
    npz("data_00004.npz", pid="P4", age=float("nan"))
    npz("data_00005.npz", pid="P5", race="x\x1b]0;t\x07")
    npz("data_00006.npz", pid="P6_2", age=61.5, race="white")
    rows, notes = import_harvard(tmp_path)
    assert [r["patient_id"] for r in rows] == ["P6"] and rows[0]["age"] == 61.5
    assert len(notes) == 5 and all("this file was left out" in n for n in notes), notes
    assert "data_00001.npz: field 'pid' holds the invisible character U+202E" in notes[0]
    assert all(f"data_0000{i}.npz: field 'age' is not an age" in notes[i - 1] for i in (2, 3, 4))
    assert "data_00005.npz: field 'race' holds the control character" in notes[4]
    assert not any("\x1b" in n or "\u202e" in n or "1e+308" in n for n in notes)  # the values are not quoted


# -- A6-18: fit --cache-dir that is a file is refused with the other options, before any work, exit 3 -----
@pytest.mark.parametrize("kind", ["file", "device"])
def test_fit_with_a_cache_dir_that_is_no_folder_is_one_line_exit_3(tmp_path, capsys, kind):
    cache = tmp_path / "afile" if kind == "file" else "/dev/null"
    (tmp_path / "afile").write_text("x\n")
    assert _fit(tmp_path, "--cache-dir", str(cache)) == 3
    err = capsys.readouterr().err
    what = "a file" if kind == "file" else "a character device"
    assert err == f"error: --cache-dir {cache}: is {what}, not a folder; give a folder's name\n", err
    assert (tmp_path / "afile").read_text() == "x\n"
