"""Decode and preprocess each volume once into an on-disk uint8 cache, then train from it.

The cache holds exactly what the network sees before normalisation (see
``octviewer.model.preprocess``): for 2D models the resized B-scans (n, S, S), for 3D models the
resampled cube (D, H, W). Entries are keyed by the file's content and the preprocessing, so a
changed file or a new image size never reuses a stale entry, and they are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from octviewer import VolumeReadError, load_volume
from octviewer.core.files import private_folder
from octviewer.model import Preprocess

from .manifest import ManifestError, Record
from .stop import Stopped

MAX_VOLUME_BYTES = 8 << 30  # no OCT volume is larger; hashing stops there instead of reading forever


def cache_key(path: Path, pre: Preprocess) -> str:
    """Hash of the preprocessing and the volume's bytes; only regular files are read, at most
    ``MAX_VOLUME_BYTES`` in all (a device such as /dev/zero would otherwise never end)."""
    from octviewer.io.formats import LINKED_FOLDER, walk_files
    from octviewer.io.limits import open_regular

    h = hashlib.sha1(json.dumps(pre.to_dict(), sort_keys=True).encode())
    if path.is_dir():  # walked with a list, not rglob(), which recursed per level (a 1,000-deep folder)
        entries, unreadable = walk_files(path)
        unreadable = [u for u in unreadable if u[1] != LINKED_FOLDER]  # not read by the loader either
        if unreadable:
            raise VolumeReadError(*unreadable[0])
        files = sorted(f for f in entries if not f.is_symlink())
    else:
        files = [path]
    total = 0
    for f in files:
        if not f.is_file():  # is_file follows links and is False for devices, FIFOs and sockets
            raise VolumeReadError(f, "not a regular file")
        with open_regular(f) as fh:  # non-blocking, checked again: a FIFO swapped in after the look
            for chunk in iter(lambda fh=fh: fh.read(1 << 22), b""):
                total += len(chunk)
                if total > MAX_VOLUME_BYTES:
                    raise VolumeReadError(f, f"larger than {MAX_VOLUME_BYTES >> 30} GiB")
                h.update(chunk)
    return h.hexdigest()[:24]


def preprocess_volume(path: Path, pre: Preprocess, allow_pickle: bool = False) -> np.ndarray:
    volume = load_volume(path, allow_pickle=allow_pickle)
    display = pre.display_tensor(volume)
    lo, hi = pre.intensity_range(display)
    out = pre.resample_volume(display, lo, hi) if pre.is_3d else pre.resize_bscans(display, lo, hi)
    return out.numpy()


def _record(target: Path, array: np.ndarray) -> dict:
    st = os.stat(target)
    return {"shape": list(array.shape), "dtype": array.dtype.str, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


#: an entry's record (shape, dtype, size, mtime) is about 100 bytes
MAX_RECORD_BYTES = 4096


def _mapped(target: Path) -> np.ndarray:
    """The .npy ``target`` as a read-only memmap of the file ``open_regular`` opened (non-blocking,
    checked with fstat): ``np.load`` opened a FIFO blocking, for good (attack run 5, F19)."""
    from octviewer.io.limits import open_regular

    fmt = np.lib.format
    with open_regular(target) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy version {version}")
        shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fh)
        if dtype.hasobject:  # as np.load(allow_pickle=False)
            raise ValueError("an object array")
        return np.memmap(fh, dtype, "r", fh.tell(), shape, "F" if fortran else "C")


def _entry_problem(target: Path, pre: Preprocess):
    """(array, None) for a usable entry, else (None, why). An entry is used only if it loads, is uint8
    of the shape the preprocessing gives, and is the very file this cache wrote (its record beside it:
    shape, size, mtime). Why: a cut or empty entry was a raw traceback, one of another shape failed in
    mid-training, and a well-formed wrong one (zeros) was trained on silently (attack run 4, F9). The
    entry and its record are opened as files only: a FIFO blocked for good, a record linked to
    /dev/zero was read to 3.3 GB in 5 s (attack run 5, F19)."""
    from octviewer.core.files import FileRefused, read_small_file

    try:
        array = _mapped(target)
    except VolumeReadError as exc:
        return None, f"cannot be used ({exc.problem})"
    except (ValueError, EOFError, OSError) as exc:
        return None, f"does not load ({type(exc).__name__})"
    expected = tuple(pre.volume_shape) if pre.is_3d else (pre.size, pre.size)
    if (array.dtype != np.uint8 or array.ndim != 3 or not array.shape[0]
            or (array.shape if pre.is_3d else array.shape[1:]) != expected):
        return None, f"is {array.dtype} {array.shape}, not what the preprocessing gives"
    try:
        record = json.loads(read_small_file(target.with_suffix(".json"), MAX_RECORD_BYTES))
    except FileRefused as exc:
        return None, f"has a record that cannot be used ({exc})"
    except (OSError, ValueError):
        return None, "has no record of its writing (an older cache, or the record is damaged)"
    if record != _record(target, array):
        return None, "was changed after this cache wrote it"
    return array, None


def _cache_one(rec: Record, pre: Preprocess, cache_dir: Path, allow_pickle: bool):
    """(read-only array, why an existing entry was rebuilt or None)."""
    target = cache_dir / f"{cache_key(rec.path, pre)}.npy"
    why = None
    if target.exists():
        array, why = _entry_problem(target, pre)
        if array is not None:
            return array, None
    tmp = target.with_name(target.name + f".{os.getpid()}.{threading.get_ident()}.part")
    side = tmp.with_suffix(".json-part")
    try:
        array = preprocess_volume(rec.path, pre, allow_pickle)
        with open(tmp, "wb") as f:
            np.save(f, array)
        os.replace(tmp, target)
        side.write_text(json.dumps(_record(target, array)), encoding="utf-8")
        os.replace(side, target.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
    return np.load(target, mmap_mode="r"), (f"{target.name} {why}" if why else None)


def cache_workers() -> int:
    """Decoding threads: DICOM/JPEG 2000 decoders and torch resizing release the GIL."""
    return max(1, min(16, (os.cpu_count() or 2) - 1))


def build_cache(records: list[Record], pre: Preprocess, cache_dir: Path, progress=None,
                skip_bad: bool = False, allow_pickle: bool = False, should_stop=None,
                workers: int | None = None) -> list[np.ndarray]:
    """One read-only uint8 memmap per record; unreadable volumes are reported with their rows.

    Volumes are decoded in ``workers`` threads, in order. ``should_stop()`` is asked before each
    volume starts; when it says yes, the volumes already started are finished and ``Stopped`` is
    raised with a message that says nothing was trained (the entries written are kept and reused)."""
    cache_dir = Path(cache_dir)
    private_folder(cache_dir)  # every training scan's pixels: owner-only where it makes it (A13-8)
    workers = workers or cache_workers()
    arrays, problems, rebuilt = [None] * len(records), [], []
    done = 0

    def collect(k, future):
        nonlocal done
        try:
            arrays[k], why = future.result()
            if why:
                rebuilt.append(why)
        except VolumeReadError as exc:
            problems.append((k, f"row {records[k].row}: unreadable volume: {exc}"))
        done += 1
        if progress:
            progress(done, len(records))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque()
        for k, rec in enumerate(records):
            if should_stop is not None and should_stop():
                while pending:
                    collect(*pending.popleft())
                raise Stopped(f"stopped while preparing the cache ({done} of {len(records)} volumes done); no "
                              "training had started, nothing to resume: rerun (the cached volumes are reused)")
            pending.append((k, pool.submit(_cache_one, rec, pre, cache_dir, allow_pickle)))
            if len(pending) >= 2 * workers:
                collect(*pending.popleft())
        while pending:
            collect(*pending.popleft())
    if rebuilt:
        more = f" (and {len(rebuilt) - 1} more)" if len(rebuilt) > 1 else ""
        print(f"note: cache entry {rebuilt[0]}; rebuilt from its volume{more}", file=sys.stderr)
    problems = [p for _, p in sorted(problems)]
    if problems and not skip_bad:
        raise ManifestError(cache_dir, problems)
    return arrays


def bscan_batch(arrays: list[np.ndarray], items: np.ndarray, pre: Preprocess) -> torch.Tensor:
    """(B, 2) (volume, bscan) pairs -> (B, 3, S, S) uint8 triplets, edges repeated."""
    out = np.empty((len(items), 3, pre.size, pre.size), np.uint8)
    for j, (v, b) in enumerate(items):
        a = arrays[v]
        n = a.shape[0]
        out[j] = a[[max(b - 1, 0), b, min(b + 1, n - 1)]]
    return torch.from_numpy(out)
