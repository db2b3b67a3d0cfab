"""TaskSlot.busy(): what the widgets ask before they enable a button or start a request."""

import time

from octviewer.gui import background


def test_a_slot_is_not_busy_once_its_result_is_delivered(qtbot, monkeypatch):
    """The worker thread runs on for a moment after its result reached the GUI thread. busy() was "the
    thread is alive", so the PACS dialog, enabling Retrieve on the series list's arrival, saw itself busy
    and left the button grey; the click after it did nothing (under load only: two PACS dialog tests
    timed out that way). Here the thread lingers after emitting its result, as a loaded machine makes it."""
    real = background.Task._emit

    def lingering(signal, *args):
        real(signal, *args)
        if args and args[0] == "the series":
            time.sleep(0.5)  # the thread has emitted its result and not yet ended

    monkeypatch.setattr(background.Task, "_emit", staticmethod(lingering))
    slot = background.TaskSlot(progress_widgets=False)
    seen = []
    slot.done.connect(lambda result: seen.append((result, slot.busy())))
    assert not slot.busy()
    slot.start(lambda progress, cancel: "the series")
    assert slot.busy()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == [("the series", False)]
    slot.shutdown(2.0)


def test_a_dropped_request_leaves_the_slot_free(qtbot):
    slot = background.TaskSlot(progress_widgets=False)
    slot.start(lambda progress, cancel: cancel.wait(5))
    assert slot.busy()
    slot.drop()
    assert not slot.busy()
    slot.shutdown(2.0)
