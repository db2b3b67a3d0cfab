"""Generic stacks: NumPy ``.npy``/``.npz``, multi-page TIFF, and folders of B-scan images.

These formats carry no physical spacing (except our own ``.npz``, which stores it), and the
volume says so in its ``notes`` rather than inventing a scale. NumPy files are opened without
pickle: an object array would execute code on load, so it is refused unless the caller says the
file is trusted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import zipfile
from pathlib import Path

import numpy as np

from ..core import Localizer, OctVolume, Spacing
from ..core.volume import INTENSITY_TRANSFORMS, LATERALITIES, SCAN_PATTERNS
from .convert import grey_localizer, grey_stack
from .errors import VolumeReadError
from .formats import IMAGE_SUFFIXES
from .limits import (
    FIRST_OCT,
    check_bscan_shape,
    check_budget,
    check_dimensions,
    open_regular,
    plausible_mm,
    require_readable,
)
from .loading import device_problem

NO_SPACING = "the file carries no physical spacing: distances and the scale bar are unavailable"

#: Maetschke et al. (2019) Zenodo optic-disc cubes: ``POAG-000123-2012-01-31-OS.npy``
ZENODO_NAME = re.compile(r"^(?P<label>Normal|POAG)-(?P<patient>[^-]+)-(?P<date>\d{4}-\d{2}-\d{2})-(?P<eye>OD|OS)$")


def parse_zenodo_name(stem: str) -> dict | None:
    """Label, patient, visit date and eye from a Zenodo cube's file name; None if it does not match."""
    m = ZENODO_NAME.match(stem)
    if not m:
        return None
    try:
        date = dt.date.fromisoformat(m["date"])
    except ValueError:
        return None
    return {"label": "glaucoma" if m["label"] == "POAG" else "normal", "patient_id": m["patient"],
            "visit": date, "eye": m["eye"]}


#: More members than this is no volume file of ours or of a dataset we read.
MAX_NPZ_MEMBERS = 64


def _npy_header(path, fileobj, available: int, field: str | None, allow_pickle: bool):
    """Read and check an .npy header: no object dtype unless trusted, sizes that fit the file."""
    version = np.lib.format.read_magic(fileobj)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = reader(fileobj)
    name = f"field '{field}'" if field else "the array"
    if dtype.hasobject and not allow_pickle:
        raise VolumeReadError(
            path, f"{name} holds Python objects, which would run code when loaded; "
                  "open it with allow_pickle=True (--allow-pickle on the command line) only if you trust the file")
    if not dtype.hasobject:
        if len(shape):
            check_dimensions(path, shape, what=name.removeprefix("the "))  # check_dimensions says "the"
        if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > available:
            raise VolumeReadError(path, f"the file is truncated: {name} declares shape {shape} "
                                        f"but only {available} bytes are stored")
    return shape, dtype


