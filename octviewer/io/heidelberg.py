"""Heidelberg Spectralis: raw ``.vol`` exports, ``.e2e`` and HEYEX XML, through eyepy.

For ``.vol`` we use eyepy's format description (``vol_format``) rather than its ``EyeVolume``
import, because ``EyeVolume`` refuses circle and radial scans and the peripapillary circle scan is
the one glaucoma specialists read. The declared sizes are checked against the file size first, so
a lying header cannot make us allocate gigabytes.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import numpy as np

from ..core import BscanPosition, Localizer, OctVolume, Spacing
from .convert import grey_localizer
from .errors import VolumeReadError
from .limits import check_budget, check_dimensions, open_regular, plausible_mm, require_readable

_VOL_HEADER = 2048
_PATTERNS = {0: "volume", 1: "line", 2: "circle", 3: "volume", 4: "volume", 5: "radial"}
_NO_DATA = 3.0e38  # the format's "invalid" marker, in pixels and in layer heights
# eyepy's names for the segmentation rows of a .vol B-scan header
_LAYER_NAMES = ("ILM", "BM", "RNFL", "GCL", "IPL", "INL", "OPL", "ONL", "ELM", "IOS", "OPT", "CHO",
                "VIT", "ANT", "PR1", "PR2", "RPE", "IPL+", "IPL-")


def _check_vol_sizes(path: Path, raw: bytes) -> None:
    if len(raw) < _VOL_HEADER:
        raise VolumeReadError(path, f"the file is truncated: {len(raw)} bytes, shorter than the 2048-byte header")
    size_x, n_bscans, size_y = struct.unpack_from("<3I", raw, 12)
    slo_x, slo_y = struct.unpack_from("<2I", raw, 48)
    check_dimensions(path, (n_bscans, size_y, size_x))
    check_dimensions(path, (slo_y, slo_x), what="localizer image")
    # Each B-scan states its own header size (eyepy's writer differs from the file header's),
    # so check the smallest the format allows: 256 bytes per B-scan header.
    need = _VOL_HEADER + slo_x * slo_y + n_bscans * (256 + 4 * size_x * size_y)
    if need > len(raw):
        raise VolumeReadError(path, f"the file is truncated: its header declares {need} bytes, the file has {len(raw)}")


#: (offset, length) of the zero-terminated text fields of the 2048-byte header, in eyepy's layout:
#: version, scan position, ID, reference ID, patient ID, visit ID, progression ID.
_TEXT_FIELDS = ((0, 12), (84, 4), (104, 16), (120, 16), (140, 24), (176, 24), (224, 34))
_PATIENT_ID = slice(140, 164)


def _text(raw: bytes) -> str:
    """A zero-terminated header string. Heyex writes the clinic's code page (Latin-1 in Europe)."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


def vol_patient_id(raw: bytes) -> str:
    """The patient ID of a ``.vol`` header as the viewer shows it (the study index reads it the same way)."""
    return _text(raw[_PATIENT_ID])


#: The header's dates as eyepy decodes them: (name, offset, struct format, epoch, seconds per unit).
_DATE_FIELDS = (("exam time", 88, "<Q", dt.datetime(1601, 1, 1), 1e-7),
                ("birth date", 164, "<d", dt.datetime(1899, 12, 30), 86400.0),
                ("visit date", 200, "<d", dt.datetime(1899, 12, 30), 86400.0))


def unreadable_vol_dates(raw: bytes) -> list[str]:
    """The header dates that are no date (NaN, infinite, beyond year 9999): eyepy's parser raised on
    them ("cannot convert float NaN to integer") and the whole scan was refused, for a birth date
    the viewer never shows (attack run 5, F7)."""
    names = []
    for name, offset, fmt, epoch, unit in _DATE_FIELDS:
        if len(raw) >= offset + 8:
            try:
                epoch + dt.timedelta(seconds=struct.unpack_from(fmt, raw, offset)[0] * unit)
            except (ValueError, OverflowError):
                names.append(name)
    return names


