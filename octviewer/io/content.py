"""One content digest of a scan file, whatever its format, encoding, header fields and stated spacing.

The study index (copies of one scan at a visit) and the trainer (the same scan twice in a manifest, a
model's training scans in a later cohort) compare scans by it. Both had compared stored bytes, so a scan
re-encoded losslessly (RLE, JPEG-LS) or converted to .npz was another scan (attack run 12, A12-3); then
the digest of the decoded voxels still hashed the spacing and the dtype, so the same scan exported as a
folder of PNG B-scans, a TIFF stack or a .npy (no spacing in those formats) was another scan again, and a
patient's DICOM could sit in the train split with its PNG export in the test split (attack run 14, A14-1).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np

#: The kind of digest ``volume_digest`` gives, kept beside a model's ``volume_digests`` (``digest_kind``): 1 hashed
#: stored bytes (before attack run 12), 2 decoded voxels with spacing and dtype (before run 14), 3 this. A model
#: whose digests are of another kind cannot be compared by content, and says so (attack run 15, A15-6).
CONTENT_DIGEST_KIND = 3

#: (real path, inode, size, mtime) of a regular file -> its digest, for this process: each file is decoded once
#: however many checks compare it (the trainer's duplicate check, check_volumes, fit's digests; a study's copies).
_CACHE: dict[tuple, str | None] = {}

#: The kind of ``sample_key`` it gives (its first field): the study's header cache keeps the keys, and one of
#: another kind is made again.
SAMPLE_KIND = "s1"

#: (real path, inode, size, mtime) -> its ``sample_key``, for this process (as ``_CACHE``).
_SAMPLES: dict[tuple, str | None] = {}


def canonical_voxels(data: np.ndarray) -> np.ndarray:
    """The voxels in one dtype per set of values: integers (and floats that are all whole numbers) in the
    narrowest of uint8, uint16, int32 that holds them, other floats as float64. An 8-bit DICOM, its 16-bit
    TIFF and its float32 .npy export then hash alike; values are never rounded, so two different scans don't."""
    if data.dtype.kind == "f":
        if not (np.isfinite(data).all() and np.array_equal(data, np.floor(data))):
            return np.ascontiguousarray(data, dtype=np.float64)
    elif data.dtype.kind not in "iub":
        return np.ascontiguousarray(data, dtype=np.float64)
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    for dtype in (np.uint8, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.ascontiguousarray(data, dtype=dtype)
    return np.ascontiguousarray(data, dtype=np.float64)


def content_digest(volume) -> str:
    """A hash of a volume's voxel values (``canonical_voxels``), shape and scan pattern only: not its spacing,
    dtype, laterality, device, notes or layers, which a conversion or a header edit changes."""
    h = hashlib.blake2b(digest_size=20)
    voxels = canonical_voxels(volume.data)
    h.update(repr((voxels.shape, voxels.dtype.str, volume.scan_pattern)).encode())
    h.update(memoryview(voxels).cast("B"))
    return h.hexdigest()


def volume_digest(path) -> str | None:
    """``content_digest`` of the volume at ``path``: one scan stored uncompressed, RLE or JPEG-LS lossless, as a
    DICOM, an .npz, a .npy, a TIFF stack or a folder of B-scan images, under any header fields, has one digest.
    None for a volume that does not open (opening it names the problem). Costs one decoding of the volume (about
    as long as opening it), once per file and process."""
    from octviewer.io import load_volume

    def digest(_key):
        try:
            return content_digest(load_volume(path))
        except Exception:  # noqa: BLE001 - a volume that does not open has no digest; opening it names the problem
            return None

    return _per_file(path, _CACHE, digest)


def _per_file(path, cache: dict, compute):
    """``compute(key)`` of the file at ``path``, kept in ``cache`` by its ``_file_key`` (a folder is not kept);
    None where the file cannot be stat'ed."""
    try:
        key = _file_key(path)
    except (OSError, ValueError):
        return None
    if key is not None and key in cache:
        return cache[key]
    value = compute(key)
    if key is not None:
        cache[key] = value
    return value


def _file_key(path) -> tuple | None:
    """(real path, inode, size, mtime) of a regular file, None for a folder (a folder of B-scans is not cached)."""
    st = os.stat(path)
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


def sample_key(path) -> str | None:
    """A cheap sign of a volume's content, to find the scans worth comparing by ``volume_digest`` without decoding
    every scan of a study: its shape and a hash of its middle B-scan's values (``canonical_voxels``). Two files of
    one content have one key whatever their format, encoding or header fields (a copy re-keyed by an anonymiser, an
    RLE re-encoding); two scans with one key are then decoded whole and compared (the key is no proof). A DICOM is
    read for that one frame only (pydicom reads its bytes alone: 2 to 5 ms for a 200 x 1024 x 200 RLE cube, whose
    whole decoding takes 0.3 s), a Heidelberg .vol for that B-scan's bytes; a file of another format is loaded
    whole, and its ``volume_digest`` kept so it is not decoded twice. None for a file that does not read (opening
    it names the problem)."""
    from octviewer.io import load_volume

    def sample(key):
        try:
            try:
                kind = _format(path) if key is not None or os.path.isdir(path) else ""
                if kind == "image_folder":
                    frame, shape = _folder_middle_bscan(Path(path))
                else:
                    read = {"dicom": _dicom_middle_frame, "heidelberg_vol": _vol_middle_bscan,
                            "npy": _npy_middle_bscan, "npz": _npz_middle_bscan, "tiff": _tiff_middle_page}[kind]
                    frame, shape = read(Path(path))
            except Exception:  # noqa: BLE001 - another format, or a frame that cannot decode alone: the whole volume
                volume = load_volume(path)
                if key is not None:
                    _CACHE[key] = content_digest(volume)
                frame, shape = volume.data[volume.data.shape[0] // 2], volume.data.shape
            voxels = canonical_voxels(np.asarray(frame))
            h = hashlib.blake2b(memoryview(voxels).cast("B"), digest_size=16)
            return f"{SAMPLE_KIND}:{'x'.join(str(int(n)) for n in shape)}:{voxels.dtype.str}:{h.hexdigest()}"
        except Exception:  # noqa: BLE001 - a volume that does not read has no key; opening it names the problem
            return None

    return _per_file(path, _SAMPLES, sample)


def bscan_count(path) -> int | None:
    """The B-scan count a scan file without a header record states in its format, read without decoding a pixel:
    a .npy's array header (its first axis), an .npz's volume member's .npy header (the first bytes of its stream,
    compressed or not: ``_npz_volume``), a TIFF stack's first series, a folder of B-scan images' image count (each
    then gives ``sample_key`` its middle B-scan, read alone). An .npz stated none, so an .npz export of one
    patient's scan listed under another patient was used there, nothing said (attack run 17, A17-9). The study
    index compares scans by content only where such a count matches (its cheap first step,
    ``study.index._same_scan_groups``); it took the count from DICOM and .vol header records only, so a NumPy or
    B-scan image export of one patient's scan listed in a manifest under another patient was used there, where the
    trainer refuses it by content (attack run 16, A16-12). None where the format states no count or the file does
    not read (opening it names the problem)."""
    from octviewer.io.limits import open_regular

    path = Path(path)
    try:
        if path.is_dir():
            from octviewer.io.formats import heyex_export
            from octviewer.io.heidelberg import heyex_bscan_count
            from octviewer.io.stacks import image_folder_files

            if heyex_export(path.iterdir()):  # its XML's B-scans
                return heyex_bscan_count(path)
            return len(image_folder_files(path)) or None
        suffix = path.suffix.lower()
        if suffix == ".npy":
            with open_regular(path) as f:
                shape = _npy_shape(f)
        elif suffix == ".npz":
            with open_regular(path) as f, _npz_volume(f) as member:
                shape = _npy_shape(member)
        elif suffix in (".tif", ".tiff"):
            from octviewer.io.stacks import _stack_of

            with open_regular(path) as f, _stack_of(f) as tif:
                shape = tuple(int(n) for n in tif.series[0].shape) if tif.series else ()
        else:
            return None
    except Exception:  # noqa: BLE001 - a file that does not read has no count; opening it names the problem
        return None
    return int(shape[0]) if len(shape) >= 3 else None


def _npy_shape(f) -> tuple:
    """The shape an .npy stream's header declares (nothing else is read)."""
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return tuple(reader(f)[0])


@contextlib.contextmanager
def _npz_volume(f):
    """The open stream of the member of an .npz archive (``f``, an open file) that ``io.stacks.read_npz`` reads as
    the volume: "volume" (``write_npz``), "oct_bscans" (Harvard-GF), else its one 3-D array. A compressed member is
    decompressed as it is read, so its .npy header and one B-scan cost a few reads, not the whole volume. Raises
    where the archive names no volume (opening it says why)."""
    import zipfile

    from octviewer.io.stacks import MAX_NPZ_MEMBERS

    with zipfile.ZipFile(f) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise ValueError("too many members")
        by_name = {i.filename[:-4] if i.filename.endswith(".npy") else i.filename: i for i in infos}
        member = by_name.get("volume") or by_name.get("oct_bscans")
        if member is None:
            three = []
            for info in infos:
                with contextlib.suppress(Exception), archive.open(info) as stream:
                    if len(_npy_shape(stream)) == 3:
                        three.append(info)
            if len(three) != 1:
                raise ValueError("no one volume array")
            member = three[0]
        with archive.open(member) as stream:
            yield stream


def _npy_middle_bscan(path: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """The middle B-scan of a C-ordered .npy (what ``io.stacks.read_npy`` gives for it) and the volume's shape, read
    from its bytes alone; another layout raises (the caller then loads the file whole)."""
    from octviewer.io.limits import open_regular

    with open_regular(path) as f:
        return _npy_stream_middle_bscan(path, f)


def _npz_middle_bscan(path: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """``_npy_middle_bscan`` of an .npz's volume member (``_npz_volume``), decompressed up to that B-scan only."""
    from octviewer.io.limits import open_regular

    with open_regular(path) as f, _npz_volume(f) as member:
        return _npy_stream_middle_bscan(path, member)


def _npy_stream_middle_bscan(path: Path, f) -> tuple[np.ndarray, tuple[int, ...]]:
    """The middle B-scan and the shape of the C-ordered .npy array in stream ``f`` (at its start)."""
    from octviewer.io.limits import check_dimensions

    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(f)
    if fortran or dtype.hasobject or len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] != 1):
        raise ValueError("not a plain C-ordered volume")
    shape = tuple(int(n) for n in shape[:3])
    check_dimensions(path, shape)
    size = shape[1] * shape[2] * dtype.itemsize
    f.seek(f.tell() + (shape[0] // 2) * size)
    raw = f.read(size)
    if len(raw) != size:
        raise ValueError("the file is shorter than its header says")
    frame = np.frombuffer(raw, dtype=dtype).reshape(shape[1:])
    return (frame.astype(np.uint8) if frame.dtype == np.bool_ else frame), shape


def _tiff_middle_page(path: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """The middle page of a grey TIFF stack (its first series) and the stack's shape, that page decoded alone; a
    colour stack raises (its grey conversion is the reader's: the caller loads it whole)."""
    from octviewer.io.limits import check_dimensions, open_regular
    from octviewer.io.stacks import _stack_of

    with open_regular(path) as f, _stack_of(f) as tif:
        series = tif.series[0]
        shape = tuple(int(n) for n in series.shape)
        if len(shape) != 3 or series.axes.endswith("S") or int(series.keyframe.samplesperpixel) > 1:
            raise ValueError("not a grey stack")
        check_dimensions(path, shape)
        frame = tif.asarray(key=shape[0] // 2, series=0)
    if frame.shape != shape[1:]:
        raise ValueError("the page does not have the series' size")
    return frame, shape


def _folder_middle_bscan(path: Path) -> tuple[np.ndarray, tuple[int, ...]]:
    """The middle image of a folder of B-scans as ``io.stacks.read_image_folder`` reads it, and the volume's shape
    (the image count and the first image's header size), the other images not decoded."""
    from octviewer.io.stacks import image_folder_files, image_header_size, read_bscan_image

    files = image_folder_files(path)
    if not files:
        raise ValueError("no B-scan images")
    first, _ = image_header_size(files[0])
    return read_bscan_image(files[len(files) // 2], first), (len(files), *first)


def _format(path) -> str:
    from octviewer.io.formats import detect

    return detect(Path(path)).name


def _dicom_middle_frame(path: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The middle frame of a DICOM as stored (what ``load_volume`` gives for it) and the volume's shape, read
    without the other frames; a size no OCT device writes is refused before anything is allocated."""
    import pydicom
    from pydicom.pixels import pixel_array

    from octviewer.io.dicom import quiet_pydicom
    from octviewer.io.limits import check_dimensions, open_regular

    with quiet_pydicom(), open_regular(path) as f:  # pydicom's records name files
        ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["NumberOfFrames", "Rows", "Columns"],
                             force=True)
        frames = ds.get("NumberOfFrames", 1)
        n = int(str(frames if frames not in (None, "") else 1).strip())
        shape = (n, int(ds.Rows), int(ds.Columns))
        check_dimensions(path, shape)
        f.seek(0)
        frame = pixel_array(f, index=n // 2)
    if frame.shape != shape[1:]:
        raise ValueError("the frame does not have the header's size")
    return frame, shape


def _vol_middle_bscan(path: Path) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The middle B-scan of a Heidelberg .vol as ``io.heidelberg.read_vol`` gives it (float32, the format's invalid
    marker and non-finite values 0) and the volume's shape, read without the other B-scans: after the 2048-byte
    header and the localizer, each B-scan is its header (its size at byte 12) and size_y x size_x float32."""
    import struct

    from octviewer.io.limits import check_dimensions, open_regular

    with open_regular(path) as f:
        head = f.read(2048)
        size_x, n, size_y = struct.unpack_from("<3I", head, 12)
        slo_x, slo_y = struct.unpack_from("<2I", head, 48)
        shape = (n, size_y, size_x)
        check_dimensions(path, shape)
        start = 2048 + slo_x * slo_y
        f.seek(start + 12)
        header = struct.unpack("<I", f.read(4))[0]
        f.seek(start + (n // 2) * (header + 4 * size_x * size_y) + header)
        raw = f.read(4 * size_x * size_y)
    frame = np.frombuffer(raw, dtype="<f4").reshape(size_y, size_x).astype(np.float32)
    frame[~np.isfinite(frame) | (frame > 3.0e38)] = 0.0
    return frame, shape
