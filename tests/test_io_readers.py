"""Readers: the shared real samples, round trips through our writers, and bad input."""

import datetime as dt
import json

import numpy as np
import pydicom
import pytest

from octviewer import OctVolume, Spacing, VolumeReadError, load_volume, save_volume

SPECTRALIS_CIRCLES = ["Willis_B_716_2.vol", "Willis_B_716_4.vol", "valid.vol"]


def test_spectralis_line_scan(samples_dir):
    v = load_volume(samples_dir / "heidelberg_vol" / "Willis_B_716_0.vol")
    assert v.shape == (1, 496, 768)
    assert v.scan_pattern == "line"
    assert v.laterality == "OD"
    assert v.spacing.ascan_mm == pytest.approx(0.01182, abs=1e-5)
    assert v.spacing.depth_mm == pytest.approx(0.00387, abs=1e-5)
    assert v.localizer.image.shape == (768, 768)
    assert set(v.layers) == {"ILM", "BM", "RNFL"}
    assert v.display().dtype == np.uint8 and v.display().max() > 200


@pytest.mark.parametrize("name", SPECTRALIS_CIRCLES)
def test_spectralis_circle_scans_open(samples_dir, name):
    v = load_volume(samples_dir / "heidelberg_vol" / name)
    assert v.shape == (1, 496, 768)
    assert v.scan_pattern == "circle"
    assert v.laterality == "OD"
    pos = v.bscan_positions[0]
    # the B-scan's length (A-scans x lateral spacing) is the circle's circumference on the localizer
    diameter_mm = 2 * pos.radius * v.localizer.spacing_mm[1]
    assert 3.3 < diameter_mm < 4.5
    assert v.shape[2] * v.spacing.ascan_mm == pytest.approx(np.pi * diameter_mm, rel=0.03)
    assert v.layers["ILM"].shape == (1, 768)


def test_eyepy_synthetic_vol_and_xml(samples_dir):
    vol = load_volume(samples_dir / "eyepy_synthetic" / "test_volume.vol")
    assert vol.shape == (10, 40, 50) and vol.laterality == "OD" and vol.scan_pattern == "volume"
    assert vol.spacing.ascan_mm == pytest.approx(0.011819)
    assert vol.spacing.bscan_mm == pytest.approx(0.031444, abs=1e-5)
    xml = load_volume(samples_dir / "eyepy_synthetic" / "heyex_xml" / "test_volume")
    assert xml.shape == (10, 40, 50) and xml.laterality == "OD"
    assert xml.spacing.depth_mm == pytest.approx(0.003872)
    assert "ILM" in xml.layers
    # the same pixels written by eyepy in both formats
    np.testing.assert_allclose(vol.display(), xml.display(), atol=1)


def test_patient_id_never_in_repr(small_volume):
    assert small_volume.patient_id == "PAT-SECRET"
    assert "PAT-SECRET" not in repr(small_volume)


@pytest.mark.parametrize("compression", [None, "rle", "jpeg2000"])
def test_dicom_round_trip(tmp_path, small_volume, compression):
    path = save_volume(small_volume, tmp_path / "v.dcm", compression=compression)
    back = load_volume(path)
    np.testing.assert_array_equal(back.data, small_volume.data)
    assert back.laterality == small_volume.laterality == "OS"
    for a, b in zip(back.spacing.as_tuple(), small_volume.spacing.as_tuple()):
        assert a == pytest.approx(b, rel=1e-6)
    assert back.acquired == small_volume.acquired
    assert any("SYNTHETIC" in n for n in back.notes)
    ds = pydicom.dcmread(path)
    assert ds.Modality == "OPT" and ds.ImageLaterality == "L"
    assert ds.SharedFunctionalGroupsSequence[0].FrameAnatomySequence[0].FrameLaterality == "L"


def test_dicom_16bit_and_position_spacing(tmp_path):
    data = (np.arange(4 * 20 * 30, dtype=np.uint16).reshape(4, 20, 30) * 7)
    v = OctVolume(data, Spacing(0.12, 0.004, 0.02), laterality="OD")
    path = save_volume(v, tmp_path / "v16.dcm")
    ds = pydicom.dcmread(path)
    # remove the explicit slice spacing: the reader must fall back to per-frame positions
    del ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices
    ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness = 0.5
    ds.save_as(path)
    back = load_volume(path)
    np.testing.assert_array_equal(back.data, data)
    assert back.spacing.bscan_mm == pytest.approx(0.12)


def test_oct_converter_dicom_reads(tmp_path):
    from oct_converter.dicom.dicom import write_opt_dicom
    from oct_converter.dicom.metadata import (
        DicomMetadata,
        ImageGeometry,
        ManufacturerMeta,
        OCTImageParams,
        PatientMeta,
        SeriesMeta,
    )

    frames = [np.full((32, 40), i * 10, np.uint16) for i in range(5)]
    frames[2][3, 4] = 999
    meta = DicomMetadata(
        patient_info=PatientMeta(), manufacturer_info=ManufacturerMeta(), oct_image_params=OCTImageParams(),
        series_info=SeriesMeta(study_id="1", series_id="1", laterality="R",
                               acquisition_date=dt.datetime(2021, 5, 4, 10, 0)),
        image_geometry=ImageGeometry(pixel_spacing=[0.0039, 0.0118], slice_thickness=0.12,
                                     image_orientation=[1, 0, 0, 0, 1, 0]))
    path = write_opt_dicom(meta, frames, tmp_path / "oc.dcm")
    v = load_volume(path)
    assert v.shape == (5, 32, 40)
    assert v.laterality == "OD"
    assert v.spacing.depth_mm == pytest.approx(0.0039)
    assert v.spacing.ascan_mm == pytest.approx(0.0118)
    assert v.spacing.bscan_mm == pytest.approx(0.12)
    assert int(np.argmax(v.data[2])) == 3 * 40 + 4  # OCT-Converter rescales, the brightest pixel stays


