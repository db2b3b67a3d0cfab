"""Progressive reads in the controller, without Qt: reports of a superseded read are dropped (and
its decoding cancelled once the new scan is shown), a file that fails to open leaves the scan on
screen decoding, nothing is analysed before the scan is complete, a decoding error clears the half
scan."""

import numpy as np
from test_gui_controller import FakePredictor, FakeTasks, volume

from octviewer.gui.viewer.controller import ViewerController
from octviewer.gui.viewer.state import ViewerState


class FakeProgressive:
    """What the controller uses of a ProgressiveVolume."""

    def __init__(self, vol, first=None):
        self.volume, self.cancels = vol, 0
        self.first_index = vol.n_bscans // 2 if first is None else first
        self.mask = np.zeros(vol.n_bscans, bool)
        self.mask[self.first_index] = True

    def loaded(self):
        return self.mask.copy()

    def cancel(self):
        self.cancels += 1


def setup():
    state, workers = ViewerState(), FakeTasks()
    events = []
    state.events.load_failed.connect(lambda m: events.append(("load_failed", m)))
    state.events.settled.connect(lambda: events.append(("settled",)))
    state.events.frames.connect(lambda ix: events.append(("frames", ix)))
    return state, workers, ViewerController(state, workers, FakePredictor()), events


def test_scan_shown_at_first_frame_and_analysed_only_when_complete():
    state, workers, controller, events = setup()
    vol = volume(8)
    g = controller.open_path(vol.source)
    controller.on_opened(g, FakeProgressive(vol, first=2), vol.data)
    assert state.volume is vol and state.index == 2 and not state.complete and state.loaded_count == 1
    assert state.is_loaded(2) and not state.is_loaded(3)
    controller.analyse()  # e.g. the Analyse menu while decoding: refused until complete
    assert workers.analyses == []
    controller.on_frames(g, [3, 1])
    assert state.is_loaded(3) and state.loaded_count == 3 and ("frames", [3, 1]) in events
    controller.on_load_done(g, None)
    assert state.complete and state.is_loaded(7) and ("frames", None) in events
    assert len(workers.analyses) == 1 and workers.analyses[0][2] is vol


def test_reports_of_a_superseded_read_are_dropped_and_it_is_cancelled():
    state, workers, controller, events = setup()
    a, b = volume(8, source="a.dcm"), volume(6, source="b.dcm")
    ga = controller.open_path(a.source)
    first = FakeProgressive(a)
    controller.on_opened(ga, first, a.data)
    gb = controller.open_path(b.source)  # the scan on screen stays, decoding, until b can be shown
    assert first.cancels == 0 and state.volume is a
    late = FakeProgressive(a)
    controller.on_opened(ga, late, a.data)  # a read overtaken before its first frame was shown
    assert late.cancels == 1 and state.volume is a
    controller.on_opened(gb, FakeProgressive(b), b.data)  # b is shown: a's decoding stops
    assert first.cancels == 1 and state.volume is b
    controller.on_frames(ga, [0])
    controller.on_load_done(ga, "a.dcm: loading was cancelled")
    assert not any(e[0] == "load_failed" for e in events) and workers.analyses == []
    assert not state.is_loaded(0)
    controller.on_load_done(gb, None)
    assert state.volume is b and state.complete and workers.analyses[-1][2] is b


def test_a_file_that_fails_to_open_leaves_the_decoding_scan_on_screen():
    state, workers, controller, events = setup()
    a = volume(8, source="a.dcm")
    ga = controller.open_path(a.source)
    first = FakeProgressive(a)
    controller.on_opened(ga, first, a.data)
    gb = controller.open_path("broken.vol")
    controller.on_load_failed(gb, "broken.vol: not a Heidelberg .vol file (bad magic)")
    assert state.volume is a and first.cancels == 0
    assert [e[1] for e in events if e[0] == "load_failed"] == ["broken.vol: not a Heidelberg .vol file (bad magic)"]
    assert ("settled",) not in events  # a scan still decoding: it settles when done (walk-through)
    controller.on_frames(ga, [0, 1])  # its decoding goes on and is still applied
    assert state.is_loaded(0) and state.is_loaded(1)
    controller.on_load_done(ga, None)
    assert state.complete and workers.analyses[-1][2] is a


def test_decoding_error_clears_the_half_scan_with_a_message():
    state, workers, controller, events = setup()
    vol = volume(8)
    g = controller.open_path(vol.source)
    controller.on_opened(g, FakeProgressive(vol), vol.data)
    controller.on_load_done(g, "a.dcm: cannot decode B-scan 3 (JPEG 2000): bad codestream")
    assert state.volume is None and workers.analyses == []
    failed = [e[1] for e in events if e[0] == "load_failed"]
    assert len(failed) == 1 and "B-scan 3" in failed[0] and "not shown" in failed[0]
    assert events[-1] == ("settled",)
