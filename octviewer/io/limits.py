"""What the readers agree to open and to allocate, checked before any decoding.

Three guards every reader goes through (docs/bad_input.md lists the guarantees they give):

- **Kind of file.** Only regular files are opened, and directories for the folder formats. A FIFO
  would block the reading thread forever, a character device such as ``/dev/zero`` never ends; both
  are refused from ``os.stat`` alone, before anything opens them, and every open is non-blocking
  and checks the opened file again (``open_regular``), so a path swapped after the look is refused too.
- **Shape.** Sizes no OCT device produces (empty axes, an axis over ``MAX_AXIS``, B-scans thinner
  or shallower than ``MIN_BSCAN_PIXELS``) are lying headers or not OCT at all.
- **Bytes.** The decoded size, computed from headers (npz member headers, TIFF page tags, image
  headers, DICOM Rows x Columns x frames), must fit ``byte_budget(file size)``: compressed formats
  legitimately decode to more than they store, but not to gigabytes from a few megabytes. A
  deflate-compressed DICOM data set is inflated in bounded pieces and counted against the same
  budget before pydicom inflates it whole (``check_deflated_dicom``).
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
import stat
import struct
from pathlib import Path

import numpy as np

from .errors import VolumeReadError

#: Largest volume in voxels. A Cirrus cube is 41 M; a 512 x 1024 x 1024 scan is 0.5 G.
MAX_VOXELS = 1_200_000_000
#: Longest axis in pixels (B-scans, depth or A-scans).
MAX_AXIS = 16_384
#: Fewest pixels along depth and along a B-scan: below this it is not an OCT B-scan (an RGB image
#: read as a stack has width 3; a 1 x 1 x 1 "volume" has nothing to analyse).
MIN_BSCAN_PIXELS = 16

#: Decoded bytes always allowed, whatever the file size (a highly compressible but real cube).
BUDGET_FLOOR = 256 * 2**20
#: Decoded bytes allowed per stored byte above the floor (lossless OCT compresses 1.5-4x).
BUDGET_RATIO = 32
#: Decoded bytes never allowed, whatever the file size.
BUDGET_CAP = 4 * 2**30

#: Largest plausible voxel size in millimetres: a wide-field scan is ~20 mm across, so 100 mm per
#: pixel is no real spacing (a 1e308 one would print as nonsense or overflow in areas).
MAX_SPACING_MM = 100.0
#: The first OCT scanners were sold in 1996; 1991 is the method's paper. An earlier date is an edited file.
FIRST_OCT = _dt.date(1991, 1, 1)
#: How far after today a stored acquisition date may lie: the workstation that opens a file may have a
#: clock (or a time zone) a day or two behind the one that wrote it. Beyond that the date is an edit.
CLOCK_SLACK = _dt.timedelta(days=2)
#: Earliest plausible date of a measured visual field. Perimetry is older than OCT: automated static
#: perimeters were sold from the mid-1970s (Octopus 1975, Humphrey Field Analyzer 1984), so 1970 leaves
#: room for any digitised record. An earlier date (1900-01-01: a perimeter whose clock was reset) entered
#: the trend and turned a -1.98 dB/yr progression into -0.04 dB/yr (attack run 5, F6).
FIRST_VF = _dt.date(1970, 1, 1)


def today() -> _dt.date:
    """This workstation's date; one function, so that a test can set the clock back."""
    return _dt.date.today()


def date_problem(when, earliest: _dt.date = FIRST_OCT) -> str:
    """Why ``when`` (a date or date-time) cannot be when a test was taken, or "": the one rule for
    every reader of scans and manifest visits (``earliest`` FIRST_OCT) and of visual fields (FIRST_VF).

    Nothing after today plus CLOCK_SLACK either. The words never give the date itself: a scan's date
    is withheld from anonymised reports, and these words go into a scan's notes."""
    day = when.date() if isinstance(when, _dt.datetime) else when
    if day < earliest:
        return f"is before {earliest.year}"
    if day > today() + CLOCK_SLACK:
        return "is later than this workstation's date (check the computer's clock, or the date is wrong)"
    return ""


def byte_budget(stored_bytes: int) -> int:
    """Decoded bytes a file of ``stored_bytes`` may produce: the floor, 32x the file, at most the cap."""
    return int(min(BUDGET_CAP, max(BUDGET_FLOOR, BUDGET_RATIO * int(stored_bytes))))


