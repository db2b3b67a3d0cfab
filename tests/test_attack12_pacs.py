"""Attack run 12 (H72), octviewer-pacs: a C-MOVE retrieve that kept instances another node pushed meanwhile
(A12-2), a screen of several patients (A12-7), an outbox that sent to whichever archive came next (A12-8), a
send of a scan without a PatientID (A12-9), and a send by an unverified model that said nothing (A12-10)."""

import copy

import orthanc_server
import pydicom
import pytest
from orthanc_server import ARCHIVE_AE, LOCAL_AE, MANY_PATIENT
from pydicom.uid import generate_uid

from octviewer.pacs import cli
from octviewer.pacs.cli import main

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures


def _configure(orthanc, *extra) -> list[str]:
    return ["configure", "--archive-ae", ARCHIVE_AE, "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
            "--local-ae", LOCAL_AE, "--local-port", str(orthanc.move_port), *extra]


def _another_patients_scan() -> pydicom.Dataset:
    """A scan of another patient, in its own study and series (what a modality might push meanwhile)."""
    ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / "demo_normal_OD.dcm")
    ds.PatientName, ds.PatientID = "DOE^INTRUDED", "OTHER-999"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _push(ds, calling_ae: str, port: int, **changes):
    """C-STORE ``ds`` (with ``changes``) to the workstation's C-MOVE listener as ``calling_ae``: the status, or
    None when the association was refused."""
    from pynetdicom import AE

    ds = copy.deepcopy(ds)
    for key, value in changes.items():
        setattr(ds, key, value)
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=LOCAL_AE)
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(ds)
        return int(status.Status) if status else -1
    finally:
        assoc.release()


def test_a_move_retrieve_refuses_instances_of_another_study_or_series_pushed_while_it_runs(
        orthanc, data_dir, tmp_path, monkeypatch, capsys):
    """A12-2: with C-MOVE, any node could store to the workstation while a retrieve ran: another patient's scan
    landed in this patient's series folder and was screened as one of his. Now only the archive's AE title may
    associate, and an instance of another study (or another series of the same study) is refused, not written,
    and counted."""
    many = orthanc.studies[MANY_PATIENT]
    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, *_configure(orthanc, "--retrieve", "move")]) == 0
    intruder, statuses, pushed = _another_patients_scan(), [], []
    progress = cli._progress

    def push_once(done, total):
        if not pushed:  # once: a kept push would call this again from inside its own C-STORE
            pushed.append(True)
            statuses.append(_push(intruder, "INTRUDER", orthanc.move_port))  # any node
            statuses.append(_push(intruder, ARCHIVE_AE, orthanc.move_port))  # the archive's title, another study
            statuses.append(_push(intruder, ARCHIVE_AE, orthanc.move_port, StudyInstanceUID=many["study"]))
        progress(done, total)

    monkeypatch.setattr(cli, "_progress", push_once)
    capsys.readouterr()
    assert main([*conf, "retrieve", many["study"], many["series"]["OPT"]]) == 0
    out = capsys.readouterr().out
    assert statuses[0] is None  # the association of another AE title refused
    assert statuses[1] == statuses[2] == 0xC000  # another study; the study's UID but another series
    assert "6 file(s) retrieved" in out and "2 instance(s) of another study or series" in out
    series = data_dir / "pacs" / many["study"] / many["series"]["OPT"]
    patients = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientID) for p in series.iterdir()}
    assert patients == {MANY_PATIENT} and len(list(series.iterdir())) == 6


