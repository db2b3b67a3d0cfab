"""An HFA CZM XML export in a study folder, through the window: File > Open study folder… finds it, and
the measured MD, PSD and VFI it holds appear in the results panel beside the estimate for that eye."""

import datetime as dt
import os
import shutil

import pytest
from conftest import open_study_folder  # noqa: E402

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from test_hfa_xml import hfa_xml  # noqa: E402

from octviewer.study.demo import write_demo_study  # noqa: E402


@pytest.fixture
def study(tmp_path):
    """One SYNTHETIC patient, one visit, both eyes; its only measured field is an HFA export of the right
    eye, done 5 days after the scans (the demo's own OPV files and CSV are taken out)."""
    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=11)
    shutil.rmtree(root / "perimetry", ignore_errors=True)
    (root / "visual_fields.csv").unlink(missing_ok=True)
    (root / "damaged.xml").write_text("<HFA_EXPORT><PATIENT>")
    return root


def test_an_hfa_xml_export_shows_beside_the_estimate(qtbot, window, study, monkeypatch):
    w = window
    panel = open_study_folder(qtbot, w, monkeypatch, study)
    index = panel.index
    [patient] = index.patients()
    [visit] = index.visits(patient)
    when = visit.date + dt.timedelta(days=5)
    xml = hfa_xml(study, name="hfa_export.xml", patient=patient, site="1", visit=when.isoformat(),
                  series_time=f"{when.isoformat()}T11:02:00", md="-7.84", psd="6.21", vfi="79")
    with qtbot.waitSignal(panel.index_ready, timeout=30000):  # the user reopens the folder with the export in it
        w.menu_actions["open_study_folder"].trigger()
    index = panel.index
    [od_scan] = index.scans_for(patient, visit.label, "OD")
    [os_scan] = index.scans_for(patient, visit.label, "OS")
    assert index.measured_vf_for_scan(od_scan.path).source == str(xml)
    assert "damaged.xml: not well-formed XML" in index.problems_text()
    assert "1 measured visual field" in panel.status.text()

    with qtbot.waitSignal(w.settled, timeout=60000):
        w.open_path(od_scan.path)
    qtbot.waitUntil(lambda: w.prediction is not None and "Measured visual field" in w.results.text(), timeout=60000)
    text = w.results.text()
    p = w.prediction.vf
    assert f"MD: predicted {p['md']:.1f} dB, measured -7.8 dB" in text
    assert f"PSD: predicted {p['psd']:.1f} dB, measured 6.2 dB" in text
    assert f"VFI: predicted {p['vfi']:.1f} %, measured 79.0 %" in text
    assert w.results.extra.isVisible()

    with qtbot.waitSignal(w.settled, timeout=60000):  # the left eye was not measured: nothing is shown
        w.open_path(os_scan.path)
    qtbot.waitUntil(lambda: w.prediction is not None, timeout=60000)
    assert "Measured visual field" not in w.results.text()