def ascii_vol_header(raw: bytes) -> bytes | bytearray:
    """The file with non-ASCII bytes in the header's text fields replaced by '?', and unreadable
    dates (``unreadable_vol_dates``) by zero.

    eyepy's format description decodes those fields as ASCII and fails on a patient name with an
    accent; we read the patient ID ourselves (``_text``) and let eyepy see a harmless stand-in.
    """
    bad = unreadable_vol_dates(raw)
    if all(raw[o:o + n].isascii() for o, n in _TEXT_FIELDS) and not bad:
        return raw
    fixed = bytearray(raw)
    for offset, length in _TEXT_FIELDS:
        for i in range(offset, offset + length):
            if fixed[i] > 0x7F:
                fixed[i] = 0x3F
    for name, offset, *_ in _DATE_FIELDS:
        if name in bad:
            fixed[offset:offset + 8] = bytes(8)
    return fixed


def _exam_time(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def read_vol(path: Path) -> OctVolume:
    from eyepy.io.he.vol_reader import vol_format

    require_readable(path, folder_ok=False)
    with open_regular(path) as f:
        raw = f.read()
    _check_vol_sizes(path, raw)
    patient_id = vol_patient_id(raw) or None
    bad_dates = unreadable_vol_dates(raw)
    parsed = vol_format.parse(ascii_vol_header(raw))
    pattern = _PATTERNS.get(int(parsed.scan_pattern))
    if pattern is None:
        raise VolumeReadError(path, f"unknown Heidelberg scan pattern {parsed.scan_pattern}")
    if pattern == "volume" and parsed.n_bscans == 1:
        pattern = "line"
    data = np.stack([b.data for b in parsed.bscans]).astype(np.float32)
    invalid = ~np.isfinite(data) | (data > _NO_DATA)
    if invalid.any():
        data[invalid] = 0.0
    # Spectralis reflectivity lies in [0, 1] and is shown through a fourth root; eyepy's own
    # writer stores 8-bit grey values as floats, which must be shown as they are.
    transform = "heidelberg_vol" if data.max(initial=0.0) <= 1.0 else "identity"

    slo_scale = (plausible_mm(parsed.scale_y_slo), plausible_mm(parsed.scale_x_slo))
    localizer = Localizer(grey_localizer(path, np.asarray(parsed.localizer)), slo_scale) \
        if parsed.size_x_slo and parsed.size_y_slo else None
    positions = None
    if localizer is not None and slo_scale[0] and slo_scale[1]:
        def px(x_mm, y_mm):
            return (float(x_mm) / slo_scale[1], float(y_mm) / slo_scale[0])
        positions = []
        for b in parsed.bscans:
            if pattern == "circle":  # end point holds the circle's centre
                start, center = px(b.start_x, b.start_y), px(b.end_x, b.end_y)
                radius = float(np.hypot(start[0] - center[0], start[1] - center[1]))
                positions.append(BscanPosition(start, start, center=center, radius=radius))
            else:
                positions.append(BscanPosition(px(b.start_x, b.start_y), px(b.end_x, b.end_y)))
        positions = tuple(positions)

    layers = {}
    n_seg = min((int(b.num_seg) for b in parsed.bscans), default=0)
    for i in range(min(n_seg, len(_LAYER_NAMES))):
        heights = np.stack([np.asarray(b.layer_segmentations[i], dtype=np.float32) for b in parsed.bscans])
        heights[~np.isfinite(heights) | (heights > _NO_DATA)] = np.nan
        layers[_LAYER_NAMES[i]] = heights

    laterality = str(parsed.scan_position).strip("\x00 ").upper()
    spacing = Spacing(bscan_mm=plausible_mm(parsed.distance) if parsed.n_bscans > 1 else 0.0,
                      depth_mm=plausible_mm(parsed.scale_y), ascan_mm=plausible_mm(parsed.scale_x))
    return OctVolume(
        data=data,
        spacing=spacing,
        laterality=laterality if laterality in ("OD", "OS") else None,
        scan_pattern=pattern,
        device="Heidelberg Spectralis",
        acquired=None if "exam time" in bad_dates else _exam_time(parsed.exam_time),
        patient_id=patient_id,
        localizer=localizer,
        bscan_positions=positions,
        layers=layers,
        intensity_transform=transform,
        notes=(*(f"the header's {name} is not a readable date; it is unknown" for name in bad_dates),
               *_vol_header_notes(spacing, pattern, laterality)),
    )


def _vol_header_notes(spacing: Spacing, pattern: str, laterality: str) -> list[str]:
    """Notes for the header fields that are read as unknown: a ScaleX (A-scan spacing), ScaleZ (depth)
    or, between the B-scans of a raster, Distance that is NaN, infinite, 0, negative or beyond 100 mm,
    and a ScanPosition that is neither OD nor OS. Each left the spacing or the eye unknown without a
    word (attack run 6, A6-20), where the other readers say so. The field's text is not quoted: it
    may be anything (control characters, a name)."""
    fields = [name for name, mm in (("ScaleX", spacing.ascan_mm), ("ScaleZ", spacing.depth_mm),
                                    ("Distance", spacing.bscan_mm if pattern == "volume" else 0.0)) if mm is None]
    notes = [f"the file states an implausible spacing ({'; '.join(fields)}): those distances are unknown"] \
        if fields else []
    if laterality not in ("OD", "OS"):
        notes.append("the header's ScanPosition is neither OD nor OS: the eye is unknown")
    return notes


#: A HEYEX XML file is a few hundred kB for 1,000 B-scans; more is not an export.
MAX_XML_BYTES = 64 * 2**20


def _check_heyex_folder(folder: Path, xml: Path | None = None) -> str | None:
    """Check every image a HEYEX XML names before eyepy opens any of them; return the eye the XML
    states (``_heyex_eye``).

    ``xml``: the export file the user gave; its folder's first .xml was checked (and named in the
    error) instead, so a stray empty.xml beside one.xml was blamed for one.xml (attack run 2 M9).

    eyepy joins each ``ExamURL``'s last ``\\`` part to the folder, so an absolute or ``/``-laden
    URL can point anywhere (a FIFO would hang, ``/dev/zero`` never ends). Each image must be a
    regular file inside the folder, and their header sizes must fit the byte budget.
    """
    from xml.etree import ElementTree

    from .stacks import image_header_size

    if xml is None:
        xmls = sorted(folder.glob("*.xml"))
        if not xmls:
            raise VolumeReadError(folder, "the folder holds no HEYEX .xml file")
        xml = xmls[0]
    size = require_readable(xml, folder_ok=False).st_size
    if size > MAX_XML_BYTES:
        raise VolumeReadError(xml, f"the XML file is {size / 2**20:.0f} MiB, too large for a HEYEX export")
    try:
        root = ElementTree.parse(xml).getroot()
    except ElementTree.ParseError as exc:
        raise VolumeReadError(xml, f"the XML is not well formed ({exc})") from None
    urls = [(e.text or "").split("\\")[-1] for e in root.iter("ExamURL")]
    if not urls:
        raise VolumeReadError(xml, "the XML names no images (no ExamURL)")
    base = folder.resolve()
    stored = decoded = 0
    for name in urls:
        image = folder / name
        try:
            inside = bool(name) and not Path(name).is_absolute() and image.resolve().parent == base
        except (RuntimeError, RecursionError, OSError):  # links that loop: resolve()'s error named the folder
            raise VolumeReadError(xml, "the XML names an image through symbolic links that loop or run too deep "
                                       "to follow") from None
        if not inside:
            raise VolumeReadError(xml, "the XML points at an image outside its own folder; "
                                       "only images next to the XML are opened")
        stored += require_readable(image, folder_ok=False).st_size
        (rows, cols), depth = image_header_size(image)
        decoded += rows * cols * depth
    check_budget(xml, decoded, stored, what="the images the XML names")
    return _heyex_eye(root)


def heyex_bscan_count(folder: Path) -> int | None:
    """The B-scans a HEYEX XML export's XML lists (its images of type OCT; the localizer, an SLO or NIR image, is
    not one), read without opening an image; None where the folder holds no readable XML. A folder's image count
    took the localizer for a B-scan, so the export never matched its own scan's count elsewhere and the study
    never compared it by content: one patient's scan listed under another as .npy or .vol was used under both
    (attack run 18, A18-30)."""
    from xml.etree import ElementTree

    xmls = sorted(folder.glob("*.xml"))
    if not xmls or require_readable(xmls[0], folder_ok=False).st_size > MAX_XML_BYTES:
        return None
    root = ElementTree.parse(xmls[0]).getroot()
    return sum(1 for e in root.iter("ImageType") if (e.findtext("Type") or "").strip().upper() == "OCT") or None


def _heyex_eye(root) -> str | None:
    """OD for a Series Laterality of "R", OS for "L", None (unknown) for anything else. eyepy reads
    any text but "R" as OS, so "X", "" or "OD" gave the left eye without a note (review H36, item 4);
    the field eyepy reads is read here instead."""
    found = root[0].findall("./Patient/Study/Series/Laterality") if len(root) else []
    return {"R": "OD", "L": "OS"}.get((found[0].text or "").strip() if found else "")


#: eyepy's laterality for an .e2e is the stored character's code ('82' is 'R', '76' is 'L');
#: for a HEYEX XML it is 'OD' / 'OS'.
_EYEPY_LATERALITY = {"82": "OD", "76": "OS", "R": "OD", "L": "OS", "OD": "OD", "OS": "OS"}
#: eyepy's type code of a stored B-scan image in an .e2e slice
_E2E_BSCAN_IMAGE = 35652097


def _mm(meta, *keys) -> tuple:
    """The scales under ``keys`` in millimetres, or None each where eyepy's unit is not mm.

    eyepy gives an .e2e volume scale 1 in "px" (the format's spacing is not known to it) and its
    localizer degrees per pixel; taken as mm they made a 1 mm voxel and a made-up scale bar."""
    if meta.get("scale_unit") != "mm":
        return (None,) * len(keys)
    return tuple(plausible_mm(meta[k]) for k in keys)


def _check_e2e_series(path: Path, series, stored: int) -> None:
    """Refuse a series whose stored B-scan images do not have the size its B-scan header declares,
    or whose volume would not fit the byte budget, before eyepy allocates it.

    eyepy allocates (B-scans, height, width) float32 from the first B-scan header (Type10004) and
    broadcasts each stored image into its slot: a 13 kB file declaring 4000 x 4000 B-scans while
    storing 1 x 1 images took 17 s and 5.3 GB, and loaded (attack run 4, .e2e broadcast bomb)."""
    from eyepy.io.he.e2e_format import TypesEnum

    metas = series.get_bscan_meta()
    if not metas:
        return  # eyepy refuses a series without B-scan headers itself
    height, width = int(metas[0]["size_y"]), int(metas[0]["size_x"])
    check_dimensions(path, (series.n_bscans, height, width))
    for bscan in series.slices.values():
        for folder in bscan.folders.get(TypesEnum.image, []):
            image = folder.data
            if image.type == _E2E_BSCAN_IMAGE and (image.height, image.width) != (height, width):
                raise VolumeReadError(path, f"a B-scan stores an image of {image.height} x {image.width} pixels where "
                                            f"the file declares {height} x {width} (damaged, or a forged header)")
    check_budget(path, 4.0 * series.n_bscans * height * width, stored)


def _read_e2e(path: Path):
    """The first series of an .e2e that eyepy reads as a volume (as ``eyepy.import_heyex_e2e``),
    each series' sizes checked first (``_check_e2e_series``)."""
    from eyepy.io.he import HeE2eReader

    stored = require_readable(path, folder_ok=False).st_size
    refused = None
    with HeE2eReader(path) as reader:
        for series in reader.series:
            try:  # a series that fails the check is never built; the next is tried, as eyepy tries them
                _check_e2e_series(path, series, stored)
            except VolumeReadError as exc:
                refused = refused or exc
                continue
            try:
                return series.get_volume()
            except Exception:  # as eyepy does: circle and radial series are refused, the next one is tried
                continue
    raise refused or VolumeReadError(path, "no series in the .e2e file can be read as a volume")


def read_with_eyepy(path: Path) -> OctVolume:
    """HEYEX XML exports (a folder or its .xml) and .e2e files, through eyepy's importers."""
    import eyepy

    if path.suffix.lower() in (".e2e", ".sdb"):
        ev = _read_e2e(path)
    else:
        folder = path if path.is_dir() else path.parent
        given = None if path.is_dir() else path
        stated_eye = _check_heyex_folder(folder, given)
        # eyepy reads an .xml path itself; given a folder it takes whichever .xml it finds there
        ev = eyepy.import_heyex_xml(given if given is not None and given.suffix == ".xml" else folder)
    meta = ev.meta
    data = np.asarray(ev.data)
    localizer = Localizer(grey_localizer(path, ev.localizer.data), _mm(ev.localizer.meta, "scale_y", "scale_x"))
    layers = {name: np.asarray(layer.data, dtype=np.float32) for name, layer in ev.layers.items()}
    if path.suffix.lower() in (".e2e", ".sdb"):
        laterality = _EYEPY_LATERALITY.get(str(meta.get("laterality") or "").strip().upper())
        notes = []
    else:
        laterality = stated_eye
        notes = [] if laterality else ["the XML's Laterality is neither R nor L: the eye is unknown"]
    bscan_mm, depth_mm, ascan_mm = _mm(meta, "scale_z", "scale_y", "scale_x")
    spacing = Spacing(bscan_mm=bscan_mm if data.shape[0] > 1 else 0.0, depth_mm=depth_mm, ascan_mm=ascan_mm)
    acquired = meta.get("exam_time") or meta.get("visit_date")
    if isinstance(acquired, str):
        try:
            acquired = dt.datetime.fromisoformat(acquired)
        except ValueError:
            acquired = None
    return OctVolume(
        data=data,
        spacing=spacing,
        laterality=laterality,
        scan_pattern="volume" if data.shape[0] > 1 else "line",
        device="Heidelberg Spectralis",
        acquired=acquired,
        patient_id=(meta.get("patient") or {}).get("patient_id"),
        localizer=localizer,
        layers=layers,
        intensity_transform="identity" if data.dtype == np.uint8 else "heidelberg_vol",
        notes=(*_unknown_spacing_notes(spacing), *notes),
    )


def _unknown_spacing_notes(spacing: Spacing) -> list[str]:
    """A note naming the spacings that are unknown. An XML's ScaleX of -1 was noted as "no physical
    spacing" while its depth and B-scan spacings were known and used (review H36, item 4); with none
    known (an .e2e, whose scale eyepy gives in pixels) the file states no physical spacing."""
    unknown = [name for name, mm in (("A-scan", spacing.ascan_mm), ("depth", spacing.depth_mm),
                                     ("B-scan", spacing.bscan_mm)) if mm is None]
    if not unknown:
        return []
    if len(unknown) == (2 if spacing.bscan_mm == 0.0 else 3):  # a line scan has no B-scan spacing
        return ["the file states no physical spacing"]
    return [f"the file states no plausible {' or '.join(unknown)} spacing: those distances are unknown"]