def test_npz_round_trip_and_pickle_refused(tmp_path, small_volume):
    path = save_volume(small_volume, tmp_path / "v.npz")
    back = load_volume(path)
    np.testing.assert_array_equal(back.data, small_volume.data)
    assert back.spacing == small_volume.spacing and back.laterality == "OS"
    evil = tmp_path / "evil.npz"
    np.savez(evil, oct_bscans=np.zeros((2, 3, 4)), race=np.array([{"x": 1}], dtype=object))
    with pytest.raises(VolumeReadError, match=r"race.*allow_pickle=True"):
        load_volume(evil)


def test_harvard_npz_layout(tmp_path):
    path = tmp_path / "data_00001.npz"
    np.savez(path, oct_bscans=np.random.default_rng(0).integers(0, 255, (8, 20, 20), dtype=np.uint8),
             slo_fundus=np.zeros((30, 30), np.uint8), glaucoma=np.array(1), md=np.array(-3.2))
    v = load_volume(path)
    assert v.shape == (8, 20, 20) and v.localizer.image.shape == (30, 30)
    assert not v.spacing.known and any("no physical spacing" in n for n in v.notes)


def test_zenodo_npy_name(tmp_path):
    path = tmp_path / "POAG-000123-2012-01-31-OS.npy"
    np.save(path, np.zeros((64, 128, 64), np.uint8))
    v = load_volume(path)
    assert v.laterality == "OS" and v.acquired == dt.date(2012, 1, 31)


def test_tiff_stack_and_image_folder(tmp_path):
    import cv2
    import tifffile

    data = np.random.default_rng(1).integers(0, 255, (12, 16, 24), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", data)
    np.testing.assert_array_equal(load_volume(tmp_path / "stack.tif").data, data)
    folder = tmp_path / "bscans"
    folder.mkdir()
    for i in range(12):  # B2 must come before B10
        cv2.imwrite(str(folder / f"B{i + 1}.png"), data[i])
    np.testing.assert_array_equal(load_volume(folder).data, data)
    cv2.imwrite(str(folder / "B13.png"), np.zeros((5, 5), np.uint8))
    with pytest.raises(VolumeReadError, match="B13.png.*differs"):
        load_volume(folder)


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_bytes(b"hello world, not an oct file"), "unknown file format"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((20, 30))), "2-D image"),
    (lambda p: np.save(p.with_suffix(".npy"), np.full((2, 20, 24), np.nan)), "NaN"),
    (lambda p: np.save(p.with_suffix(".npy"), np.zeros((2, 0, 4))), "empty dimension"),
])
def test_bad_input_messages(tmp_path, make, message):
    target = tmp_path / "bad.bin"
    make(target)
    path = target if target.exists() else target.with_suffix(".npy")
    with pytest.raises(VolumeReadError, match=message) as info:
        load_volume(path)
    assert path.name in str(info.value)


def test_missing_file_and_single_png(tmp_path):
    import cv2

    with pytest.raises(VolumeReadError, match="no such file"):
        load_volume(tmp_path / "nope.dcm")
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(VolumeReadError, match="single 2-D image"):
        load_volume(tmp_path / "one.png")


def test_non_oct_dicom_refused(tmp_path):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, generate_uid(), "CT"
    ds.Rows = ds.Columns = 4
    ds.BitsAllocated, ds.SamplesPerPixel = 16, 1
    ds.PixelData = bytes(32)
    ds.save_as(tmp_path / "ct.dcm", enforce_file_format=True)
    with pytest.raises(VolumeReadError, match="DICOM CT image, not an OCT"):
        load_volume(tmp_path / "ct.dcm")


def test_lying_headers_do_not_allocate(tmp_path, small_volume):
    path = save_volume(small_volume, tmp_path / "v.dcm")
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 4000
    ds.Rows = ds.Columns = 4000
    ds.save_as(path)
    with pytest.raises(VolumeReadError, match="implausible size"):
        load_volume(path)
    ds.NumberOfFrames, ds.Rows, ds.Columns = 200, 1024, 200
    ds.save_as(path)
    with pytest.raises(VolumeReadError, match="truncated"):
        load_volume(path)
    npy = tmp_path / "lie.npy"
    np.save(npy, np.zeros((2, 3, 4), np.uint8))
    raw = npy.read_bytes().replace(b"(2, 3, 4)", b"(9000, 3, 4)")
    npy.write_bytes(raw)
    with pytest.raises(VolumeReadError, match="truncated"):
        load_volume(npy)


def test_vol_truncated(tmp_path, samples_dir):
    raw = (samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol").read_bytes()
    bad = tmp_path / "cut.vol"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(VolumeReadError, match="truncated"):
        load_volume(bad)


def test_vendor_formats_need_the_extra_or_read(tmp_path):
    path = tmp_path / "scan.fds"
    path.write_bytes(b"FOCT" + bytes(100))
    with pytest.raises(VolumeReadError):
        load_volume(path)


def test_npz_meta_is_json(tmp_path, small_volume):
    path = save_volume(small_volume, tmp_path / "v.npz")
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta_json"]))
    assert meta["laterality"] == "OS"


def test_a_folder_of_scan_files_points_to_the_study_folder(tmp_path):
    """Walk-through finding: File > Open folder on a folder of DICOM volumes said only that it held
    no B-scan images."""
    from corpus import small_volume

    save_volume(small_volume(), tmp_path / "a.dcm")
    with pytest.raises(VolumeReadError, match="1 scan file.*Open study folder"):
        load_volume(tmp_path)