@pytest.mark.parametrize("search, why", [
    (["--name", "SYNTHETIC"], "matches 3 patients"),  # a prefix: JANE, CORRUPT and MANY
    (["--from", "2000-01-01"], "matches 3 patients"),  # a date range alone: everyone seen since
    (["--name", "*"], "the name holds '*' or '?'"),
    (["--name", "SYNTHETIC^MAN?"], "the name holds '*' or '?'"),
])
def test_screen_refuses_a_search_of_several_patients_before_retrieving_anything(orthanc, data_dir, tmp_path, capsys,
                                                                                  search, why):
    """A12-7: `screen --name SMITH`, `--name '*'` or a date range alone screened every patient it matched into
    one CSV that names none. Refused, exit 2, before any series is retrieved."""
    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, *_configure(orthanc)]) == 0
    capsys.readouterr()
    out = tmp_path / "screen.csv"
    assert main([*conf, "screen", *search, "--out", str(out), "--", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert why in err and "give the patient ID" in err and "Traceback" not in err
    assert not (data_dir / "pacs").exists() and not out.exists()


def _scan_of(tmp_path, patient_id: str, name: str):
    """The demo OD cube as a clinic's archive holds it: a patient module and a study of its own."""
    ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / "demo_normal_OD.dcm")
    orthanc_server._file_with_patient(ds, patient_id, name, generate_uid(), "20240101", series_number=1)
    path = tmp_path / f"{patient_id}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _srs_of(orthanc, patient_id: str) -> int:
    return sum(orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality") == "SR"
               for i in orthanc.instances_of(patient_id))


def test_a_result_queued_for_one_archive_is_never_sent_to_another(orthanc, data_dir, tmp_path, capsys):
    """A12-8: a send that failed for the clinic's archive (down) kept its SR in the outbox, and the next send or
    retry with another archive's settings sent it there, with the patient's name, ID and birth date. Now each
    queued object keeps its archive (AE title, host, port); a retry elsewhere sends none of it and says so."""
    scan = _scan_of(tmp_path, "CLINIC-812", "SYNTHETIC^CLINIC")
    down_port = orthanc_server.free_port()
    clinical, research = (["--settings", str(tmp_path / f"{n}.json")] for n in ("clinical", "research"))
    assert main([*clinical, "configure", "--archive-ae", "CLINICAL", "--host", "127.0.0.1", "--port", str(down_port),
                 "--timeout", "5"]) == 0
    assert main([*research, *_configure(orthanc)]) == 0
    assert main([*clinical, "send", str(scan), "--device", "cpu"]) == 1
    assert "1 kept in the outbox" in capsys.readouterr().out
    assert main([*research, "retry"]) == 0
    out = capsys.readouterr().out
    assert f"1 object(s) wait for the archive CLINICAL at 127.0.0.1:{down_port}, not sent to ORTHANC" in out
    assert "nothing is waiting" not in out
    assert main([*research, "outbox"]) == 0
    assert f"for CLINICAL at 127.0.0.1:{down_port}" in capsys.readouterr().out
    assert _srs_of(orthanc, "CLINIC-812") == 0  # never in the research archive


def test_an_older_outbox_is_migrated_and_its_rows_wait_until_sent_or_dropped(orthanc, data_dir, tmp_path, capsys):
    """A12-8: rows an earlier version queued record no archive: they are sent nowhere without a word; `retry`
    says they wait and how to send (`retry --unaddressed`) or drop (`outbox --drop UID`) them."""
    import sqlite3
    from io import BytesIO

    from octviewer.pacs.sr import encapsulated_pdf

    data_dir.mkdir(mode=0o700)
    old = sqlite3.connect(data_dir / "pacs_outbox.sqlite")
    old.execute("CREATE TABLE outbox (sop_instance_uid TEXT PRIMARY KEY, kind TEXT NOT NULL, queued TEXT NOT NULL, "
                "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', data BLOB NOT NULL)")
    uids = []
    for patient in ("LEGACY-1", "LEGACY-2"):
        source = pydicom.dcmread(_scan_of(tmp_path, patient, "SYNTHETIC^LEGACY"), stop_before_pixels=True)
        ds = encapsulated_pdf(source, b"%PDF-1.4\n%%EOF\n")
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        old.execute("INSERT INTO outbox (sop_instance_uid, kind, queued, data) VALUES (?, 'the PDF report', "
                    "'2026-01-01T00:00:00', ?)", (ds.SOPInstanceUID, buffer.getvalue()))
        uids.append(ds.SOPInstanceUID)
    old.commit()
    old.close()
    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, *_configure(orthanc)]) == 0
    capsys.readouterr()
    assert main([*conf, "retry"]) == 0
    out = capsys.readouterr().out
    assert "2 object(s) queued by an earlier version" in out and "retry --unaddressed" in out
    assert "outbox --drop" in out and orthanc.instances_of("LEGACY-1") == []
    assert main([*conf, "outbox", "--drop", uids[1]]) == 0
    out = capsys.readouterr().out
    assert "1 object(s) removed" in out and "archive not recorded" in out and "1 object(s) waiting" in out
    assert main([*conf, "retry", "--unaddressed"]) == 0
    assert "1 object(s) sent to the archive; nothing is waiting" in capsys.readouterr().out
    assert len(orthanc.instances_of("LEGACY-1")) == 1 and orthanc.instances_of("LEGACY-2") == []


def _without_patient_id(tmp_path, name: str):
    ds = pydicom.dcmread(_scan_of(tmp_path, "TO-BE-REMOVED", name))
    del ds.PatientID
    path = tmp_path / "noid.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_send_refuses_a_scan_without_a_patient_id_before_the_analysis(orthanc, data_dir, tmp_path, capsys):
    """A12-9: the command's side of the one rule (results.patient_header_problem): no PatientID, nothing filed."""
    scan = _without_patient_id(tmp_path, "NOID^COMMAND")
    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, *_configure(orthanc)]) == 0
    assert main([*conf, "send", str(scan), "--device", "cpu"]) == 2
    assert "noid.dcm: the scan's header has no PatientID" in capsys.readouterr().err
    assert not (data_dir / "pacs_outbox.sqlite").exists()  # refused before anything was queued


