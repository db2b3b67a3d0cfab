"""Attack run 11 (H62), octviewer-pacs: who may read a retrieved study (A11-1), send given a FIFO (A11-5) or a
deflate bomb (A11-6), a retrieve onto an earlier series folder that is a link or a file (A11-8), and TLS files
that are no file, and settings that configure could not repair (A11-12)."""

import os
import stat
import struct
import subprocess
import sys
import zlib

import orthanc_server
import pytest
from orthanc_server import DEMO_PATIENT, MANY_PATIENT
from test_pacs import _self_signed

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
    """``octviewer-pacs send <scan>`` in its own process; its stdout says whether torch was loaded."""
    env = {**os.environ, "OCTVIEWER_DATA": str(tmp_path / "data"), "QT_QPA_PLATFORM": "offscreen"}
    code = ("import sys; from octviewer.pacs.cli import main; rc = main(sys.argv[1:]); "
            "print('torch loaded' if 'torch' in sys.modules else 'no torch'); sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, "--settings", str(tmp_path / "pacs.json"), "send", str(scan)],
                          env=env, capture_output=True, text=True, timeout=timeout)


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
    assert done.stdout.strip() == "no torch"  # refused before the network stack loads (seconds, most of a GB)


def _deflate_bomb(path, inflated_mib: int) -> None:
    """A Deflated Explicit VR DICOM (OPT header) whose data set inflates to ``inflated_mib`` MiB: a private OB
    element of zeros, stored in well under 1 MiB."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.5.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "OPT", generate_uid(), generate_uid()
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    head = body.getvalue() + struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, inflated_mib << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        meta_bytes = DicomBytesIO()
        meta_bytes.is_little_endian, meta_bytes.is_implicit_VR = True, False
        write_file_meta_info(meta_bytes, meta)
        f.write(meta_bytes.getvalue())
        f.write(deflate.compress(head))
        zeros = b"\0" * (1 << 20)
        for _ in range(inflated_mib):
            f.write(deflate.compress(zeros))
        f.write(deflate.flush())


def test_send_refuses_a_deflate_bomb_before_inflating_it(tmp_path, monkeypatch, capsys):
    """A11-6: the scan's headers were read with pydicom, which inflates a deflated data set whole in one
    zlib.decompress, before the reader's bounded check: 0.5 MB became 1.7 GB. The check now comes first (here
    a whole inflate fails the test), and the message carries no Python class name."""
    bomb = tmp_path / "bomb.dcm"
    _deflate_bomb(bomb, 300)
    assert bomb.stat().st_size < 1 << 20

    import types

    import pydicom.filereader

    def whole(*args, **kwargs):
        raise AssertionError("the data set was inflated whole")

    inflating = types.SimpleNamespace(decompress=whole, MAX_WBITS=zlib.MAX_WBITS)
    monkeypatch.setattr(pydicom.filereader, "zlib", inflating)  # pydicom's one whole inflate
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    assert main(["--settings", str(tmp_path / "pacs.json"), "send", str(bomb)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("PACS: bomb.dcm: the deflate-compressed DICOM data set inflates to "
                                               "more than 256 MiB")


def test_send_of_a_dicom_file_that_is_no_oct_says_so_without_a_class_name(tmp_path, monkeypatch, capsys):
    """A11-6 (low): the reader's refusal was printed as "VolumeReadError: <file>: ..."."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.StudyInstanceUID, ds.SeriesInstanceUID = "OT", generate_uid(), generate_uid()
    ds.PatientID = "P1"  # a scan without one is refused before it is read (A12-9)
    scan = tmp_path / "photo.dcm"
    ds.save_as(scan, enforce_file_format=True)
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    assert main(["--settings", str(tmp_path / "pacs.json"), "send", str(scan), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("octviewer-pacs send: photo.dcm: ") and "Error" not in err[0]


@pytest.mark.parametrize("kind, words", [("fifo", "is a named pipe (FIFO), not a file"),
                                         ("folder", "is a folder, not a file")])
def test_a_tls_file_that_is_no_file_is_called_what_it_is(tmp_path, capsys, kind, words):
    """A11-12: a FIFO or a folder given as a TLS file "does not exist" (Path.is_file)."""
    path = tmp_path / "ca.pem"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    assert main(["--settings", str(tmp_path / "pacs.json"), "configure", "--tls", "--ca", str(path)]) == 2
    assert capsys.readouterr().err == f"PACS settings: TLS: the archive's CA certificate {path} {words}\n"
    assert not (tmp_path / "pacs.json").exists()


def test_configure_repairs_settings_whose_saved_ca_file_is_gone(tmp_path, capsys):
    """A11-12: settings naming a CA file since removed (a renewed certificate) made every configure fail on that
    old value, --ca new and --no-tls included, and nothing named the file to fix."""
    settings = tmp_path / "pacs.json"
    conf = ["--settings", str(settings), "configure"]
    old, _ = _self_signed(tmp_path, "old")
    new, _ = _self_signed(tmp_path, "new")
    assert main([*conf, "--tls", "--ca", str(old)]) == 0
    old.unlink()
    capsys.readouterr()
    assert main([*conf, "--port", "104"]) == 2  # no option touches the stale value: the file is named
    err = capsys.readouterr().err
    assert err.startswith(f"PACS settings: TLS: the archive's CA certificate {old} does not exist (saved in "
                          f"{settings}: give configure the option that changes it") and err.count("\n") == 1
    assert main([*conf, "--ca", str(new)]) == 0
    assert f'"tls_ca_file": "{new}"' in settings.read_text()
    new.unlink()
    assert main([*conf, "--no-tls"]) == 0
    assert '"tls": false' in settings.read_text()
    assert main([*conf, "--port", "99999"]) == 2  # the option's own mistake: said as before, no file hint
    assert capsys.readouterr().err.endswith("the archive's port must be between 1 and 65535, got 99999\n")
    settings.write_text("{")  # a file that cannot be read at all: named once, as before
    assert main([*conf, "--port", "104"]) == 2
    assert capsys.readouterr().err == f"PACS settings: {settings}: not readable as PACS settings: not valid JSON " \
                                      "(Expecting property name enclosed in double quotes at line 1, column 2)\n"


@pytest.mark.parametrize("field, value, words", [
    ("PatientID", "MRN1\\MRN2", "PatientID holds 2 values"),
    ("PatientID", "MRN1\u202e", "PatientID holds the invisible character U+202E"),
    ("PatientName", "SMITH^JOHN\nDOE^JANE", "PatientName holds the control character"),
])
def test_send_refuses_a_patient_header_the_readers_refuse(tmp_path, monkeypatch, capsys, field, value, words):
    """A11-14: ``send`` copied the patient module as it was, so an ID of two values filed the SR under two
    patients (the archive matches a ``\\`` as a list: a query for MRN2, another patient, found it). Refused
    before the analysis by the readers' rule, the value not shown."""
    import pydicom

    from octviewer.resources import DEMO_SCAN

    ds = pydicom.dcmread(DEMO_SCAN)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, so that the override is stored as it is
    setattr(ds, field, value)
    scan = tmp_path / "od_two.dcm"
    ds.save_as(scan)
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("octviewer.model.Predictor", lambda *a, **k: pytest.fail("analysed before the check"))
    assert main(["--settings", str(tmp_path / "pacs.json"), "send", str(scan), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"PACS: od_two.dcm: the scan's {words}"), err
    assert "MRN" not in err[0] and "SMITH" not in err[0] and "cannot be filed" in err[0]


def test_send_files_only_the_identified_report_made_of_this_scan(qtbot, window, monkeypatch, tmp_path, capsys):
    """A11-13: ``send SCAN --pdf REPORT`` filed any PDF in the scan's patient record: another patient's report
    read "glaucoma" beside this patient's SR. The window's identified PDF names its scan in its metadata; an
    anonymised one, another scan's or any other PDF is refused before the analysis (exit 2)."""
    import shutil

    from orthanc_server import free_port
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf

    from octviewer.resources import DEMO_SAMPLES, DEMO_SCAN

    scan, other = tmp_path / "od.dcm", tmp_path / "other.dcm"
    shutil.copy(DEMO_SCAN, scan)
    shutil.copy(next(p for p in sorted(DEMO_SAMPLES.glob("*.dcm")) if p.name != DEMO_SCAN.name), other)
    window.menu_actions["quality_gate"].trigger()  # as send analyses: its report names the settings (A13-11)
    _open_by_menu(qtbot, window, scan, monkeypatch)
    _export_pdf(qtbot, window, monkeypatch, tmp_path, identify=True, name="identified.pdf")
    _export_pdf(qtbot, window, monkeypatch, tmp_path, identify=False, name="anonymised.pdf")
    monkeypatch.setenv("OCTVIEWER_DATA", str(tmp_path / "data"))
    conf = ["--settings", str(tmp_path / "down.json")]
    assert main([*conf, "configure", "--port", str(free_port()), "--timeout", "5"]) == 0
    capsys.readouterr()
    for pdf, target, words in (("anonymised.pdf", scan, "not an identified report made by octviewer"),
                               ("identified.pdf", other, "the report of another scan, not of this one")):
        assert main([*conf, "send", str(target), "--pdf", str(tmp_path / pdf), "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"PACS: --pdf {tmp_path / pdf}: {words}" or words in err, err
    # its own report goes (to the outbox: the archive is down)
    assert main([*conf, "send", str(scan), "--pdf", str(tmp_path / "identified.pdf"), "--device", "cpu"]) == 1
    assert "kept in the outbox" in capsys.readouterr().out
