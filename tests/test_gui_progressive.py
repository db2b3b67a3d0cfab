"""The viewer reads multi-frame JPEG 2000 DICOM progressively (issue 16): the first B-scan is on
screen before the volume is complete, B-scans not decoded yet say so, opening another file or
closing the window stops the decoding, a frame that cannot be decoded gets the load-failed dialog.

Decoding is held back by a gate in front of every frame after the first (the "slow decoder"), so
the tests see the window while the volume is incomplete on any machine, however fast."""

import dataclasses
import os
import threading
import time

import numpy as np
import pydicom
import pytest
from conftest import open_window
from corpus import small_volume

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from octviewer import VolumeReadError, save_volume  # noqa: E402
from octviewer.io import progressive  # noqa: E402
from octviewer.model import Preprocess, build_network, default_metadata, save_model  # noqa: E402

N = progressive.PARALLEL_MIN_FRAMES + 4  # enough frames for the parallel decoding processes


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=64))
    meta.update(name="tiny-test-model", synthetic_data=True)
    return save_model(tmp_path_factory.mktemp("m") / "tiny.safetensors", build_network("semt", init="random"), meta)


@pytest.fixture(scope="module")
def j2k(tmp_path_factory):
    folder = tmp_path_factory.mktemp("j2k")
    return save_volume(small_volume((N, 64, 48)), folder / "scan.dcm", compression="jpeg2000")


@pytest.fixture
def window(qtbot, model_path, monkeypatch):
    yield from open_window(qtbot, monkeypatch, model_path)


@pytest.fixture
def gate(monkeypatch):
    """Every frame after the first waits for ``gate.set()`` before it is decoded."""
    gate = threading.Event()
    real = progressive._dicom_frames

    def held(frames):
        source = real(frames)

        def wait(decode):
            def decode_later(i):
                gate.wait(60)
                return decode(i)
            return decode_later
        return dataclasses.replace(source, decode_here=wait(source.decode_here), codestream=wait(source.codestream))
    monkeypatch.setattr(progressive, "_dicom_frames", held)
    yield gate
    gate.set()


def _open_from_menu(qtbot, w, path, monkeypatch):
    from octviewer.io import dialog_filters

    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: asked.append(a) or (str(path), ""))
    w.menu_actions["open"].trigger()
    assert asked[0][3] == dialog_filters()  # the file types come from the io registry
    assert "*.dcm" in asked[0][3].split(";;")[0]


def test_first_bscan_is_shown_before_the_volume_is_complete(qtbot, window, j2k, gate, monkeypatch):
    w = window
    reference = pydicom.dcmread(j2k).pixel_array
    _open_from_menu(qtbot, w, j2k, monkeypatch)
    qtbot.waitUntil(lambda: w.volume is not None, timeout=30000)
    middle = N // 2
    # on screen: the decoded middle B-scan, while the other frames are still held back
    assert not w.state.complete and w.state.loaded_count == 1 and w.index == middle
    assert w.bscan.image.isVisible() and np.array_equal(w.bscan.image.image, reference[middle])
    assert not w.bscan.placeholder.isVisible()
    assert np.shares_memory(w.display, w.volume.data)  # one copy of the pixels
    assert w.progress.isVisible() and w.progress.text().startswith("Decoding B-scans 1/")
    assert w.cancel_button.isVisible()  # decoding can be cancelled (walk-through 42b-d)
    # the en-face has one row so far; the rest is transparent, not black tissue
    enface = w.enface.image.image
    assert enface.shape == (N, 48, 4) and enface[middle, :, 3].all() and not enface[middle + 1, :, 3].any()
    # nothing is analysed before every B-scan is there
    assert w.prediction is None and not w.state.analysing
    # the user scrolls to a B-scan not decoded yet: a placeholder, never the empty row
    qtbot.keyClick(w, Qt.Key_Down)
    assert w.index == middle + 1
    assert not w.bscan.image.isVisible() and w.bscan.placeholder.isVisible()
    assert "decoding" in w.bscan.label.toPlainText() and "decoding" in w.bscan.placeholder.textItem.toPlainText()
    with qtbot.waitSignal(w.settled, timeout=60000):
        gate.set()
    # complete: the B-scan on screen is drawn, the en-face is the whole projection, analysed
    assert w.state.complete and np.array_equal(w.volume.data, reference)
    assert w.bscan.image.isVisible() and not w.bscan.placeholder.isVisible()
    assert np.array_equal(w.bscan.image.image, reference[middle + 1])
    assert w.enface.image.image.shape == (N, 48)
    assert w.prediction is not None and np.isfinite(w.probs).all() and not w.progress.isVisible()