@pytest.fixture
def window(qtbot, monkeypatch, data_dir):
    from conftest import open_window

    yield from open_window(qtbot, monkeypatch, "resources/models/demo_semt.safetensors")


def test_the_window_refuses_to_send_results_of_a_scan_without_a_patient_id(window, orthanc, qtbot, data_dir,
                                                                          tmp_path):
    """A12-9: File > Send results to PACS on a scan whose header has no PatientID filed an ANONYMISED PDF and an
    SR under the archive's empty ID. Refused with the send command's words, before anything is packed."""
    from octviewer.pacs import save_settings

    save_settings(orthanc.settings())
    window.open_path(str(_without_patient_id(tmp_path, "NOID^WINDOW")))
    qtbot.waitUntil(lambda: window.state.prediction is not None and window.state.structure is not None
                    and not window.state.measuring, timeout=240000)
    window.menu_actions["send_pacs"].trigger()
    assert window.warnings and "Nothing was sent" in window.warnings[-1]
    assert "header has no PatientID, so its results cannot be filed under a patient" in window.warnings[-1]
    assert window._pacs_actions.progress is None and not window._pacs_actions.work.busy()
    found = orthanc.rest("/tools/find", b'{"Level": "Patient", "Query": {"PatientName": "NOID^WINDOW"}}')
    assert found == [] and not (data_dir / "pacs_outbox.sqlite").exists()


def test_send_with_an_unverified_model_says_so_and_its_report_carries_it(orthanc, data_dir, tmp_path, monkeypatch,
                                                                        capsys):
    """A12-10: `send --model <unsigned model>` printed nothing and the SR filed in the patient's record did not
    say "model file not verified". It prints the note as octviewer-predict does, and the SR carries it (TEXT)."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from octviewer.pacs.sr import MODEL_TRUST, sr_values

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    model = save_model(tmp_path / "m.safetensors", build_network("semt", init="random", reg_channels=8), meta)
    scan = _scan_of(tmp_path, "UNSIGNED-810", "SYNTHETIC^UNSIGNED")
    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, *_configure(orthanc)]) == 0
    capsys.readouterr()
    assert main([*conf, "send", str(scan), "--model", str(model), "--device", "cpu"]) == 0
    assert "note: model file not verified: it is not signed" in capsys.readouterr().err
    [sr] = [orthanc.dataset(i["ID"]) for i in orthanc.instances_of("UNSIGNED-810")
            if orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality") == "SR"]
    assert sr_values(sr)["glaucoma screening"][MODEL_TRUST].startswith("model file not verified: it is not signed")


def test_send_files_a_pdf_only_beside_an_sr_of_the_model_that_made_it(data_dir, tmp_path, capsys):
    """A12-13: `send SCAN --pdf REPORT` filed the window's report of one model beside the SR of another (the
    command's default model): the record read "normal" in the PDF and "Glaucoma" in the SR. The report names
    its model (the window's PDF: test_attack11_pacs's A11-13 test sends it); another model's, or one naming
    none, is refused before the analysis."""
    from octviewer.model import load_model
    from octviewer.pacs.results import report_reference, report_settings
    from octviewer.pipeline import ScanOptions
    from octviewer.resources import DEMO_MODEL

    scan = _scan_of(tmp_path, "MODEL-813", "SYNTHETIC^MODEL")
    conf = ["--settings", str(tmp_path / "down.json")]
    assert main([*conf, "configure", "--port", str(orthanc_server.free_port()), "--timeout", "5"]) == 0
    capsys.readouterr()
    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    demo = load_model(DEMO_MODEL).short_digest
    for name, model, words in (("other.pdf", "sha256:0123456789abcdef", "made with another model "
                                "(sha256:0123456789abcdef) than this send's"),
                               ("unnamed.pdf", "", "the report does not name the model that made it")):
        (tmp_path / name).write_bytes(pdf + f"% {report_reference(scan, model)}\n".encode())
        assert main([*conf, "send", str(scan), "--pdf", str(tmp_path / name), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert f"--pdf {tmp_path / name}: {words}" in err and "Traceback" not in err
    same = report_reference(scan, demo, report_settings(ScanOptions()))  # and the send's settings (A13-11)
    (tmp_path / "same.pdf").write_bytes(pdf + f"% {same}\n".encode())
    assert main([*conf, "send", str(scan), "--pdf", str(tmp_path / "same.pdf"), "--device", "cpu"]) == 1
    assert "2 kept in the outbox" in capsys.readouterr().out  # the archive is down: both queued, none refused
