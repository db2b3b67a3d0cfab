"""Bad input to the readers (issue 11 findings 2, 3, 4, 7, 8, 9, 10, 15): one table per class of input.

Every case states what the old readers did wrong in its comment; all files are generated here.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from corpus import oct_like, small_volume, write_topcon, write_vol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octviewer import OctVolume, Spacing, VolumeReadError, load_volume, save_volume
from octviewer.core import Localizer
from octviewer.io import describe_failure, dialog_filters, find_volumes, is_volume_file
from octviewer.io.formats import FORMATS, detect
from octviewer.io.limits import BUDGET_FLOOR, MAX_SPACING_MM, byte_budget, plausible_mm


def load_within(path, seconds=10.0):
    """load_volume in a thread that must finish in time: a blocked open is a failed test, not a hung run."""
    outcome = {}

    def run():
        try:
            outcome["volume"] = load_volume(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if Path(path).is_fifo():  # release the blocked reader so the process can exit
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        pytest.fail(f"load_volume({Path(path).name}) still running after {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["volume"]


def refused(path, match, seconds=10.0) -> str:
    with pytest.raises(VolumeReadError, match=match) as info:
        load_within(path, seconds)
    assert Path(path).name in str(info.value)
    return str(info.value)


# -- 2: a .vol with a Latin-1 patient name -----------------------------------------------------------
NAME = "Müller^José"


def test_latin1_vol_opens_and_the_name_stays_out_of_messages(tmp_path):
    # Old: eyepy decodes the header as ASCII -> "corrupt" with the raw name in the message.
    path = write_vol(tmp_path / "scan.vol", patient_id=NAME.encode("latin-1"))
    volume = load_volume(path)
    assert volume.patient_id == NAME and volume.shape == (3, 32, 24)
    assert NAME not in repr(volume)
    cut = tmp_path / "cut.vol"
    cut.write_bytes(path.read_bytes()[:-500])
    message = refused(cut, "truncated")
    for form in (NAME, "Müller", "M\\xfcller", "xfc"):
        assert form not in message


# -- 3: only regular files (and folders for folder formats); nothing blocks -----------------------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "scan.dcm"
    os.mkfifo(path)
    return path


def test_fifo_refused_without_blocking(fifo):
    refused(fifo, "named pipe", seconds=5)


def test_device_refused():
    refused("/dev/zero", "character device", seconds=5)


def test_fifo_inside_image_folder_refused(tmp_path):
    import cv2

    folder = tmp_path / "bscans"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"B{i}.png"), oct_like((1, 32, 32))[0])
    os.mkfifo(folder / "B3.png")
    with pytest.raises(VolumeReadError, match="named pipe"):
        load_within(folder, 5)


def _heyex_folder(root: Path, urls: list[str]) -> Path:
    import tifffile

    folder = root / "heyex"
    folder.mkdir()
    for name in ("B1.tif", "B2.tif", "NIR.tif"):
        tifffile.imwrite(folder / name, oct_like((1, 32, 32))[0])
    items = "".join(f"<Image><ImageData><ExamURL>C:\\export\\{u}</ExamURL></ImageData></Image>" for u in urls)
    (folder / "scan.xml").write_text(f"<HEYEX><BODY><Patient>{items}</Patient></BODY></HEYEX>")
    return folder


@pytest.mark.parametrize("shape, words", [((2, 0, 3), "has an empty dimension"),
                                           ((2, 10**6, 10**6), "declares an implausible size")])
def test_an_npy_of_impossible_shape_is_worded_once(tmp_path, shape, words):
    """Attack run 2 L3: "the the array has an empty dimension"."""
    path = tmp_path / "a.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with pytest.raises(VolumeReadError) as err:
        load_volume(path)
    assert f"a.npy: the array {words}" in str(err.value) and "the the" not in str(err.value)


def test_a_heyex_xml_is_blamed_for_its_own_fault_not_a_neighbours(tmp_path):
    """Attack run 2 M9: load_volume('one.xml') beside an empty a.xml named a.xml in its error."""
    (tmp_path / "a.xml").write_bytes(b"")
    (tmp_path / "one.xml").write_bytes(b"\0")
    with pytest.raises(VolumeReadError) as err:
        load_volume(tmp_path / "one.xml")
    assert str(err.value).startswith("one.xml: ") and "a.xml" not in str(err.value)


@pytest.mark.parametrize("target, match", [
    ("fifo", "named pipe"),                       # old: eyepy opened it and hung forever
    ("/dev/zero", "outside its own folder"),      # an absolute URL escapes the folder
    ("../outside.tif", "outside its own folder"),
])
def test_heyex_xml_pointing_at_a_fifo_or_outside_refused(tmp_path, target, match):
    if target == "fifo":
        folder = _heyex_folder(tmp_path, ["B1.tif", "pipe.tif"])
        os.mkfifo(folder / "pipe.tif")
    else:
        folder = _heyex_folder(tmp_path, ["B1.tif", target])
    with pytest.raises(VolumeReadError, match=match):
        load_within(folder, 5)
    with pytest.raises(VolumeReadError, match=match):
        load_within(folder / "scan.xml", 5)


# -- 4: byte budget checked from headers before decoding -------------------------------------------------
def _zero_npz(path: Path, shape) -> Path:
    """An npz whose member really holds ``shape`` zeros, streamed so the test itself stays small."""
    header = {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("volume.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            block = bytes(2**22)
            remaining = int(np.prod(shape))
            while remaining:
                member.write(block[:min(remaining, len(block))])
                remaining -= min(remaining, len(block))
    return path


def _zero_tiff(path: Path, pages: int, side: int) -> Path:
    import tifffile

    page = np.zeros((side, side), np.uint8)
    tifffile.imwrite(path, (page for _ in range(pages)), shape=(pages, side, side), dtype=np.uint8,
                     compression="zlib")
    return path


def _zero_png_folder(path: Path, count: int, side: int) -> Path:
    import cv2

    path.mkdir()
    cv2.imwrite(str(path / "B0.png"), np.zeros((side, side), np.uint8))
    for i in range(1, count):
        (path / f"B{i}.png").write_bytes((path / "B0.png").read_bytes())
    return path


@pytest.mark.parametrize("make", [
    lambda p: _zero_npz(p / "bomb.npz", (300, 1024, 1024)),     # old: 2.3 MB npz -> 2.7 GB RSS
    lambda p: _zero_tiff(p / "bomb.tif", 300, 1024),            # old: 2.7 MB TIFF -> 2.7 GB
    lambda p: _zero_png_folder(p / "bombs", 5, 8000),           # old: PNG folders of 1-3 MB -> ~2 GB
])
def test_decompression_bombs_refused_before_decoding(tmp_path, make):
    import resource

    path = make(tmp_path)
    stored = sum(f.stat().st_size for f in ([path] if path.is_file() else path.iterdir()))
    assert stored < 4 * 2**20 and byte_budget(stored) == BUDGET_FLOOR
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with pytest.raises(VolumeReadError, match="would decode to .* MiB"):
        load_volume(path)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < 100 * 2**20


def test_budget_scales_with_file_size_up_to_a_cap():
    assert byte_budget(0) == BUDGET_FLOOR
    assert byte_budget(100 * 2**20) == 32 * 100 * 2**20
    assert byte_budget(10**12) == 4 * 2**30


# -- 7: metadata that would fail later in the GUI is refused or reduced at load --------------------------
def _npz_with_meta(tmp_path, **changes) -> Path:
    path = save_volume(small_volume((4, 32, 32)), tmp_path / "v.npz")
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta_json"]))
    meta.update(changes)
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("spacing", [
    ["0.1", "0.004", "0.02"],            # old: strings reached the GUI, which raised in a slot
    [0.1, float("nan"), 0.02],
    [0.1, 0.004, float("inf")],
    [0.1, -0.004, 0.02],
    [0.1, 1e308, 0.02],
    [0.1, 0.004],
    "0.1",
])
def test_npz_bad_spacing_is_a_read_error(tmp_path, spacing):
    refused(_npz_with_meta(tmp_path, spacing_mm=spacing), "spacing")


@pytest.mark.parametrize("key, value", [("laterality", "XX"), ("scan_pattern", 3), ("device", ["x"]),
                                        ("acquired", "not a date"), ("intensity_transform", "gamma")])
def test_npz_bad_metadata_is_a_read_error(tmp_path, key, value):
    refused(_npz_with_meta(tmp_path, **{key: value}), key.replace("_", " ").split()[0] if key != "acquired"
            else "date")


@pytest.mark.parametrize("localizer, expect", [
    (np.full((20, 30, 3), 200, np.uint8), (20, 30)),   # old: a 3-D localizer made every repaint raise
    (np.full((1, 20, 30), 7, np.uint16), (20, 30)),
    (np.zeros((5, 20, 30), np.uint8), None),
    (np.zeros((20,), np.uint8), None),
])
def test_localizer_is_reduced_to_grey_or_refused(tmp_path, localizer, expect):
    path = tmp_path / "h.npz"
    np.savez(path, oct_bscans=oct_like((4, 32, 32)), slo_fundus=localizer)
    if expect is None:
        refused(path, "localizer")
    else:
        v = load_volume(path)
        assert v.localizer.image.shape == expect and v.localizer.image.dtype == np.uint8


def test_volume_fields_are_validated():
    data = oct_like((2, 32, 32))
    for bad in (float("nan"), float("inf"), -1.0, "0.1"):
        with pytest.raises(ValueError):
            Spacing(depth_mm=bad)
    with pytest.raises(ValueError):
        Localizer(np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError):
        OctVolume(data, layers={"ILM": np.zeros((3, 32))})
    assert Spacing(0, 0.004, 0.01).bscan_mm == 0.0


# -- 8: non-OCT shapes refused at load, colour read as grey ----------------------------------------------
def test_rgb_tiff_is_refused_not_read_as_480_bscans(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "photo.tif", np.zeros((480, 640, 3), np.uint8), photometric="rgb")
    refused(tmp_path / "photo.tif", "single 2-D colour image")


def test_rgb_tiff_stack_and_rgb_png_folder_read_as_grey(tmp_path):
    import cv2
    import tifffile

    grey = oct_like((4, 32, 40))
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    tifffile.imwrite(tmp_path / "stack.tif", rgb, photometric="rgb")
    np.testing.assert_array_equal(load_volume(tmp_path / "stack.tif").data, grey)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"B{i}.png"), rgb[i])
    np.testing.assert_array_equal(load_volume(folder).data, grey)


@pytest.mark.parametrize("shape, match", [
    ((1, 1, 1), "too small"),            # old: analysed, P = 0.99
    ((480, 640, 3), "colour image"),      # old: 480 B-scans of 640 x 3
    ((16000, 1, 1), "too small"),         # old: 460 s of analysis
    ((3, 8, 200), "too small"),
])
def test_non_oct_shapes_refused(tmp_path, shape, match):
    import tifffile

    np.save(tmp_path / "a.npy", np.zeros(shape, np.uint8))
    refused(tmp_path / "a.npy", match)
    tifffile.imwrite(tmp_path / "a.tif", np.zeros(shape, np.uint8), photometric="minisblack")
    refused(tmp_path / "a.tif", match, seconds=5)


# -- 9: DICOM headers that disagree with the data ----------------------------------------------------------
def _dicom(tmp_path, compression=None, n=16):
    return save_volume(small_volume((n, 32, 32)), tmp_path / f"v_{compression}.dcm", compression=compression)


def _edit(path, change):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)
    return path


def _drop_frames(ds):
    del ds.NumberOfFrames


@pytest.mark.parametrize("compression", [None, "jpeg2000"])
@pytest.mark.parametrize("change, match", [
    (lambda ds: setattr(ds, "NumberOfFrames", 0), "NumberOfFrames is 0"),    # old: read 1 of 16
    (_drop_frames, "NumberOfFrames is missing"),                              # old: read 1 of 16
    (lambda ds: setattr(ds, "NumberOfFrames", 15), "disagree"),              # old: read 15 of 16
    (lambda ds: setattr(ds, "NumberOfFrames", 17), "disagree|truncated"),
])
def test_dicom_frame_count_must_match(tmp_path, compression, change, match):
    refused(_edit(_dicom(tmp_path, compression), change), match)


@pytest.mark.parametrize("change, match", [
    (lambda ds: setattr(ds, "Rows", 31), "longer than the header"),          # does not divide the data
    (lambda ds: setattr(ds, "Columns", 33), "truncated"),
    (lambda ds: setattr(ds, "PixelData", ds.PixelData + bytes(10 * 2**10)), "disagree: .* holds 26"),
    (lambda ds: setattr(ds, "PixelData", ds.PixelData + bytes(1000)), "longer than the header"),
])
def test_dicom_size_must_match(tmp_path, change, match):
    refused(_edit(_dicom(tmp_path), change), match)


def test_dicom_jpeg2000_frame_size_must_match(tmp_path):
    refused(_edit(_dicom(tmp_path, "jpeg2000"), lambda ds: setattr(ds, "Rows", 30)), "decodes to 32 x 32")


def _set_spacing(value):
    def change(ds):
        ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing = [value, value]
        ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices = value
    return change


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("value", ["NaN", "inf", "-0.01", "1e308", "0"])
def test_dicom_implausible_spacing_is_unknown_never_nan(tmp_path, value):
    v = load_volume(_edit(_dicom(tmp_path), _set_spacing(value)))
    assert v.spacing.depth_mm is None and v.spacing.ascan_mm is None
    # a zero SpacingBetweenSlices counts as absent: the per-frame positions (0.1 mm apart) then speak
    assert v.spacing.bscan_mm is None or (value == "0" and v.spacing.bscan_mm == pytest.approx(0.1))
    assert not v.spacing.known
    assert any("implausible spacing" in n for n in v.notes)
    assert "nan" not in repr(v).lower() and "inf" not in repr(v.spacing).lower()


# -- 10: Topcon files, written to the format here ---------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True])
def test_topcon_round_trip(tmp_path, compressed):
    # Old: OCT-Converter's chunk parser calls np.fromstring, gone in NumPy 2 -> every file "corrupt".
    data = oct_like((5, 48, 40), np.uint16)
    path = write_topcon(tmp_path / ("s.fda" if compressed else "s.fds"), data, compressed=compressed,
                        eye=0, spacing=(6.0, 7.0, 2.6))
    v = load_volume(path)
    np.testing.assert_array_equal(v.data, data)
    assert v.laterality == "OD" and v.device == "Topcon" and v.acquired.year == 2019
    assert v.spacing.ascan_mm == pytest.approx(6.0 / 40) and v.spacing.bscan_mm == pytest.approx(7.0 / 5)
    assert v.spacing.depth_mm == pytest.approx(0.0026)


def test_topcon_truncated_and_lying(tmp_path):
    path = write_topcon(tmp_path / "s.fds", oct_like((5, 48, 40), np.uint16))
    raw = path.read_bytes()
    (tmp_path / "cut.fds").write_bytes(raw[: len(raw) // 2])
    refused(tmp_path / "cut.fds", "truncated")
    (tmp_path / "none.fds").write_bytes(raw[:15] + b"\x00")
    refused(tmp_path / "none.fds", "no OCT volume")


# -- 15: messages ------------------------------------------------------------------------------------------
def test_permission_denied_is_not_called_corrupt(tmp_path, monkeypatch):
    path = _dicom(tmp_path)
    if os.geteuid() != 0:  # root reads anything: simulate below as well
        path.chmod(0)
        try:
            refused(path, "permission denied")
        finally:
            path.chmod(0o644)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pydicom, "dcmread", denied)
    message = refused(path, "permission denied")
    assert "corrupt" not in message


@pytest.mark.parametrize("tag", ["Rows", "Columns", "BitsAllocated"])
def test_dicom_missing_tags_named_without_python_internals(tmp_path, tag):
    path = _edit(_dicom(tmp_path), lambda ds: delattr(ds, tag))
    message = refused(path, f"lacks {tag}")
    assert "FileDataset" not in message and "attribute" not in message


def test_jpeg2000_errors_have_a_reason(tmp_path):
    path = _dicom(tmp_path, "jpeg2000")
    ds = pydicom.dcmread(path)
    from pydicom.encaps import encapsulate, generate_frames

    frames = list(generate_frames(ds.PixelData, number_of_frames=16))
    frames[3] = frames[3][:40] + bytes(len(frames[3]) - 40)   # a damaged codestream
    ds.PixelData = encapsulate(frames)
    ds.save_as(path)
    message = refused(path, r"B-scan 4 \(JPEG 2000\): \S")
    assert not message.rstrip().endswith(":")


@pytest.mark.parametrize("exc", [AttributeError("'FileDataset' object has no attribute 'Rows'"),
                                 KeyError("x"), TypeError("unsupported operand"), ValueError(""),
                                 RuntimeError(), OSError(5, "Input/output error")])
def test_failure_descriptions_are_plain(exc):
    text = describe_failure(exc)
    assert text and "FileDataset" not in text and "object has no attribute" not in text
    assert not text.endswith("()") and "( )" not in text


# -- registry ---------------------------------------------------------------------------------------------
def test_registry_drives_detection_dialog_and_folder_scan(tmp_path):
    dicom = _dicom(tmp_path)
    renamed = tmp_path / "scan.bin"
    renamed.write_bytes(dicom.read_bytes())
    assert detect(renamed).name == "dicom"         # content first
    filters = dialog_filters()
    for fmt in FORMATS:
        if fmt.name != "image_folder":
            assert all(p in filters for p in fmt.patterns)
    assert filters.endswith("All files (*)")
    os.mkfifo(tmp_path / "pipe.dcm")
    assert is_volume_file(dicom) and not is_volume_file(tmp_path / "pipe.dcm")
    assert not is_volume_file(renamed) and not is_volume_file(tmp_path / "B1.png")
    found, skipped = find_volumes(tmp_path)
    assert dicom in found and renamed not in found
    assert [p.name for p, _ in skipped] == ["pipe.dcm"] and "FIFO" in skipped[0][1]
    for fmt in FORMATS:  # every reader named in the registry exists
        module, function = fmt.reader.split(":")
        import importlib
        assert callable(getattr(importlib.import_module(f"octviewer.io.{module}"), function))


# -- properties: whatever a header says, spacing is finite and positive or unknown --------------------------
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                      st.text(max_size=12), st.lists(st.floats(), max_size=3))


@given(ANY_VALUE)
def test_plausible_mm_is_finite_positive_or_unknown(value):
    mm = plausible_mm(value)
    assert mm is None or (isinstance(mm, float) and 0 < mm <= MAX_SPACING_MM)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spacing=st.lists(ANY_VALUE, min_size=0, max_size=4) | ANY_VALUE)
def test_npz_spacing_loads_finite_or_is_refused(tmp_path, spacing):
    path = _npz_with_meta(tmp_path, spacing_mm=spacing)
    try:
        v = load_volume(path)
    except VolumeReadError as exc:
        assert "spacing" in str(exc)
        return
    for mm in v.spacing.as_tuple():
        assert mm is None or (np.isfinite(mm) and mm >= 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                       st.text(alphabet="0123456789.-+eEnaiNfI", min_size=1, max_size=10)))
def test_dicom_spacing_strings_give_finite_or_unknown(tmp_path, value):
    path = _dicom(tmp_path, n=2)
    try:
        _edit(path, _set_spacing(value))
    except (ValueError, OverflowError):
        return  # pydicom refuses to write it at all: nothing to read
    v = load_volume(path)
    for mm in v.spacing.as_tuple():
        assert mm is None or (np.isfinite(mm) and 0 <= mm <= MAX_SPACING_MM)
    assert "nan" not in " ".join(v.notes).lower()


def test_bytes_quoted_from_a_file_stay_out_of_messages():
    # Old: "StringError: cannot use encoding 'ascii' to decode b'M\xfcller'" reached the dialog.
    text = describe_failure(ValueError("cannot use encoding 'ascii' to decode b'M\\xfcller'"))
    assert "xfc" not in text and "ller" not in text and "<bytes>" in text


# -- a DICOM file cut short (an unfinished copy) is called truncated, not "not a DICOM image" ------
@pytest.mark.parametrize("keep", [0.05, 0.5, 0.999])
def test_truncated_dicom_is_named_truncated(tmp_path, keep, capfd, caplog):
    import logging

    from octviewer.resources import DEMO_SCAN

    data = Path(DEMO_SCAN).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: int(len(data) * keep)])
    with caplog.at_level(logging.DEBUG):
        refused(cut, "truncated or damaged")
    # pydicom's own warning and log record carry the full path (file names carry patient IDs): neither
    # reaches stderr or the application log
    assert str(tmp_path) not in capfd.readouterr().err
    assert not [r for r in caplog.records if str(tmp_path) in r.getMessage()]


# -- header fields that disagree with the pixel data ------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_dicom_rle_rows_that_disagree_with_the_frames_are_refused(tmp_path, dtype):
    # Old: Rows 63 over frames of 64 rows decoded 63 rows without a word.
    path = tmp_path / "rle.dcm"
    save_volume(small_volume((4, 64, 32), dtype=dtype), path, compression="rle")
    assert load_volume(path).shape == (4, 64, 32)
    ds = pydicom.dcmread(path)
    ds.Rows = 63
    ds.save_as(path)
    refused(path, "Rows x Columns is 63 x 32")


def _grey_tiff_with(tmp_path, tag: str, value: int) -> Path:
    import struct

    import tifffile

    path = tmp_path / "grey.tif"
    tifffile.imwrite(path, oct_like((4, 64, 32)), photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        offsets = [page.tags[tag].valueoffset for page in tif.pages]
    raw = bytearray(path.read_bytes())
    for offset in offsets:
        struct.pack_into("<H", raw, offset, value)
    lying = tmp_path / f"{tag}{value}.tif"
    lying.write_bytes(bytes(raw))
    return lying


@pytest.mark.parametrize("tag, value, match", [("BitsPerSample", 1, "1-bit samples"),
                                               ("SamplesPerPixel", 3, "header and its pixel data disagree")])
def test_tiff_tags_that_disagree_with_the_pixels_are_refused(tmp_path, tag, value, match):
    # Old: BitsPerSample=1 decoded garbage; SamplesPerPixel=3 failed with a byte count nobody can act on.
    refused(_grey_tiff_with(tmp_path, tag, value), match)


def _tiff_with_description(path, shape, declared):
    import tifffile

    tifffile.imwrite(path, np.zeros(shape, np.uint8))
    raw = path.read_bytes()
    said, lie = f'{{"shape": {list(shape)}}}'.encode(), f'{{"shape": {list(declared)}}}'.encode()
    assert raw.count(said) == 1 and len(lie) == len(said)
    path.write_bytes(raw.replace(said, lie))
    return path


def test_tifffile_log_records_never_carry_the_file_name(tmp_path, caplog, capfd):
    """tifffile logged "<tifffile.TiffFile 'Doe_John_1950.tif'> shaped series shape does not match page
    shape" to stderr and the application log: a file named after the patient put the name there."""
    import logging

    from octviewer import load_volume

    path = _tiff_with_description(tmp_path / "Doe_John_1950.tif", (6, 32, 16), (6, 32, 17))
    with caplog.at_level(logging.DEBUG):
        volume = load_volume(path)  # tifffile says the description is wrong, then reads the pages as they are
    assert volume.data.shape == (6, 32, 16)
    assert not [r for r in caplog.records if "Doe_John" in r.getMessage()]
    assert "Doe_John" not in capfd.readouterr().err


