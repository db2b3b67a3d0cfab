"""The archive round trip against a real Orthanc: query, retrieve, open, screen, send the SR and the
PDF, read them back over Orthanc's REST API; and the faults (server down, wrong AE title, a hung
archive, a corrupt instance, a retrieve cancelled half way)."""

import datetime as dt
import logging
import os
import stat
import threading

import orthanc_server
import pydicom
import pytest
from orthanc_server import (
    CORRUPT_PATIENT,
    DEMO_BIRTH,
    DEMO_NAME,
    DEMO_PATIENT,
    MANY_PATIENT,
    forwarder,
    free_port,
    silent_server,
)

from octviewer.core import Cancelled, weak_vf_indices
from octviewer.io import VolumeReadError, load_volume
from octviewer.pacs import (
    Outbox,
    PacsConfigError,
    PacsError,
    PacsRejected,
    PacsSettings,
    PacsTimeout,
    PacsTlsFailed,
    PacsUnreachable,
    find_series,
    find_studies,
    load_settings,
    model_identity,
    results_datasets,
    retrieve,
    save_settings,
    scan_files,
    sr_values,
)

orthanc, data_dir = orthanc_server.orthanc, orthanc_server.data_dir  # fixtures
MODEL = "resources/models/demo_semt.safetensors"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_settings_are_saved_owner_only_and_checked(tmp_path):
    path = save_settings(PacsSettings(archive_ae="FORUM", archive_host="pacs.clinic", archive_port=104), tmp_path / "p")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_settings(path).archive_ae == "FORUM"
    with pytest.raises(PacsConfigError, match="AE title"):
        PacsSettings(archive_ae="A" * 17)
    with pytest.raises(PacsConfigError, match="port"):
        PacsSettings(archive_port=70000)
    with pytest.raises(PacsConfigError, match="certificate"):
        PacsSettings(tls=True, tls_ca_file=str(tmp_path / "missing.pem"))
    (tmp_path / "bad.json").write_text('{"archive_ae": "X", "colour": "red"}')
    with pytest.raises(PacsConfigError, match="bad.json.*colour"):
        load_settings(tmp_path / "bad.json")


def test_find_by_id_name_date_and_modality(orthanc, data_dir):
    settings = orthanc.settings()
    by_id = find_studies(settings, patient_id=DEMO_PATIENT)
    assert [h.study_uid for h in by_id] == [orthanc.studies[DEMO_PATIENT]["study"]]
    assert set(by_id[0].modalities) == {"OPT", "OPV"} and by_id[0].study_date == dt.date(2024, 3, 6)
    by_name = find_studies(settings, patient_name="SYNTHETIC^J")
    assert [h.patient_id for h in by_name] == [DEMO_PATIENT]
    in_2023 = find_studies(settings, date_from=dt.date(2023, 1, 1), date_to=dt.date(2023, 12, 31))
    assert [h.patient_id for h in in_2023] == [CORRUPT_PATIENT]
    assert find_studies(settings, patient_id=DEMO_PATIENT, modalities=["OPV"])
    assert not find_studies(settings, patient_id=CORRUPT_PATIENT, modalities=["OPV"])
    series = find_series(settings, by_id[0].study_uid)
    assert [(s.modality, s.n_instances) for s in series] == [("OPT", 1), ("OPV", 1)]
    assert series[1].laterality == "OS"
    with pytest.raises(PacsError, match="patient ID, a name or a date"):
        find_studies(settings)


@pytest.fixture(scope="module")
def screened(orthanc, tmp_path_factory):
    """The demo patient's OPT retrieved with C-GET, opened and screened with the demo model (once)."""
    from octviewer.model import Predictor
    from octviewer.pipeline import analyse_scan

    # the session's own results folder is put back after (it was deleted: every later test of this worker then used
    # the user's data folder, and test_session_folders failed under xdist)
    before = os.environ.get("OCTVIEWER_DATA")
    os.environ["OCTVIEWER_DATA"] = str(tmp_path_factory.mktemp("screen-data"))
    try:
        demo = orthanc.studies[DEMO_PATIENT]
        got = retrieve(orthanc.settings(), demo["study"], demo["series"]["OPT"])
    finally:
        if before is None:
            del os.environ["OCTVIEWER_DATA"]
        else:
            os.environ["OCTVIEWER_DATA"] = before
    [scan] = scan_files(got.files)
    volume = load_volume(scan)
    predictor = Predictor(MODEL, device="cpu")
    return scan, volume, predictor, analyse_scan(volume, predictor)