def check_budget(path, decoded_bytes: float, stored_bytes: int, what: str = "the volume") -> None:
    """Refuse to decode more than ``byte_budget(stored_bytes)``: a decompression bomb or a lying header."""
    budget = byte_budget(stored_bytes)
    if decoded_bytes > budget:
        raise VolumeReadError(
            path, f"{what} would decode to {decoded_bytes / 2**20:.0f} MiB from {stored_bytes / 2**20:.1f} MiB "
                  f"stored, more than the {budget / 2**20:.0f} MiB allowed for a file of this size "
                  "(a damaged header or a decompression bomb)")


#: the first tag's group of a DICOM data set stored without the 128-byte preamble and 'DICM' (old
#: ACR-NEMA style, which pydicom reads with force=True): file meta (0002) or identification (0008),
#: little or big endian
_RAW_DATASET_GROUPS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def check_dicom_start(f, path) -> None:
    """Refuse from its first 134 bytes a file named .dcm that does not start as DICOM; leave ``f``
    where it was.

    pydicom told to read such a file anyway (force=True) takes any bytes for data elements: a 300 MB
    file of zeros was read as 37 million empty elements for ~140 s before it was refused
    (walk-through M7). A DICOM file has 'DICM' after its preamble, followed by its file meta group
    (0002); one without the preamble starts with a group 0002 or 0008 tag."""
    start = f.tell()
    try:
        head = f.read(134)
    finally:
        f.seek(start)
    if head[128:132] == b"DICM" and head[132:134] == b"\x02\x00":
        return
    if head[128:132] != b"DICM" and head[:2] in _RAW_DATASET_GROUPS:
        return
    raise VolumeReadError(path, "not a DICOM file: its first bytes are neither a DICOM header nor the start of a "
                                "DICOM data set (a damaged file, or another kind of file named .dcm)")


def check_deflated_dicom(f, path, stored_bytes: int) -> None:
    """Refuse a DICOM file whose data set is deflate-compressed (Deflated Explicit VR Little Endian)
    and inflates to more than ``byte_budget(stored_bytes)``; leave ``f`` where it was.

    pydicom inflates such a data set whole, in one ``zlib.decompress``, before it reads a single
    tag, so no header check can come first: an 800 kB file holding a private element of zeros took
    1.7 GB, and a 3 MB one more than the machine had (attack run H4). Here the stream is inflated in
    bounded pieces and only counted, never kept, so the peak stays a few MiB; a file within the
    budget is then read by pydicom as usual. Anything else (no file meta, another transfer syntax,
    a damaged stream) is left to the reader's own checks.

    Every syntax, deflated or not, then has its elements and sequence items counted up to the pixel
    data (``count_dicom_elements``): the reader and the study index both call this before pydicom."""
    import zlib

    from pydicom.filereader import _read_file_meta_info, read_preamble
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

    start = f.tell()
    try:
        try:
            read_preamble(f, force=True)
            syntax = _read_file_meta_info(f).get("TransferSyntaxUID")
        except Exception:  # noqa: BLE001 - not DICOM, or damaged: pydicom's own read says so
            return
        body = f.tell()
        if syntax != DeflatedExplicitVRLittleEndian:  # the header's element count only
            little = None if syntax is None else syntax != ExplicitVRBigEndian
            count_dicom_elements(_Bytes(_blocks(f)), path, syntax != ImplicitVRLittleEndian, little)
            return
        budget, inflated = byte_budget(stored_bytes), 0
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        while not inflater.eof and (data := f.read(1 << 20)):
            while data:
                try:
                    inflated += len(inflater.decompress(data, 1 << 22))
                except zlib.error:
                    return
                if inflated > budget:
                    raise VolumeReadError(
                        path, f"the deflate-compressed DICOM data set inflates to more than {budget / 2**20:.0f} MiB "
                              f"from {stored_bytes / 2**20:.1f} MiB stored, more than allowed for a file of "
                              "this size (a decompression bomb or a damaged file)")
                data = inflater.unconsumed_tail
        f.seek(body)
        count_dicom_elements(_Bytes(_inflated(f)), path, explicit=True, little=True)
    finally:
        f.seek(start)


