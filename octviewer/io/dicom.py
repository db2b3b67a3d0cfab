"""DICOM Ophthalmic Tomography (OPT) with pydicom.

Reading takes the raw Pixel Data as a zero-copy NumPy view when it is uncompressed (faster and
leaner than ``pixel_array``, which copies), and lets pydicom's plugins decode compressed transfer
syntaxes. Spacing comes from the functional groups where the file has them, because that is where
multi-frame OPT puts it; top-level tags are the fallback for older exports.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    OphthalmicTomographyImageStorage,
    RLELossless,
    generate_uid,
)

from ..core import OctVolume, Spacing
from . import check_dimensions
from .errors import VolumeReadError

_LATERALITY = {"R": "OD", "L": "OS", "OD": "OD", "OS": "OS"}
_COMPRESSION = {None: None, "rle": RLELossless, "jpeg2000": JPEG2000Lossless}


def _first(seq_owner, *names):
    """Walk nested single-item sequences, returning None where any link is missing."""
    item = seq_owner
    for name in names:
        seq = getattr(item, name, None) if item is not None else None
        if not seq:
            return None
        item = seq[0]
    return item


def _spacing(ds: Dataset, n_frames: int) -> Spacing:
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None) or []
    measures = _first(shared, "PixelMeasuresSequence") or (
        _first(per_frame[0], "PixelMeasuresSequence") if per_frame else None)
    pixel_spacing = getattr(measures, "PixelSpacing", None) or getattr(ds, "PixelSpacing", None)
    depth_mm = ascan_mm = None
    if pixel_spacing is not None and len(pixel_spacing) == 2:
        depth_mm, ascan_mm = (float(v) if float(v) > 0 else None for v in pixel_spacing)

    bscan_mm = None
    between = getattr(measures, "SpacingBetweenSlices", None) or getattr(ds, "SpacingBetweenSlices", None)
    if between:
        bscan_mm = float(between)
    elif n_frames > 1 and len(per_frame) == n_frames:
        first = _first(per_frame[0], "PlanePositionSequence")
        last = _first(per_frame[-1], "PlanePositionSequence")
        if first is not None and last is not None and "ImagePositionPatient" in first:
            step = np.subtract(last.ImagePositionPatient, first.ImagePositionPatient) / (n_frames - 1)
            bscan_mm = float(np.linalg.norm(step)) or None
    if bscan_mm is None:
        thickness = getattr(measures, "SliceThickness", None) or getattr(ds, "SliceThickness", None)
        bscan_mm = float(thickness) if thickness else (0.0 if n_frames == 1 else None)
    return Spacing(bscan_mm=bscan_mm, depth_mm=depth_mm, ascan_mm=ascan_mm)


def _laterality(ds: Dataset) -> str | None:
    for value in (getattr(ds, "ImageLaterality", None), getattr(ds, "Laterality", None),
                  getattr(_first(ds, "SharedFunctionalGroupsSequence", "FrameAnatomySequence"),
                          "FrameLaterality", None)):
        if value and str(value).upper() in _LATERALITY:
            return _LATERALITY[str(value).upper()]
    return None


def _acquired(ds: Dataset):
    stamp = str(getattr(ds, "AcquisitionDateTime", "") or "")
    date = stamp[:8] or str(getattr(ds, "ContentDate", "") or getattr(ds, "StudyDate", "") or "")
    try:
        return dt.datetime.strptime(date[:8], "%Y%m%d").date() if date else None
    except ValueError:
        return None


def _pixels(path, ds: Dataset, n_frames: int) -> np.ndarray:
    rows, cols = int(ds.Rows), int(ds.Columns)
    check_dimensions(path, (n_frames, rows, cols))
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise VolumeReadError(path, "colour DICOM images are not OCT B-scans (SamplesPerPixel is not 1)")
    bits = int(ds.BitsAllocated)
    if bits not in (8, 16):
        raise VolumeReadError(path, f"{bits}-bit pixels are not supported (8 or 16 expected)")
    if "PixelData" not in ds:
        raise VolumeReadError(path, "the DICOM file has no pixel data")
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        try:
            pixels = ds.pixel_array
        except Exception as exc:
            raise VolumeReadError(
                path, f"cannot decode the compressed pixel data ({ds.file_meta.TransferSyntaxUID.name}): {exc}"
            ) from exc
        return pixels.reshape(n_frames, rows, cols)
    signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
    dtype = np.dtype(("i" if signed else "u") + str(bits // 8)).newbyteorder("<")
    count = n_frames * rows * cols
    raw = ds.PixelData
    if len(raw) < count * dtype.itemsize:
        raise VolumeReadError(
            path, f"the file is truncated: {n_frames} B-scans of {rows} x {cols} need "
                  f"{count * dtype.itemsize} bytes of pixel data, found {len(raw)}")
    pixels = np.frombuffer(raw, dtype=dtype, count=count).reshape(n_frames, rows, cols)
    return pixels if dtype.isnative else pixels.astype(dtype.newbyteorder("="))


def read_dicom(path: Path) -> OctVolume:
    ds = pydicom.dcmread(path, force=path.suffix.lower() in (".dcm", ".dicom"))
    if "SOPClassUID" not in ds and "PixelData" not in ds:
        raise VolumeReadError(path, "not a DICOM image")
    modality = str(getattr(ds, "Modality", "") or "")
    if ds.get("SOPClassUID") != OphthalmicTomographyImageStorage and modality != "OPT":
        kind = f"a DICOM {modality} image" if modality else "a DICOM file"
        raise VolumeReadError(path, f"this is {kind}, not an OCT (Ophthalmic Tomography) series")
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    data = _pixels(path, ds, n_frames)
    device = " ".join(str(getattr(ds, t, "") or "") for t in ("Manufacturer", "ManufacturerModelName")).strip()
    return OctVolume(
        data=data,
        spacing=_spacing(ds, n_frames),
        laterality=_laterality(ds),
        scan_pattern="volume" if n_frames > 1 else "line",
        device=device,
        acquired=_acquired(ds),
        patient_id=str(getattr(ds, "PatientID", "") or "") or None,
        notes=tuple(n for n in str(getattr(ds, "ImageComments", "") or "").split("; ") if n),
    )


def write_dicom(volume: OctVolume, path: Path, compression: str | None = None,
                patient_id: str | None = None) -> None:
    """Write a multi-frame OPT object with spacing, laterality and per-frame geometry filled in.

    Float volumes are written through their display transform as 8-bit (OPT has no float pixels).
    ``compression``: None, "rle" or "jpeg2000" (both lossless).
    """
    if compression not in _COMPRESSION:
        raise ValueError(f"compression must be one of {list(_COMPRESSION)}")
    data = volume.data if volume.data.dtype in (np.uint8, np.uint16) else volume.display()
    n, rows, cols = data.shape
    sp = volume.spacing

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = OphthalmicTomographyImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = OphthalmicTomographyImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.Modality = "OPT"
    ds.Manufacturer, _, ds.ManufacturerModelName = (volume.device or "octviewer").partition(" ")
    ds.PatientID = patient_id if patient_id is not None else (volume.patient_id or "")
    ds.PatientName = ""
    when = volume.acquired
    if when is not None:
        ds.StudyDate = ds.ContentDate = when.strftime("%Y%m%d")
        ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S") if isinstance(when, dt.datetime) \
            else when.strftime("%Y%m%d")
    if volume.laterality:
        ds.ImageLaterality = volume.laterality[1].replace("D", "R").replace("S", "L")
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8 * data.dtype.itemsize
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    if volume.notes:
        ds.ImageComments = "; ".join(volume.notes)[:10240]

    measures = Dataset()
    if sp.depth_mm is not None and sp.ascan_mm is not None:
        measures.PixelSpacing = [f"{sp.depth_mm:.8g}", f"{sp.ascan_mm:.8g}"]
    if sp.bscan_mm:
        measures.SliceThickness = f"{sp.bscan_mm:.8g}"
        measures.SpacingBetweenSlices = f"{sp.bscan_mm:.8g}"
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 0, 1]  # rows along x, columns along depth
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([orientation])
    if volume.laterality:
        anatomy = Dataset()
        anatomy.FrameLaterality = ds.ImageLaterality
        shared.FrameAnatomySequence = Sequence([anatomy])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for i in range(n):
        position = Dataset()
        position.ImagePositionPatient = [0.0, f"{i * (sp.bscan_mm or 0.0):.8g}", 0.0]
        content = Dataset()
        content.InStackPositionNumber = i + 1
        content.DimensionIndexValues = [i + 1]
        frame = Dataset()
        frame.PlanePositionSequence = Sequence([position])
        frame.FrameContentSequence = Sequence([content])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)

    ds.PixelData = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
    if compression is not None:
        ds.compress(_COMPRESSION[compression], np.ascontiguousarray(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    ds.save_as(tmp, enforce_file_format=True)
    tmp.replace(path)