@pytest.mark.slow  # the demo cube screened on the CPU
def test_retrieve_open_screen_send_and_read_back(orthanc, screened, data_dir):
    scan, volume, predictor, result = screened
    assert volume.laterality == "OS" and volume.n_bscans == 64
    assert result.prediction is not None and result.structure is not None
    name, version = model_identity(predictor.model)
    datasets = results_datasets(scan, result, name, version, pdf=PDF)
    outcome = Outbox().send(orthanc.settings(), datasets)
    assert outcome.sent == 2 and outcome.waiting == 0 and not outcome.error

    stored = {i["MainDicomTags"].get("SOPInstanceUID"): i["ID"] for i in orthanc.instances_of(DEMO_PATIENT)}
    sr = orthanc.dataset(stored[datasets[0].SOPInstanceUID])
    pdf = orthanc.dataset(stored[datasets[1].SOPInstanceUID])
    source = pydicom.dcmread(scan, stop_before_pixels=True)
    for ds in (sr, pdf):  # filed with the patient, in the scan's study
        assert (ds.PatientID, str(ds.PatientName), ds.PatientBirthDate) == (DEMO_PATIENT, DEMO_NAME, DEMO_BIRTH)
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.AccessionNumber == source.AccessionNumber
    assert pdf.MIMETypeOfEncapsulatedDocument == "application/pdf"
    assert bytes(pdf.EncapsulatedDocument)[: len(PDF)] == PDF and pdf.EncapsulatedDocumentLength == len(PDF)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == source.SeriesInstanceUID
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert "SYNTHETIC" in sr.SeriesDescription

    values = sr_values(sr)
    p, s = result.prediction, result.structure
    assert values["algorithm"] == {"Algorithm Name": name, "Algorithm Version": version}
    screening = values["glaucoma screening"]
    assert screening["Probability of glaucoma"] == pytest.approx(p.probability, abs=1e-9)
    assert screening["Decision threshold"] == pytest.approx(p.threshold, abs=1e-9)
    assert screening["Screening decision"] == {"glaucoma": "Glaucoma", "normal": "Normal"}[p.decision]
    assert screening["Visual Field Index"] == pytest.approx(p.vf["vfi"], abs=1e-9)
    assert screening["Mean deviation, estimated from OCT"] == pytest.approx(p.vf["md"], abs=1e-9)
    assert screening["Pattern standard deviation, estimated from OCT"] == pytest.approx(p.vf["psd"], abs=1e-9)
    # the demo model's card shows none of the three beating the class-mean baseline
    assert weak_vf_indices(p.notes) == {"vfi", "md", "psd"}
    for label in ("VFI", "MD", "PSD"):
        assert screening[f"{label} estimate status (model card)"] == "not shown to beat the baseline"
    assert screening["Model training data"] == "SYNTHETIC: no clinical validity"
    rnfl = values["RNFL"]
    classes = {"normal": "within normal limits", "borderline": "borderline", "outside": "outside normal limits"}
    assert rnfl["RNFL thickness, global mean"] == pytest.approx(s.rnfl_global_um, abs=1e-9)
    assert rnfl["RNFL class, global mean"] == classes[s.classes["global"]]
    for group, words, key in ((s.sectors, "sector", "sector_"), (s.quadrants, "quadrant", "quadrant_"),
                              (s.clock_hours, "clock hour", "clock_")):
        assert group
        for k, v in group.items():
            assert rnfl[f"RNFL thickness, {words} {k}"] == pytest.approx(v, abs=1e-9)
            if f"{key}{k}" not in s.classes:  # clock hours, NS and NI have no norm of their own: thickness only
                assert key in ("clock_", "sector_") and f"RNFL class, {words} {k}" not in rnfl
            else:
                assert rnfl[f"RNFL class, {words} {k}"] == classes[s.classes[f"{key}{k}"]]
    disc = values["optic disc"]
    assert disc["Cup-to-disc ratio, vertical"] == pytest.approx(s.cup_to_disc, abs=1e-9)
    assert disc["Cup-to-disc ratio, average"] == pytest.approx(s.cup_to_disc_average, abs=1e-9)
    assert disc["Rim area"] == pytest.approx(s.rim_area_mm2, abs=1e-9)
    assert disc["Disc area"] == pytest.approx(s.disc_area_mm2, abs=1e-9)
    assert disc["Cup area"] == pytest.approx(s.cup_area_mm2, abs=1e-9)
    assert disc["BMO minimum rim width"] == pytest.approx(s.bmo_mrw_um, abs=1e-9)
    quality = values["quality"]
    assert quality["Quality verdict"] == "measured: passed the quality check"
    assert quality["Signal score (0-1)"] == pytest.approx(result.quality.score, abs=1e-9)


