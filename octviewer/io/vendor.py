"""Other vendors' native files through OCT-Converter (an optional extra: ``pip install .[vendor]``).

Zeiss Cirrus ``.img`` (raw, size from the file name), Bioptigen ``.OCT``
and Optovue ``.oct``. OCT-Converter returns B-scans as a list of 2-D arrays plus loosely typed
metadata; we keep what it states and leave the rest explicitly unknown. Topcon files have a reader
of our own (``topcon``), because OCT-Converter's Topcon parser does not run on NumPy 2.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from pathlib import Path

import numpy as np

from ..core import OctVolume, Spacing
from .errors import VolumeReadError
from .limits import check_budget, check_dimensions, open_regular, plausible_mm, require_readable

_LATERALITY = {"R": "OD", "L": "OS", "OD": "OD", "OS": "OS"}
#: OCT-Converter reads a Cirrus .img as B-scans of 1024 x 512 bytes, one after the other.
_CIRRUS_BSCAN_BYTES = 1024 * 512


def _open(path: Path):
    suffix = path.suffix
    # checked here, in words: OCT-Converter's own errors were "cannot reshape array of size 1 into shape
    # (1024,512,0)" and "Could not find filespec <the whole folder path>" (attack run 2 L2)
    if suffix.lower() == ".img" and path.stat().st_size % _CIRRUS_BSCAN_BYTES:
        raise VolumeReadError(path, f"the file's size ({path.stat().st_size} bytes) is not a whole number of the "
                                    "1024 x 512-byte B-scans a Zeiss Cirrus .img holds (truncated, or not Cirrus)")
    if suffix == ".oct" and not path.with_suffix(".txt").is_file():
        raise VolumeReadError(path, f"an Optovue .oct file is read with its description file "
                                    f"{path.with_suffix('.txt').name}, which is not beside it")
    if suffix == ".oct":
        check_optovue_description(path)
    boct = check_bioptigen_sizes(path) if suffix == ".OCT" else None
    try:
        from oct_converter import readers
    except ImportError:
        raise VolumeReadError(path, "reading this vendor format needs the optional extra: "
                                    "pip install 'octviewer[vendor]' (OCT-Converter)") from None
    if suffix.lower() == ".img":
        return _cirrus_reader(readers)(path).read_oct_volume(), "Zeiss Cirrus", ()
    if suffix == ".OCT":
        return _bioptigen(readers, path, boct)
    if suffix == ".oct":
        return readers.POCT(path).read_oct_volume()[0], "Optovue", ()
    raise VolumeReadError(path, f"no reader for '{suffix}' files")


def cirrus_name_fields(name: str) -> dict:
    """What OCT-Converter reads from a Cirrus file name (patient ID, laterality, acquisition date),
    read so that no name fails: its own reader called ``datetime()`` on whatever digits stood where
    MM-DD-YYYY_hh-mm-ss goes, and a name holding "13-45-2020_25-61-99" made the scan "corrupt ...
    (month must be in 1..12)" (attack run 4, F12); such a date is unknown. (It also failed on a name
    holding "sn" without digits.)"""
    patient = re.search(r"^P\d+", name)
    eye = re.search(r"O[DS]", name)
    when = re.search(r"(\d{1,2})-(\d{1,2})-(\d{4})_(\d{1,2})-(\d{1,2})-(\d{1,2})", name)
    acquired = None
    if when is not None:
        month, day, year, hour, minute, second = (int(g) for g in when.groups())
        try:
            acquired = dt.datetime(year, month, day, hour, minute, second)
        except ValueError:
            acquired = None
    return {"patient_id": patient.group(0) if patient else None, "laterality": eye.group(0) if eye else None,
            "acquisition_date": acquired}


def _cirrus_reader(readers):
    class Cirrus(readers.IMG):
        def get_metadata_from_filename(self) -> dict:
            return cirrus_name_fields(Path(self.filepath).name)

    return Cirrus


#: An Optovue description file is a few dozen lines.
_MAX_DESCRIPTION_BYTES = 1 << 20
#: OCT-Converter's pattern for an acquisition date in an Optovue path (YYYY-MM-DD_hh.mm.ss).
_OPTOVUE_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})_(\d{1,2}).(\d{1,2}).(\d{1,2})")


def _first_number(line: str) -> int | None:
    """The first whitespace-separated token of digits, as OCT-Converter reads it; None when there is none."""
    token = next((s for s in line.split() if s.isdigit()), None)
    try:
        return int(token) if token is not None else None
    except ValueError:  # a digit that is no decimal number ("²")
        return None


def check_optovue_description(path: Path) -> list[tuple[int, int, int]]:
    """The (B-scans, depth, width) of each scan an Optovue ``.txt`` declares, checked against the
    ``.oct`` file's size before OCT-Converter reads it; read as OCT-Converter reads it.

    OCT-Converter makes one slice per "Scan Usage" before anything is checked: a 4-byte .oct with
    "Window Height = 0" and a usage of 3 000 000 took 32 s and 1.2 GB to refuse (attack run 4, F1).
    Each scan's pixels are float32 and every scan is read from the start of the .oct file."""
    txt = path.with_suffix(".txt")
    if require_readable(txt, folder_ok=False).st_size > _MAX_DESCRIPTION_BYTES:
        raise VolumeReadError(path, f"its description file {txt.name} is over 1 MiB: not an Optovue description")
    with open_regular(txt) as f:
        lines = f.read().decode("iso-8859-1").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    where = f"the description file {txt.name}"
    scans, height = [], None
    for i, line in enumerate(lines):
        if "Window Height" in line:
            height = _first_number(line)
            if height is None:
                raise VolumeReadError(path, f"{where} gives no number for Window Height (line {i + 1})")
        if "Scan Length" in line and i + 1 < len(lines) and "Scan Usage" in lines[i + 1]:
            length, number = _first_number(line), _first_number(lines[i + 1])
            if height is None or length is None or number is None:
                raise VolumeReadError(path, f"{where} gives no Window Height, Scan Length or Scan Usage number "
                                            f"for the scan at line {i + 1}")
            scans.append((number, height, length))
    if not scans:
        raise VolumeReadError(path, f"{where} states no scan size (Window Height, Scan Length, Scan Usage)")
    size = require_readable(path, folder_ok=False).st_size
    for number, height, length in scans:
        check_dimensions(path, (number, height, length), what="scan its description file declares")
        need = 4 * number * height * length
        if need > size:
            raise VolumeReadError(path, f"{where} declares {number} B-scans of {height} x {length} pixels ({need} "
                                        f"bytes), the .oct file holds {size} bytes (truncated, or the wrong .txt)")
    if (m := _OPTOVUE_DATE.search(str(txt))) is not None:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups())
        try:
            dt.datetime(y, mo, d, h, mi, sec)
        except ValueError:  # OCT-Converter's datetime() would fail with Python's words
            raise VolumeReadError(path, "its path holds a date (YYYY-MM-DD_hh.mm.ss) that is no calendar date, and "
                                        "OCT-Converter reads the acquisition date from it: rename the file or "
                                        "folder") from None
    return scans


