"""Attack run 13 (H79), octviewer-pacs: `send SCAN --pdf REPORT` filed a window report made with the quality
check off ("Probability of glaucoma: 0.00, decision: normal") beside an SR saying the network result was "not
given: refused by the quality check" (A13-11). The identified report names the analysis settings of its figures
and send refuses one made with others; the window says beside the verdict when the check is off and the scan
fails it."""

import subprocess
import unicodedata

import numpy as np
import orthanc_server
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from octviewer.pacs.cli import main

data_dir = orthanc_server.data_dir  # fixture

OFF_NOTE = "quality check off: this scan fails it (signal 0."
GATE_WORDS = "made with the quality check off; send analyses with it on"


def _scan_of(tmp_path, patient_id: str, name: str, noise: bool = False):
    """The demo OD cube as a clinic's archive holds it; ``noise``: its pixels weak noise, which the quality
    check refuses (signal 0.07) and the network still reads when the check is off."""
    ds = pydicom.dcmread(orthanc_server.REPO / "resources" / "samples" / "demo_normal_OD.dcm")
    if noise:
        arr = ds.pixel_array
        ds.PixelData = np.random.default_rng(0).integers(0, 12, arr.shape).astype(arr.dtype).tobytes()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    orthanc_server._file_with_patient(ds, patient_id, name, generate_uid(), "20240101", series_number=1)
    path = tmp_path / f"{patient_id}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _down(tmp_path, capsys) -> list[str]:
    """Settings of an archive that is down: a send that passes every check is queued (exit 1)."""
    conf = ["--settings", str(tmp_path / "down.json")]
    assert main([*conf, "configure", "--port", str(orthanc_server.free_port()), "--timeout", "5"]) == 0
    capsys.readouterr()
    return conf


def test_send_files_a_pdf_only_beside_an_sr_analysed_with_its_settings(data_dir, tmp_path, capsys):
    """A13-11: a report made with the quality check off, or with octviewer's own segmentation, or naming no
    settings (made before reports named them) is refused before the analysis, naming what differs; one made
    as the send analyses goes."""
    from octviewer.model import load_model
    from octviewer.pacs.results import report_reference, report_settings
    from octviewer.pipeline import ScanOptions
    from octviewer.resources import DEMO_MODEL

    scan = _scan_of(tmp_path, "SETTINGS-1311", "SYNTHETIC^SETTINGS")
    conf = _down(tmp_path, capsys)
    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    demo = load_model(DEMO_MODEL).short_digest
    for name, options, words in (
            ("gate_off.pdf", ScanOptions(gate=False), GATE_WORDS),
            ("own.pdf", ScanOptions(segmentation="own"), "made with own segmentation; send analyses with vendor "
                                                         "segmentation where the file has it (else own)"),
            ("unnamed.pdf", None, "the report does not name the analysis settings it was made with (a report "
                                  "exported before reports named them): export it again from the window")):
        settings = report_settings(options) if options is not None else ""
        (tmp_path / name).write_bytes(pdf + f"% {report_reference(scan, demo, settings)}\n".encode())
        assert main([*conf, "send", str(scan), "--pdf", str(tmp_path / name), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert f"--pdf {tmp_path / name}: {words}" in err and "Traceback" not in err, err
        assert not (data_dir / "pacs_outbox.sqlite").exists()  # refused before anything was queued
    same = report_reference(scan, demo, report_settings(ScanOptions()))
    (tmp_path / "same.pdf").write_bytes(pdf + f"% {same}\n".encode())
    assert main([*conf, "send", str(scan), "--pdf", str(tmp_path / "same.pdf"), "--device", "cpu"]) == 1
    assert "2 kept in the outbox" in capsys.readouterr().out  # the archive is down: both queued, none refused


@pytest.fixture
def window(qtbot, monkeypatch, data_dir):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)  # Analysis > Quality check unticked, as it leaves it


def _pdf_text(path) -> str:
    """The PDF's text on one line, its ligatures ("ﬀ") as letters."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(unicodedata.normalize("NFKC", text).split())


def test_a_report_made_with_the_quality_check_off_says_so_and_send_refuses_it(qtbot, window, monkeypatch,
                                                                              tmp_path, capsys):
    """A13-11, the reproduction: Analysis > Quality check off, File > Open a scan the check refuses, File >
    Export PDF report (identified). The Results panel and the report's Result section say beside the verdict
    that the check is off and the scan fails it; `send --pdf` refuses the report (the send analyses with the
    check on), also one exported after the check was ticked again (the result on screen is still the one made
    without it). File > Send results to PACS files the window's own report, saying the same."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf

    from octviewer.gui.pacs.actions import PacsActions
    from octviewer.pacs import save_settings
    from octviewer.pacs.config import PacsSettings

    w = window
    assert not w.state.options.gate
    scan = _scan_of(tmp_path, "GATE-1311", "GATE^TEST", noise=True)
    _open_by_menu(qtbot, w, scan, monkeypatch, timeout=240000)
    qtbot.waitUntil(lambda: w.state.prediction is not None and w.state.structure is not None, timeout=240000)
    assert not w.state.structure.quality.ok  # the check would refuse it
    panel = " ".join(w.results.text().split())
    assert "P(glaucoma) = " in panel and OFF_NOTE in panel, panel
    assert panel.index(OFF_NOTE) < panel.index("model:")  # beside the verdict, not among the notes below

    _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=True, name="off.pdf")
    text = _pdf_text(tmp_path / "off.pdf")
    assert OFF_NOTE in text and "with the check on it gets no result" in text, text
    assert text.index("Probability of glaucoma") < text.index(OFF_NOTE) < text.index("Structure")
    w.menu_actions["quality_gate"].trigger()  # ticked again: applies to the next analysis only
    assert w.state.options.gate and w.state.prediction is not None
    _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=True, name="ticked.pdf")
    assert OFF_NOTE in _pdf_text(tmp_path / "ticked.pdf")

    conf = _down(tmp_path, capsys)
    for name in ("off.pdf", "ticked.pdf"):
        assert main([*conf, "send", str(scan), "--pdf", str(tmp_path / name), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert f"--pdf {tmp_path / name}: {GATE_WORDS}" in err and "Traceback" not in err, err

    # the window's own Send: its PDF (of the result on screen) says the same beside the verdict
    save_settings(PacsSettings(archive_ae="ARCHIVE", archive_host="127.0.0.1",
                               archive_port=orthanc_server.free_port(), timeout_s=5))
    sent = []
    real = PacsActions._report_pdf

    def spy(self):
        sent.append(real(self))
        return sent[-1]
    monkeypatch.setattr(PacsActions, "_report_pdf", spy)
    w.menu_actions["send_pacs"].trigger()
    qtbot.waitUntil(lambda: not w._pacs_actions.work.busy(), timeout=60000)
    assert len(sent) == 1 and b"quality gate off, vendor segmentation" in sent[0]
    (tmp_path / "sent.pdf").write_bytes(sent[0])
    assert OFF_NOTE in _pdf_text(tmp_path / "sent.pdf")
