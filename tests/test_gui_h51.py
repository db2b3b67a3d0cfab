"""Ninth walk-through (H51): the OU wheels' global class, the window's CSV, the model card, and layout.

Each test drives the window's own widgets or writers and fails on the code before its fix."""

import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from octviewer.structure import rnfl  # noqa: E402
from octviewer.structure.analysis import StructureReport  # noqa: E402
from octviewer.structure.quality import Quality  # noqa: E402


def _report(global_class="borderline", laterality="OD"):
    """A measured report whose global RNFL is borderline and whose sectors are all normal."""
    sectors = {name: 100.0 for name in rnfl.SECTORS}
    classes = {"global": global_class, **{f"sector_{s}": "normal" for s in rnfl.SECTORS if s not in ("NS", "NI")}}
    return StructureReport(laterality=laterality, scan_pattern="circle", quality=Quality(True, 0.8),
                           rnfl_profile=np.full(rnfl.PROFILE_SAMPLES, 75.0), rnfl_global_um=75.0,
                           quadrants={q: 75.0 for q in rnfl.QUADRANTS}, sectors=sectors, classes=classes)


def test_the_ou_wheel_colours_the_global_rnfl_as_the_structure_panel_does(qtbot):
    """Finding 2: the Structure panel showed G 75 yellow (borderline); the OU view (and the OU report, which
    grabs it) painted the wheel's centre grey, "not classified" by its own key."""
    from octviewer.gui.structure.page import CLASS_COLOURS
    from octviewer.gui.study.ou_view import OUView
    from octviewer.study.ou import EyeSummary, VisitSummary

    view = OUView()
    qtbot.addWidget(view)
    view.resize(900, 650)
    view.show()
    summary = VisitSummary("P", "V1", {"OD": EyeSummary("OD", ["a"], structure=_report("borderline")),
                                       "OS": EyeSummary("OS", ["b"], structure=_report("normal", "OS"))})
    view.show_summary(summary)
    for eye, cls in (("OD", "borderline"), ("OS", "normal")):
        wheel = view.columns[eye].wheel
        image = wheel.grab().toImage()
        side = min(wheel.width(), wheel.height()) - 24
        # inside the centre disc, off its two lines of text
        centre = image.pixelColor(wheel.width() // 2 - int(side * 0.15), wheel.height() // 2)
        assert centre.name() == CLASS_COLOURS[cls].name(), (eye, centre.name())
