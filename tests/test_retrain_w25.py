"""Walk-through H65, W25: Model > Retrain offered 224 px beside a model in use made at 160, and had no button to
close it (only the window's X or Esc). Through the window's own action."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def test_retrain_starts_from_the_model_in_use_and_closes_with_a_button(qtbot, window):
    w = window
    w.menu_actions["retrain"].trigger()
    dialog = w.models.retrain_dialog
    qtbot.waitUntil(dialog.isVisible)
    meta = w.controller.predictor.model.meta
    assert dialog.image_size.value() == meta.preprocess.size != 224
    assert dialog.variant.currentText() == meta.architecture
    from octviewer.gui.model import retrain_checks  # the initialisation that works here (walk-through H82, W16)

    assert dialog.init.currentText() == ("imagenet" if retrain_checks.imagenet_weights_path().exists() else "random")
    qtbot.mouseClick(dialog.close_button, Qt.LeftButton)
    assert not dialog.isVisible()


def test_retrain_follows_the_model_loaded_since_it_was_first_opened(qtbot, window, monkeypatch, tmp_path):
    """A13-4: the dialog is kept between openings, and after Model > Load model… of a model made at 32 px it still
    offered the first model's 160 px."""
    from PySide6.QtWidgets import QFileDialog
    from test_pipeline import tiny_model

    w = window
    w.menu_actions["retrain"].trigger()
    dialog = w.models.retrain_dialog
    qtbot.mouseClick(dialog.close_button, Qt.LeftButton)
    other = tiny_model(tmp_path)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (other, ""))
    w.menu_actions["load_model"].trigger()
    qtbot.waitUntil(lambda: w.controller.predictor.model.meta.preprocess.size == 32, timeout=30000)
    w.menu_actions["retrain"].trigger()
    assert w.models.retrain_dialog is dialog and dialog.image_size.value() == 32
