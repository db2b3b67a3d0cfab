"""The real window, driven offscreen with pytest-qt."""

import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from octviewer.gui.main_window import MainWindow  # noqa: E402
from octviewer.model import Predictor, Preprocess, build_network, default_metadata, save_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=64))
    meta.update(name="tiny-test-model", synthetic_data=True)
    return save_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", build_network("semt", init="random"), meta)


@pytest.fixture
def window(qtbot, tiny_model_path, monkeypatch, tmp_path):
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    w = MainWindow(Predictor(str(tiny_model_path), device="cpu"))
    w.warnings = warnings
    qtbot.addWidget(w)
    w.show()
    yield w
    w.workers.shutdown()


def _open(qtbot, w, path, analyse=True):
    signal = w.workers.signals.finished if analyse and w.predictor else w.workers.signals.loaded
    with qtbot.waitSignal(signal, timeout=60000):
        w.open_path(str(path))


def _first_volume(cohort):
    return sorted((cohort.parent / "volumes").iterdir())[0]


def test_open_scroll_analyse(qtbot, window, tiny_cohort, tmp_path):
    w = window
    _open(qtbot, w, _first_volume(tiny_cohort))
    assert w.prediction is not None and np.isfinite(w.probs).all()
    assert w.bscan.cam.isVisible()
    start = w.index
    qtbot.keyClick(w, Qt.Key_Down)
    assert w.index == start + 1
    qtbot.keyClick(w, Qt.Key_PageUp)
    assert w.index == max(start + 1 - 10, 0)
    qtbot.keyClick(w, Qt.Key_End)
    assert w.index == w.volume.n_bscans - 1
    qtbot.keyClick(w, Qt.Key_Home)
    assert w.index == 0
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent
    ev = QWheelEvent(QPointF(10, 10), QPointF(10, 10), QPoint(0, 0), QPoint(0, -120), Qt.NoButton, Qt.NoModifier,
                     Qt.NoScrollPhase, False)
    w.bscan.wheelEvent(ev)
    assert w.index == 1
    # CAM toggle and fade
    qtbot.keyClick(w, Qt.Key_C)
    assert not w.bscan.cam.isVisible()
    qtbot.keyClick(w, Qt.Key_C)
    assert w.bscan.cam.isVisible()
    before = w.bscan.cam.opacity()
    qtbot.keyClick(w, Qt.Key_BracketLeft)
    assert w.bscan.cam.opacity() < before
    # clicking the curve jumps to that B-scan
    vb = w.curve.plotItem.vb
    scene_pos = vb.mapViewToScene(QPointF(5, 0.5))
    view_pos = w.curve.mapFromScene(scene_pos)
    qtbot.mouseClick(w.curve.viewport(), Qt.LeftButton, pos=view_pos)
    assert w.index == 5
    assert "SYNTHETIC" in w.results.text() and "Research use only" in w.results.text()
    pdf = w.export_pdf(str(tmp_path / "r.pdf"))
    assert pdf and (tmp_path / "r.pdf").read_bytes()[:4] == b"%PDF"


def test_corrupt_file_keeps_previous_scan(qtbot, window, tiny_cohort, tmp_path):
    w = window
    _open(qtbot, w, _first_volume(tiny_cohort))
    previous = w.volume
    bad = tmp_path / "corrupt.dcm"
    bad.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    with qtbot.waitSignal(w.workers.signals.failed, timeout=10000):
        w.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(w.warnings))
    assert "corrupt.dcm" in w.warnings[-1]
    assert w.volume is previous
    qtbot.keyClick(w, Qt.Key_Down)  # still usable


def test_shared_samples_open(qtbot, window, samples_dir):
    w = window
    paths = sorted((samples_dir / "heidelberg_vol").glob("*.vol"))
    paths += [samples_dir / "eyepy_synthetic" / "test_volume.vol", samples_dir / "eyepy_synthetic" / "heyex_xml"
              / "test_volume"]
    for path in paths:
        with qtbot.waitSignal(w.workers.signals.loaded, timeout=20000):
            w.open_path(str(path))
        if w.volume.scan_pattern == "circle":  # displayed, not analysed, with the reason on screen
            qtbot.waitUntil(lambda: "circle scan" in w.results.text(), timeout=5000)
        assert w.display is not None


def test_cancel_and_switch_during_analysis(qtbot, window, tiny_cohort):
    w = window
    w.predictor.batch_size = 1
    vols = sorted((tiny_cohort.parent / "volumes").iterdir())
    with qtbot.waitSignal(w.workers.signals.cancelled, timeout=30000):
        with qtbot.waitSignal(w.workers.signals.batch, timeout=30000):
            w.open_path(str(vols[0]))
        w.cancel_analysis()
    assert w.prediction is None and "cancelled" in w.results.text()
    # switching scans mid-analysis: results of the first are dropped, the second completes
    with qtbot.waitSignal(w.workers.signals.batch, timeout=30000):
        w.analyse()
    with qtbot.waitSignal(w.workers.signals.finished, timeout=60000, check_params_cb=lambda g, p: g == w.generation):
        w.open_path(str(vols[1]))
    assert w.volume.source.endswith(vols[1].name)
    assert w.prediction is not None and w.prediction.n_bscans == w.volume.n_bscans


FAST = ["--bscans-per-volume", "4", "--batch-size", "16"]


def _retrain_dialog(qtbot, window, manifest, out, epochs):
    from octviewer.gui.retrain_dialog import RetrainDialog

    dialog = RetrainDialog(window, manifest=str(manifest), out=str(out))
    dialog.model_ready.connect(window.load_model)
    qtbot.addWidget(dialog)
    dialog.variant.setCurrentText("resnet2d")
    dialog.epochs.setValue(epochs)
    dialog.image_size.setValue(32)
    dialog.init.setCurrentText("random")
    dialog.device.setCurrentText("cpu")
    dialog.extra_arguments = FAST
    return dialog


def test_retrain_to_completion_and_load(qtbot, window, tiny_cohort, tmp_path):
    w = window
    old = w.predictor
    dialog = _retrain_dialog(qtbot, w, tiny_cohort, tmp_path / "run", epochs=1)
    assert "Manifest OK" in dialog.validation.text()
    dialog.start()
    qtbot.waitUntil(lambda: dialog.process.state() == dialog.process.ProcessState.NotRunning, timeout=240000)
    assert dialog.stage.text() == "finished", dialog.log.toPlainText()[-2000:]
    assert dialog.load_button.isEnabled() and dialog.losses
    dialog.load_button.click()
    assert w.predictor is not old and w.predictor.model.architecture == "resnet2d"


def test_stop_retrain_keeps_old_model(qtbot, window, tiny_cohort, tmp_path):
    w = window
    old = w.predictor
    dialog = _retrain_dialog(qtbot, w, tiny_cohort, tmp_path / "run", epochs=200)
    dialog.start()
    qtbot.waitUntil(lambda: len(dialog.losses) > 0, timeout=120000)
    dialog.stop()
    qtbot.waitUntil(lambda: dialog.process.state() == dialog.process.ProcessState.NotRunning, timeout=60000)
    assert "stopped" in dialog.stage.text()
    assert not dialog.load_button.isEnabled()
    assert w.predictor is old
    assert not (tmp_path / "run" / "model.safetensors").exists()
