"""Attack run 11 (H62), octviewer-pacs: who may read a retrieved study (A11-1), send given a FIFO (A11-5) or a
deflate bomb (A11-6), a retrieve onto an earlier series folder that is a link or a file (A11-8), and TLS files
that are no file, and settings that configure could not repair (A11-12)."""

import os
import stat
import subprocess
import sys

import orthanc_server
import pytest
from orthanc_server import DEMO_PATIENT, MANY_PATIENT

from octviewer.pacs.cli import main

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    """A workstation's usual umask, under which a folder made with the default mode is world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _configure(orthanc, *extra) -> list[str]:
    return ["configure", "--archive-ae", "ORTHANC", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
            "--local-ae", "OCTVIEWER", *extra]


def test_a_retrieved_study_is_owner_only_whichever_command_made_the_data_folder(orthanc, data_dir, umask_022,
                                                                                 capsys):
    """A11-1: configure made the data folder 0755 (mkdir's default mode) and the retrieve wrote the patient's
    instances 0644 in 0755 folders: another user of the workstation read the name, ID and birth date."""
    assert main(_configure(orthanc)) == 0  # PACS set up before any analysis: configure makes the data folder
    assert _mode(data_dir) == 0o700 and _mode(data_dir / "pacs.json") == 0o600
    demo = orthanc.studies[DEMO_PATIENT]
    assert main(["retrieve", demo["study"], demo["series"]["OPT"]]) == 0
    study = data_dir / "pacs" / demo["study"]
    series = study / demo["series"]["OPT"]  # the .part folder renamed: its mode is the .part's
    files = list(series.iterdir())
    assert files and {_mode(p) for p in files} == {0o600}
    assert {_mode(p) for p in (data_dir / "pacs", study, series)} == {0o700}


def test_an_earlier_versions_open_study_folders_are_tightened_by_the_next_retrieve(orthanc, data_dir, umask_022,
                                                                                     tmp_path, capsys):
    """A11-1: pacs/ and pacs/<study>/ left 0755 by an earlier version are octviewer's own: made 0700."""
    many = orthanc.studies[MANY_PATIENT]
    study = data_dir / "pacs" / many["study"]
    study.mkdir(parents=True)
    for folder in (data_dir / "pacs", study):
        os.chmod(folder, 0o755)
    settings = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*settings, *_configure(orthanc)]) == 0
    assert main([*settings, "retrieve", many["study"], many["series"]["OPT"]]) == 0
    assert {_mode(p) for p in (data_dir / "pacs", study, study / many["series"]["OPT"])} == {0o700}


def test_the_outbox_and_the_store_make_every_missing_level_of_the_data_folder_owner_only(tmp_path, monkeypatch,
                                                                                         umask_022, capsys):
    """A11-1: the store made only its own folder 0700 (mkdir's mode is not given to the parents it makes),
    and the outbox made the data folder with the default mode."""
    from octviewer.pipeline.store import ResultsStore

    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "new" / "data"))
    assert main(["outbox"]) == 0
    assert _mode(tmp_path / "new") == 0o700 and _mode(tmp_path / "new" / "data") == 0o700
    store = ResultsStore(tmp_path / "other" / "data" / "results.sqlite")
    store.clear()
    assert _mode(tmp_path / "other") == 0o700 and _mode(tmp_path / "other" / "data") == 0o700


@pytest.mark.parametrize("earlier", ["link", "file"])
def test_a_retrieve_onto_a_series_folder_that_is_a_link_or_a_file_replaces_it_without_following(
        orthanc, data_dir, tmp_path, capsys, earlier):
    """A11-8: the earlier copy moved to another disk and linked back ended the next retrieve in "OSError: Cannot
    call rmtree on a symbolic link", exit 2, the new copy left in <series>.part. The link is replaced by the new
    copy; the folder it pointed to is left as it was."""
    many = orthanc.studies[MANY_PATIENT]
    settings = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*settings, *_configure(orthanc)]) == 0
    assert main([*settings, "retrieve", many["study"], many["series"]["OPT"]]) == 0
    series = data_dir / "pacs" / many["study"] / many["series"]["OPT"]
    moved = tmp_path / "bigdisk" / "series"
    moved.parent.mkdir()
    series.rename(moved)
    if earlier == "link":
        series.symlink_to(moved, target_is_directory=True)
    else:
        series.write_text("not a series\n")
    capsys.readouterr()
    assert main([*settings, "retrieve", many["study"], many["series"]["OPT"]]) == 0
    out, err = capsys.readouterr()
    assert "6 file(s) retrieved" in out and "Error" not in err
    assert not series.is_symlink() and len(list(series.iterdir())) == 6
    assert len(list(moved.iterdir())) == 6  # never followed
    assert not series.with_name(series.name + ".part").exists()


def _send_subprocess(tmp_path, scan, timeout):
    env = {**os.environ, "OCTVIEWER_DATA": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "octviewer.pacs.cli", "--settings", str(tmp_path / "pacs.json"),
                           "send", str(scan)], env=env, capture_output=True, text=True, timeout=timeout)


def test_send_refuses_a_fifo_as_the_scan_at_once(tmp_path):
    """A11-5: the scan's headers were read with pydicom on the path: open() of a FIFO blocked for good."""
    fifo = tmp_path / "scan.dcm"
    os.mkfifo(fifo)
    try:
        done = _send_subprocess(tmp_path, fifo, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("octviewer-pacs send blocked on a FIFO")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["PACS: scan.dcm: this is a named pipe (FIFO), not a file; only "
                                                "regular files are opened"]
