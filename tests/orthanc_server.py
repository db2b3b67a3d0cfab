"""A real archive for the PACS tests: Orthanc (Debian's ``orthanc`` package) on free localhost ports.

``OrthancServer`` writes a JSON configuration into a temporary folder (storage and index there
too), starts the ``Orthanc`` binary, waits for its REST API, and loads studies into it through
C-STORE with pynetdicom directly (not with the code under test). Tests skip with the reason when the
binary is absent; ``.ci/run`` installs it.

The synthetic patients (every one is SYNTHETIC, made up here):
- ``PACS-DEMO-001`` "SYNTHETIC^JANE": one study with the bundled demo OPT cube (early glaucoma, OS)
  and an OPV visual field of the same eye;
- ``PACS-CORRUPT-002``: one study whose OPT instance has its pixel data cut short;
- ``PACS-MANY-003``: one study with one series of six small OPT cubes (for a retrieve cancelled
  half way).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

ORTHANC_BINARY = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None)
ARCHIVE_AE = "ORTHANC"
LOCAL_AE = "OCTVIEWER"
DEMO_PATIENT = "PACS-DEMO-001"
DEMO_NAME = "SYNTHETIC^JANE"
DEMO_BIRTH = "19580412"
CORRUPT_PATIENT = "PACS-CORRUPT-002"
MANY_PATIENT = "PACS-MANY-003"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_tls_files(folder: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for localhost signed by it, and a client certificate
    (openssl): DICOM over TLS with both sides authenticated, as a hospital would set it up."""
    folder.mkdir(parents=True, exist_ok=True)
    f = {k: folder / k for k in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "client.key",
                                 "client.csr", "client.crt", "san.cnf")}
    f["san.cnf"].write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=octviewer test CA",
        "-keyout", str(f["ca.key"]), "-out", str(f["ca.crt"]))
    for who in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={'localhost' if who == 'server' else 'OCTVIEWER'}",
            "-keyout", str(f[f"{who}.key"]), "-out", str(f[f"{who}.csr"]))
        run("x509", "-req", "-in", str(f[f"{who}.csr"]), "-CA", str(f["ca.crt"]), "-CAkey", str(f["ca.key"]),
            "-CAcreateserial", "-days", "2", "-extfile", str(f["san.cnf"]), "-out", str(f[f"{who}.crt"]))
    return f


