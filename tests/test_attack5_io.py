"""Attack run 5, the scan readers and the predict path (issue 27, helper H22): pixel meanings the
readers ignored, values that overflow later, header dates that cost a whole scan, header text
quoted under pseudonymisation, and extreme geometry refused from the header at once."""

from __future__ import annotations

import numpy as np
import pytest

from octviewer import load_volume
from octviewer.io.errors import VolumeReadError


def _stack() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((8, 64, 64)) * 200).astype(np.uint8)


# F1: TIFF MinIsWhite and Palette were read as MinIsBlack (an inverted scan, colour indices as grey).
@pytest.mark.parametrize("photometric, word", [("miniswhite", "MinIsWhite"), ("palette", "Palette")])
def test_tiff_minswhite_and_palette_are_refused(tmp_path, photometric, word):
    import tifffile

    path = tmp_path / "stack.tif"
    extra = {"colormap": np.tile(np.arange(256, dtype=np.uint16) * 257, (3, 1))} if photometric == "palette" else {}
    tifffile.imwrite(path, _stack(), photometric=photometric, **extra)
    with pytest.raises(VolumeReadError, match=f"PhotometricInterpretation is {word}") as err:
        load_volume(path)
    assert "stack.tif" in str(err.value)


def test_tiff_minisblack_still_loads(tmp_path):
    import tifffile

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, _stack(), photometric="minisblack")
    assert load_volume(path).data.shape == (8, 64, 64)


# F13: float64 pixels of 1e300 are finite, but overflowed in float32 later (warnings, "no retina").
def test_float64_beyond_float32_range_is_refused(tmp_path):
    import tifffile

    path = tmp_path / "f64.tif"
    tifffile.imwrite(path, _stack().astype(np.float64) * 1e300)
    with pytest.raises(VolumeReadError, match=r"f64.tif: the pixel values reach beyond \+-1e\+30"):
        load_volume(path)


def test_float32_near_its_limit_is_refused_too(tmp_path):
    """3e38 fits float32 but overflowed in the display range's subtraction (numpy warned on stderr)."""
    import tifffile

    path = tmp_path / "f32.tif"
    tifffile.imwrite(path, (_stack().astype(np.float32) - 100) * np.float32(1.2e36))
    with pytest.raises(VolumeReadError, match=r"f32.tif: the pixel values reach beyond"):
        load_volume(path)


def test_float64_within_float32_range_loads(tmp_path):
    import tifffile

    path = tmp_path / "f64.tif"
    tifffile.imwrite(path, _stack().astype(np.float64) * 1e20)
    assert load_volume(path).data.dtype == np.float64


def test_a_tiff_without_a_photometric_tag_loads_as_grey(tmp_path):
    """tifffile reports a missing PhotometricInterpretation as 0 (MinIsWhite): such a grey stack was refused
    as "MinIsWhite", a value the file does not hold (review of F1)."""
    import tifffile

    path = tmp_path / "nophoto.tif"
    tifffile.imwrite(path, _stack(), photometric="minisblack")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        offsets = [tag.offset for page in tif.pages for tag in page.tags.values() if tag.code == 262]
    for offset in offsets:  # the tag's code 262 -> 65000, an unknown private tag
        raw[offset:offset + 2] = (65000).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    with tifffile.TiffFile(path) as tif:
        assert 262 not in tif.pages[0].tags
    assert load_volume(path).shape == _stack().shape


# F7: a NaN or out-of-range date in a .vol header refused the whole scan in Python's words.
@pytest.mark.parametrize("name, offset, fmt, value", [
    ("birth date", 164, "<d", float("nan")), ("visit date", 200, "<d", float("inf")),
    ("visit date", 200, "<d", 1e308), ("exam time", 88, "<Q", 2**64 - 1), ("exam time", 88, "<Q", 2**63 - 1)])
def test_vol_unreadable_date_is_unknown_with_a_note(tmp_path, name, offset, fmt, value):
    import struct

    from corpus import write_vol

    path = write_vol(tmp_path / "scan.vol")
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))
    volume = load_volume(path)
    assert f"the header's {name} is not a readable date; it is unknown" in volume.notes
    assert (volume.acquired is None) == (name == "exam time")
    if name == "exam time":  # the study index says it as the viewer does (it said "before 1991": review)
        from octviewer.study.headers import read_record

        record = read_record(path)
        assert record["date"] == ""
        assert record["date_note"] == "the header's exam time is not a readable date; the date is unknown"