#: Data elements and sequence items a DICOM data set may hold before its pixel data. pydicom makes
#: an object of each as it reads (a Dataset per item: ~700 bytes, ~17 us), so their number, not
#: their bytes, is what a header costs: 3 M empty items (24 MB inflated, a 2.6 MB deflated file)
#: took 51 s and 2.1 GB (attack run 4, F19). A real OCT header holds a few dozen per B-scan.
MAX_DICOM_ELEMENTS = 200_000
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF


class _Bytes:
    """A forward-only byte source over pieces (a file read in blocks, or a stream being inflated)."""

    def __init__(self, pieces):
        self.pieces, self.buf, self.at = pieces, b"", 0

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.at < n:
            piece = next(self.pieces, None)
            if piece is None:
                break
            self.buf, self.at = self.buf[self.at:] + piece, 0
        out = self.buf[self.at:self.at + n]
        self.at += len(out)
        return out

    def skip(self, n: int) -> int:
        """Discard n bytes; the number skipped (fewer at the end)."""
        done = 0
        while done < n:
            if self.at == len(self.buf):
                piece = next(self.pieces, None)
                if piece is None:
                    break
                self.buf, self.at = piece, 0
            k = min(n - done, len(self.buf) - self.at)
            self.at += k
            done += k
        return done


def _blocks(f):
    while block := f.read(1 << 16):
        yield block


def _inflated(f):
    import zlib

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    while not inflater.eof and (data := f.read(1 << 16)):
        while data:
            try:
                yield inflater.decompress(data, 1 << 20)
            except zlib.error:
                return
            data = inflater.unconsumed_tail


def count_dicom_elements(data: _Bytes, path, explicit: bool, little: bool | None) -> int:
    """Walk a data set's elements and sequence items (values skipped, nothing kept) up to the
    top-level Pixel Data, and refuse more than ``MAX_DICOM_ELEMENTS``; the number walked. The walk
    stops at the limit, so its cost is bounded too; anything it cannot follow is left to pydicom.

    It reads as pydicom does: the first element says whether VRs are explicit (whatever the transfer
    syntax claims), and a sequence stored as UN (undefined length, or a tag the dictionary calls a
    sequence) holds implicit VR items. ``little`` None: guessed from the first tag's group bytes
    (a data set without file meta)."""
    from pydicom.datadict import dictionary_VR

    head = data.read(8)
    if len(head) == 8:
        explicit = head[4:6].isalpha() and head[4:6].isupper()
        if little is None:
            little = not (head[0] == 0 and head[1] != 0)
    order = "<" if little else ">"
    tag_length = struct.Struct(order + "HHI")
    short = struct.Struct(order + "H")
    long = struct.Struct(order + "I")
    # open containers: ("seq" | "item" (undefined length) | end position, explicit VR inside)
    open_: list[tuple] = []
    pos, count = 0, 0
    while True:
        while open_ and isinstance(open_[-1][0], int) and pos >= open_[-1][0]:
            open_.pop()
        head = head or data.read(8)
        if len(head) < 8:
            return count
        pos += 8
        count += 1
        if count > MAX_DICOM_ELEMENTS:
            raise VolumeReadError(path, f"the DICOM header holds more than {MAX_DICOM_ELEMENTS} data elements and "
                                        "sequence items before its pixel data: no OCT header has that many (a "
                                        "damaged file, or one built to exhaust memory)")
        group, element, length = tag_length.unpack(head)
        tag_head, head = head, b""
        inside = open_[-1][1] if open_ else explicit
        if group == 0xFFFE:  # item, item end, sequence end: tag and a 4-byte length in every syntax
            if element == 0xE000:
                open_.append(("item" if length == _UNDEFINED else pos + length, inside))
            elif open_ and open_[-1][0] == ("item" if element == 0xE00D else "seq"):
                open_.pop()
            continue
        if not open_ and (group, element) == (0x7FE0, 0x0010):
            return count
        if inside:
            vr = tag_head[4:6]
            if vr in _LONG_VRS:
                tail = data.read(4)
                if len(tail) < 4:
                    return count
                pos += 4
                (length,) = long.unpack(tail)
            else:
                (length,) = short.unpack(tag_head[6:8])
        else:
            vr = b""
        if vr in (b"", b"UN"):
            try:
                known = dictionary_VR((group << 16) | element)
            except KeyError:
                known = ""
            if known == "SQ" or length == _UNDEFINED:  # pydicom reads these as sequences
                vr, inside = b"SQ", inside and vr != b"UN"  # a UN sequence holds implicit VR items
        if vr == b"SQ":
            open_.append(("seq" if length == _UNDEFINED else pos + length, inside))
        elif length == _UNDEFINED:
            return count  # encapsulated data below the top level: pydicom decides
        else:
            pos += data.skip(length)


