"""Attack run 10 (H57): the batch commands' outputs, study.demo's --out, octviewer-pacs and stopping."""

import csv
import os
import signal
import sys
import time
import types

import pytest

from octviewer.study import demo


def _write_demo_vf(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=demo._VF_COLUMNS)
        writer.writeheader()
        writer.writerows({"patient_id": pid, "eye": "OD", "date": "2020-01-01", "vfi": "90", "md": "-3",
                          "psd": "2"} for pid in rows)


def test_demo_keeps_a_clinics_visual_fields_csv(tmp_path, capsys, monkeypatch):
    """A10-12: a clinic's visual_fields.csv was taken as an earlier demo's by its name and replaced."""
    clinic = tmp_path / "clinic"
    clinic.mkdir()
    before = "patient_id,eye,date,vfi,md\nREAL-123,OD,2020-01-01,90,-3.5\n"
    (clinic / "visual_fields.csv").write_text(before)
    monkeypatch.setattr(demo, "write_demo_study", lambda *a: (_ for _ in ()).throw(AssertionError("wrote")))
    assert demo.main(["--out", str(clinic), "--patients", "2", "--visits", "1"]) == 3
    assert "visual_fields.csv was not written by the demo" in capsys.readouterr().err
    assert (clinic / "visual_fields.csv").read_text() == before
    # the demo's own header with a real patient among DEMO rows: still not ours
    _write_demo_vf(clinic / "visual_fields.csv", ["DEMO00-001", "REAL-123"])
    assert demo.not_ours(clinic)
    # an earlier demo's table is ours, to write again
    _write_demo_vf(clinic / "visual_fields.csv", ["DEMO00-001", "DEMO00-003"])
    assert demo.not_ours(clinic) == ""