class OrthancServer:
    def __init__(self, folder: Path, tls: dict[str, Path] | None = None):
        self.folder = Path(folder)
        self.tls = tls
        self.http_port, self.dicom_port, self.move_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None
        self.studies: dict[str, dict] = {}  # patient ID -> {"study": uid, "series": {modality: uid}}

    # -- life ------------------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "Name": "octviewer-test", "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"), "Plugins": [],
            "HttpServerEnabled": True, "HttpPort": self.http_port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomServerEnabled": True, "DicomAet": ARCHIVE_AE,
            "DicomPort": self.dicom_port, "DicomCheckCalledAet": True, "DicomCheckModalityHost": False,
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True, "UnknownSopClassAccepted": True,
            "DicomModalities": {"octviewer": [LOCAL_AE, "127.0.0.1", self.move_port]},
            "DicomScuTimeout": 10, "DicomScpTimeout": 30, "StableAge": 1, "SaveJobs": False,
            "StorageCompression": False, "HttpTimeout": 10,
        } | ({"DicomTlsEnabled": True, "DicomTlsCertificate": str(self.tls["server.crt"]),
              "DicomTlsPrivateKey": str(self.tls["server.key"]),
              "DicomTlsTrustedCertificates": str(self.tls["ca.crt"]),
              "DicomTlsRemoteCertificateRequired": True} if self.tls else {})

    def start(self) -> OrthancServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(self.config(), indent=2))
        self.log = open(self.folder / "orthanc.log", "wb")
        self.process = subprocess.Popen([ORTHANC_BINARY, str(path)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.rest("/system")
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not answer on its REST port within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if getattr(self, "log", None):
            self.log.close()

    # -- REST ------------------------------------------------------------------------------------
    def rest(self, path: str, data: bytes | None = None, raw: bool = False):
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data)
        with urllib.request.urlopen(request, timeout=10) as r:
            body = r.read()
        return body if raw else json.loads(body)

    def instances_of(self, patient_id: str) -> list[dict]:
        """Every instance of the patient, with its main tags (REST /tools/find)."""
        query = json.dumps({"Level": "Instance", "Query": {"PatientID": patient_id}, "Expand": True}).encode()
        return self.rest("/tools/find", query)

    def dataset(self, instance_id: str) -> pydicom.Dataset:
        from io import BytesIO

        return pydicom.dcmread(BytesIO(self.rest(f"/instances/{instance_id}/file", raw=True)))

    # -- content ---------------------------------------------------------------------------------
    def settings(self, **changes):
        from octviewer.pacs import PacsSettings

        values = dict(archive_ae=ARCHIVE_AE, archive_host="127.0.0.1", archive_port=self.dicom_port,
                      local_ae=LOCAL_AE, local_port=self.move_port, timeout_s=30.0)
        values.update(changes)
        return PacsSettings(**values)

    def c_store(self, datasets) -> None:
        from pynetdicom import AE

        ae = AE(ae_title="LOADER")
        for ds in datasets:
            ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", self.dicom_port, ae_title=ARCHIVE_AE)
        assert assoc.is_established, "the fixture could not associate with Orthanc"
        try:
            for ds in datasets:
                status = assoc.send_c_store(ds)
                assert status and status.Status == 0, f"Orthanc refused a fixture instance: {status}"
        finally:
            assoc.release()

    def load_demo(self, work: Path) -> None:
        from octviewer.study.vf import write_opv

        study = generate_uid()
        opt = pydicom.dcmread(REPO / "resources" / "samples" / "demo_early_glaucoma_OS.dcm")
        _file_with_patient(opt, DEMO_PATIENT, DEMO_NAME, study, "20240306", series_number=1)
        opv_path = write_opv(work / "demo_opv.dcm", DEMO_PATIENT, "OS", dt.date(2024, 3, 6), md_db=-4.1,
                             psd_db=5.2, vfi=88.0)
        opv = pydicom.dcmread(opv_path)
        _file_with_patient(opv, DEMO_PATIENT, DEMO_NAME, study, "20240306", series_number=2)
        self.c_store([opt, opv])
        self.studies[DEMO_PATIENT] = {"study": study, "series": {"OPT": opt.SeriesInstanceUID,
                                                                  "OPV": opv.SeriesInstanceUID}}

    def load_corrupt(self, work: Path) -> None:
        study = generate_uid()
        opt = pydicom.dcmread(REPO / "resources" / "samples" / "demo_normal_OD.dcm")
        opt.decompress()
        opt.PixelData = opt.PixelData[: len(opt.PixelData) // 3]  # frames missing: a cut-short transfer
        _file_with_patient(opt, CORRUPT_PATIENT, "SYNTHETIC^CORRUPT", study, "20230102", series_number=1)
        self.c_store([opt])
        self.studies[CORRUPT_PATIENT] = {"study": study, "series": {"OPT": opt.SeriesInstanceUID}}

    def load_many(self, work: Path, n: int = 6) -> None:
        from octviewer.io import save_volume
        from octviewer.synth import random_eye, synth_scan

        study, series = generate_uid(), generate_uid()
        datasets = []
        for i in range(n):
            volume = synth_scan(random_eye(np.random.default_rng(i), "OD", False), "tiny", seed=i).volume
            path = work / f"many_{i}.dcm"
            save_volume(volume, path)
            ds = pydicom.dcmread(path)
            _file_with_patient(ds, MANY_PATIENT, "SYNTHETIC^MANY", study, "20220505", series_number=1)
            ds.SeriesInstanceUID = series
            ds.InstanceNumber = i + 1
            datasets.append(ds)
        self.c_store(datasets)
        self.studies[MANY_PATIENT] = {"study": study, "series": {"OPT": series}}


def _file_with_patient(ds, patient_id: str, name: str, study_uid: str, date: str, series_number: int) -> None:
    """The patient and study modules a clinic's archive would hold (the project's writers leave them bare)."""
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = patient_id, name, DEMO_BIRTH, "F"
    ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study_uid, date, "101500", "1"
    ds.AccessionNumber, ds.ReferringPhysicianName, ds.StudyDescription = "ACC" + patient_id[-3:], "", "Glaucoma"
    ds.SeriesNumber, ds.SeriesDate = series_number, date
    if "SeriesInstanceUID" not in ds:
        ds.SeriesInstanceUID = generate_uid()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """Orthanc with the three synthetic patients loaded; stopped after the module's tests."""
    if ORTHANC_BINARY is None:
        pytest.skip("the Orthanc binary is not installed (apt-get install -y orthanc; .ci/run installs it)")
    server = OrthancServer(tmp_path_factory.mktemp("orthanc")).start()
    try:
        work = tmp_path_factory.mktemp("pacs-studies")
        server.load_demo(work)
        server.load_corrupt(work)
        server.load_many(work)
        yield server
    finally:
        server.stop()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """The user's data folder (retrieved series, outbox, settings) in the test's own folder."""
    folder = tmp_path / "data"
    monkeypatch.setenv("OCTVIEWER_DATA", str(folder))
    return folder


def silent_server():
    """A TCP port that accepts connections and never answers: an archive that hangs."""
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        sock.close()

    return sock.getsockname()[1], close


def forwarder(port: int, target_port: int):
    """Connections to 127.0.0.1:``port`` relayed to 127.0.0.1:``target_port``: an archive that was down at
    ``port`` and is back. A retry goes only to the archive a result was queued for (A12-8), so a test's
    archive that "comes back" must answer at the same address. Returns ``close``."""
    import threading

    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.2)
    stop, held = threading.Event(), []

    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def accept():
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            conn.settimeout(None)
            upstream = socket.create_connection(("127.0.0.1", target_port))
            held.extend((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(2)
        server.close()
        for s in held:
            s.close()

    return close