def _as_volume_array(path, array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        raise VolumeReadError(path, f"this is a single 2-D image {array.shape}, not an OCT volume")
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise VolumeReadError(path, f"expected a 3-D volume (B-scans, depth, width), got shape {array.shape}")
    check_bscan_shape(path, array.shape)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return array


def read_npy(path: Path) -> OctVolume:
    size = require_readable(path, folder_ok=False).st_size
    with open_regular(path) as f:
        shape, dtype = _npy_header(path, f, size, None, allow_pickle=False)
        if len(shape) == 3:
            check_bscan_shape(path, shape)
        check_budget(path, float(np.prod(shape, dtype=np.float64)) * dtype.itemsize, size)
        f.seek(0)
        data = _as_volume_array(path, np.load(f, allow_pickle=False))
    check_not_label_mask(path, data)
    zenodo = parse_zenodo_name(path.stem)
    notes = [NO_SPACING]
    if zenodo:
        notes.append("Zenodo optic-disc cube (Maetschke et al. 2019): eye and date from the file name")
    return OctVolume(data=np.ascontiguousarray(data), laterality=zenodo["eye"] if zenodo else None,
                     acquired=zenodo["visit"] if zenodo else None, notes=tuple(notes))


def _valid_mm(value, zero_ok: bool = False) -> bool:
    """None, or a JSON number that is a plausible spacing (0 allowed between B-scans of a single scan)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return (zero_ok and value == 0) or plausible_mm(value) is not None


def _meta(path, npz, fields) -> dict:
    """write_npz's JSON metadata, every field checked (a string spacing is an error, not a crash later)."""
    if "meta_json" not in fields:
        return {}
    try:
        meta = json.loads(str(npz["meta_json"]))
    except ValueError:
        raise VolumeReadError(path, "the metadata (meta_json) is not valid JSON") from None
    if not isinstance(meta, dict):
        raise VolumeReadError(path, "the metadata (meta_json) is not a JSON object")
    spacing = meta.get("spacing_mm")
    if spacing is not None and (not isinstance(spacing, list) or len(spacing) != 3
                                or not all(_valid_mm(v, zero_ok=(i == 0)) for i, v in enumerate(spacing))):
        raise VolumeReadError(path, "the stored spacing (spacing_mm) is not three finite positive numbers "
                                    "in mm (or null)")
    loc_spacing = meta.get("localizer_spacing_mm")
    if loc_spacing is not None and (not isinstance(loc_spacing, list) or len(loc_spacing) != 2
                                    or not all(_valid_mm(v) for v in loc_spacing)):
        raise VolumeReadError(path, "the stored localizer spacing is not two finite positive numbers in mm")
    checks = {"laterality": (None, *LATERALITIES), "scan_pattern": SCAN_PATTERNS,
              "intensity_transform": tuple(INTENSITY_TRANSFORMS)}
    for key, allowed in checks.items():
        if key in meta and meta[key] not in allowed:
            raise VolumeReadError(path, f"the stored {key} is not one of {', '.join(str(a) for a in allowed)}")
    if not isinstance(meta.get("device", ""), str):
        raise VolumeReadError(path, "the stored device name is not text")
    if problem := device_problem(meta.get("device", "")):  # we wrote it: anything else is an edited file
        raise VolumeReadError(path, problem)
    acquired = meta.get("acquired")
    if acquired is not None:
        meta["acquired"] = _stored_date(path, acquired)
    return meta


def _stored_date(path, acquired) -> dt.date:
    """write_npz's ISO date or date-time, read whole: ``2020-01-01T25:61:00`` (no such time) was cut to
    its first 10 characters and kept (attack run 3, F27). A date before 1991 we never wrote: an edited
    file. A date after today is left to ``validate_volume``, which makes it unknown with a note as for
    every format: with the workstation's clock more than two days behind, every .npz we wrote since was
    refused whole while a DICOM of the same date opened (attack run 5, F18)."""
    try:
        when = dt.datetime.fromisoformat(str(acquired)).date()
    except ValueError:
        raise VolumeReadError(path, "the stored acquisition date is not an ISO date") from None
    if when < FIRST_OCT:
        raise VolumeReadError(path, f"the stored acquisition date {when.isoformat()} is not a date an OCT scan "
                                    "can have been taken (before 1991)")
    return when


def read_npz(path: Path, allow_pickle: bool = False) -> OctVolume:
    size = require_readable(path, folder_ok=False).st_size
    with open_regular(path) as f:
        return _read_npz(path, f, size, allow_pickle)


def _read_npz(path: Path, f, size: int, allow_pickle: bool) -> OctVolume:
    with zipfile.ZipFile(f) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_NPZ_MEMBERS:
            raise VolumeReadError(path, f"the archive holds {len(infos)} arrays; a volume file holds a few")
        fields = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            with archive.open(info) as member:
                fields[name] = _npy_header(path, member, info.file_size, name, allow_pickle)
    # The member headers say what np.load will allocate: check it against the file size now,
    # before anything is decompressed (a 2 MB archive must not unpack to gigabytes).
    decoded = sum(float(np.prod(shape, dtype=np.float64)) * dtype.itemsize for shape, dtype in fields.values())
    check_budget(path, decoded, size, what="the archive")
    f.seek(0)
    with np.load(f, allow_pickle=allow_pickle) as npz:
        if "volume" in fields:  # written by write_npz
            meta = _meta(path, npz, fields)
            localizer = Localizer(grey_localizer(path, npz["localizer"]),
                                  tuple(meta.get("localizer_spacing_mm") or (None, None))) \
                if "localizer" in fields else None
            data = _as_volume_array(path, npz["volume"])
            # write_npz writes a stack's spacing as [null, null, null]: none recorded
            has_spacing = any(v is not None for v in meta.get("spacing_mm") or ())
            if not has_spacing:  # a stack saved again: see check_not_label_mask
                check_not_label_mask(path, data)
            return OctVolume(
                data=data,
                spacing=Spacing(*(meta.get("spacing_mm") or (None, None, None))),
                laterality=meta.get("laterality"),
                scan_pattern=meta.get("scan_pattern", "volume"),
                device=meta.get("device", ""),
                acquired=meta.get("acquired"),
                localizer=localizer,
                intensity_transform=meta.get("intensity_transform", "identity"),
                notes=() if has_spacing else (NO_SPACING,),  # [null, null, null] lost the note (H80)
            )
        if "oct_bscans" in fields:  # Harvard-GF / FairVision layout
            localizer = Localizer(grey_localizer(path, npz["slo_fundus"])) if "slo_fundus" in fields else None
            data = _as_volume_array(path, npz["oct_bscans"])
            check_not_label_mask(path, data)
            return OctVolume(data=data, localizer=localizer,
                             notes=(NO_SPACING, "Harvard-GF / FairVision layout: laterality not recorded"))
        candidates = [k for k, (shape, _) in fields.items() if len(shape) == 3]
        if len(candidates) != 1:
            raise VolumeReadError(path, f"cannot tell which array is the volume (3-D arrays: {candidates or 'none'})")
        data = _as_volume_array(path, npz[candidates[0]])
        check_not_label_mask(path, data)
        return OctVolume(data=data, notes=(NO_SPACING,))


def write_npz(volume: OctVolume, path: Path) -> None:
    """Our own lossless round-trip format: pixels, localizer and metadata as plain JSON (no pickle)."""
    meta = {
        "spacing_mm": list(volume.spacing.as_tuple()),
        "laterality": volume.laterality,
        "scan_pattern": volume.scan_pattern,
        "device": volume.device,
        "acquired": volume.acquired.isoformat() if volume.acquired else None,
        "intensity_transform": volume.intensity_transform,
    }
    arrays = {"volume": volume.data, "meta_json": np.array(json.dumps(meta))}
    if volume.localizer is not None:
        arrays["localizer"] = volume.localizer.image
        meta["localizer_spacing_mm"] = list(volume.localizer.spacing_mm)
        arrays["meta_json"] = np.array(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


# tifffile names the file in what it logs ("<tifffile.TiffFile 'Doe_John_OD.tif'> shaped series ..."),
# and clinic file names carry patient names. Its records are dropped, on every thread (it decodes
# pages on threads of its own, where a per-thread filter would miss them); the reader's own error
# names the file to the user, never to the log.
logging.getLogger("tifffile").addFilter(lambda record: False)


def read_tiff(path: Path) -> OctVolume:
    """A multi-page TIFF; colour stacks become grey, a single colour picture is refused."""
    size = require_readable(path, folder_ok=False).st_size
    with open_regular(path) as f, _stack_of(f) as tif:
        if not tif.series:
            raise VolumeReadError(path, "the TIFF file holds no images")
        series = tif.series[0]
        shape = tuple(int(s) for s in series.shape)
        colour = series.axes.endswith("S") or int(series.keyframe.samplesperpixel) > 1
        grey_shape = shape[:-1] if colour else shape
        if len(grey_shape) == 2:
            kind = "colour " if colour else ""
            raise VolumeReadError(path, f"this TIFF is a single 2-D {kind}image {shape}, not an OCT volume")
        check_dimensions(path, shape)
        if len(grey_shape) == 3:
            check_bscan_shape(path, grey_shape)
        check_budget(path, float(np.prod(shape, dtype=np.float64)) * np.dtype(series.dtype).itemsize, size)
        _check_one_page_size(path, tif, series)
        _check_tiff_pages(path, tif, series)
        _check_tiff_photometric(path, series)
        _check_tiff_codec(path, series)
        _check_compressed_segments(path, tif, size, series)
        try:
            data = series.asarray()
        except ImportError:  # tifffile's zstd fallback imports Python 3.14's compression.zstd at decode time
            raise VolumeReadError(path, _codec_missing(series.keyframe)) from None
    if colour:
        data = grey_stack(path, data)
    data = _as_volume_array(path, data)
    check_not_label_mask(path, data)
    return OctVolume(data=data, notes=(NO_SPACING,))


def _stack_of(f):
    """The TiffFile whose first series is the stack. A stack written one B-scan at a time with tifffile
    (``imwrite(..., append=True)``) carries one "shaped" description per page, so tifffile makes each
    page a series of its own and the first was refused as "a single 2-D image" (walk-through): when
    every series is one 2-D page, the file is read again without those descriptions, as pages. Pages of
    different sizes still form series of their own there and are refused by ``_check_one_page_size``."""
    import tifffile

    tif = tifffile.TiffFile(f)
    if len(tif.series) > 1 and tif.is_shaped and all(len(s.pages) == 1 and s.ndim == 2 for s in tif.series):
        tif.close()
        f.seek(0)
        tif = tifffile.TiffFile(f, is_shaped=False)
    return tif


def _check_one_page_size(path: Path, tif, series) -> None:
    """Every page of the file belongs to the stack that is read: tifffile groups pages of another
    size (or sample type, or storage) into series of their own, and only the first series was read,
    so a B-scan of another size was dropped without a word (attack run L5)."""
    others = [s.keyframe for s in (*tif.series[1:], *getattr(series, "levels", [series])[1:])]
    pages = [p for p in others if p is not None and isinstance(p.index, int)]  # not a page's sub-images
    if not pages:
        return
    key, odd = series.keyframe, min(pages, key=lambda p: p.index)

    def size(page) -> str:
        return f"{page.imagewidth} x {page.imagelength} pixels of {page.dtype}"

    what = size(odd) if size(odd) != size(key) else f"{size(odd)} stored otherwise (compression or colour)"
    raise VolumeReadError(path, f"the TIFF's pages disagree: page {odd.index + 1} is {what}, page {key.index + 1} "
                                f"is {size(key)}; every B-scan of a stack has one size")


def _check_tiff_pages(path: Path, tif, series) -> None:
    """Page tags that disagree with the pixel data are errors, not something to decode anyway.

    A description (tifffile's "shaped" JSON, ImageJ's) that declares more pages than the file holds
    made tifffile read the missing B-scans from the bytes after the pixel data (the page directories).
    A 1-bit (black and white) page is no OCT B-scan. For uncompressed pages the bytes stored in each
    page's strips or tiles must be what Width x Length x SamplesPerPixel x BitsPerSample declare:
    a grey stack whose tags claim three samples per pixel, or one bit per sample, would otherwise be
    decoded into garbage (or fail with a byte count nobody can act on).
    """
    key = series.keyframe
    declared = int(np.prod(series.shape, dtype=np.int64)) // max(int(np.prod(key.shape, dtype=np.int64)), 1)
    if declared > len(tif.pages):  # tifffile reads the missing pages from whatever bytes follow
        raise VolumeReadError(path, f"the TIFF's description declares {declared} pages of {key.imagewidth} x "
                                    f"{key.imagelength} pixels, the file holds {len(tif.pages)}")
    bits = int(key.bitspersample)
    if bits not in (8, 16, 32, 64):
        raise VolumeReadError(path, f"the TIFF pages have {bits}-bit samples (BitsPerSample {bits}); OCT B-scans "
                                    "are 8, 16 or 32-bit grey images")
    if int(key.compression) != 1:
        return  # a compressed page's decoded size is checked by the decoder
    samples = int(key.samplesperpixel) * int(key.imagelength) * int(key.imagewidth) * int(key.imagedepth)
    need = samples * bits // 8
    for index, page in enumerate(series.pages):
        have = int(sum(page.databytecounts)) if page is not None else need
        if have != need:
            raise VolumeReadError(
                path, f"the TIFF header and its pixel data disagree: page {index + 1} declares "
                      f"{key.imagewidth} x {key.imagelength} pixels with {key.samplesperpixel} sample(s) of "
                      f"{bits} bits ({need} bytes), its strips hold {have} bytes")


#: PhotometricInterpretation values read right: MinIsBlack (grey) and RGB (made grey by ``grey_stack``).
_TIFF_PHOTOMETRIC_READ = (1, 2)


def _check_tiff_photometric(path: Path, series) -> None:
    """Tags that change what the stored pixels mean are refused unless they have the one meaning we
    read, on every page: a pixel kind other than MinIsBlack or RGB, an Orientation other than 1
    (row 0 at the top, column 0 at the left) and a FillOrder other than 1 (bits of a byte from the
    highest) were all read as plain grey rows, so the scan was analysed inverted (MinIsWhite, attack
    run 5, F1; CMYK's Separated, where 0 is no ink: white, run 6, A6-1), as colour-table indices
    (Palette), upside down or mirrored (Orientation, A6-2) or with each byte's bits reversed (FillOrder
    2, A6-9). Nothing is turned or inverted on a guess: no OCT device writes these. Every page is read
    whole for this (0.3 ms a page): tifffile takes the tags of a "uniform" stack from its first page,
    having compared three others, so page 5 of 8 could say MinIsWhite unseen.
    Only a tag the file holds counts: tifffile reports a missing PhotometricInterpretation as 0
    (MinIsWhite), and such files are grey stacks written without it (review: they were refused)."""
    import tifffile

    for index, page in enumerate(series.pages):
        if page is None or getattr(page, "is_virtual", False):  # no directory of its own: the keyframe's
            continue
        page = page if hasattr(page, "tags") else page.aspage()
        where = "the TIFF's" if index == 0 else f"the TIFF's page {index + 1}'s"
        if 262 in page.tags and int(page.photometric) not in _TIFF_PHOTOMETRIC_READ:
            photometric = int(page.photometric)
            if photometric == 0:
                raise VolumeReadError(path, f"{where} PhotometricInterpretation is MinIsWhite (0 shown as white): "
                                            "OCT B-scans are MinIsBlack, and the file is not read inverted on a guess")
            if photometric == 3:
                raise VolumeReadError(path, f"{where} PhotometricInterpretation is Palette (pixel values index a "
                                            "colour table): OCT B-scans are grey images (MinIsBlack)")
            try:
                name = tifffile.PHOTOMETRIC(photometric).name.capitalize()
            except ValueError:
                name = "unknown"
            raise VolumeReadError(path, f"{where} PhotometricInterpretation is {name} ({photometric}): OCT B-scans "
                                        "are grey (MinIsBlack) or RGB images, and other pixel kinds are not read "
                                        "on a guess")
        if problem := orientation_problem(where, page.tags.valueof(274, 1)):
            raise VolumeReadError(path, problem)
        fill_order = page.tags.valueof(266, 1)
        if fill_order != 1:
            raise VolumeReadError(path, f"{where} FillOrder is {fill_order}: B-scans are read with FillOrder 1 "
                                        "(the bits of each byte from the highest), and the file is not read on a guess")


def orientation_problem(where: str, value) -> str | None:
    """Why an image whose Orientation (TIFF tag or EXIF tag 274) is not 1 is refused; None for 1.

    One rule for a TIFF stack and for each image of a folder of B-scans (PNG, JPEG, TIFF): pixels are
    read as stored, row 0 at the top and column 0 at the left, or not at all. Turning or mirroring a
    B-scan by a tag no OCT device writes is a guess, and a wrong one swaps nasal and temporal, or
    vitreous and choroid. A folder's images were turned by OpenCV's EXIF handling while a TIFF with
    the same tag was refused (walk-through H65)."""
    if value in (None, 1):
        return None
    return (f"{where} Orientation is {value}: B-scans are read with Orientation 1 (row 0 at the top, column 0 at "
            "the left), and the file is not read on a guess")


def _codec_missing(key, what: str = "compression") -> str:
    import tifffile

    code = int(key.compression if what == "compression" else key.predictor)
    kind = tifffile.COMPRESSION if what == "compression" else tifffile.PREDICTOR
    try:
        name = kind(code).name
    except ValueError:
        name = str(code)
    return (f"the TIFF's pages are stored with {what} {name}, which needs the imagecodecs package (not "
            "installed here); install it, or save the stack uncompressed or with deflate")


def _check_tiff_codec(path: Path, series) -> None:
    """A compression (or predictor) that tifffile cannot decode here is said in words, naming it.

    Without imagecodecs tifffile decodes only deflate, LZMA and PackBits; LZW, JPEG, zstd, WebP,
    JPEG XL ... were "the file is corrupt or not a supported OCT file (<COMPRESSION.JPEG: 7> requires
    the 'imagecodecs' package)", and zstd "(No module named 'compression')" (issue 27, leftovers).
    """
    import tifffile

    key = series.keyframe
    for what, codecs, code in (("compression", tifffile.TIFF.DECOMPRESSORS, int(key.compression)),
                               ("predictor", tifffile.TIFF.UNPREDICTORS, int(key.predictor))):
        try:
            codecs[code]
        except KeyError as exc:
            if "imagecodecs" in str(exc):
                raise VolumeReadError(path, _codec_missing(key, what)) from None
            raise VolumeReadError(path, f"the TIFF's pages declare {what} {code}, which no TIFF reader knows") \
                from None


def _check_compressed_segments(path: Path, tif, size: int, series) -> None:
    """Each compressed strip or tile inflated here with a limit before tifffile inflates it whole.

    tifffile (without imagecodecs) decompresses a deflate or LZMA segment in one call, however large
    its output, and keeps what the tags declare: a 1.5 MB file whose strip inflated to 1.5 GB took
    2.9 GB of memory and loaded (attack run 4, F17). Here each segment may give at most the bytes its
    tags declare (one strip or tile: ``keyframe.chunks``); more is a header/data disagreement. A
    segment that is damaged is left to tifffile, whose error names it. Segments must lie in the file.
    An empty segment (StripByteCounts 0) is refused, as an uncompressed page's is: tifffile filled it
    with zeros, a black B-scan loaded without a word (attack run 6, A6-8).
    """
    import lzma
    import zlib

    from .dicom import _packbits_length

    key = series.keyframe
    compression = int(key.compression)
    limit = int(np.prod(key.chunks, dtype=np.int64)) * np.dtype(key.dtype).itemsize
    segment = "tile" if key.is_tiled else "strip"
    fh = tif.filehandle
    for index, page in enumerate(series.pages):
        if page is None:
            continue
        for k, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            if offset + count > size:
                raise VolumeReadError(path, f"the file is truncated: page {index + 1}'s {segment} {k + 1} lies "
                                            f"beyond its end ({offset + count} bytes declared, {size} present)")
            if compression == 1:
                continue  # their byte counts are checked against the tags in _check_tiff_pages
            if count == 0:
                raise VolumeReadError(path, f"the TIFF header and its pixel data disagree: page {index + 1}'s "
                                            f"compressed {segment} {k + 1} holds 0 bytes")
            if compression not in (8, 32946, 34925, 32773):
                continue  # a codec that needs imagecodecs: tifffile checks what it decodes
            fh.seek(offset)
            data = fh.read(count)
            try:
                if compression in (8, 32946):  # deflate (Adobe, old)
                    produced = len(zlib.decompressobj().decompress(data, limit + 1))
                elif compression == 34925:
                    produced = len(lzma.LZMADecompressor().decompress(data, limit + 1))
                else:  # 32773
                    produced = _packbits_length(data)
            except (zlib.error, lzma.LZMAError, EOFError):
                continue
            if produced > limit:
                raise VolumeReadError(path, f"the TIFF header and its pixel data disagree: page {index + 1}'s "
                                            f"compressed {segment} {k + 1} inflates to more than the {limit} bytes "
                                            "its tags declare (a decompression bomb?)")


def image_header_size(path: Path) -> tuple[tuple[int, int], int]:
    """(rows, cols) and bytes per grey pixel from an image's header, without decoding its pixels."""
    from PIL import Image

    try:
        with open_regular(path) as f, Image.open(f) as image:
            cols, rows = image.size
            mode = image.mode
            orientation = _exif_orientation(image)
    except Image.DecompressionBombError:
        raise VolumeReadError(path, "the image declares an implausible size (a decompression bomb)") from None
    except VolumeReadError:
        raise
    except Exception:
        raise VolumeReadError(path, "this image cannot be read (damaged or not an image)") from None
    if problem := orientation_problem("the image's", orientation):
        raise VolumeReadError(path, problem)
    return (rows, cols), 2 if mode.startswith("I;16") or mode in ("I", "F") else 1


def _exif_orientation(image) -> int | None:
    """The Orientation (tag 274) an opened image's header declares, without decoding its pixels: a
    PNG's eXIf chunk is read only when it comes before the pixels (Pillow's ``getexif`` would decode a
    PNG whole to look for one after them). None when the tag is absent."""
    from PIL import Image

    try:
        if image.format == "PNG":
            exif = Image.Exif()
            if "exif" in image.info:
                exif.load(image.info["exif"])
        else:
            exif = image.getexif()
        return exif.get(274)
    except Exception:  # a damaged EXIF block: the pixels are read as stored (no turning on a guess either)
        return None


def _tiff_pages(path: Path) -> int:
    """How many pages a TIFF holds, from its directory chain (no pixel is decoded); 1 when unreadable
    (the header check that follows says why)."""
    import tifffile

    try:
        with open_regular(path) as f, tifffile.TiffFile(f) as tif:
            return len(tif.pages)
    except Exception:
        return 1


#: A file name that says "label mask", not "B-scan": ``label(s)``, ``mask(s)``, ``annot``, ``annotation(s)``
#: or ``annotated`` as a word of its own (``OCTseg-Zeiss_train_mask_im00001.png``, ``labels_01.png``,
#: ``B1-annot.png``), and ``seg`` or ``segmentation`` likewise (``im_seg.png``, ``seg-01.png``; not
#: ``OCTseg-Zeiss_img.png``). Whole words because clinic file names carry the patient's name: a surname
#: that holds the letters (HANNOTAUX, MASKELL, LABELLE, DAMASKE) made every B-scan of that patient's scan
#: "a label mask" (attack run 13, A13-6). A mask named otherwise (``imgMask01.png``) is still refused by
#: its grey levels (``check_not_label_mask``) or, beside the B-scans, by the one-series rule.
LABEL_MASK_NAME = re.compile(r"(?:^|[^a-z])(?:labels?|masks?|annot(?:ations?|ated)?)(?:[^a-z]|$)"
                             r"|(?:^|[^a-z0-9])seg(?:mentation)?(?:[^a-z]|$)", re.IGNORECASE)

#: An image with at least 2 and at most this many grey levels is a label mask, not a B-scan.
MAX_MASK_LEVELS = 16


def check_bscan_names(path: Path, files: list[Path]) -> None:
    """Refuse a folder whose image names are not one scan's B-scans: label masks by name, and names
    that do not form one numbered series (the same text around one running number: ``B1.png`` ...
    ``B128.png``, ``scan_2019_001.bmp`` ...).

    Why refuse rather than leave files out: a folder of B-scans is read as one scan, in name order.
    Segmentation datasets (OCTseg, Duke, RETOUCH exports) keep each B-scan beside its label mask, and
    those of several eyes side by side; such a folder opened as "volume scan, 4 B-scan(s)" with a mask
    as B-scan 2 and two eyes as B-scans 1 and 3, without a word (walk-through H65, W13). Leaving the
    masks out would still have stacked the two eyes, and no reader can tell eyes apart from pixels;
    names outside one series are the sign a user can act on (move the other files out). Every
    offending file is named (at most a few), so the user knows what to move. The text is compared as it is
    (only the suffix's case is not: ``.PNG`` and ``.png`` are one image type): names differing only in letter
    case (``B001..B016.png`` of one eye, ``b017..b032.png`` of another patient's) opened as one 32-B-scan scan
    (attack run 14, A14-7)."""
    masks = [f.name for f in files if LABEL_MASK_NAME.search(f.stem)]
    if masks:
        raise VolumeReadError(path, f"the folder holds label masks, not only B-scans: {_some(masks)} (their names "
                                    "say label, mask or seg); a folder of B-scans holds one scan's B-scans only: "
                                    "move the masks out")
    series: dict[str, list[str]] = {}
    for f in files:  # the text as it is: B001..B016 and b017..b032 are two exports (attack run 14, A14-7)
        series.setdefault(re.sub(r"\d+", "#", f.stem) + f.suffix.lower(), []).append(f.name)
    if len(series) > 1:
        groups = sorted(series.values(), key=len, reverse=True)
        raise VolumeReadError(path, f"the B-scan file names do not form one numbered series ({len(groups)} kinds of "
                                    f"name: {_some([g[0] for g in groups])}), so they may be images of different "
                                    "scans or eyes; a folder of B-scans holds one scan's B-scans, named with one "
                                    "running number")
    check_one_running_number(path, [f.name for f in files])


def check_one_running_number(path: Path, names: list[str]) -> None:
    """Names of one text pattern (``check_bscan_names``) whose numbers say one series: at most one of
    their digit runs varies across the folder (the running number), every other is the same text in
    every name, and no running number is given twice (``B1.png`` and ``B001.png`` are both B-scan 1).

    Why: the pattern alone turns every digit run into one placeholder, so ``patient1_bscan001.png`` ...
    ``patient2_bscan016.png`` (two eyes of two patients, the usual subject + B-scan numbering of
    Duke / OCTseg-style exports) passed as one numbered series and opened as one 32-B-scan scan with one
    P(glaucoma) (attack run 13, A13-1). The running number is the last digit run that varies (the B-scan
    number ends a name: ``scan_2019_001.png``); its values are compared as numbers, so ``B1`` .. ``B128``
    and zero-padded ``B001`` .. ``B128`` are both one series, while the fixed runs are compared as text."""
    if len(names) < 2:
        return
    runs = [re.findall(r"\d+", name) for name in names]  # one pattern: the same count of runs in every name
    varying = [i for i in range(len(runs[0])) if len({r[i] for r in runs}) > 1]
    if len(varying) > 1:
        other, running = varying[0], varying[-1]
        first = runs[0]
        second = min(range(1, len(names)), key=lambda k: (runs[k][other] == first[other],
                                                          int(runs[k][running]) != int(first[running]), k))
        raise VolumeReadError(path, f"the B-scan file names do not form one numbered series: {names[0]} and "
                                    f"{names[second]} differ in more than the B-scan number, so they may be images "
                                    "of different scans or eyes; a folder of B-scans holds one scan's B-scans, "
                                    "named with one running number")
    if not runs[0]:
        raise VolumeReadError(path, f"the B-scan file names carry no running number ({_some(names)}), so their "
                                    "order is unknown; a folder of B-scans holds one scan's B-scans, named with one "
                                    "running number")
    running = varying[0] if varying else len(runs[0]) - 1
    seen: dict[int, str] = {}
    for name, r in zip(names, runs):
        number = int(r[running])
        if number in seen:
            raise VolumeReadError(path, f"{seen[number]} and {name} carry the same B-scan number ({number}), so "
                                        "they may be images of different scans or eyes, or one B-scan twice; a "
                                        "folder of B-scans holds one scan's B-scans, each number once")
        seen[number] = name
    check_numbering_gaps(path, seen)


#: A jump in a folder's B-scan numbers of more than this many steps is two series, not B-scans lost.
MAX_GAP_STEPS = 4
#: How the notes of a folder of B-scans start; the window shows such notes under the scan's line
#: (``results_panel.scan_caveats``), as it shows no other note of a file.
FOLDER_NOTE = "B-scan folder: "


def numbering_gaps(numbered: dict[int, str]) -> tuple[int, list[tuple[int, int]]]:
    """(step, [(number before, number after) of each jump]) of a folder's running numbers: the step is the most
    common difference between neighbouring numbers (the smallest on a tie), so an export of every 4th B-scan
    (B0, B4, B8 ...) has step 4 and no jump."""
    numbers = sorted(numbered)
    diffs = [b - a for a, b in zip(numbers, numbers[1:])]
    if not diffs:
        return 1, []
    step = min(set(diffs), key=lambda d: (-diffs.count(d), d))
    return step, [(a, b) for a, b in zip(numbers, numbers[1:]) if b - a > step]


def check_numbering_gaps(path: Path, numbered: dict[int, str]) -> None:
    """Refuse a folder whose running numbers jump by more than MAX_GAP_STEPS steps, naming the two runs.

    Why: a gap that wide is two scans' exports in one folder (``B001`` .. ``B016`` and ``B101`` .. ``B116``: one
    pattern, one running number, no number twice), which opened as one 32-B-scan scan with one P(glaucoma)
    (attack run 13, A13-1's leftover). A smaller jump (up to MAX_GAP_STEPS - 1 B-scans missing in a row) is
    B-scans lost or deleted from one scan: the folder opens and ``folder_notes`` says which are missing, since the
    B-scans beside the hole are shown as neighbours (a device exports every B-scan it took, blinks included, so
    a hole is someone's doing). The runs are named by their first and last files."""
    step, jumps = numbering_gaps(numbered)
    wide = [(a, b) for a, b in jumps if b - a > MAX_GAP_STEPS * step]
    if not wide:
        return
    numbers = sorted(numbered)
    a, b = max(wide, key=lambda j: j[1] - j[0])
    before = [n for n in numbers if n <= a]
    after = [n for n in numbers if n >= b]
    raise VolumeReadError(path, f"the B-scan numbers jump from {a} to {b}: {numbered[before[0]]} .. {numbered[a]} "
                                f"({len(before)} B-scans) and {numbered[b]} .. {numbered[after[-1]]} "
                                f"({len(after)}) look like two scans' B-scans in one folder ({(b - a) // step - 1} "
                                f"numbers missing between them; up to {MAX_GAP_STEPS - 1} in a row are taken for "
                                "lost B-scans); a folder of B-scans holds one scan's B-scans: move the other's out")


def _some(names: list[str], shown: int = 4) -> str:
    """The first few names, and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_not_label_mask(path: Path, pixels: np.ndarray) -> None:
    """Refuse an image or a volume of 2 to MAX_MASK_LEVELS grey levels: a label mask (layers or classes
    numbered 0..n, or 0/255), not a B-scan or an OCT scan, whatever its name. A B-scan's speckle gives it
    hundreds of levels (the OCTseg Cirrus B-scans: 180; their masks: 9). One level is let through: a
    blank B-scan is a B-scan the device or the export lost, and the analysis's quality gate judges it.

    Called for every B-scan of a folder and for the volume of every reader of pixel stacks without a
    device header (multi-page TIFF, .npy, .npz): segmentation datasets ship their label volumes as
    TIFF stacks or NumPy arrays as often as folders, and the same masks refused as a folder opened as
    "volume scan, 16 B-scans" as a TIFF or a .npy and were trained on from a manifest (attack run 13,
    A13-5). Device formats (DICOM, .vol, Topcon, HEYEX) are not checked: their header says the pixels
    are a scan. Nor is our own .npz when it records a spacing: write_npz stores one only for a volume
    read from a device file (stacks carry none), so it is a device scan saved again, which its own
    reader opened; a spacing-less .npz of ours may be a TIFF or .npy saved again and is checked, so the
    rule cannot be passed by re-saving."""
    levels = grey_levels(pixels, MAX_MASK_LEVELS)
    if 2 <= levels <= MAX_MASK_LEVELS:
        if pixels.ndim == 2:
            raise VolumeReadError(path, f"this image has only {levels} grey levels: a label mask or segmentation, "
                                        "not a B-scan; a folder of B-scans holds one scan's B-scans only")
        raise VolumeReadError(path, f"this volume has only {levels} grey levels: a label mask or segmentation, "
                                    "not an OCT scan (a scan's speckle gives it hundreds); open the scan it labels")


#: Voxels looked at first (evenly spaced); the whole volume is read only when they show few levels.
LEVEL_SAMPLE = 1 << 16
#: Voxels compared at once in the whole-volume pass (bounded temporary memory).
LEVEL_CHUNK = 1 << 22


def grey_levels(pixels: np.ndarray, limit: int) -> int:
    """How many distinct finite values ``pixels`` holds, exact up to ``limit`` (past it: some count above
    ``limit``). Cheap on a scan: an evenly spaced sample of LEVEL_SAMPLE voxels already shows more than
    ``limit`` levels, and the rest is never compared. Only a volume whose sample shows few (a mask, a
    blank volume) is read whole, each chunk compared with the levels known so far (``np.isin`` against
    at most ``limit`` values), so a level the sample missed still counts. NaN and infinities are left
    to ``validate_volume``, which refuses them in its own words."""
    flat = pixels.ravel(order="K")  # a view in memory order (a Fortran-ordered .npy too)
    if not flat.size:
        return 0

    def finite(values):
        return values[np.isfinite(values)] if values.dtype.kind == "f" else values

    step = max(1, flat.size // LEVEL_SAMPLE)
    known = np.unique(finite(flat[::step]))
    if known.size > limit or step == 1:
        return int(known.size)
    kind = "sort" if flat.dtype.kind in "ui" and flat.dtype.itemsize <= 2 else None  # radix sort: 10x faster
    for start in range(0, flat.size, LEVEL_CHUNK):
        chunk = flat[start:start + LEVEL_CHUNK]
        outside = finite(chunk[~np.isin(chunk, known, kind=kind)])
        if outside.size:
            known = np.union1d(known, outside)
            if known.size > limit:
                break
    return int(known.size)


def plan_image_folder(path: Path) -> tuple[list[Path], tuple[int, int]]:
    """The B-scan images of a folder in natural order (``B2`` before ``B10``) and their size.

    Sizes come from each image's header: all must agree and the total must fit the byte budget of
    the folder's stored bytes before a single image is decoded.
    """
    files = image_folder_files(path)
    scans = [p for p in path.iterdir() if p.suffix.lower() in (".dcm", ".vol", ".img", ".fds", ".e2e", ".npz")]
    hint = (f"; it holds {len(scans)} scan file(s): open one with File > Open, or all of them with "
            "File > Open study folder") if scans else ""
    if not files:
        raise VolumeReadError(path, "the folder holds no B-scan images (PNG, JPEG, BMP or TIFF)" + hint)
    if scans:  # a folder of scans is never one image stack (a stray TIFF beside them was read as "the volume")
        raise VolumeReadError(path, f"the folder mixes {len(files)} image(s) with scan files, so it is not one "
                                    "folder of B-scans" + hint)
    check_dimensions(path, (len(files), 1, 1), what="folder of B-scans")  # count first: no 10^6 headers
    check_bscan_names(path, files)
    for f in files:
        if f.suffix.lower() in (".tif", ".tiff") and _tiff_pages(f) > 1:
            raise VolumeReadError(path, f"{f.name} is a multi-page TIFF, a volume of its own: open it with "
                                        "File > Open, not as one B-scan of a folder")
    stored = sum(require_readable(f, folder_ok=False).st_size for f in files)
    first_shape, depth = image_header_size(files[0])
    for f in files[1:]:
        shape, _ = image_header_size(f)
        if shape != first_shape:
            raise VolumeReadError(f, f"B-scan size {image_size(shape)} differs from the first B-scan's "
                                     f"{image_size(first_shape)} ({files[0].name}): the B-scans of one scan have "
                                     "one size")
    check_bscan_shape(path, (len(files), *first_shape))
    check_budget(path, float(len(files)) * first_shape[0] * first_shape[1] * depth, stored, what="the B-scan images")
    return files, first_shape


def image_folder_files(path: Path) -> list[Path]:
    """A folder's B-scan images in natural order (``B2`` before ``B10``): the order of the volume's B-scans."""
    from natsort import natsorted

    return natsorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.name)


def running_numbers(names: list[str]) -> list[str] | None:
    """Each name's running number as the name writes it ("017"): the first run of digits that varies between the
    names (the last when none varies), as ``check_one_running_number`` finds it; None for one name, names without
    digits or names with unlike runs of digits. For ``folder_notes`` and the window's B-scan label, which names the
    file past a gap ("B-scan 22 of 63 (file 23)", H95 V6)."""
    runs = [re.findall(r"\d+", name) for name in names]
    if len(names) < 2 or not runs[0] or any(len(r) != len(runs[0]) for r in runs):
        return None
    varying = [i for i in range(len(runs[0])) if len({r[i] for r in runs}) > 1]
    running = varying[0] if varying else len(runs[0]) - 1
    return [r[running] for r in runs]


def image_size(shape) -> str:
    """An image's (rows, columns) as a user reads an image's size, "512 x 200 pixels (width x height)": the
    messages gave NumPy's (height, width), "(200, 512)" (walk-through H82, W17)."""
    return f"{shape[1]} x {shape[0]} pixels (width x height)"


def read_bscan_image(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """One B-scan image as grey (colour is converted), checked against the size its header gave."""
    import cv2

    with open_regular(path) as f:
        encoded = np.frombuffer(f.read(), np.uint8)
    # as stored: OpenCV turns a JPEG or PNG by its EXIF Orientation unless told not to (a tag that says
    # otherwise is refused from the header, see orientation_problem)
    flags = cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(encoded, flags) if encoded.size else None
    if image is None:
        raise VolumeReadError(path, "this image cannot be decoded")
    if image.shape != shape:
        raise VolumeReadError(path, f"B-scan size {image_size(image.shape)} differs from its header's "
                                    f"{image_size(shape)}")
    check_not_label_mask(path, image)
    return image


#: Neighbouring B-scans whose 16 x 16 thumbnails correlate below this are said to look unlike (``unlike_pair``).
UNLIKE_CORRELATION = 0.5
#: Neighbouring pairs compared at most (evenly spread over the folder): each costs two decodings when the window
#: reads the folder progressively.
UNLIKE_PAIRS = 16


def _thumbnail(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image.astype(np.float32), (16, 16), interpolation=cv2.INTER_AREA).ravel()


def thumbnail_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of two B-scans' 16 x 16 thumbnails; None when either is blank (one grey)."""
    x, y = _thumbnail(a), _thumbnail(b)
    x, y = x - x.mean(), y - y.mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / norm if norm > 1e-6 * x.size else None


def unlike_pair(image, n: int) -> tuple[int, int, float] | None:
    """(i, i + 1, correlation) of the least alike of up to UNLIKE_PAIRS neighbouring B-scans (``image(i)`` gives
    B-scan i) when it is below UNLIKE_CORRELATION, else None.

    Why: two B-scans of different eyes renamed ``bscan_001.png``, ``bscan_002.png`` pass every name rule and
    opened as one "volume scan, 2 B-scans" (walk-through H82, W7), while neighbouring B-scans of one cube or
    raster look alike. Measured (H87, 16 x 16 thumbnails, Pearson): the two Cirrus B-scans of different eyes in
    the shared samples (real_tracings) 0.35; neighbours in synthetic cubes (octviewer-synth, 11 cubes of 16 to 64
    B-scans, 94 to 400 um apart, Spectralis- and Cirrus-like) 0.80 at least, 0.92 to 0.99 in the median; a real
    Cirrus B-scan against itself moved 60 px (117 um) deep 0.64 to 0.73, 100 px 0.43 to 0.48; a blink (a dark
    B-scan) near 0, one grey not compared. The shared samples hold no real cube or raster (their Spectralis
    files are circle and line scans of one B-scan), so real neighbours were not measured: with a margin of 0.29
    between other eyes and a same-scan axial jump, the folder opens and the window says it (a blink or a large
    eye movement is said too, and is worth a look); it is not refused. A folder of many B-scans is judged on
    UNLIKE_PAIRS evenly spread pairs, so one unlike pair among hundreds may go unsaid (two exports numbered
    apart are refused by their names: ``check_numbering_gaps``)."""
    pairs = range(n - 1) if n - 1 <= UNLIKE_PAIRS else \
        sorted({round(k * (n - 2) / (UNLIKE_PAIRS - 1)) for k in range(UNLIKE_PAIRS)})
    worst = None
    for i in pairs:
        c = thumbnail_correlation(image(i), image(i + 1))
        if c is not None and (worst is None or c < worst[2]):
            worst = (i, i + 1, c)
    return worst if worst is not None and worst[2] < UNLIKE_CORRELATION else None


def folder_notes(files: list[Path], image) -> tuple[str, ...]:
    """What the window says of a folder of B-scans that opens (``FOLDER_NOTE``...): B-scan numbers missing inside
    the series (``check_numbering_gaps`` lets up to MAX_GAP_STEPS - 1 in a row through) and neighbouring B-scans
    that look unlike (``unlike_pair``). ``image(i)`` gives B-scan i; both readers (``read_image_folder`` and the
    window's progressive read) call this, with the same pairs compared. No file name goes into a note (a clinic's
    names may carry the patient's, and notes travel with the volume: a saved DICOM's ImageComments)."""
    notes = []
    names = [f.name for f in files]
    numbers = running_numbers(names)
    if numbers:  # the running number as check_one_running_number finds it (one varies)
        numbered = {int(n): name for name, n in zip(names, numbers)}
        step, jumps = numbering_gaps(numbered)
        if jumps:
            missing = sum((b - a) // step - 1 for a, b in jumps)
            a, b = jumps[0]
            written = {int(n): n for n in numbers}
            notes.append(f"{FOLDER_NOTE}{missing} B-scan number{'s are' if missing > 1 else ' is'} missing from "
                         f"the series ({'the first ' if len(jumps) > 1 else ''}between {a} and {b}): the B-scans "
                         "beside a gap are shown as "
                         f"neighbours, and on screen they are counted 1 to {len(names)} in order, "
                         f"{count_and_numbers(written, b)}")
    if (pair := unlike_pair(image, len(files))) is not None:
        i, j, c = pair
        notes.append(f"{FOLDER_NOTE}B-scans {i + 1} and {j + 1} of {len(files)} look unlike neighbouring B-scans of "
                     f"one scan (their thumbnails correlate {c:.2f}; neighbours give 0.8 or more): images of "
                     "different scans or eyes, or a blink or large eye movement between them? Check the B-scans "
                     "before reading the result")
    return tuple(notes)


def count_and_numbers(written: dict[int, str], gap_end: int) -> str:
    """Where the window's count of a folder's B-scans (1 .. n in order) and the files' numbers part, for
    ``folder_notes``: past a gap the window's "B-scan 17 of 63" was the file numbered 18, and a clinician
    cross-checking a B-scan with the device's export took the wrong one (H91, W8). The numbers as the names write
    them (``written``: number -> its digits, "007"). A series numbered from 0 (or by 4) never has the count as its
    number: "from B-scan 9 on the count is not the file's number (B-scan 9 is number 9)" said of B000 .. B016
    without B008 contradicted itself (attack run 15, A15-9), so the first B-scan whose count is not its number is
    named, and the first past the gap."""
    numbers = sorted(written)
    shown = numbers.index(gap_end) + 1
    first = next(k + 1 for k, n in enumerate(numbers) if n != k + 1)  # a gap: some count is not its number
    past = f"B-scan {shown} is file {written[gap_end]}"  # "file", as the B-scan label says it (H104, X7)
    if first == shown:
        return f"so from B-scan {shown} on the count is not the file's number ({past})"
    if first == 1:
        return f"while the files are numbered otherwise: B-scan 1 is file {written[numbers[0]]}; past the gap, {past}"
    return (f"so from B-scan {first} on the count is not the file's number (B-scan {first} is file "
            f"{written[numbers[first - 1]]}; past the gap, {past})")


def read_image_folder(path: Path) -> OctVolume:
    """A folder of B-scan images (see ``plan_image_folder``); ``progressive`` reads them in threads."""
    files, shape = plan_image_folder(path)
    first = read_bscan_image(files[0], shape)
    data = np.empty((len(files), *shape), first.dtype)
    data[0] = first
    for i, f in enumerate(files[1:], start=1):
        image = read_bscan_image(f, shape)
        if image.dtype != data.dtype:
            raise VolumeReadError(f, f"{image.dtype.itemsize * 8}-bit B-scan among {data.dtype.itemsize * 8}-bit ones")
        data[i] = image
    return OctVolume(data=data, notes=(NO_SPACING, *folder_notes(files, lambda i: data[i])))
