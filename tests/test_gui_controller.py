"""The viewer's state and controller without a screen (no Qt imported): background results are fed
in by hand, in the orders that threads can deliver them."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from octviewer.core import OctVolume, Prediction
from octviewer.gui.viewer.controller import ViewerController
from octviewer.gui.viewer.state import ViewerState


class FakeTasks:
    """Records requests; the test delivers the results."""

    def __init__(self):
        self.loads, self.analyses, self.cancels, self.waits = [], [], 0, 0
        self.running = False

    def load(self, generation, path):
        self.loads.append((generation, path))

    def analyse(self, generation, predictor, volume, first, options):
        self.analyses.append((generation, predictor, volume, options))
        self.running = True

    def cancel(self):
        self.cancels += 1

    def wait_idle(self, timeout_s):
        self.waits += 1
        self.running = False
        return True


class FakePredictor:
    def __init__(self, device="cpu"):
        self.device = device
        self.model = SimpleNamespace(preprocess=SimpleNamespace(size=64), weights=np.zeros(3))

    def check(self, volume):
        if volume.scan_pattern != "volume":
            raise ValueError(f"this is a {volume.scan_pattern} scan, so it is shown but not analysed")


def volume(n=6, pattern="volume", source="a.dcm"):
    return OctVolume(data=np.full((n, 20, 30), 100, np.uint8), scan_pattern=pattern, source=source,
                     laterality="OD")


def finish(controller, generation, result_prediction=None, reasons=(), structure=None):
    """The pipeline's reports for one analysis: the prediction (streamed), then its ScanResult."""
    from octviewer.pipeline import ScanResult

    if result_prediction is not None:
        controller.on_prediction(generation, result_prediction)
    controller.on_analysed(generation, ScanResult(None, result_prediction, structure, tuple(reasons)))


def prediction(n, p=0.9):
    return Prediction(bscan_probability=np.full(n, p, np.float32), bscan_vf={}, cam=np.ones((n, 2, 2), np.float32),
                      probability=p, vf={}, threshold=0.5, model_name="fake")


@pytest.fixture
def viewer():
    state, workers = ViewerState(), FakeTasks()
    events = []
    state.events.load_failed.connect(lambda m: events.append(("load_failed", m)))
    state.events.settled.connect(lambda: events.append(("settled",)))
    return state, workers, ViewerController(state, workers, FakePredictor()), events


def open_(controller, workers, vol):
    g = controller.open_path(vol.source)
    controller.on_loaded(g, vol, vol.display())
    return workers.analyses[-1][0] if workers.analyses and workers.analyses[-1][2] is vol else None