#: The Bioptigen .OCT header after its magic number and version, in OCT-Converter's layout
#: (boct_binary): h = a key with a length but no value, i = an integer of the stated length,
#: s = text of the stated length, f = an 8-byte float whatever the stated length, c = the CONFIG
#: block of the stated length. The keys are not checked, as OCT-Converter does not check them.
_BOCT_HEADER = "hiiiisffsffsiffffffiiic"
#: OCT-Converter's names for the scan types it reads (others fail with a KeyError).
_BOCT_SCAN_TYPES = {0: "linear", 1: "rect", 3: "rad"}


def _boct_field(f, path, kind: str):
    """One key/length/value record of a Bioptigen .OCT; the integer value for 'i', else None."""
    head = f.read(4)
    if len(head) < 4:
        raise EOFError
    (key_length,) = struct.unpack("<I", head)
    if key_length > 64:
        raise VolumeReadError(path, f"a header key is {key_length} bytes long: damaged, or not a Bioptigen .OCT")
    f.seek(key_length, 1)
    raw = f.read(4)
    if len(raw) < 4:
        raise EOFError
    (length,) = struct.unpack("<I", raw)
    if kind == "i":
        if length > 8:
            raise VolumeReadError(path, f"a header number is {length} bytes long: damaged, or not a Bioptigen .OCT")
        value = f.read(length)
        if len(value) < length:
            raise EOFError
        return int.from_bytes(value, "little")
    f.seek({"h": 0, "f": 8, "d": 16}.get(kind, length), 1)
    return None


def _bioptigen(readers, path: Path, layout: dict) -> tuple:
    """OCT-Converter's Bioptigen volume and what it dropped, as notes: the first time point (each
    time point is a volume of the same shape; OCT-Converter gives a list of them) and the first
    frame's date, which OCT-Converter reads but does not hand on, and which it turned into "corrupt
    (month must be in 1..12)" when impossible, though the pixels are fine (issue 27, leftovers)."""
    from oct_converter.readers.boct import FrameGenerator

    class Bioptigen(readers.BOCT):
        def read_oct_volume(self):
            """OCT-Converter's own, without its datetime() of the first frame's date."""
            self.laterality, self.patient_id = None, self.filepath.stem
            parsed = self.file_structure.parse_file(self.filepath)
            self.frames = FrameGenerator(parsed.data)
            self.vol_frames_shape = (layout["time_points"], layout["bscans"])
            self.volume_shape = (*self.vol_frames_shape, self.frames.Ascans, self.frames.depth)
            self.vol = np.empty(self.volume_shape, dtype=np.uint16)
            self.acquisition_datetime = None
            self.get_laterality_from_filename()
            return self.load_oct_volume()

    volumes = Bioptigen(path).read_oct_volume()
    notes = []
    if len(volumes) > 1:
        notes.append(f"the file holds {len(volumes)} time points of this scan; the first is shown, "
                     f"{len(volumes) - 1} more were dropped")
    year, month, _, day, hour, minute, second, _ = layout["date"]
    try:  # a real calendar date; whether a scan can have it is validate_volume's one rule (date_problem)
        acquired = dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        acquired = None
        notes.append("the first frame's stored date is not a calendar date: the acquisition date is unknown")
    volumes[0].acquisition_date = acquired
    return volumes[0], "Bioptigen", tuple(notes)


