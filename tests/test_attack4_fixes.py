"""Attack run 3's last two findings (F18, F27) and attack run 4's (issue 27). Each test failed on the code
before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest

ESCAPES = "\x1b]0;PWNED\x07\x1b[2J\x1b[31m"


# -- F18: file names holding terminal escape sequences never reach the terminal raw -----------------------
def test_measure_prints_an_escape_laden_file_name_escaped(tmp_path, capsys):
    from octviewer.pipeline.measure_cli import main

    evil = tmp_path / f"evil{ESCAPES}.dcm"
    evil.write_text("not a dicom")
    assert main([str(evil), "--out", str(tmp_path / "m.csv"), "--no-pseudonymise", "--no-store"]) == 1
    err = capsys.readouterr().err
    assert "evil" in err and "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;PWNED\\x07" in err  # shown, not hidden: the user can still tell which file it was


def test_printable_keeps_line_breaks_and_escapes_bidi_overrides():
    from octviewer.core.text import printable

    assert printable("plain name.dcm\n") == "plain name.dcm\n"
    assert printable("PAT\u202e1234\r\t") == "PAT\\u202e1234\r\t"
    assert printable("a\x9bb") == "a\\x9bb"  # the one-byte CSI of C1


def test_synth_prints_its_bad_argument_escaped(capsys):
    from octviewer.synth.cli import main

    with pytest.raises(SystemExit):
        main(["--out", "x", f"--bad{ESCAPES}"])
    err = capsys.readouterr().err
    assert "--bad" in err and "\x1b" not in err


# -- F27: our own .npz's device text and date are checked whole --------------------------------------------
@pytest.fixture(scope="module")
def own_npz(tmp_path_factory):
    from octviewer import load_volume, save_volume
    from octviewer.resources import DEMO_SAMPLES

    path = tmp_path_factory.mktemp("own") / "own.npz"
    save_volume(load_volume(sorted(DEMO_SAMPLES.glob("*.dcm"))[0]), path)
    with np.load(path) as z:
        return z["volume"], json.loads(str(z["meta_json"]))


@pytest.mark.parametrize("change, reason", [
    ({"device": "Dev\u202eice"}, "right-to-left override"),
    ({"device": "Dev\nice"}, "control character"),
    ({"device": "D" * 100_000}, "100000 characters"),
    ({"acquired": "2020-01-01T25:61:00"}, "not an ISO date"),
    ({"acquired": "1900-01-01"}, "before 1991"),  # a date after today: unknown with a note (attack run 5, F18)
])
def test_own_npz_with_edited_device_or_date_is_refused_naming_the_field(own_npz, tmp_path, change, reason):
    from octviewer import VolumeReadError, load_volume

    volume, meta = own_npz
    path = tmp_path / "edited.npz"
    np.savez(path, volume=volume, meta_json=np.array(json.dumps({**meta, **change})))
    with pytest.raises(VolumeReadError, match=reason) as info:
        load_volume(path)
    assert "edited.npz" in str(info.value)


def test_own_npz_round_trip_keeps_a_date_time(own_npz, tmp_path):
    from octviewer import load_volume

    volume, meta = own_npz
    path = tmp_path / "timed.npz"
    np.savez(path, volume=volume, meta_json=np.array(json.dumps({**meta, "acquired": "2021-05-06T09:30:00"})))
    assert load_volume(path).acquired.isoformat() == "2021-05-06"


def test_a_skipped_special_file_in_a_folder_is_a_row_not_a_crash(tmp_path, capsys):
    """The pseudonymised reason of a file passed over in a folder (a FIFO named .dcm) named a variable the
    loop did not define: every batch with a skipped file ended in a NameError (review of attack run 4's F15)."""
    import csv
    import os

    from octviewer.pipeline.measure_cli import main

    folder = tmp_path / "study"
    folder.mkdir()
    os.mkfifo(folder / "pipe.dcm")
    out = tmp_path / "m.csv"
    assert main([str(folder), "--out", str(out), "--no-store"]) == 1
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 1 and "FIFO" in rows[0]["quality"] and "pipe" not in rows[0]["quality"]
    assert "Traceback" not in capsys.readouterr().err


def test_companion_names_are_hidden_but_plain_words_kept(tmp_path):
    """A sibling folder 'DICOM' turned 'the DICOM header' into 'the a companion file header' (review)."""
    from octviewer.pipeline.batch import hide_file_names

    (tmp_path / "DICOM").mkdir()
    (tmp_path / "Doe_John_1950.txt").write_text("")
    scan = tmp_path / "scan.oct"
    text = hide_file_names("the DICOM header declares 496 x 512; see Doe_John_1950.txt", scan)
    assert text == "the DICOM header declares 496 x 512; see a companion file"


def test_a_scanner_name_with_an_invisible_character_is_dropped_with_a_note_not_the_scan():
    """A cosmetic field refused a whole scan; its patient ID is only dropped (review). Our own .npz still
    refuses an edited device name (above)."""
    from octviewer import load_volume
    from octviewer.io.loading import validate_volume
    from octviewer.resources import DEMO_SCAN

    volume = load_volume(DEMO_SCAN).replace(device="Dev\u202eice")
    shown = validate_volume(DEMO_SCAN, volume)
    assert shown.device == "" and any("U+202E" in n for n in shown.notes)


def test_a_bytes_path_holding_a_nul_is_said_so():
    from octviewer import VolumeReadError
    from octviewer.io.limits import require_readable

    with pytest.raises(VolumeReadError, match="NUL"):
        require_readable(b"scan\x00.dcm")
