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
    qtbot.mouseClick(dialog.close_button, Qt.LeftButton)
    assert not dialog.isVisible()
