"""Progressive, parallel reading: the B-scan the viewer shows first at once, the rest as they land.

A Cirrus-sized JPEG 2000 DICOM (200 x 1024 x 200) takes seconds to decode on one core, and a
viewer that waits for all of it shows nothing meanwhile. ``open_volume_progressive`` reads the
header, decodes the first frame the viewer needs (the middle B-scan unless told otherwise) and
returns; the other frames are decoded in child processes (OpenJPEG holds the GIL, so threads would
not run in parallel), centre-out from that first frame, straight into one preallocated array.

Folders of B-scan images are read the same way with threads (OpenCV releases the GIL while it
decodes). Memory is one copy of the pixels plus the compressed codestreams not decoded yet (each
is dropped as its frame lands) and a frame or two in flight per process. Formats read in one
piece (uncompressed DICOM is a zero-copy view, NumPy, TIFF, .vol, ...) come back complete
through the same API.

Usage from a load worker (the callbacks run on decoding threads, not the caller's: a GUI must
hand them to its own thread, e.g. with a queued signal)::

    progressive = open_volume_progressive(path, on_frames=frames_landed, on_done=finished,
                                          cancel=cancel_event)
    show(progressive.volume, progressive.first_index)   # one B-scan is decoded already
    ...
    volume = progressive.wait()                          # all frames, or VolumeReadError
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import OctVolume
from .decoders import POOL, default_workers
from .errors import VolumeReadError
from .limits import check_bscan_shape

#: Fewer frames than this are decoded in the calling thread (starting processes would cost more).
PARALLEL_MIN_FRAMES = 16


def _centre_out(n: int, first: int) -> list[int]:
    """Frame indices by distance from ``first``: what the user scrolls to next lands first."""
    return sorted((i for i in range(n) if i != first), key=lambda i: (abs(i - first), i))


# -- the progressive volume ----------------------------------------------------------------------------------
class ProgressiveVolume:
    """A volume whose frames are still arriving. See ``open_volume_progressive``.

    ``volume.data`` is the one array every frame is decoded into; frames not decoded yet are 0.
    """

    def __init__(self, volume: OctVolume, first_index: int, on_frames, on_done, cancel):
        self.volume = volume
        self.first_index = first_index
        self._loaded = np.zeros(volume.n_bscans, bool)
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._cancel_requested = threading.Event()
        self._external_cancel = cancel
        self._on_frames = on_frames
        self._on_done = on_done
        self.error: VolumeReadError | None = None

    # state -------------------------------------------------------------------------------------------------
    @property
    def n_bscans(self) -> int:
        return self.volume.n_bscans

    @property
    def loaded_count(self) -> int:
        with self._lock:
            return int(self._loaded.sum())

    def loaded(self) -> np.ndarray:
        """Boolean mask of the B-scans decoded so far (a copy)."""
        with self._lock:
            return self._loaded.copy()

    def is_loaded(self, index: int) -> bool:
        with self._lock:
            return bool(self._loaded[index])

    @property
    def done(self) -> bool:
        """True once every frame is decoded, or decoding failed or was cancelled."""
        return self._finished.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancel_requested.is_set() or self._external_cancelled()

    def cancel(self) -> None:
        """Stop decoding; frames in flight finish, no more start. ``wait`` then raises."""
        self._cancel_requested.set()

    def wait(self, timeout: float | None = None) -> OctVolume | None:
        """The complete volume; None if ``timeout`` passed first.

        Raises VolumeReadError if a frame could not be decoded or loading was cancelled.
        """
        if not self._finished.wait(timeout):
            return None
        if self.error is not None:
            raise self.error
        return self.volume

    # used by the decoding threads ------------------------------------------------------------------------------
    def _external_cancelled(self) -> bool:
        cancel = self._external_cancel
        if cancel is None:
            return False
        return bool(cancel.is_set() if hasattr(cancel, "is_set") else cancel())

    def _landed(self, indices: Iterable[int]) -> None:
        indices = list(indices)
        with self._lock:
            self._loaded[indices] = True
        if self._on_frames is not None:
            self._on_frames(indices)

    def _finish(self, error: VolumeReadError | None) -> None:
        with self._lock:
            if self._finished.is_set():
                return
            if error is None and self.cancelled and not self._loaded.all():
                error = VolumeReadError(self.volume.source, "loading was cancelled")
            self.error = error
            self._finished.set()
        if self._on_done is not None:
            self._on_done(error)


def _complete(volume: OctVolume, first: int, on_frames, on_done, cancel) -> ProgressiveVolume:
    result = ProgressiveVolume(volume, first, on_frames, on_done, cancel)
    result._landed(range(volume.n_bscans))
    result._finish(None)
    return result


def open_volume_progressive(
    path: str | os.PathLike,
    first_index: int | None = None,
    on_frames: Callable[[list[int]], None] | None = None,
    on_done: Callable[[VolumeReadError | None], None] | None = None,
    cancel=None,
    workers: int | None = None,
    allow_pickle: bool = False,
) -> ProgressiveVolume:
    """Open a volume so that one B-scan can be shown at once and the rest arrives in parallel.

    Returns after the header is checked (all of ``load_volume``'s checks on the header: kind of
    file, sizes, byte budget, frame count against the data) and frame ``first_index`` (default:
    the middle B-scan, ``n // 2``; clamped into range) is decoded into ``volume.data``. For
    multi-frame JPEG 2000 DICOM the other frames are then decoded by ``workers`` child processes
    (default: one per usable core), for a folder of B-scan images by ``workers`` threads; nearest
    to ``first_index`` first.

    - ``on_frames(indices)`` is called with the list of B-scan indices that just landed, once
      for the first frame before this function returns and then from decoding threads (possibly
      from several at once; keep it short and thread-safe, e.g. emit a queued Qt signal). Draw a
      B-scan only once it is reported (or ``is_loaded(i)``): other rows of ``volume.data`` may
      be zeros or being written.
    - ``on_done(error)`` is called once at the end, from a decoding thread (or before return for
      formats read in one piece), with None or the VolumeReadError (a damaged frame, cancelled).
    - ``cancel``: a ``threading.Event`` (or anything with ``is_set()``) or a no-argument callable
      returning True to stop; ``ProgressiveVolume.cancel()`` does the same.

    Raises VolumeReadError (only) for problems found before returning. Formats read in one piece
    return an already complete ProgressiveVolume, with both callbacks called before return.
    """
    from .dicom import open_dicom
    from .formats import detect
    from .loading import describe_failure, given_path, load_volume, validate_volume

    path = given_path(path)

    def reading(step):
        """Run a reading step; anything but VolumeReadError becomes one (as in load_volume)."""
        try:
            return step()
        except VolumeReadError:
            raise
        except Exception as exc:
            raise VolumeReadError(path, describe_failure(exc)) from exc

    def clamp(n):
        return n // 2 if first_index is None else min(max(int(first_index), 0), n - 1)

    fmt = reading(lambda: detect(path))
    if fmt.name == "image_folder":
        return _open_image_folder(path, clamp, on_frames, on_done, cancel, workers)
    frames = reading(lambda: open_dicom(path) if fmt.name == "dicom" else None)
    if frames is None or frames.frames is None or not frames.jpeg2000:
        # read in one piece: other formats, uncompressed DICOM (a zero-copy view), RLE and others
        volume = reading(lambda: load_volume(path, allow_pickle=allow_pickle) if frames is None else
                         validate_volume(path, frames.volume(frames.decode_all()).replace(source=str(path))))
        return _complete(volume, clamp(volume.n_bscans), on_frames, on_done, cancel)

    check_bscan_shape(path, (frames.n, frames.rows, frames.cols))
    n, first = frames.n, clamp(frames.n)
    workers = default_workers() if workers is None else max(1, int(workers))
    parallel = n >= PARALLEL_MIN_FRAMES and workers > 1
    if parallel:
        POOL.warm(workers)  # processes start while this thread reads the first frame
    data = np.zeros((n, frames.rows, frames.cols), frames.dtype)

    def first_frame():
        data[first] = frames.decode_frame(first)
        frames.frames[first] = b""
        return validate_volume(path, frames.volume(data).replace(source=str(path)))

    result = ProgressiveVolume(reading(first_frame), first, on_frames, on_done, cancel)
    result._landed([first])
    order = _centre_out(n, first)
    if not order:
        result._finish(None)
        return result
    _start_decoding(result, _dicom_frames(frames), data, order, workers if parallel else 0)
    return result


def _open_image_folder(path: Path, clamp, on_frames, on_done, cancel, workers) -> ProgressiveVolume:
    """A folder of B-scan images: headers checked, the first image decoded, the rest in threads."""
    from .loading import describe_failure, validate_volume
    from .stacks import NO_SPACING, folder_notes, plan_image_folder, read_bscan_image

    try:
        files, shape = plan_image_folder(path)
        first = clamp(len(files))
        image = read_bscan_image(files[first], shape)
        data = np.zeros((len(files), *shape), image.dtype)
        data[first] = image
        notes = folder_notes(files, lambda i: read_bscan_image(files[i], shape))  # before the rest land: decoded here
        volume = validate_volume(path, OctVolume(data=data, notes=(NO_SPACING, *notes), source=str(path)))
    except VolumeReadError:
        raise
    except Exception as exc:
        raise VolumeReadError(path, describe_failure(exc)) from exc
    result = ProgressiveVolume(volume, first, on_frames, on_done, cancel)
    result._landed([first])
    order = _centre_out(len(files), first)
    if not order:
        result._finish(None)
        return result
    threads = default_workers() if workers is None else max(1, int(workers))
    _start_decoding(result, _image_frames(files, shape, image.dtype), data, order, threads)
    return result


def read_dicom(path: Path) -> OctVolume:
    """A DICOM OPT file, all frames; many JPEG 2000 frames are decoded in parallel processes.

    Here rather than in ``dicom`` because it needs this module's decoding pool, and this module
    opens DICOM files through ``dicom``: kept here, neither imports the other."""
    from .dicom import open_dicom

    frames = open_dicom(path)
    if frames.frames is not None and frames.jpeg2000 and frames.n >= PARALLEL_MIN_FRAMES:
        return frames.volume(decode_in_parallel(frames))
    return frames.volume(frames.decode_all())


def decode_in_parallel(frames, workers: int | None = None) -> np.ndarray:
    """Every frame of an opened JPEG 2000 DICOM, decoded by the pool, blocking (``read_dicom``'s path)."""
    data = np.empty((frames.n, frames.rows, frames.cols), frames.dtype)
    workers = default_workers() if workers is None else max(1, int(workers))
    result = ProgressiveVolume(frames.volume(data), 0, None, None, None)
    _start_decoding(result, _dicom_frames(frames), data, list(range(frames.n)), workers if workers > 1 else 0)
    result.wait()
    return data


@dataclass
class _Frames:
    """What the decoding loop needs from a per-frame format.

    ``decode_here(i)`` decodes frame i in the calling thread, checked; ``codestream(i)`` gives the
    bytes a decoding process takes (None: decode in threads, for codecs that release the GIL);
    ``check(i, pixels)`` checks what a process returned; ``release(i)`` frees frame i's input.
    """

    path: Path
    decode_here: Callable[[int], np.ndarray]
    codestream: Callable[[int], bytes] | None = None
    check: Callable[[int, np.ndarray], np.ndarray] | None = None
    release: Callable[[int], None] = lambda i: None


def _dicom_frames(frames) -> _Frames:
    from .dicom import check_frame, check_jpeg2000_size

    def release(i):
        frames.frames[i] = b""  # memory shrinks as frames land: one copy of the pixels

    def codestream(i):  # its declared size checked here: a decoding process would allocate it
        return check_jpeg2000_size(frames.path, i, frames.frames[i], frames.rows * frames.cols,
                                   f"{frames.rows} x {frames.cols}")

    return _Frames(frames.path, frames.decode_frame, codestream,
                   lambda i, px: check_frame(frames.path, i, px, frames.rows, frames.cols, frames.dtype,
                                             frames.bits_stored), release)


def _image_frames(files, shape, dtype) -> _Frames:
    from .stacks import read_bscan_image

    def decode_here(i):
        image = read_bscan_image(files[i], shape)  # OpenCV releases the GIL: threads run in parallel
        if image.dtype != dtype:
            raise VolumeReadError(files[i], f"{image.dtype.itemsize * 8}-bit B-scan among "
                                            f"{np.dtype(dtype).itemsize * 8}-bit ones")
        return image

    return _Frames(files[0].parent, decode_here)


def _start_decoding(result: ProgressiveVolume, source: _Frames, data: np.ndarray, order: list[int],
                    workers: int) -> None:
    """Decode ``order`` into ``data`` on ``workers`` threads (0: one thread), each feeding a
    decoding process when the source has codestreams."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in order:
        todo.put(i)
    remaining = [max(1, workers)]
    lock = threading.Lock()
    failure: list[VolumeReadError] = []

    def run():
        process = POOL.acquire() if workers and source.codestream is not None else None
        try:
            while not failure and not result.cancelled:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    break
                if process is None:
                    frame = source.decode_here(index)
                else:
                    try:
                        status, frame = process.decode(index, source.codestream(index))
                    except TimeoutError as exc:  # stuck on this frame: do not retry it in-thread
                        process = None
                        raise VolumeReadError(source.path, f"cannot decode B-scan {index + 1} (JPEG 2000): "
                                                           f"{exc}") from None
                    except OSError:  # the process died: finish this frame here, go on in-thread
                        process = None
                        frame = source.decode_here(index)
                    else:
                        if status:
                            reason = frame or "the decoder gave no reason"
                            raise VolumeReadError(source.path, f"cannot decode B-scan {index + 1} (JPEG 2000): "
                                                               f"{reason}")
                        frame = source.check(index, frame)
                data[index] = frame
                source.release(index)
                result._landed([index])
        except VolumeReadError as exc:
            failure.append(exc)
        except Exception as exc:  # noqa: BLE001 - reported through the ProgressiveVolume
            from .loading import describe_failure
            failure.append(VolumeReadError(source.path, describe_failure(exc)))
        finally:
            if process is not None:
                POOL.release(process)
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                result._finish(failure[0] if failure else None)

    for k in range(max(1, workers)):
        threading.Thread(target=run, name=f"octviewer-decode-{k}", daemon=True).start()
