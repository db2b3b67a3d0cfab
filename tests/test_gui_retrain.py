"""Model > Retrain…, driven through its buttons: a new folder per run, explicit Resume, the
manifest check off the GUI thread, offline ImageNet weights caught before starting, and the
evaluation shown before a new model replaces the one in use."""

import os
import threading

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QProcess  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from octviewer.gui.main_window import MainWindow  # noqa: E402
from octviewer.gui.model import (
    retrain_checks,  # noqa: E402
    retrain_dialog,  # noqa: E402
)
from octviewer.model import Predictor, Preprocess, build_network, default_metadata, save_model  # noqa: E402

FAST = ["--bscans-per-volume", "4", "--batch-size", "16"]


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    meta = default_metadata("resnet2d", preprocess=Preprocess(size=32))
    meta.update(name="tiny-retrain-test", synthetic_data=True)
    return save_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", build_network("resnet2d", init="random"),
                      meta)


@pytest.fixture
def window(qtbot, tiny_model_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: None)
    w = MainWindow(Predictor(str(tiny_model_path), device="cpu"))
    qtbot.addWidget(w)
    yield w
    w.tasks.shutdown()


def _dialog(qtbot, window, manifest, out, epochs):
    dialog = retrain_dialog.RetrainDialog(window, manifest=str(manifest), out=str(out))
    dialog.model_ready.connect(window.models.load_model)
    qtbot.addWidget(dialog)
    dialog.variant.setCurrentText("resnet2d")
    dialog.epochs.setValue(epochs)
    dialog.image_size.setValue(32)
    dialog.init.setCurrentText("random")
    dialog.device.setCurrentText("cpu")
    dialog.extra_arguments = FAST
    return dialog


def _wait_done(qtbot, dialog, timeout=240000):
    qtbot.waitUntil(lambda: dialog.process is not None
                    and dialog.process.state() == QProcess.ProcessState.NotRunning, timeout=timeout)


def test_manifest_check_runs_in_a_worker_and_escapes_text(qtbot, window, tiny_cohort, tmp_path, monkeypatch):
    threads = []
    real = retrain_checks.validate_manifest
    monkeypatch.setattr(retrain_checks, "validate_manifest",
                        lambda p: threads.append(threading.current_thread()) or real(p))
    dialog = _dialog(qtbot, window, tiny_cohort, tmp_path, 1)
    qtbot.waitUntil(lambda: "Manifest OK" in dialog.validation.text(), timeout=30000)
    assert threads and threads[0] is not threading.main_thread()
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\n<img src=x>.dcm,glaucoma\n")
    dialog.manifest.setText(str(bad))
    dialog.validate()
    qtbot.waitUntil(lambda: dialog.manifest_ok is False, timeout=30000)
    assert "<img" not in dialog.validation.text()
    # typing a path: checked once the typing pauses, without Enter (walk-through)
    dialog.manifest.clear()
    qtbot.keyClicks(dialog.manifest, str(tmp_path / "nothing"))
    qtbot.waitUntil(lambda: "No manifest file" in dialog.validation.text(), timeout=5000)
    dialog.manifest.clear()
    qtbot.keyClicks(dialog.manifest, str(tiny_cohort))
    qtbot.waitUntil(lambda: dialog.manifest_ok is True, timeout=30000)


def test_offline_imagenet_is_caught_before_starting(qtbot, window, tiny_cohort, tmp_path, monkeypatch):
    monkeypatch.setattr(retrain_checks, "imagenet_weights_path", lambda: tmp_path / "nowhere" / "resnet18.pth")
    asked = []
    monkeypatch.setattr(retrain_checks, "confirm", lambda *a: asked.append(a[2]) or False)
    dialog = _dialog(qtbot, window, tiny_cohort, tmp_path / "runs", 1)
    dialog.show()
    dialog.init.setCurrentText("imagenet")
    assert dialog.init_note.isVisible() and "not on this computer" in dialog.init_note.text()
    dialog.start_button.click()
    assert asked and dialog.process is None and "Not started" in dialog.stage.text()
    weights = tmp_path / "resnet18.pth"
    weights.write_bytes(b"")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(weights), ""))
    dialog.pick_weights_button.click()
    assert dialog.init.currentText() == "weights file" and dialog.weights.text() == str(weights)
    dialog.init.setCurrentText("imagenet")
    dialog.use_random_button.click()
    assert dialog.init.currentText() == "random" and not dialog.init_note.isVisible()