def test_state_and_controller_need_no_qt():
    code = ("import sys, octviewer.gui.viewer.controller, octviewer.gui.viewer.state; "
            "sys.exit(any(m.startswith('PySide6') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_new_scan_resets_every_view_even_when_not_analysable(viewer):
    state, workers, c, _ = viewer
    g = open_(c, workers, volume(6))
    finish(c, g, prediction(6))
    assert state.prediction is not None and np.isfinite(state.probs).all()
    circle = volume(1, pattern="circle", source="circle.vol")
    g = open_(c, workers, circle)
    assert state.volume is circle
    assert state.prediction is None and state.cams is None
    assert state.probs.shape == (1,) and not np.isfinite(state.probs).any()  # no previous eye's curve
    finish(c, g, reasons=["this is a circle scan, so it is shown but not analysed"])
    assert "circle scan" in state.reason and state.prediction is None


def test_read_error_during_analysis_is_a_load_failure(viewer):
    state, workers, c, events = viewer
    first = volume(6)
    g = open_(c, workers, first)
    c.on_batch(g, SimpleNamespace(indices=np.array([0]), probability=np.array([0.7]), cam=np.zeros((1, 2, 2))))
    bad = c.open_path("corrupt.dcm")
    c.on_load_failed(bad, "corrupt.dcm: not a DICOM file")
    assert ("load_failed", "corrupt.dcm: not a DICOM file") in events
    assert state.volume is first and state.reason is None  # the old scan's panel is untouched
    finish(c, g, prediction(6))  # the analysis of the scan on screen still completes
    assert state.prediction is not None


def test_stale_results_are_dropped(viewer):
    state, workers, c, _ = viewer
    g1 = open_(c, workers, volume(6, source="a.dcm"))
    second = volume(4, source="b.dcm")
    g2 = open_(c, workers, second)
    finish(c, g1, prediction(6))
    c.on_structure(g1, SimpleNamespace(quality=None))
    c.on_analysis_failed(g1, "boom")
    c.on_cancelled(g1)
    assert state.volume is second and state.prediction is None and state.reason is None
    assert state.structure is None and state.measuring
    finish(c, g2, prediction(4))
    assert state.prediction.n_bscans == 4
    old_load = c.open_path("c.dcm")
    c.open_path("d.dcm")
    c.on_loaded(old_load, volume(3, source="c.dcm"))
    assert state.volume is second


def test_a_withdrawn_result_leaves_the_screen_and_a_failed_measurement_says_why(viewer):
    from octviewer.pipeline import ScanResult

    state, workers, c, events = viewer
    g = open_(c, workers, volume(6))
    assert workers.analyses[-1][3].gate and workers.analyses[-1][3].network  # the state's options, with the model
    c.on_prediction(g, prediction(6))
    assert state.prediction is not None and state.measuring and ("settled",) not in events
    quality = SimpleNamespace(ok=False, reasons=("segmentation failed on 21% of A-scans",), signal_text="signal 0.4")
    c.on_analysed(g, ScanResult(quality, None, None, quality.reasons, withdrawn=True,
                                structure_error="structure analysis failed: ValueError: x"))
    assert state.prediction is None and state.cams is None and "21% of A-scans" in state.reason
    assert state.structure is None and not state.measuring and "ValueError" in state.structure_note
    assert events[-1] == ("settled",)


def test_without_a_model_the_scan_is_measured_only():
    state, tasks = ViewerState(), FakeTasks()
    c = ViewerController(state, tasks, None)
    g = open_(c, tasks, volume(6))
    assert g is not None and tasks.analyses[-1][1] is None and not tasks.analyses[-1][3].network
    report = SimpleNamespace(quality=SimpleNamespace(ok=True))
    c.on_structure(g, report)
    finish(c, g, reasons=["the network was not run (structure only)"], structure=report)
    assert state.structure is report and state.reason is None  # no model: nothing to explain


def test_a_view_that_cannot_draw_the_new_scan_rolls_it_back(viewer):
    state, workers, c, events = viewer
    first = volume(6)
    open_(c, workers, first)
    drawn = []

    def view():
        if state.volume.n_bscans == 5:
            raise TypeError("unsupported operand for str")
        drawn.append(state.volume)
    state.events.scan.connect(view)
    c.open_path("bad.npz")
    c.on_loaded(c.load_generation, volume(5, source="bad.npz"))
    assert state.volume is first and drawn[-1] is first  # every view back on the previous scan
    assert events[-2][0] == "load_failed" and "bad.npz" in events[-2][1]


def test_switching_device_cancels_waits_and_copies_the_model(viewer):
    state, workers, c, _ = viewer
    open_(c, workers, volume(6))
    old = c.predictor
    built = []

    def make(model, device):
        assert not workers.running, "built while the analysis still held the model"
        built.append(model)
        p = FakePredictor(device)
        p.model = model
        return p
    c.set_device("cuda", make_predictor=make)
    assert workers.cancels >= 1 and workers.waits == 1
    assert c.predictor.device == "cuda" and c.predictor.model is not old.model
    assert workers.analyses[-1][1] is c.predictor  # the interrupted analysis restarts on the new device


def test_display_settings_and_contrast_bounds():
    state = ViewerState()
    seen = []
    state.events.display.connect(lambda: seen.append(state.settings.levels))
    state.adjust_contrast(0.5)
    lo, hi = state.settings.levels
    assert 0 < lo < hi < 255
    for _ in range(50):
        state.adjust_brightness(10)
    assert state.settings.levels[0] == 0 and state.settings.levels[1] > state.settings.levels[0]
    with pytest.raises(ValueError):
        state.update_settings(axial_mode="sideways")
    assert seen


def test_a_cancelled_network_still_leaves_the_scan_measured(viewer):
    state, workers, c, events = viewer
    g = open_(c, workers, volume(6))
    c.cancel_analysis()
    c.on_cancelled(g)
    assert state.reason == "Analysis cancelled." and state.prediction is None
    g2, predictor, vol, options = workers.analyses[-1]
    assert g2 != g and predictor is None and not options.network and vol is state.volume  # measured only
    assert state.measuring and ("settled",) not in events
    report = SimpleNamespace(quality=SimpleNamespace(ok=True))
    c.on_structure(g2, report)
    finish(c, g2, reasons=["the network was not run (structure only)"], structure=report)
    assert state.structure is report and state.reason == "Analysis cancelled." and events[-1] == ("settled",)
