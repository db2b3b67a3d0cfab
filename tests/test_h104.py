"""Walk-through H104 (session 19): X8, a borderline result read "P(glaucoma) = 0.32, normal (threshold 0.32)" in the
window (and the PDF), against Help's rule "glaucoma at or above the threshold": P was 0.3195, the threshold 0.3215.
Printed beside each other, the two never look equal when they differ (``core.prediction.probability_and_threshold``)."""

import pytest

pytestmark = pytest.mark.gui


def _load_and_open(qtbot, w, monkeypatch, model, scan) -> None:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Ok)  # unsigned: its warning answered
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(model), ""))
    w.menu_actions["load_model"].trigger()
    qtbot.waitUntil(lambda: str(w.controller.predictor.model.path) == str(model), timeout=30000)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(scan), ""))
    w.menu_actions["open"].trigger()
    qtbot.waitUntil(lambda: w.state.prediction is not None and w.controller.analysis_generation == -1
                    and w.state.volume.source == str(scan), timeout=120000)


def test_a_probability_just_under_the_threshold_is_not_printed_equal_to_it(qtbot, window, monkeypatch, tmp_path):
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from octviewer.resources import DEMO_SCAN

    def model(path, threshold):
        torch.manual_seed(0)
        net = build_network("semt", init="random", reg_channels=8).eval()
        meta = default_metadata("semt", preprocess=Preprocess(size=32))
        meta["network"]["reg_channels"] = 8
        meta["threshold"] = threshold
        return save_model(path, net, meta)

    w = window
    _load_and_open(qtbot, w, monkeypatch, model(tmp_path / "a.safetensors", 0.5), DEMO_SCAN)
    p = w.state.prediction.probability
    threshold = next(t for t in (p + 0.0015, p - 0.0015, p + 0.003) if f"{t:.2f}" == f"{p:.2f}" and 0.05 < t < 0.95)
    _load_and_open(qtbot, w, monkeypatch, model(tmp_path / "b.safetensors", threshold), DEMO_SCAN)
    assert w.state.prediction.threshold == pytest.approx(threshold)
    shown_p = w.results.probability.text().split("= ")[1]
    shown_t = w.results.threshold.text().strip("()").split()[1]
    assert shown_p != shown_t and len(shown_p) == len(shown_t) == 5, (shown_p, shown_t)  # three decimals here
    assert (float(shown_p) >= float(shown_t)) == (w.state.prediction.decision == "glaucoma")


def test_the_pair_is_printed_with_as_many_decimals_as_tell_them_apart():
    from octviewer.core.prediction import probability_and_threshold

    assert probability_and_threshold(0.3195, 0.3215) == ("0.320", "0.322")  # the walk-through's pair
    assert probability_and_threshold(0.11, 0.32) == ("0.11", "0.32")
    assert probability_and_threshold(0.32, 0.32) == ("0.32", "0.32")  # equal: "glaucoma at or above"
    assert probability_and_threshold(0.32151, 0.32149) == ("0.322", "0.321")


def test_an_ou_page_prints_both_eyes_probabilities_and_the_threshold_with_one_precision():
    """Walk-through H107, Y1: the OU view's right card read "0.319 normal (threshold 0.321)", its left card the same
    threshold as "0.32", the eyes' table and the OU report the right eye's probability as "0.32"."""
    from types import SimpleNamespace

    from octviewer.gui.study.ou_view import asymmetry_digits, visit_probability_digits

    eye = lambda p: SimpleNamespace(probability=p, threshold=0.3215)  # noqa: E731
    summary = SimpleNamespace(eyes={"OD": eye(0.3195), "OS": eye(0.08)})
    assert visit_probability_digits(summary) == 3 and asymmetry_digits("probability", 3) == 3
    assert visit_probability_digits(SimpleNamespace(eyes={"OD": eye(0.6), "OS": None})) == 2
    assert asymmetry_digits("cup_to_disc", 3) == 2 and asymmetry_digits("rnfl_global", 3) == 1


def test_an_ou_card_of_a_refused_scan_says_why(qtbot, window, monkeypatch, demo, tmp_path):
    """Walk-through H107, Y5: with the quality check on, the OU card of a scan it refuses said only "not analysed"
    (the report's table likewise), while the Results panel says why."""
    import shutil
    import subprocess
    from pathlib import Path

    from conftest import open_study_folder
    from test_h84 import _export_ou, _open_ou, _scans, _stamp_date, _swamp

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[1]
    _swamp(od)
    w = window
    w.menu_actions["quality_gate"].trigger()  # on (the fixture's window has it off)
    assert w.state.options.gate
    panel = open_study_folder(qtbot, w, monkeypatch, root)
    view = _open_ou(qtbot, w, panel, _stamp_date(od))
    assert view.summary.eyes["OD"].probability is None
    decision = view.columns["OD"].decision.text()
    assert decision.startswith("not analysed: refused by the quality check: "), decision
    pdf = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou.pdf", False)
    text = " ".join(subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "not analysed refused by the quality check: " in text.replace("not analysed\n", "not analysed "), text[:800]
    w.menu_actions["quality_gate"].trigger()  # off again: the setting is saved for the next test's window