def test_start_without_a_manifest_says_so_before_asking_anything(qtbot, window, tmp_path, monkeypatch):
    """Walk-through finding: Start with no manifest asked to download ImageNet weights first, then
    waited for a manifest check that never started (Start disabled for good)."""
    monkeypatch.setattr(retrain_checks, "imagenet_weights_path", lambda: tmp_path / "nowhere" / "resnet18.pth")
    asked = []
    monkeypatch.setattr(retrain_checks, "confirm", lambda *a: asked.append(a[2]) or True)
    dialog = retrain_dialog.RetrainDialog(window, manifest="", out=str(tmp_path / "runs"))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.init.setCurrentText("imagenet")
    for path in ("", str(tmp_path / "missing.csv")):
        dialog.manifest.setText(path)
        dialog.start_button.click()
        assert not asked and dialog.process is None and dialog.start_button.isEnabled()
        assert "choose the dataset manifest" in dialog.stage.text()
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n")
    dialog.manifest.setText(str(manifest))
    dialog.validate()  # a manifest is there now: the message about its absence goes
    assert dialog.stage.text() == ""


@pytest.mark.slow
def test_new_folder_per_run_resume_explicit_and_load_asks(qtbot, window, tiny_cohort, tmp_path, monkeypatch):
    w = window
    old = w.predictor
    runs = tmp_path / "runs"
    dialog = _dialog(qtbot, w, tiny_cohort, runs, epochs=200)
    dialog.start_button.click()  # the manifest check may still be running: Start waits for it
    qtbot.waitUntil(lambda: len(dialog.losses) > 0, timeout=120000)
    first = dialog.run_dir
    assert "--resume" not in dialog.process.arguments()
    dialog.stop_button.click()
    _wait_done(qtbot, dialog, 60000)
    assert "stopped" in dialog.stage.text() and dialog.resume_button.isEnabled()
    assert not dialog.load_button.isEnabled() and w.predictor is old
    dialog.resume_button.click()  # explicit: the same folder, with --resume
    assert dialog.run_dir == first and "--resume" in dialog.process.arguments()
    dialog.stop_button.click()
    _wait_done(qtbot, dialog, 60000)
    dialog.epochs.setValue(1)
    dialog.start_button.click()  # a new run never reuses the stopped one's checkpoints
    assert dialog.run_dir != first and dialog.run_dir.parent == runs
    assert "--resume" not in dialog.process.arguments()
    _wait_done(qtbot, dialog)
    assert dialog.stage.text() == "finished", dialog.log.toPlainText()[-2000:]
    assert dialog._stage_lines and dialog._stage_lines[0].value() == 0  # where the (first) stage begins
    questions = []
    monkeypatch.setattr(retrain_checks, "confirm", lambda *a: questions.append(a[2]) or False)
    dialog.load_button.click()
    assert questions and "Evaluation" in questions[0] and w.predictor is old  # declined: nothing changes
    monkeypatch.setattr(retrain_checks, "confirm", lambda *a: True)
    dialog.load_button.click()
    assert w.predictor is not old and w.predictor.model.architecture == "resnet2d"


def test_the_evaluation_before_loading_is_plain_and_warns_at_chance(qtbot, window, tmp_path):
    """The Load question showed report.md's raw Markdown tables, and nothing said that a test AUC of
    0.17 is below chance (fresh-install walk-through)."""
    import json

    dialog = retrain_dialog.RetrainDialog(window, manifest="m.csv", out=str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.run_dir = tmp_path
    assert dialog.evaluation_text() == "No evaluation report was written for this run."
    report = {"image_level": {"auc": 0.167, "ci95": {"auc": [0.05, 0.3]}, "ece": 0.2, "brier": 0.3, "n": 24},
              "vf_mae": {"md": {"mae": 3.1, "class_mean_mae": 2.5}}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    text = dialog.evaluation_text()
    assert text.startswith("Test split (24 volumes)") and "WARNING" in text and "0.167 [0.05, 0.30]" in text
    assert "MD mean absolute error 3.10 dB (class-mean baseline 2.50)" in text and "|" not in text
    report["image_level"]["auc"] = 0.91
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert "WARNING" not in dialog.evaluation_text()
    report["splits"] = {"test": {"patients": 2}}  # a tiny cohort: its figures mean nothing, and it says so
    (tmp_path / "report.json").write_text(json.dumps(report))
    text = dialog.evaluation_text()
    assert text.startswith("Test split (24 volumes, 2 patients)") and "only 2 test patients" in text