def check_bioptigen_sizes(path: Path) -> dict:
    """Read a Bioptigen .OCT's header and frame headers as OCT-Converter does, and check the volume
    they declare against the file before OCT-Converter allocates it.

    OCT-Converter sizes its (frames, B-scans, A-scans, depth) uint16 array from the header and the
    first frame, and np.resize's every frame into its slot: a 1.3 MB file of one real frame and 1,999
    frame headers of 0 A-scans took 2.07 GB and 9.6 s, and loaded (attack run 4, Bioptigen frame
    bomb). Every frame must hold as many A-scans as the first, and the whole must fit the budget.
    Returns the time points and B-scans per time point as OCT-Converter orders them, and the first
    frame's stored date (year, month, day of week, day, hour, minute, second, millisecond)."""
    size = require_readable(path, folder_ok=False).st_size
    with open_regular(path) as f:
        where = "header"
        try:
            f.seek(6)  # magic number and version, checked by OCT-Converter
            values = [_boct_field(f, path, kind) for kind in _BOCT_HEADER]
            framecount, depth, scantype, scans, frames = values[1], values[3], values[12], values[19], values[20]
            f.seek(4, 1)
            if scantype not in _BOCT_SCAN_TYPES:
                raise VolumeReadError(path, f"its scan type {scantype} is none that OCT-Converter reads "
                                            "(0 linear, 1 rectangular, 3 radial)")
            if scantype == 0:  # OCT-Converter puts repeated linear B-scans one after the other
                frames, scans = frames * scans, 1
            if framecount < 1 or framecount != frames * scans:
                raise VolumeReadError(path, f"its header counts {framecount} frames but declares {frames} x {scans} "
                                            "B-scans: damaged, or not a Bioptigen .OCT")
            ascans, date = None, None
            for i in range(framecount):
                where = f"frame {i + 1}"
                _boct_field(f, path, "h")  # FRAMEDATA
                if date is None:  # FRAMEDATETIME: 8 uint16, read as OCT-Converter reads them
                    _boct_field(f, path, "h")
                    raw = f.read(16)
                    if len(raw) < 16:
                        raise EOFError
                    date = struct.unpack("<8H", raw)
                else:
                    _boct_field(f, path, "d")
                _boct_field(f, path, "f")  # FRAMETIMESTAMP
                lines = _boct_field(f, path, "i")
                if ascans is None:
                    ascans = lines
                    check_dimensions(path, (framecount, depth, ascans))
                    check_budget(path, 2.0 * framecount * ascans * depth, size)
                elif lines != ascans:
                    raise VolumeReadError(path, f"frame {i + 1} holds {lines} A-scans where the first holds "
                                                f"{ascans} (damaged, or a forged header)")
                _boct_field(f, path, "h")  # FRAMESAMPLES, then the pixels and 4 bytes
                f.seek(2 * ascans * depth + 4, 1)
                if f.tell() > size:
                    raise EOFError
        except EOFError:
            raise VolumeReadError(path, f"the file is truncated: its {where} ends early "
                                        f"({size} bytes; or not a Bioptigen .OCT)") from None
    return {"time_points": frames, "bscans": scans, "date": date}


def read_vendor(path: Path) -> OctVolume:
    size = require_readable(path, folder_ok=False).st_size
    oct_volume, device, notes = _open(path)
    check_budget(path, float(sum(np.asarray(b).nbytes for b in oct_volume.volume)), size)
    # OCT-Converter gives a Bioptigen B-scan as (A-scans, depth): each A-scan's samples are stored together
    data = np.stack([np.asarray(b).T if device == "Bioptigen" else np.asarray(b) for b in oct_volume.volume])
    spacing = Spacing()
    ps = oct_volume.pixel_spacing
    if ps is not None and len(ps) == 3:  # OCT-Converter order: [x (A-scan), y (depth), z (B-scan)]
        spacing = Spacing(bscan_mm=plausible_mm(ps[2]), depth_mm=plausible_mm(ps[1]), ascan_mm=plausible_mm(ps[0]))
    return OctVolume(
        data=data,
        spacing=spacing,
        laterality=_LATERALITY.get(str(oct_volume.laterality or "").upper()),
        scan_pattern="volume" if data.shape[0] > 1 else "line",
        device=device,
        patient_id=oct_volume.patient_id,
        acquired=oct_volume.acquisition_date if device == "Bioptigen" else None,
        notes=(() if spacing.known else ("the file states no physical spacing",)) + notes,
    )