def test_retrieve_with_c_move(orthanc, data_dir):
    demo = orthanc.studies[DEMO_PATIENT]
    got = retrieve(orthanc.settings(retrieve="move"), demo["study"], demo["series"]["OPV"])
    [path] = got.files
    assert got.folder.parent.parent == data_dir / "pacs"
    from octviewer.study import read_opv

    vf = read_opv(path)
    assert vf.eye == "OS" and (vf.md_db, vf.psd_db, vf.vfi) == pytest.approx((-4.1, 5.2, 88.0), abs=1e-5)


def test_server_down_keeps_the_results_and_retry_sends_them(orthanc, screened, data_dir):
    scan, _, predictor, result = screened
    datasets = results_datasets(scan, result, *model_identity(predictor.model))
    down = orthanc.settings(archive_port=free_port())
    outbox = Outbox()
    outcome = outbox.send(down, datasets)
    assert outcome.sent == 0 and outcome.waiting == 1
    assert "nothing answers at 127.0.0.1" in outcome.error and "kept in the outbox" in outcome.message
    [waiting] = outbox.pending()
    assert waiting.sop_instance_uid == datasets[0].SOPInstanceUID and waiting.attempts == 1
    assert stat.S_IMODE(os.stat(outbox.path).st_mode) == 0o600
    other = Outbox().flush(orthanc.settings())  # another archive: not sent there (A12-8)
    assert other.sent == 0 and "1 object(s) wait for the archive ORTHANC at 127.0.0.1" in other.message
    close = forwarder(down.archive_port, orthanc.dicom_port)  # the archive is back
    try:
        retried = Outbox().flush(down)  # a new session finds it and sends it
    finally:
        close()
    assert (retried.sent, retried.waiting) == (1, 0)
    uids = {i["MainDicomTags"].get("SOPInstanceUID") for i in orthanc.instances_of(DEMO_PATIENT)}
    assert datasets[0].SOPInstanceUID in uids


def test_wrong_ae_title_and_hung_archive_say_so(orthanc, data_dir):
    with pytest.raises(PacsRejected, match="this workstation.*'NOT-ORTHANC'"):
        find_studies(orthanc.settings(archive_ae="NOT-ORTHANC"), patient_id=DEMO_PATIENT)
    port, close = silent_server()
    try:
        with pytest.raises(PacsTimeout, match="within 1 s"):
            find_studies(orthanc.settings(archive_port=port, timeout_s=1.0), patient_id=DEMO_PATIENT)
    finally:
        close()
    with pytest.raises(PacsUnreachable, match="not known on this network"):
        find_studies(orthanc.settings(archive_host="no-such-host.invalid"), patient_id=DEMO_PATIENT)


def test_corrupt_instance_retrieves_and_fails_to_open_with_the_file_named(orthanc, data_dir):
    corrupt = orthanc.studies[CORRUPT_PATIENT]
    got = retrieve(orthanc.settings(), corrupt["study"], corrupt["series"]["OPT"])
    [path] = scan_files(got.files)
    with pytest.raises(VolumeReadError) as info:
        load_volume(path)
    assert path.name in str(info.value)
    assert not list(data_dir.glob("pacs/*/*.part"))


def test_retrieve_cancelled_half_way_leaves_the_earlier_copy(orthanc, data_dir):
    many = orthanc.studies[MANY_PATIENT]
    settings = orthanc.settings()
    first = retrieve(settings, many["study"], many["series"]["OPT"])
    assert len(first.files) == 6
    cancel, seen = threading.Event(), []

    def progress(done, total):
        seen.append((done, total))
        if done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        retrieve(settings, many["study"], many["series"]["OPT"], progress=progress, cancel=cancel)
    assert 2 <= len(seen) < 6
    assert sorted(p.name for p in first.folder.iterdir()) == sorted(p.name for p in first.files)
    assert not first.folder.with_name(first.folder.name + ".part").exists()


