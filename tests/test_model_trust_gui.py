"""An unverified model file says so through the window: the results panel, the status bar, Model >
About, the PDF report and the CSV export; a trusted one names its signer and digest."""

import csv
import os

import pytest
from conftest import open_window

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QPlainTextEdit  # noqa: E402

from octviewer import save_volume  # noqa: E402
from octviewer.gui.export.scan_pdf import report_html  # noqa: E402
from octviewer.model import Preprocess, build_network, default_metadata, save_model  # noqa: E402


@pytest.fixture(scope="module")
def unsigned_model(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    meta.update(name="unsigned-test-model", synthetic_data=True)
    return save_model(tmp_path_factory.mktemp("m") / "unsigned.safetensors",
                      build_network("semt", init="random", reg_channels=8), meta)


@pytest.fixture
def window(qtbot, monkeypatch, unsigned_model):
    yield from open_window(qtbot, monkeypatch, unsigned_model)


def test_an_unsigned_model_is_flagged_everywhere_its_results_go(qtbot, window, tmp_path):
    from corpus import small_volume

    scan = save_volume(small_volume((6, 64, 48)), tmp_path / "scan.dcm")
    w = window
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.open_path(str(scan))
    qtbot.waitUntil(lambda: w.state.prediction is not None, timeout=60000)
    model = w.models.predictor.model
    assert model.trust.status == "unsigned"
    assert "model file not verified" in w.results.text()
    assert "NOT VERIFIED" in w.models.status_model.text()

    w.models.about_model()
    card = w.dialog.findChild(QPlainTextEdit).toPlainText()
    assert model.short_digest in card and "signature: unsigned" in card and "WARNING" in card

    html = report_html(w.state, w.models.model_meta())
    assert model.short_digest in html and "WARNING: model file not verified" in html

    out = tmp_path / "results.csv"
    assert w.exports.csv(str(out)) == str(out)
    with open(out, newline="") as f:
        volume_row = next(csv.DictReader(f))
    assert volume_row["model_digest"] == model.short_digest and volume_row["model_signature"] == "unsigned"


def test_the_ou_report_prints_the_results_notes():
    import datetime as dt

    import numpy as np

    from octviewer.core import Prediction
    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.study.ou import VisitSummary, case_level

    def prediction(p):
        return Prediction(bscan_probability=np.array([p]), bscan_vf={}, cam=np.zeros((1, 2, 2)), probability=p, vf={},
                          threshold=0.5, model_name="m", notes=("model file not verified: it is not signed",))

    eyes = {eye: case_level(eye, [f"{eye}.dcm"], [(prediction(0.2), None)]) for eye in ("OD", "OS")}
    html = ou_report_html(VisitSummary("P1", dt.date(2024, 1, 2).isoformat(), eyes))
    assert html.count("model file not verified") == 1
