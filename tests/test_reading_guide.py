"""Walk-through H65, W17: the Help menu had only About and Keyboard shortcuts, no key to the colours, "~", "●",
the threshold or the quality words. Help > Reading the results, through the window's menu."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QPlainTextEdit

pytestmark = pytest.mark.gui


def test_help_reading_the_results_explains_the_marks_the_panels_use(qtbot, window):
    from octviewer.core.prediction import OUTSIDE_MARK, VF_WORSE_BESIDE

    w = window
    w.menu_actions["reading_guide"].trigger()
    dialog = w.dialog
    qtbot.waitUntil(dialog.isVisible)
    assert dialog.windowTitle() == "Reading the results"
    text = dialog.findChild(QPlainTextEdit).toPlainText()
    for words in ("P(glaucoma)", "threshold", VF_WORSE_BESIDE, OUTSIDE_MARK.strip(), "~   approximate",
                  "borderline (1st-5th)", "grey: not classified (NS, NI", "not compared", "quality check",
                  "SYNTHETIC", "Research use only",
                  # the study checks had no key (walk-through H129, V5)
                  "Check (used as listed)", "Scans naming different people", "A name in two scripts",
                  "give each their own patient ID in a study manifest"):
        assert words in text, words
    assert w.menu_actions["reading_guide"] in w.help_menu.actions()