def test_logs_carry_no_patient_identifiers(orthanc, screened, data_dir, caplog):
    caplog.set_level(logging.DEBUG)
    settings = orthanc.settings()
    [hit] = find_studies(settings, patient_id=DEMO_PATIENT)
    for series in find_series(settings, hit.study_uid):
        retrieve(settings, hit.study_uid, series.series_uid)
    scan, _, predictor, result = screened
    Outbox().send(settings, results_datasets(scan, result, *model_identity(predictor.model), pdf=PDF))
    Outbox().send(orthanc.settings(archive_port=free_port()), results_datasets(scan, result, "m", "1"))
    assert caplog.records, "the operations log something"
    text = caplog.text + repr(hit)
    for identifier in (DEMO_PATIENT, DEMO_NAME, "JANE", DEMO_BIRTH):
        assert identifier not in text


@pytest.mark.slow  # the demo cube screened on the CPU
def test_command_line_configure_find_screen_send_retry(orthanc, data_dir, tmp_path, capsys):
    from octviewer.pacs.cli import main

    conf = ["--settings", str(tmp_path / "pacs.json")]
    assert main([*conf, "configure", "--archive-ae", "ORTHANC", "--host", "127.0.0.1", "--port",
                 str(orthanc.dicom_port), "--local-ae", "OCTVIEWER", "--timeout", "30"]) == 0
    assert stat.S_IMODE(os.stat(tmp_path / "pacs.json").st_mode) == 0o600
    assert main([*conf, "echo"]) == 0
    assert main([*conf, "find", "--patient-id", DEMO_PATIENT, "--series"]) == 0
    out = capsys.readouterr().out
    assert "OPT/OPV" in out and "1 study found" in out and DEMO_PATIENT not in out  # no ID unless asked
    results = tmp_path / "results.csv"
    assert main([*conf, "screen", "--patient-id", DEMO_PATIENT, "--out", str(results), "--", "--device", "cpu"]) == 0
    import csv

    [row] = list(csv.DictReader(results.open()))
    assert row["decision"] in ("glaucoma", "normal") and row["laterality"] == "OS" and not row["error"]

    scan = next(data_dir.glob("pacs/*/*/*.dcm"))
    from octviewer.model import load_model
    from octviewer.pacs.results import report_reference, report_settings
    from octviewer.pipeline import ScanOptions
    from octviewer.resources import DEMO_MODEL

    # the scan's and the model's (A12-13), and the send's settings (A13-11)
    reference = report_reference(scan, load_model(DEMO_MODEL).short_digest, report_settings(ScanOptions()))
    (tmp_path / "report.pdf").write_bytes(PDF + f"% {reference}\n".encode())
    down, down_port = ["--settings", str(tmp_path / "down.json")], free_port()
    main([*down, "configure", "--port", str(down_port), "--timeout", "5"])
    assert main([*down, "send", str(scan), "--pdf", str(tmp_path / "report.pdf"), "--device", "cpu"]) == 1
    assert "kept in the outbox" in capsys.readouterr().out
    assert main([*conf, "outbox"]) == 0 and "2 object(s) waiting" in capsys.readouterr().out
    close = forwarder(down_port, orthanc.dicom_port)  # the archive is back; a retry goes only there (A12-8)
    try:
        assert main([*down, "retry"]) == 0 and "2 object(s) sent" in capsys.readouterr().out
    finally:
        close()
    modalities = {orthanc.rest(f"/instances/{i['ID']}/series")["MainDicomTags"].get("Modality")
                  for i in orthanc.instances_of(DEMO_PATIENT)}
    assert {"SR", "DOC"} <= modalities


@pytest.fixture(scope="module")
def orthanc_tls(tmp_path_factory):
    import shutil as sh

    if orthanc_server.ORTHANC_BINARY is None or sh.which("openssl") is None:
        pytest.skip("the Orthanc binary or openssl is not installed (apt-get install -y orthanc openssl)")
    folder = tmp_path_factory.mktemp("orthanc-tls")
    tls = orthanc_server.make_tls_files(folder / "tls")
    server = orthanc_server.OrthancServer(folder / "server", tls=tls).start()
    yield server
    server.stop()