def check_dimensions(path, shape, what: str = "volume") -> None:
    """Refuse sizes no OCT device produces before anything is allocated for them."""
    dims = tuple(int(s) for s in shape)
    if len(dims) == 0 or any(s < 1 for s in dims):
        raise VolumeReadError(path, f"the {what} has an empty dimension {dims}")
    if any(s > MAX_AXIS for s in dims) or math.prod(dims) > MAX_VOXELS:
        raise VolumeReadError(path, f"the {what} declares an implausible size {dims}")


def check_bscan_shape(path, shape) -> None:
    """A volume (n_bscans, depth, width) whose B-scans are big enough to be OCT B-scans."""
    check_dimensions(path, shape)
    n, depth, width = (int(s) for s in shape)
    if depth < MIN_BSCAN_PIXELS or width < MIN_BSCAN_PIXELS:
        hint = " (it looks like a colour image: the last axis has 3 or 4 samples)" if width in (3, 4) else ""
        raise VolumeReadError(
            path, f"B-scans of {depth} x {width} pixels are too small to be OCT "
                  f"(at least {MIN_BSCAN_PIXELS} x {MIN_BSCAN_PIXELS} expected; shape {n} x {depth} x {width}){hint}")


def require_readable(path: Path, folder_ok: bool = True) -> os.stat_result:
    """Stat ``path`` and refuse anything but a regular file (or a directory where ``folder_ok``).

    Called before every open: a FIFO, socket or device is refused without being opened, so it can
    never block the thread that reads. Returns the stat result for the caller's size checks.
    """
    if "\x00" in os.fsdecode(path):  # os.stat's "embedded null byte" was reported as a corrupt file (attack run 4, F22)
        raise VolumeReadError(path, "the path holds a NUL character, which no file name can hold")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VolumeReadError(path, "no such file or folder") from None
    except PermissionError:
        raise VolumeReadError(path, "permission denied: you are not allowed to read this file or folder") from None
    except OSError as exc:
        raise VolumeReadError(path, f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    mode = st.st_mode
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return st
    if stat.S_ISDIR(mode):
        raise VolumeReadError(path, "this is a folder where a file was expected")
    raise VolumeReadError(path, f"this is {_kind(mode)}, not a file; only regular files and folders are opened")


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_regular(path) -> io.BufferedReader:
    """Open a regular file for reading, never blocking on what the path turns out to be.

    ``require_readable`` looks before the open, but the path can be swapped for a FIFO between the
    look and the open (or a reader may be handed a path nobody looked at). So the open itself is
    non-blocking (a FIFO without a writer opens at once instead of waiting for one) and the file
    that was actually opened is checked with ``fstat``; only then is blocking mode restored for the
    reader. Anything but a regular file is closed again and refused.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise VolumeReadError(path, "no such file") from None
    except PermissionError:
        raise VolumeReadError(path, "permission denied: you are not allowed to read this file") from None
    except IsADirectoryError:
        raise VolumeReadError(path, "this is a folder where a file was expected") from None
    except OSError as exc:
        raise VolumeReadError(path, f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise VolumeReadError(path, f"this is {_kind(mode)}, not a file; only regular files are opened")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        raw = io.FileIO(fd, "r", closefd=True)
        raw.name = os.fspath(path)  # readers (tifffile, pydicom) use the name, not the descriptor
        return io.BufferedReader(raw)
    except BaseException:
        os.close(fd)
        raise


def plausible_mm(value) -> float | None:
    """A spacing in mm if it is a finite positive number up to ``MAX_SPACING_MM``, else None (unknown).

    Strings that hold numbers (DICOM decimal strings) are accepted; anything else is unknown, so a
    damaged header gives "unknown spacing", never "nan mm".
    """
    if isinstance(value, bool):
        return None
    try:
        mm = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return mm if math.isfinite(mm) and 0.0 < mm <= MAX_SPACING_MM else None


def itemsize(dtype) -> int:
    return int(np.dtype(dtype).itemsize)