def test_opening_another_file_cancels_the_decoding(qtbot, window, j2k, gate, tmp_path):
    w = window
    w.open_path(j2k)
    qtbot.waitUntil(lambda: w.volume is not None, timeout=30000)
    first = w.controller._decoding
    assert first is not None and not first.done
    other = save_volume(small_volume((5, 64, 48)), tmp_path / "other.npz")
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.open_path(other)
    assert first.cancelled
    gate.set()
    with pytest.raises(VolumeReadError, match="cancelled"):
        first.wait(timeout=60)
    assert first.loaded_count < N  # it stopped: the held frames were never all decoded
    # late reports of the cancelled read are dropped, not applied to the new scan: wait until they are all
    # delivered (a read's task ends after its decoder's last report)
    qtbot.waitUntil(lambda: not w.tasks.busy(), timeout=60000)
    assert w.volume.source.endswith("other.npz") and w.volume.n_bscans == 5 and w.state.complete
    assert w.prediction is not None and w.warnings == []


def test_a_file_that_fails_to_open_while_decoding_leaves_the_scan_on_screen(qtbot, window, j2k, gate, tmp_path):
    """Found in a walk-through: opening a broken file while the scan on screen was still decoding
    emptied the window after the dialog (the new read cancelled the old decoding at once)."""
    w = window
    w.open_path(j2k)
    qtbot.waitUntil(lambda: w.volume is not None, timeout=30000)
    decoding = w.controller._decoding
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"not a DICOM file" * 10)
    settled = []
    w.settled.connect(lambda: settled.append(1))
    w.open_path(broken)
    qtbot.waitUntil(lambda: len(w.warnings) == 1, timeout=60000)
    assert "broken.dcm" in w.warnings[0]
    assert not settled  # the scan on screen is still decoding: nothing has settled yet
    assert w.volume is not None and w.volume.source.endswith("scan.dcm") and not decoding.cancelled
    with qtbot.waitSignal(w.settled, timeout=60000):
        gate.set()
    assert w.state.complete and w.prediction is not None and w.warnings == [w.warnings[0]]


def test_a_frame_that_cannot_be_decoded_gets_the_dialog_and_no_half_scan(qtbot, window, j2k, tmp_path):
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(j2k)
    frames = list(generate_frames(ds.PixelData, number_of_frames=N))
    frames[2] = frames[2][:30] + bytes(len(frames[2]) - 30)  # the middle frame is fine, the third is not
    ds.PixelData = encapsulate(frames)
    bad = tmp_path / "damaged.dcm"
    ds.save_as(bad)
    w = window
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.open_path(bad)
    assert len(w.warnings) == 1 and "damaged.dcm" in w.warnings[0] and "B-scan 3" in w.warnings[0]
    assert "not shown" in w.warnings[0]
    assert w.volume is None and w.prediction is None and not w.progress.isVisible()
    assert "Open a scan" in w.results.text()


def test_closing_while_decoding_does_not_hang(qtbot, window, j2k, gate):
    w = window
    w.open_path(j2k)
    qtbot.waitUntil(lambda: w.volume is not None, timeout=30000)
    decoding = w.controller._decoding
    started = time.perf_counter()
    w.close()
    assert time.perf_counter() - started < 5
    assert decoding.cancelled
    gate.set()
    with pytest.raises(VolumeReadError, match="cancelled"):
        decoding.wait(timeout=60)


def test_a_16_bit_scan_is_shown_when_complete_with_the_whole_volume_contrast(qtbot, window, tmp_path):
    # its display contrast is the whole volume's min-max: a first frame alone cannot give it
    path = save_volume(small_volume((N, 64, 48), np.uint16), tmp_path / "deep.dcm", compression="jpeg2000")
    w = window
    with qtbot.waitSignal(w.settled, timeout=60000):
        w.open_path(path)
    assert w.state.complete and w.volume.data.dtype == np.uint16 and w.display.dtype == np.uint8
    assert np.array_equal(w.display, w.volume.display()) and w.prediction is not None and w.warnings == []