def test_tls_with_certificates_on_both_sides(orthanc_tls, data_dir):
    from octviewer.pacs import echo

    tls = orthanc_tls.tls
    settings = orthanc_tls.settings(archive_host="localhost", tls=True, tls_ca_file=str(tls["ca.crt"]),
                                    tls_cert_file=str(tls["client.crt"]), tls_key_file=str(tls["client.key"]))
    echo(settings)
    assert find_studies(settings, patient_id=DEMO_PATIENT) == []
    with pytest.raises(PacsTlsFailed, match="TLS handshake .* failed: the archive's certificate is not trusted"):
        echo(settings.replace(tls_ca_file=str(tls["client.crt"])))  # the archive's certificate not signed by this CA
    with pytest.raises(PacsRejected, match="it expects TLS"):  # plain DICOM to a TLS port
        echo(settings.replace(tls=False, timeout_s=3.0))


def _self_signed(folder, name):
    """A certificate and its unencrypted key (PEM), made with ``cryptography`` (no openssl needed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (folder / f"{name}.key").write_bytes(pem)
    return folder / f"{name}.crt", folder / f"{name}.key"


def test_configure_refuses_tls_files_that_are_no_certificate_or_key(tmp_path, capsys):
    """configure saved any file as a certificate or key; echo then ended in a bare SSLError."""
    from octviewer.pacs.cli import main

    cert, key = _self_signed(tmp_path, "workstation")
    other_cert, _ = _self_signed(tmp_path, "other")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a certificate\n")
    conf = ["--settings", str(tmp_path / "pacs.json"), "configure", "--tls"]
    for files, why in [(["--ca", str(notes)], f"the archive's CA certificate {notes} is not a PEM certificate"),
                       (["--cert", str(notes), "--key", str(key)], f"certificate {notes} is not a PEM certificate"),
                       (["--cert", str(cert), "--key", str(notes)], f"key {notes} is not a PEM private key"),
                       (["--cert", str(other_cert), "--key", str(key)], "cannot be used together")]:
        assert main([*conf, *files]) == 2
        err = capsys.readouterr().err
        assert err.startswith("PACS settings: TLS: ") and why in err and "Traceback" not in err
        assert not (tmp_path / "pacs.json").exists()
    assert main([*conf, "--ca", str(other_cert), "--cert", str(cert), "--key", str(key)]) == 0


@pytest.mark.parametrize("option, value, why", [("--host", "localhost:104", "holds a colon: give the host alone"),
                                                ("--host", "::1", "an IPv6 address goes in brackets, [::1]"),
                                                ("--port", "\u0661\u0660\u0664", "written in the digits 0-9"),
                                                ("--local-port", "4\u0662", "written in the digits 0-9")])
def test_configure_refuses_a_port_in_the_host_and_digits_other_than_0_to_9(option, value, why, tmp_path, capsys):
    """"localhost:104" was saved as a host (then looked up as a name), and int() read the
    Arabic-Indic "١٠٤" as port 104."""
    from octviewer.pacs.cli import main

    settings = tmp_path / "pacs.json"
    assert main(["--settings", str(settings), "configure", option, value]) == 2
    assert why in capsys.readouterr().err and not settings.exists()
    assert main(["--settings", str(settings), "configure", "--host", "[::1]", "--port", "104"]) == 0
    assert load_settings(settings).host_address == "::1" and load_settings(settings).archive_port == 104


def test_echo_checks_the_address_the_association_uses(monkeypatch):
    """A host whose first address refuses (the association's, IPv4) while another answers (IPv6, which
    the connection check tried first): the refusal was reported as a rejected AE title."""
    import socket

    from octviewer.pacs import echo

    listener = socket.socket(socket.AF_INET6)
    try:
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    listener.listen(4)
    port = listener.getsockname()[1]
    real = socket.getaddrinfo

    def both_families(host, *args, **kwargs):
        if host == "archive.test":
            return real("::1", *args, **kwargs) + real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", both_families)
    try:
        with pytest.raises(PacsUnreachable) as err:
            echo(PacsSettings(archive_host="archive.test", archive_port=port, timeout_s=3))
    finally:
        listener.close()
    assert "nothing answers at archive.test:" in str(err.value) and "127.0.0.1" in str(err.value)
    assert "AE title" not in str(err.value)


def test_a_refused_object_stays_and_the_others_still_go(data_dir, monkeypatch):
    """One report the archive refuses (a malformed object, a full disk for that kind) must not hold up
    every later send: it stays in the outbox with the refusal, the rest are confirmed and leave."""
    import octviewer.pacs.outbox as outbox_module
    from octviewer.pacs import PacsRefused
    from octviewer.pacs.sr import encapsulated_pdf

    source = pydicom.dcmread("resources/samples/demo_normal_OD.dcm", stop_before_pixels=True)
    objects = [encapsulated_pdf(source, PDF) for _ in range(3)]
    archive = []

    def store(settings, datasets, progress=None):
        for i, ds in enumerate(datasets, start=1):
            if ds.SOPInstanceUID == objects[1].SOPInstanceUID:
                raise PacsRefused("the archive refused the PDF report (status 0xA700, out of resources)", i - 1)
            archive.append(ds.SOPInstanceUID)
            progress(i, len(datasets))

    monkeypatch.setattr(outbox_module, "store", store)
    outcome = Outbox().send(PacsSettings(), objects)
    assert archive == [objects[0].SOPInstanceUID, objects[2].SOPInstanceUID]
    assert (outcome.sent, outcome.waiting) == (2, 1) and "0xA700" in outcome.error
    [left] = Outbox().pending()
    assert left.sop_instance_uid == objects[1].SOPInstanceUID and left.attempts == 1 and "refused" in left.last_error


def test_the_pacs_layer_imports_neither_qt_nor_torch():
    import subprocess
    import sys

    code = ("import sys, octviewer.pacs, octviewer.pacs.cli, octviewer.study.hfa_xml\n"
            "print(','.join(m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_vf_status_follows_the_model_cards_caveat():
    """The report's "not shown to beat the baseline" is read from the note the model layer writes;
    this ties the two, so a rewording of the note cannot silently mark every estimate as strong."""
    from octviewer.model.meta import vf_baseline_caveat

    def row(mae, base, pair):
        return {"mae": mae, "class_mean_mae": base, "ci95": {"mae_minus_class_mean": pair}}

    meta = {"evaluation": {"vf_mae": {"vfi": row(4.0, 6.0, [-3.0, -1.0]), "md": row(2.0, 2.1, [-0.5, 0.3]),
                                      "psd": row(1.4, 1.0, [0.1, 0.6])}}}
    assert weak_vf_indices(["model trained on SYNTHETIC data", vf_baseline_caveat(meta)]) == {"md", "psd"}
    strong = {"evaluation": {"vf_mae": {"vfi": row(4.0, 6.0, [-3.0, -1.0])}}}
    assert vf_baseline_caveat(strong) == "" and weak_vf_indices([vf_baseline_caveat(strong)]) == set()


def test_results_go_back_only_for_dicom_scans_and_real_pdfs(tmp_path):
    from octviewer.pacs import SrError, encapsulated_pdf

    npz = tmp_path / "P123_OD_scan.npz"
    npz.write_bytes(b"PK\x03\x04 not dicom")
    with pytest.raises(SrError, match="P123_OD_scan.npz: the scan is not a DICOM file"):
        results_datasets(npz, None, "m", "1")
    source = pydicom.dcmread("resources/samples/demo_normal_OD.dcm", stop_before_pixels=True)
    with pytest.raises(SrError, match="not a PDF"):
        encapsulated_pdf(source, b"<html>report</html>")
    pdf = encapsulated_pdf(source, PDF + b"x")  # odd length: padded, the true length recorded
    assert len(pdf.EncapsulatedDocument) % 2 == 0 and pdf.EncapsulatedDocumentLength == len(PDF) + 1
    assert pdf.StudyInstanceUID == source.StudyInstanceUID and pdf.Modality == "DOC"


def test_an_archive_that_stops_answering_mid_search_times_out(data_dir):
    """The association is accepted, then the C-FIND is never answered within the timeout."""
    import time

    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    release = threading.Event()

    def slow_find(event):
        release.wait(5)
        yield 0x0000, None

    ae = AE(ae_title="SLOWPACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_FIND, slow_find)])
    try:
        settings = PacsSettings(archive_ae="SLOWPACS", archive_port=port, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(PacsTimeout, match="stopped answering during the search"):
            find_studies(settings, patient_id=DEMO_PATIENT)
        assert time.monotonic() - started < 4
    finally:
        release.set()
        server.shutdown()


@pytest.mark.parametrize("text, why", [('{"tls": true, "tls_ca_file": 5}', "must be a file name, got 5"),
                                       ('{"tls": true, "tls_key_file": ["k.pem"]}', "must be a file name"),
                                       ("[" * 100_000 + "]" * 100_000, "not readable as PACS settings")])
def test_hand_edited_settings_of_the_wrong_shape_are_settings_errors(text, why, tmp_path, capsys):
    """A TLS file given as a number or a list raised a raw TypeError from load_settings, and JSON nested
    100,000 deep a RecursionError; octviewer-pacs printed the Python exception's name and message."""
    from octviewer.pacs.cli import main

    path = tmp_path / "pacs.json"
    path.write_text(text)
    with pytest.raises(PacsConfigError, match=why):
        load_settings(path)
    assert main(["--settings", str(path), "echo"]) == 2
    assert why in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "a megabyte"])
