"""Findings of the fifth clinician walk-through (2026-12-06): the PDF reports and the Results panel,
driven as a user drives the window. OCTVIEWER_WALK_GRABS=folder saves the PDFs and grabs to look at."""

import os
import shutil
import subprocess

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from conftest import open_window  # noqa: E402

from octviewer.resources import DEMO_MODEL, DEMO_SAMPLES  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def window(qtbot, monkeypatch):
    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def _keep(path, name):
    folder = os.environ.get("OCTVIEWER_WALK_GRABS")
    if folder:
        shutil.copy(path, os.path.join(folder, name))


def _word_heights(pdf, word) -> list[float]:
    """Heights in points of each printed ``word`` in ``pdf`` (pdftotext's word boxes)."""
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext not installed")
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    heights = []
    for line in out.splitlines():
        if line.strip().startswith("<word") and f">{word}</word>" in line:
            attrs = dict(part.split("=") for part in line.split(">")[0].split()[1:])
            heights.append(float(attrs["yMax"].strip('"')) - float(attrs["yMin"].strip('"')))
    return heights


def test_the_structure_page_text_prints_at_a_readable_size(qtbot, window, monkeypatch, tmp_path):
    """The structure page's text block (disc figures, unsure notes, the normal figures' source) was drawn
    into the picture and came out ~4 pt on paper."""
    from test_gui_walkthrough import _open_by_menu
    from test_gui_walkthrough_h2 import _export_pdf

    w = window
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_normal_OS.dcm", monkeypatch)
    assert w.state.structure is not None
    _export_pdf(qtbot, w, monkeypatch, tmp_path, identify=False)
    pdf = tmp_path / "report.pdf"
    _keep(pdf, "h26_structure.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "BMO-MRW" in text and "Cirrus HD-OCT normals (n=239" in text  # text, no longer pixels
    heights = _word_heights(pdf, "BMO-MRW")  # a word of the text block
    assert heights and min(heights) >= 8.0, heights