@pytest.mark.parametrize("argv", [
    ["find", "--patient-id", "NOSUCH\\PACS-DEMO-001"],
    ["find", "--name", "NOSUCH\\DOE"],
    ["find", "--patient-id", "X" * 80],
    ["find", "--patient-id", "P1", "--modality", "OPT\\SR"],
    ["find", "--patient-id", "P1", "--modality", "VERYLONGMODALITYNAME"],
    ["screen", "--patient-id", "NOSUCH\\PACS-DEMO-001", "--out", "r.csv"],
    ["screen", "--patient-id", "*", "--out", "r.csv"],
    ["screen", "--patient-id", "PACS?DEMO?001", "--out", "r.csv"],
])
def test_pacs_refuses_a_search_that_matches_other_patients(tmp_path, capsys, monkeypatch, argv):
    """A10-2: '\\' (DICOM's value separator) matched either part; '*' screened every patient; values
    longer than DICOM allows found nothing without a word. Refused before the archive is asked."""
    from octviewer.pacs import cli, net

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(net, "_find", lambda *a: pytest.fail("the archive was asked"))
    settings = tmp_path / "pacs.json"
    assert cli.main(["--settings", str(settings), "configure", "--archive-ae", "ORTHANC", "--host", "127.0.0.1",
                     "--port", "4242", "--local-ae", "OCTVIEWER"]) == 0
    capsys.readouterr()
    assert cli.main(["--settings", str(settings), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("PACS: ") and "PACS-DEMO-001" not in err
    assert not (tmp_path / "r.csv").exists()


class _LoadingModule(types.ModuleType):
    """A command module whose loading is stopped: by Ctrl-C, or by SIGTERM sent to this process."""

    def __init__(self, name, how):
        super().__init__(name)
        self.how = how

    def __getattr__(self, attr):
        if attr != "main":
            raise AttributeError(attr)
        if self.how == "int":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        pytest.fail("SIGTERM was not taken")


@pytest.mark.parametrize("how", ["int", "term"])
@pytest.mark.parametrize("command", ["predict", "measure", "pacs", "synth"])
def test_a_stop_while_the_command_loads_is_one_line(capsys, monkeypatch, command, how):
    """A10-1 (A10-16 for octviewer-pacs): the stop handlers came with the command's main, after ~0.8 s of
    imports: Ctrl-C then was a traceback, SIGTERM a silent kill (143). The entry point installs them
    before it loads the command."""
    from octviewer import cli

    name = {"pacs": "octviewer.pacs.cli", "synth": "octviewer.synth.cli"}.get(command,
                                                                          f"octviewer.pipeline.{command}_cli")
    monkeypatch.setitem(sys.modules, name, _LoadingModule(name, how))

    def not_taken(signum, frame):
        raise RuntimeError("SIGTERM reached the default handler: a silent kill")

    before = signal.signal(signal.SIGTERM, not_taken)
    try:
        assert getattr(cli, f"{command}_main")([]) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while the command loaded was a traceback")
    finally:
        assert signal.signal(signal.SIGTERM, before) is not_taken
    hint = "run it again" if command in ("pacs", "synth") else "run again with --resume to continue"
    assert capsys.readouterr().err == f"octviewer-{command}: stopped; {hint}\n"


@pytest.mark.parametrize("how", ["int", "term"])
def test_pacs_screen_stopped_while_it_retrieves_is_one_line(tmp_path, capsys, monkeypatch, how):
    """A10-16: octviewer-pacs screen stopped before octviewer-predict's loop (the search, the retrieve, the
    model's loading) was a KeyboardInterrupt traceback (Ctrl-C) or a silent kill, exit 143 (SIGTERM)."""
    from octviewer.pacs import cli

    def stopped(*args, **kwargs):
        if how == "int":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        pytest.fail("SIGTERM was not taken")

    def not_taken(signum, frame):
        raise RuntimeError("SIGTERM reached the default handler: a silent kill")

    monkeypatch.setattr(cli, "find_studies", stopped)
    settings = tmp_path / "pacs.json"
    assert cli.main(["--settings", str(settings), "configure", "--archive-ae", "ORTHANC", "--host", "127.0.0.1",
                     "--port", "4242", "--local-ae", "OCTVIEWER"]) == 0
    capsys.readouterr()
    before = signal.signal(signal.SIGTERM, not_taken)
    try:
        assert cli.main(["--settings", str(settings), "screen", "--patient-id", "P1",
                         "--out", str(tmp_path / "r.csv")]) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C was a traceback")
    finally:
        assert signal.signal(signal.SIGTERM, before) is not_taken
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("octviewer-pacs screen: stopped; run it again")


@pytest.mark.parametrize("what", ["file", "link", "inner-link"])
def test_demo_refuses_a_scans_entry_that_is_a_file_or_a_link(tmp_path, capsys, monkeypatch, what):
    """A10-13: 'scans' a file was a NotADirectoryError traceback; 'scans' (or a DEMO patient's folder in it)
    a link had the SYNTHETIC scans written into the link's target, outside --out."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    if what == "file":
        (out / "scans").write_text("data")
    elif what == "link":
        (out / "scans").symlink_to(elsewhere)
    else:
        (out / "scans").mkdir()
        (out / "scans" / "DEMO00-000").symlink_to(elsewhere)
    monkeypatch.setattr(demo, "write_demo_study", lambda *a: pytest.fail("the demo was written"))
    assert demo.main(["--out", str(out), "--patients", "1", "--visits", "1"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --out ") and "scans" in err[0]


@pytest.mark.parametrize("command", ["predict", "measure"])
def test_out_naming_a_users_list_of_scans_is_refused(tmp_path, capsys, command):
    """A10-14: a CSV whose only column is 'file' (a list of scans) passed as the command's own results and
    was replaced: a column every version wrote ('probability', 'quality') is required."""
    from octviewer.pipeline import measure_cli, predict_cli
    from octviewer.resources import DEMO_SCAN

    listed = tmp_path / "filelist.csv"
    before = "file\n/data/clinic/a_OD.dcm\n/data/clinic/a_OS.dcm\n"
    listed.write_text(before)
    main = predict_cli.main if command == "predict" else measure_cli.main
    assert main([str(DEMO_SCAN), "--out", str(listed), "--no-store"]) == 3
    assert "is not a results CSV of this command" in capsys.readouterr().err
    assert listed.read_text() == before