def test_settings_that_are_no_small_file_are_refused_naming_the_file(kind, tmp_path, capsys):
    """`octviewer-pacs --settings FIFO` blocked for good in the read, and a link to /dev/zero read until
    memory ran out; a settings file is now looked at, opened without blocking, checked again and read
    up to 64 KiB (attack run M8). A megabyte of JSON was read whole."""
    from octviewer.pacs.cli import main

    path = tmp_path / "pacs.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_text('{"archive_ae": "BIG"' + " " * (1 << 20) + "}")
    with pytest.raises(PacsConfigError, match="pacs.json"):
        load_settings(path)
    assert main(["--settings", str(path), "echo"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and ("not a file" in err or "bytes" in err) and "Traceback" not in err


@pytest.mark.parametrize("field, value, why", [
    ("tls", "false", "tls must be true or false"), ("tls", 0, "tls must be true or false"),
    ("timeout_s", True, "timeout must be a number"), ("timeout_s", "\u0661\u0660", "timeout must be a number"),
    ("timeout_s", "1e1", "timeout must be a number"), ("archive_ae", 1234, "archive_ae must be text"),
    ("archive_host", 127, "archive_host must be text"), ("tls_ca_file", 5, "must be a file name"),
    ("tls", "twice", "'tls' is given twice")])
def test_settings_fields_have_their_json_types(field, value, why, tmp_path):
    """A hand-edited pacs.json's "tls": "false" turned TLS on (bool("false") is True; attack run L3); a
    timeout of true was 1 s and Arabic-Indic digits a number (float() reads them), an AE title or host
    given as a number became its digits, and a setting given twice took its last value. Numbers given as
    text of ASCII digits stay accepted (the Preferences' fields are text)."""
    import json

    path = tmp_path / "pacs.json"
    path.write_text(json.dumps({field: value}) if value != "twice" else '{"tls": false, "tls": true}')
    with pytest.raises(PacsConfigError, match=why):
        load_settings(path)
    path.write_text(json.dumps({"tls": False, "timeout_s": "12.5", "archive_port": "104", "local_port": 0}))
    settings = load_settings(path)
    assert (settings.tls, settings.timeout_s, settings.archive_port) == (False, 12.5, 104)


def test_configure_never_writes_settings_through_a_link(tmp_path, capsys):
    """save_settings wrote pacs.json.part with O_TRUNC, through a link there: the file it led to was
    overwritten with the settings (found with attack run H1)."""
    from octviewer.pacs.cli import main

    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    path = tmp_path / "pacs.json"
    path.with_name("pacs.json.part").symlink_to(other)
    assert main(["--settings", str(path), "configure", "--archive-ae", "FORUM"]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert other.read_text() == "keep me\n" and not path.exists()


def test_send_refuses_a_pdf_that_is_no_file_before_the_analysis(tmp_path, capsys):
    """`octviewer-pacs send SCAN --pdf FIFO` read the PDF with read_bytes() after the analysis and blocked
    there for good (a link to /dev/zero filled memory); it is now read first, as settings are (found with
    attack run M8)."""
    from octviewer.pacs.cli import main

    fifo = tmp_path / "report.pdf"
    os.mkfifo(fifo)
    argv = ["--settings", str(tmp_path / "pacs.json"), "send", str(tmp_path / "scan.dcm"), "--pdf", str(fifo)]
    assert main(argv) == 2  # bad input (A8-16)
    err = capsys.readouterr().err
    assert f"--pdf {fifo}: this is a named pipe (FIFO), not a file" in err and "Traceback" not in err