def test_a_tiff_description_declaring_more_pages_than_the_file_holds_is_refused(tmp_path):
    """A "shaped" description of 7 pages over 6 gave a seventh B-scan read from the bytes after the
    pixel data (the page directories), without a word."""
    path = _tiff_with_description(tmp_path / "stack.tif", (6, 32, 16), (7, 32, 16))
    refused(path, "the TIFF's description declares 7 pages of 16 x 32 pixels, the file holds 6")


@pytest.mark.parametrize("described", [False, True], ids=["plain pages", "tifffile's shaped description"])
def test_a_tiff_stack_with_a_page_of_another_size_is_refused_naming_the_page(tmp_path, described):
    """tifffile groups pages of another size into a series of their own, and only the first series was
    read: a B-scan of another size in a stack was dropped without a word (attack run L5)."""
    import tifffile

    path = tmp_path / "stack.tif"
    stack = oct_like((5, 64, 32))
    with tifffile.TiffWriter(path) as tif:
        if described:  # the stack in one write (one description), then a page of another size
            tif.write(stack[:3], photometric="minisblack")
        else:
            for page in stack[:3]:
                tif.write(page, photometric="minisblack", metadata=None)
        tif.write(stack[3, :48], photometric="minisblack", metadata=None if not described else {})
        tif.write(stack[4], photometric="minisblack", metadata=None if not described else {})
    message = refused(path, "page 4 is 32 x 48 pixels")
    assert "page 1 is 32 x 64 pixels" in message


def test_heyex_xml_naming_an_image_through_a_link_loop_is_refused_without_the_folder(tmp_path):
    """Path.resolve() raised RuntimeError("Symlink loop from '/clinic/Doe_John/heyex/loop.tif'") for an
    ExamURL that is a link loop, and the message passed on the folder path, which may carry the patient's
    name (found in the third attack round)."""
    folder = _heyex_folder(tmp_path, ["B1.tif", "loop.tif"])
    os.symlink("loop2.tif", folder / "loop.tif")
    os.symlink("loop.tif", folder / "loop2.tif")
    message = refused(folder / "scan.xml", "symbolic links that loop")
    assert str(tmp_path) not in message
