"""Attack run 13 (H79), octviewer-pacs: a window report made with the quality check off ("Probability of
glaucoma: 0.00, decision: normal") of a scan the check refuses said so only pages later (A13-11): the window says
it beside the verdict."""

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


@pytest.fixture
def window(qtbot, monkeypatch, data_dir):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)  # Analysis > Quality check unticked, as it leaves it


def _pdf_text(path) -> str:
    """The PDF's text on one line, its ligatures ("ﬀ") as letters."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(unicodedata.normalize("NFKC", text).split())


def test_a_report_made_with_the_quality_check_off_says_so(qtbot, window, monkeypatch, tmp_path):
    """A13-11, the reproduction: Analysis > Quality check off, File > Open a scan the check refuses, File >
    Export PDF report (identified). The Results panel and the report's Result section say beside the verdict
    that the check is off and the scan fails it."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf

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
