"""Attack run 6, the scan readers (issue 27, helper H31): TIFF tags that change what the pixels mean
(CMYK, Orientation, FillOrder), an empty compressed strip, a DICOM rescale that inverts the pixels,
and .vol header spacings and eye that were dropped without a note."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from octviewer import load_volume
from octviewer.io.errors import VolumeReadError


def _stack() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((8, 64, 64)) * 200).astype(np.uint8)


def _with_tag(path, code: int, value: int) -> None:
    """A grey stack whose every page holds the SHORT tag ``code`` = ``value``: tifffile's writer leaves
    out FillOrder given as an extra tag, so a private tag is written and renamed in the directory."""
    import tifffile

    tifffile.imwrite(path, _stack(), photometric="minisblack", metadata=None,
                     extratags=[(65000, "H", 1, value, False)])
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        offsets = [page.tags[65000].offset for page in tif.pages]
    for offset in offsets:
        struct.pack_into("<H", raw, offset, code)
    path.write_bytes(bytes(raw))


# A6-1: CMYK (Separated: 0 is no ink, white) loaded as a grey stack, inverted as run 5's MinIsWhite was.
def test_tiff_separated_cmyk_is_refused(tmp_path):
    import tifffile

    path = tmp_path / "cmyk.tif"
    tifffile.imwrite(path, np.stack([_stack()] * 4, -1), photometric="separated")
    with pytest.raises(VolumeReadError, match=r"cmyk.tif: the TIFF's PhotometricInterpretation is Separated \(5\)"):
        load_volume(path)


def test_tiff_rgb_still_loads(tmp_path):
    import tifffile

    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.stack([_stack()] * 3, -1), photometric="rgb")
    assert load_volume(path).data.shape == (8, 64, 64)


# A6-2: Orientation 3 (rotated 180 degrees) was ignored: the stack loaded upside down.
def test_tiff_orientation_other_than_top_left_is_refused(tmp_path):
    path = tmp_path / "turned.tif"
    _with_tag(path, 274, 3)
    with pytest.raises(VolumeReadError, match="turned.tif: the TIFF's Orientation is 3: B-scans are read with "
                                              "Orientation 1"):
        load_volume(path)


def test_tiff_orientation_top_left_loads(tmp_path):
    path = tmp_path / "upright.tif"
    _with_tag(path, 274, 1)
    assert np.array_equal(load_volume(path).data, _stack())


# A6-9: FillOrder 2 (the bits of each byte reversed) was not looked at.
def test_tiff_fill_order_2_is_refused(tmp_path):
    path = tmp_path / "lsb.tif"
    _with_tag(path, 266, 2)
    with pytest.raises(VolumeReadError, match="lsb.tif: the TIFF's FillOrder is 2"):
        load_volume(path)


def test_tiff_tag_on_a_later_page_is_refused_naming_the_page(tmp_path):
    import tifffile

    path = tmp_path / "later.tif"
    _with_tag(path, 274, 1)
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[4].tags[274].overwrite(2)
    with pytest.raises(VolumeReadError, match="later.tif: the TIFF's page 5's Orientation is 2"):
        load_volume(path)


# A6-8: a compressed page whose StripByteCounts is 0 loaded as a black B-scan (uncompressed: refused).
def test_tiff_empty_compressed_strip_is_refused(tmp_path):
    import tifffile

    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, _stack(), compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[2].tags["StripByteCounts"].overwrite(0)
    with pytest.raises(VolumeReadError, match="empty.tif: the TIFF header and its pixel data disagree: page 3's "
                                              "compressed strip 1 holds 0 bytes"):
        load_volume(path)


# A6-6: RescaleSlope -1 / RescaleIntercept 255 (shown = 255 - stored) was ignored: the scan read inverted.
def _dicom(tmp_path, name: str, edit) -> Path:
    import pydicom

    from octviewer.core import OctVolume, Spacing
    from octviewer.io.dicom import write_dicom

    path = tmp_path / name
    write_dicom(OctVolume(data=_stack(), spacing=Spacing(0.05, 0.004, 0.01), laterality="OD"), path)
    ds = pydicom.dcmread(path)
    edit(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def _set(**fields):
    def edit(ds):
        for name, value in fields.items():
            setattr(ds, name, value)
    return edit


@pytest.mark.parametrize("fields, reason", [
    ({"RescaleSlope": -1, "RescaleIntercept": 255}, "the DICOM header's RescaleSlope is -1: the stored values are "
                                                    "inverted"),
    ({"RescaleSlope": 0, "RescaleIntercept": 0}, "the DICOM header's RescaleSlope is 0"),
    ({"RescaleSlope": "NaN", "RescaleIntercept": 0}, "the DICOM header's RescaleSlope is not a number"),
    ({"RescaleSlope": 1, "RescaleIntercept": "inf"}, "the DICOM header's RescaleIntercept is not a number"),
])
def test_dicom_rescale_that_inverts_or_is_no_number_is_refused(tmp_path, fields, reason):
    path = _dicom(tmp_path, "rescaled.dcm", _set(**fields))
    with pytest.raises(VolumeReadError, match=f"rescaled.dcm: {reason}"):
        load_volume(path)


def test_dicom_negative_slope_in_the_functional_groups_is_refused(tmp_path):
    from pydicom.dataset import Dataset

    def edit(ds):
        item = Dataset()
        item.RescaleSlope, item.RescaleIntercept, item.RescaleType = -1, 255, "US"
        ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence = [item]

    with pytest.raises(VolumeReadError, match="RescaleSlope is -1"):
        load_volume(_dicom(tmp_path, "groups.dcm", edit))


def test_dicom_modality_lut_sequence_is_refused(tmp_path):
    from pydicom.dataset import Dataset

    def edit(ds):
        lut = Dataset()
        lut.LUTDescriptor, lut.ModalityLUTType = [256, 0, 8], "US"
        lut.LUTData = np.arange(255, -1, -1, dtype=np.uint16).tobytes()
        ds.ModalityLUTSequence = [lut]

    with pytest.raises(VolumeReadError, match="lut.dcm: the DICOM header has a Modality LUT Sequence"):
        load_volume(_dicom(tmp_path, "lut.dcm", edit))


def test_dicom_positive_rescale_is_read_as_stored(tmp_path):
    """A positive slope keeps the grey levels in order; OCT intensities carry no unit (see _check_rescale)."""
    volume = load_volume(_dicom(tmp_path, "scaled.dcm", _set(RescaleSlope=2.5, RescaleIntercept=-10)))
    assert np.array_equal(volume.data, _stack())


# A6-20: a .vol ScaleX/ScaleZ of NaN, inf, 0, negative or 1e308 (and a ScanPosition that is no eye)
# left the spacing (the eye) unknown without a note, where the other readers say so.
@pytest.mark.parametrize("field, offset, fmt, value", [
    ("ScaleX", 24, "<d", float("nan")), ("ScaleX", 24, "<d", -0.01), ("ScaleX", 24, "<d", 1e308),
    ("ScaleZ", 40, "<d", 0.0), ("ScaleZ", 40, "<d", float("inf")), ("Distance", 32, "<d", float("nan"))])
def test_vol_implausible_spacing_field_is_named_in_a_note(tmp_path, field, offset, fmt, value):
    from corpus import write_vol

    path = write_vol(tmp_path / "scan.vol")
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))
    volume = load_volume(path)
    assert f"the file states an implausible spacing ({field}): those distances are unknown" in volume.notes
    assert getattr(volume.spacing, {"ScaleX": "ascan_mm", "ScaleZ": "depth_mm", "Distance": "bscan_mm"}[field]) is None


def test_vol_scan_position_that_is_no_eye_is_noted_not_quoted(tmp_path):
    from corpus import write_vol

    path = write_vol(tmp_path / "scan.vol")
    raw = bytearray(path.read_bytes())
    raw[84:88] = b"\x1b[2J"
    path.write_bytes(bytes(raw))
    volume = load_volume(path)
    assert volume.laterality is None
    assert volume.notes == ("the header's ScanPosition is neither OD nor OS: the eye is unknown",)


def test_vol_plausible_header_has_no_notes(tmp_path):
    from corpus import write_vol

    volume = load_volume(write_vol(tmp_path / "scan.vol"))
    assert volume.notes == () and volume.laterality == "OD" and volume.spacing.known
