"""What one file's header says, read without its pixels: an OCT scan, a measured VF, or why it is skipped.

DICOM is read with pydicom up to the pixel data and only for the tags we use; a Heidelberg ``.vol``
for its 2048-byte file header, parsed with eyepy's own format description. Each answer is a plain
dict (JSON-able) so the study index can cache it per file.

pydicom logs problems with the file name in the message; file names often carry patient IDs, so
its records are dropped while a thread reads headers here.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import OphthalmicTomographyImageStorage

from ..io.dicom import quiet_pydicom
from .vf import VfReadError, parse_date, vf_from_dataset

_LATERALITY = {"R": "OD", "L": "OS", "OD": "OD", "OS": "OS"}
_DICOM_TAGS = ["SOPClassUID", "Modality", "PatientID", "ImageLaterality", "Laterality", "StudyDate",
               "ContentDate", "AcquisitionDateTime", "NumberOfFrames", "Manufacturer", "ImageComments",
               "SharedFunctionalGroupsSequence"]
_VOL_PATTERNS = {0: "volume", 1: "line", 2: "circle", 3: "volume", 4: "volume", 5: "radial"}




def _dicom_record(path: Path) -> dict:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_DICOM_TAGS, force=True)
    except Exception:
        return {"kind": "skip", "reason": "unreadable files"}
    modality = str(ds.get("Modality", "") or "")
    if modality == "OPV":
        try:
            m = vf_from_dataset(pydicom.dcmread(path), path)
        except (VfReadError, Exception):
            return {"kind": "skip", "reason": "unreadable visual-field files"}
        return {"kind": "vf", "patient_id": m.patient_id, "eye": m.eye,
                "date": m.date.isoformat() if m.date else "", "vfi": m.vfi, "md_db": m.md_db, "psd_db": m.psd_db}
    if ds.get("SOPClassUID") != OphthalmicTomographyImageStorage and modality != "OPT":
        return {"kind": "skip", "reason": "non-OCT DICOM files" if "SOPClassUID" in ds or modality
                else "other files"}
    laterality = ""
    frame_anatomy = None
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "FrameAnatomySequence" in shared[0] and shared[0].FrameAnatomySequence:
        frame_anatomy = shared[0].FrameAnatomySequence[0].get("FrameLaterality")
    for value in (ds.get("ImageLaterality"), ds.get("Laterality"), frame_anatomy):
        if value and str(value).upper() in _LATERALITY:
            laterality = _LATERALITY[str(value).upper()]
            break
    stamp = str(ds.get("AcquisitionDateTime", "") or "")[:8] or str(ds.get("StudyDate", "") or "") \
        or str(ds.get("ContentDate", "") or "")
    date = parse_date(stamp)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    text = f"{ds.get('Manufacturer', '')} {ds.get('ImageComments', '')}"
    return {"kind": "scan", "patient_id": str(ds.get("PatientID", "") or ""), "eye": laterality,
            "date": date.isoformat() if date else "", "scan_pattern": "volume" if frames > 1 else "line",
            "n_bscans": frames, "synthetic": "SYNTHETIC" in text.upper()}


def _vol_header_format():
    import construct as cs
    from eyepy.io.he.vol_reader import vol_format

    names = [s.name for s in vol_format.subcons]
    return cs.Struct(*vol_format.subcons[:names.index("__empty")])


def _vol_record(path: Path) -> dict:
    with open(path, "rb") as f:
        head = f.read(2048)
    try:
        h = _vol_header_format().parse(head)
    except Exception:
        return {"kind": "skip", "reason": "unreadable files"}
    pattern = _VOL_PATTERNS.get(int(h.scan_pattern), "volume")
    if pattern == "volume" and int(h.n_bscans) == 1:
        pattern = "line"
    eye = str(h.scan_position).strip("\x00 ").upper()
    when = parse_date(h.exam_time)  # eyepy gives an ISO string or a datetime
    return {"kind": "scan", "patient_id": str(h.patient_id).strip("\x00 "), "eye": eye if eye in ("OD", "OS") else "",
            "date": when.isoformat() if when else "", "scan_pattern": pattern,
            "n_bscans": int(h.n_bscans), "synthetic": False}


def read_record(path: Path) -> dict:
    """What the header of one file says: a scan, a measured VF, or why it is skipped."""
    with quiet_pydicom():  # pydicom's records name files (and so patients)
        return _read_record(path)


def _read_record(path: Path) -> dict:
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return {"kind": "skip", "reason": "unreadable files"}
    if head[128:132] == b"DICM" or suffix in (".dcm", ".dicom"):
        return _dicom_record(path)
    if head.startswith(b"HSF-OCT") or (suffix == ".vol" and head.startswith(b"ep-v")):
        return _vol_record(path)
    return {"kind": "skip", "reason": "other files"}


