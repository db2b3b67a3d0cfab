"""Other vendors' native files through OCT-Converter (an optional extra: ``pip install .[vendor]``).

Zeiss Cirrus ``.img`` (raw, size from the file name), Bioptigen ``.OCT``
and Optovue ``.oct``. OCT-Converter returns B-scans as a list of 2-D arrays plus loosely typed
metadata; we keep what it states and leave the rest explicitly unknown. Topcon files have a reader
of our own (``topcon``), because OCT-Converter's Topcon parser does not run on NumPy 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import OctVolume, Spacing
from .errors import VolumeReadError
from .limits import check_budget, plausible_mm, require_readable

_LATERALITY = {"R": "OD", "L": "OS", "OD": "OD", "OS": "OS"}
#: OCT-Converter reads a Cirrus .img as B-scans of 1024 x 512 bytes, one after the other.
_CIRRUS_BSCAN_BYTES = 1024 * 512


def _open(path: Path):
    try:
        from oct_converter import readers
    except ImportError:
        raise VolumeReadError(path, "reading this vendor format needs the optional extra: "
                                    "pip install 'octviewer[vendor]' (OCT-Converter)") from None
    suffix = path.suffix
    # checked here, in words: OCT-Converter's own errors were "cannot reshape array of size 1 into shape
    # (1024,512,0)" and "Could not find filespec <the whole folder path>" (attack run 2 L2)
    if suffix.lower() == ".img" and path.stat().st_size % _CIRRUS_BSCAN_BYTES:
        raise VolumeReadError(path, f"the file's size ({path.stat().st_size} bytes) is not a whole number of the "
                                    "1024 x 512-byte B-scans a Zeiss Cirrus .img holds (truncated, or not Cirrus)")
    if suffix == ".oct" and not path.with_suffix(".txt").is_file():
        raise VolumeReadError(path, f"an Optovue .oct file is read with its description file "
                                    f"{path.with_suffix('.txt').name}, which is not beside it")
    if suffix.lower() == ".img":
        return readers.IMG(path).read_oct_volume(), "Zeiss Cirrus"
    if suffix == ".OCT":
        return readers.BOCT(path).read_oct_volume()[0], "Bioptigen"
    if suffix == ".oct":
        return readers.POCT(path).read_oct_volume()[0], "Optovue"
    raise VolumeReadError(path, f"no reader for '{suffix}' files")


def read_vendor(path: Path) -> OctVolume:
    size = require_readable(path, folder_ok=False).st_size
    oct_volume, device = _open(path)
    check_budget(path, float(sum(np.asarray(b).nbytes for b in oct_volume.volume)), size)
    data = np.stack([np.asarray(b) for b in oct_volume.volume])
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
        notes=() if spacing.known else ("the file states no physical spacing",),
    )
