"""Progressive reading (issue 16 item 1): first B-scan at once, the rest in parallel, cancellable."""

from __future__ import annotations

import threading

import numpy as np
import pydicom
import pytest
from corpus import small_volume

from octviewer import VolumeReadError, load_volume, save_volume
from octviewer.io import open_volume_progressive
from octviewer.io.progressive import PARALLEL_MIN_FRAMES


@pytest.fixture(scope="module")
def j2k(tmp_path_factory):
    path = tmp_path_factory.mktemp("prog") / "j2k.dcm"
    return save_volume(small_volume((PARALLEL_MIN_FRAMES + 8, 48, 40)), path, compression="jpeg2000")


class Recorder:
    def __init__(self):
        self.frames, self.done, self.lock = [], [], threading.Lock()
        self.finished = threading.Event()

    def on_frames(self, indices):
        with self.lock:
            self.frames.extend(indices)

    def on_done(self, error):
        self.done.append(error)
        self.finished.set()


@pytest.mark.parametrize("workers", [2, 1])
def test_first_frame_at_once_then_all_frames_once(j2k, workers):
    reference = pydicom.dcmread(j2k).pixel_array  # pydicom's own decoder, one thread
    n = reference.shape[0]
    seen = Recorder()
    progressive = open_volume_progressive(j2k, on_frames=seen.on_frames, on_done=seen.on_done, workers=workers)
    first = progressive.first_index
    assert first == n // 2
    np.testing.assert_array_equal(progressive.volume.data[first], reference[first])  # before waiting
    assert seen.frames[0] == first and progressive.is_loaded(first)
    volume = progressive.wait(timeout=60)
    assert volume is progressive.volume and progressive.done and progressive.error is None
    np.testing.assert_array_equal(volume.data, reference)
    assert sorted(seen.frames) == list(range(n))                  # each frame reported exactly once
    assert seen.finished.wait(5) and seen.done == [None]
    assert progressive.loaded().all() and volume.laterality == "OD" and volume.spacing.known
    if workers == 1:  # one decoding thread: strictly centre-out
        assert [abs(i - first) for i in seen.frames] == sorted(abs(i - first) for i in seen.frames)


def test_first_index_is_honoured_and_clamped(j2k):
    assert open_volume_progressive(j2k, first_index=3).wait(60) is not None
    progressive = open_volume_progressive(j2k, first_index=10_000, workers=1)
    assert progressive.first_index == progressive.n_bscans - 1
    progressive.wait(60)


def test_cancel_stops_and_wait_raises(j2k):
    stop = threading.Event()
    stop.set()  # already cancelled: the first frame is still decoded (the caller asked for it), no more
    seen = Recorder()
    progressive = open_volume_progressive(j2k, cancel=stop, on_done=seen.on_done, workers=1)
    assert progressive.is_loaded(progressive.first_index)
    with pytest.raises(VolumeReadError, match="cancelled"):
        progressive.wait(timeout=60)
    assert progressive.cancelled and progressive.loaded_count < progressive.n_bscans
    assert seen.finished.wait(5) and isinstance(seen.done[0], VolumeReadError)


def test_a_damaged_frame_is_reported_with_its_number(j2k, tmp_path):
    from pydicom.encaps import encapsulate, generate_frames

    ds = pydicom.dcmread(j2k)
    n = int(ds.NumberOfFrames)
    frames = list(generate_frames(ds.PixelData, number_of_frames=n))
    frames[2] = frames[2][:30] + bytes(len(frames[2]) - 30)
    ds.PixelData = encapsulate(frames)
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    progressive = open_volume_progressive(bad, workers=2)
    with pytest.raises(VolumeReadError, match=r"bad.dcm: cannot decode B-scan 3 \(JPEG 2000\): \S"):
        progressive.wait(timeout=60)


def test_header_problems_raise_before_returning(j2k, tmp_path):
    ds = pydicom.dcmread(j2k)
    ds.NumberOfFrames = int(ds.NumberOfFrames) - 1
    ds.save_as(tmp_path / "lie.dcm")
    with pytest.raises(VolumeReadError, match="disagree"):
        open_volume_progressive(tmp_path / "lie.dcm")


@pytest.mark.parametrize("suffix, options", [(".dcm", {}), (".dcm", {"compression": "rle"}), (".npz", {})])
def test_formats_read_in_one_piece_come_back_complete(tmp_path, suffix, options):
    path = save_volume(small_volume((5, 32, 32)), tmp_path / f"v{suffix}", **options)
    seen = Recorder()
    progressive = open_volume_progressive(path, on_frames=seen.on_frames, on_done=seen.on_done)
    assert progressive.done and sorted(seen.frames) == list(range(5)) and seen.done == [None]
    np.testing.assert_array_equal(progressive.wait(0).data, load_volume(path).data)


def test_decoding_goes_on_in_thread_when_processes_cannot_run(j2k, monkeypatch):
    # e.g. a frozen application whose executable cannot run "-m octviewer.io.frame_worker"
    from octviewer.io.decoders import POOL

    POOL.shutdown()
    monkeypatch.setattr("sys.executable", "/bin/false")
    try:
        volume = open_volume_progressive(j2k, workers=2).wait(timeout=60)
    finally:
        POOL.shutdown()
    np.testing.assert_array_equal(volume.data, pydicom.dcmread(j2k).pixel_array)


def test_load_volume_decodes_many_jpeg2000_frames_in_parallel(j2k):
    from octviewer.io.decoders import POOL

    np.testing.assert_array_equal(load_volume(j2k).data, pydicom.dcmread(j2k).pixel_array)
    assert POOL.pids()  # the decoding processes did the work and stay for the next volume


def test_image_folder_progressive_in_threads(tmp_path):
    import cv2
    from corpus import oct_like

    data = oct_like((9, 32, 40))
    folder = tmp_path / "bscans"
    folder.mkdir()
    for i, bscan in enumerate(data):
        cv2.imwrite(str(folder / f"B{i + 1}.png"), bscan)
    seen = Recorder()
    progressive = open_volume_progressive(folder, on_frames=seen.on_frames, workers=2)
    assert progressive.first_index == 4
    np.testing.assert_array_equal(progressive.volume.data[4], data[4])
    np.testing.assert_array_equal(progressive.wait(60).data, data)
    assert sorted(seen.frames) == list(range(9))
    (folder / "B7.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    with pytest.raises(VolumeReadError, match="B7.png"):
        open_volume_progressive(folder).wait(60)