# F9: header text quoted under pseudonymisation (a name in PhotometricInterpretation or Modality)
# and pydicom's own warning quoting an invalid UID on stderr.
NAME = "SMITHJOHN1950"


def _demo_dicom(tmp_path, **fields):
    from pathlib import Path

    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(Path(__file__).parents[1] / "resources" / "samples" / "demo_normal_OD.dcm")
    ds.PixelData = ds.pixel_array.tobytes()
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for key, value in fields.items():
        setattr(ds, key, value)
    path = tmp_path / "scan.dcm"
    ds.save_as(path)
    return path


@pytest.mark.parametrize("fields, said", [
    ({"PhotometricInterpretation": NAME}, "PhotometricInterpretation is an unsupported value"),
    ({"Modality": NAME, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "a DICOM image of an unsupported modality")])
def test_free_text_header_values_are_not_quoted(tmp_path, fields, said):
    path = _demo_dicom(tmp_path, **fields)
    with pytest.raises(VolumeReadError, match=said) as err:
        load_volume(path)
    assert NAME not in str(err.value)


def test_enumerated_header_values_are_still_quoted(tmp_path):
    path = _demo_dicom(tmp_path, Modality="CT", SOPClassUID="1.2.840.10008.5.1.4.1.1.2")
    with pytest.raises(VolumeReadError, match="this is a DICOM CT image"):
        load_volume(path)


def test_invalid_uid_is_not_echoed_by_pydicom(tmp_path, caplog, recwarn):
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = _demo_dicom(tmp_path, SOPClassUID="1.2." + NAME)
    import octviewer.io.dicom  # noqa: F401 - the setting lives in the reader's module
    caplog.set_level("DEBUG", logger="pydicom")
    warnings.simplefilter("always")
    try:
        load_volume(path)
    except VolumeReadError as exc:
        assert NAME not in str(exc)
    assert pydicom.dcmread(path).SOPClassUID == "1.2." + NAME  # read, not validated
    assert not [w for w in recwarn if NAME in str(w.message)]
    assert NAME not in caplog.text


# F3: extreme but valid geometry was segmented whole (twice) before the gate refused it for its
# field of view (40-120 s, 2 GB); with the gate off, the network ran on 10000 B-scans for minutes.
def _extreme(shape):
    from octviewer import OctVolume, Spacing

    return OctVolume(data=np.zeros(shape, np.uint8), scan_pattern="volume",
                     spacing=Spacing(bscan_mm=0.094, depth_mm=0.0039, ascan_mm=0.035))


@pytest.fixture
def no_segmentation(monkeypatch):
    from octviewer.structure import segmentation

    def spy(*args, **kwargs):
        raise AssertionError("segmented")

    monkeypatch.setattr(segmentation, "segment", spy)


@pytest.mark.parametrize("shape, why", [((10000, 16, 16), "field of view"), ((2, 4096, 4096), "field of view"),
                                        ((16, 16, 16384), "field of view"), ((64, 16, 160), "depth window")])
def test_geometry_refusal_comes_before_segmentation(no_segmentation, shape, why):
    from octviewer.structure import gate, measure

    quality, _, seg = gate(_extreme(shape))
    assert not quality.ok and why in quality.reasons[0] and seg is None
    report = measure(_extreme(shape), source="own")
    assert not report.quality.ok and why in report.quality.reasons[0]


@pytest.mark.parametrize("shape", [(10000, 16, 16), (16, 16384, 16), (16, 16, 16384)])
def test_model_refuses_an_extreme_shape_before_any_work(shape):
    from types import SimpleNamespace

    from octviewer.model import Predictor, ScanNotSupported

    fake = SimpleNamespace(model=SimpleNamespace(name="m", meta=SimpleNamespace(scan_patterns=("volume",),
                                                                                  min_bscans=1)))
    with pytest.raises(ScanNotSupported, match="an optic-disc OCT has at most"):
        Predictor.check(fake, _extreme(shape))
    Predictor.check(fake, _extreme((200, 1024, 200)))  # a Cirrus cube
