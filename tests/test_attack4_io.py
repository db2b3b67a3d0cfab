"""Attack run 4, the file readers (issue 27): memory bombs refused before the allocation, and
header checks before a third-party reader runs. Every bomb here is built in a few kB; a test
asserts that the decoder or the allocation is never reached, not that the machine survives it."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest

from octviewer.io.errors import VolumeReadError


def _j2k_bomb(n: int = 16000) -> bytes:
    """A ~400-byte 64 x 64 codestream whose SIZ marker is patched to declare n x n pixels."""
    import openjpeg

    image = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4000)
    cs = bytearray(openjpeg.encode(image, codec_format=0, compression_ratios=[], photometric_interpretation=2))
    at = cs.find(b"\xff\x51")
    struct.pack_into(">II", cs, at + 6, n, n)  # Xsiz, Ysiz
    return bytes(cs)


@pytest.fixture
def no_decode(monkeypatch):
    """openjpeg.decode replaced by a spy: a call is the allocation the fix must prevent."""
    import openjpeg

    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise AssertionError("decoded")

    monkeypatch.setattr(openjpeg, "decode", spy)
    return calls


def _j2k_dicom(tmp_path, frames) -> str:
    import pydicom
    from pydicom.encaps import encapsulate

    from octviewer.core import OctVolume, Spacing
    from octviewer.io.dicom import write_dicom

    volume = OctVolume(data=np.full((len(frames), 64, 64), 100, np.uint16),
                       spacing=Spacing(bscan_mm=0.05, depth_mm=0.004, ascan_mm=0.01), laterality="OD",
                       scan_pattern="volume", device="Test dev")
    path = tmp_path / "bomb.dcm"
    write_dicom(volume, path, compression="jpeg2000")
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate(frames)
    ds.save_as(path)
    return path


def test_f2_jpeg2000_dicom_bomb_refused_before_decoding(tmp_path, no_decode):
    from octviewer import load_volume

    path = _j2k_dicom(tmp_path, [_j2k_bomb()] * 4)
    assert path.stat().st_size < 8000
    with pytest.raises(VolumeReadError, match="decodes to 16000 x 16000 pixels.*64 x 64.*before decoding"):
        load_volume(path)
    assert not no_decode


def test_f2_jpeg2000_bomb_in_a_later_frame_not_sent_to_a_decoding_process(tmp_path):
    """The parallel path hands codestreams to worker processes: the size is checked before."""
    from octviewer.io.dicom import open_dicom
    from octviewer.io.progressive import _dicom_frames

    frames = open_dicom(_j2k_dicom(tmp_path, [_j2k_bomb(64)] + [_j2k_bomb()] * 3))
    source = _dicom_frames(frames)
    assert source.codestream(0)
    with pytest.raises(VolumeReadError, match="B-scan 2's JPEG 2000 codestream decodes to 16000 x 16000"):
        source.codestream(1)


def test_f2_topcon_jpeg_bomb_refused_before_decoding(tmp_path, no_decode):
    from octviewer import load_volume

    frame = _j2k_bomb()
    header = struct.pack("<BIIIIII", 0, 0, 0, 64, 64, 2, 0)
    payload = header + b"".join(struct.pack("<I", len(f)) + f for f in (frame, frame))
    name = b"@IMG_JPEG"
    path = tmp_path / "bomb.fds"
    path.write_bytes(struct.pack("<4s3sII", b"FOCT", b"FDS", 1, 0)
                     + bytes([len(name)]) + name + struct.pack("<I", len(payload)) + payload)
    with pytest.raises(VolumeReadError, match="decodes to 16000 x 16000 pixels.*before decoding"):
        load_volume(path)
    assert not no_decode


def _tiff_with_bomb_strip(tmp_path, inflated: int):
    """Three 64 x 64 deflate pages; page 1's only strip replaced by ``inflated`` zero bytes, deflated."""
    import zlib

    import tifffile

    path = tmp_path / "bomb.tif"
    data = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    tifffile.imwrite(path, data, compression="zlib", photometric="minisblack", rowsperstrip=64, metadata=None)
    with tifffile.TiffFile(path) as tif:
        tags, order = tif.pages[0].tags, tif.byteorder
        at_offset, at_count = tags["StripOffsets"].valueoffset, tags["StripByteCounts"].valueoffset
    bomb = zlib.compress(bytes(inflated), 9)
    raw = bytearray(path.read_bytes())
    struct.pack_into(order + "I", raw, at_offset, len(raw))
    struct.pack_into(order + "I", raw, at_count, len(bomb))
    path.write_bytes(bytes(raw) + bomb)
    return path


def test_f17_tiff_deflate_bomb_refused_without_inflating_it(tmp_path):
    import tracemalloc

    from octviewer import load_volume

    path = _tiff_with_bomb_strip(tmp_path, 40_000_000)
    assert path.stat().st_size < 100_000
    with contextlib.suppress(VolumeReadError):
        load_volume(path)  # imports (tifffile's among them) out of the measurement
    tracemalloc.start()
    try:
        with pytest.raises(VolumeReadError, match="page 1's compressed strip 1 inflates to more than the 4096 bytes"):
            load_volume(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000  # the 40 MB strip was never inflated


def test_f17_compressed_strip_beyond_the_end_of_the_file_is_truncation(tmp_path):
    from octviewer import load_volume

    path = _tiff_with_bomb_strip(tmp_path, 4096)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(VolumeReadError, match="truncated: page 1's strip 1 lies beyond its end"):
        load_volume(path)


_ITEMS = 210_000  # just over MAX_DICOM_ELEMENTS; 1.7 MB inflated, a few kB deflated


def _items_dicom(tmp_path, deflate: bool) -> bytes:
    """A small DICOM OCT whose data set holds an undefined-length sequence of ``_ITEMS`` empty items."""
    import zlib

    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from octviewer.core import OctVolume, Spacing
    from octviewer.io.dicom import write_dicom

    volume = OctVolume(data=np.full((2, 32, 32), 100, np.uint16),
                       spacing=Spacing(bscan_mm=0.05, depth_mm=0.004, ascan_mm=0.01), laterality="OD",
                       scan_pattern="volume", device="Test dev")
    path = tmp_path / "items.dcm"
    write_dicom(volume, path)
    if deflate:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    raw = path.read_bytes()
    start = 132 + 12 + struct.unpack_from("<I", raw, 132 + 8)[0]  # after the file meta group
    body = zlib.decompress(raw[start:], -15) if deflate else raw[start:]
    at = body.find(b"\xe0\x7f\x10\x00")  # Pixel Data
    sequence = (b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\x00\x00\x00\x00" * _ITEMS
                + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    body = body[:at] + sequence + body[at:]
    if deflate:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = packer.compress(body) + packer.flush()
    return raw[:start] + body


def test_f19_deflated_dicom_of_many_empty_items_refused_before_pydicom(tmp_path, monkeypatch):
    import pydicom

    from octviewer import load_volume

    path = tmp_path / "items.dcm"
    path.write_bytes(_items_dicom(tmp_path, deflate=True))
    assert path.stat().st_size < 20_000
    parsed = []
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: parsed.append(a) or pytest.fail("parsed"))
    with pytest.raises(VolumeReadError, match="more than 200000 data elements and sequence items"):
        load_volume(path)
    assert not parsed  # pydicom makes a Dataset of each item: ~150 MB and ~4 s here


def test_f19_uncompressed_header_counted_too_and_the_study_index_skips_it(tmp_path):
    import io

    from octviewer.io.limits import check_deflated_dicom
    from octviewer.study import index_folder

    raw = _items_dicom(tmp_path, deflate=False)
    with pytest.raises(VolumeReadError, match="more than 200000 data elements"):
        check_deflated_dicom(io.BytesIO(raw), "items.dcm", len(raw))  # in memory: no 1.7 MB file
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "scan.dcm").write_bytes(_items_dicom(tmp_path, deflate=True))
    index = index_folder(folder, cache_dir=tmp_path / "cache")
    assert not index.scans
    assert any("data elements" in str(problem) for problem in index.problems)


def test_f19_an_ordinary_header_is_walked_whole_to_its_pixel_data(tmp_path):
    """The walk follows a real header element by element (stopping early would let a crafted file by)."""
    import io

    import pydicom

    from octviewer.io.limits import _blocks, _Bytes, count_dicom_elements

    path = tmp_path / "items.dcm"
    _items_dicom(tmp_path, deflate=False)  # leaves the ordinary file at path
    raw = path.read_bytes()
    start = 132 + 12 + struct.unpack_from("<I", raw, 132 + 8)[0]
    walked = count_dicom_elements(_Bytes(_blocks(io.BytesIO(raw[start:]))), "x", True, True)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    elements = list(ds.iterall())
    items = sum(len(e.value) for e in elements if e.VR == "SQ")
    assert walked == len(elements) + items + 1  # defined lengths here (no delimiters), + Pixel Data


@pytest.fixture
def no_oct_converter(monkeypatch):
    """OCT-Converter's Optovue reader replaced by a spy: a call means our checks came too late."""
    readers = pytest.importorskip("oct_converter.readers")
    calls = []
    monkeypatch.setattr(readers, "POCT", lambda *a: calls.append(a) or pytest.fail("OCT-Converter ran"))
    return calls


@pytest.mark.parametrize("txt, match", [
    ("Window Height = 0\nScan Length = 16\nScan Usage = 3000000\n", "empty dimension"),
    ("Window Height = 640\nScan Length = 400\nScan Usage = 3000000\n", "implausible size"),
    ("Window Height = 64\nScan Length = 64\nScan Usage = 3\n", "declares 3 B-scans of 64 x 64 pixels.*holds 4 bytes"),
    ("Window Height = 64\n", "states no scan size"),
    ("Window Height = x\nScan Length = 16\nScan Usage = 3\n", "no number for Window Height"),
])
def test_f1_optovue_description_checked_before_oct_converter(tmp_path, no_oct_converter, txt, match):
    from octviewer import load_volume

    (tmp_path / "scan.oct").write_bytes(b"\0\0\0\0")
    (tmp_path / "scan.txt").write_text(txt)
    with pytest.raises(VolumeReadError, match=match):
        load_volume(tmp_path / "scan.oct")
    assert not no_oct_converter


def test_f1_optovue_impossible_date_in_its_path_said_in_words(tmp_path, no_oct_converter):
    from octviewer import load_volume

    folder = tmp_path / "2020-13-45_25.61.99"
    folder.mkdir()
    (folder / "scan.oct").write_bytes(bytes(4 * 64 * 64 * 2))
    (folder / "scan.txt").write_text("Window Height = 64\nScan Length = 64\nScan Usage = 2\n")
    with pytest.raises(VolumeReadError, match="no calendar date"):
        load_volume(folder / "scan.oct")
    assert not no_oct_converter


def test_f1_a_consistent_optovue_pair_still_loads(tmp_path):
    pytest.importorskip("oct_converter")
    from octviewer import load_volume

    pixels = np.random.default_rng(0).random((3, 64, 48)).astype(np.float32)
    (tmp_path / "scan.oct").write_bytes(pixels.tobytes())
    (tmp_path / "scan.txt").write_text("Window Height = 48\r\nScan Length = 64\r\nScan Usage = 3\r\n")
    assert load_volume(tmp_path / "scan.oct").data.shape[0] == 3


def _topcon_with_patient(tmp_path, patient: bytes):
    def chunk(name: bytes, payload: bytes) -> bytes:
        return bytes([len(name)]) + name + struct.pack("<I", len(payload)) + payload

    n, h, w = 2, 32, 32
    pixels = np.full((n, h, w), 500, "<u2")
    path = tmp_path / "scan.fds"
    path.write_bytes(struct.pack("<4s3sII", b"FOCT", b"FDS", 1, 0)
                     + chunk(b"@IMG_SCAN_03", struct.pack("<BIIIIBI", 0, w, h, 16, n, 0, 0) + pixels.tobytes())
                     + chunk(b"@PATIENT_INFO_02", patient.ljust(32, b"\0") + bytes(64)))
    return path


@pytest.mark.parametrize("patient, why", [(b"PAT\x1b]0;x\x07\n123", "control character"),
                                          (b"A\\B", "backslash"), (b"PAT\xad1", "invisible character")])
def test_f3_topcon_patient_id_checked_as_dicom_ones(tmp_path, patient, why):
    from octviewer import load_volume

    volume = load_volume(_topcon_with_patient(tmp_path, patient))
    assert volume.patient_id is None
    assert any(why in note and "without a patient ID" in note for note in volume.notes)


def test_f3_every_reader_result_gets_the_check_and_a_plain_id_stays(tmp_path):
    """HEYEX XML and .e2e go through eyepy and then ``validate_volume``, as every reader does."""
    from octviewer import load_volume
    from octviewer.core import OctVolume
    from octviewer.io.loading import validate_volume

    volume = OctVolume(data=np.zeros((2, 32, 32), np.uint8), patient_id="PAT\u202e4321")
    checked = validate_volume("scan.xml", volume)
    assert checked.patient_id is None and any("U+202E" in n for n in checked.notes)
    assert load_volume(_topcon_with_patient(tmp_path, b"PAT-1234 5")).patient_id == "PAT-1234 5"


def test_f12_cirrus_name_whose_date_is_no_date_opens_with_the_date_unknown(tmp_path):
    pytest.importorskip("oct_converter")
    from octviewer import load_volume
    from octviewer.io.vendor import cirrus_name_fields

    path = tmp_path / "P123_Macular Cube 512x128_13-45-2020_25-61-99_OD_sn1_cube_z.img"
    path.write_bytes(bytes(1024 * 512))  # one B-scan
    volume = load_volume(path)
    assert volume.data.shape == (1, 1024, 512) and volume.laterality == "OD"
    assert cirrus_name_fields(path.name)["acquisition_date"] is None
    fields = cirrus_name_fields("P7_Macular Cube 512x128_01-02-2020_03-04-05_OS_sn_z.img")  # "sn" without digits
    assert fields["acquisition_date"].year == 2020 and fields["laterality"] == "OS" and fields["patient_id"] == "P7"


def test_f22_a_path_holding_a_nul_is_said_so_not_corrupt(tmp_path):
    from octviewer import load_volume

    with pytest.raises(VolumeReadError, match="the path holds a NUL character") as info:
        load_volume(str(tmp_path / "adv.dcm") + "\x00x")
    assert "corrupt" not in str(info.value)


def test_f22_progressive_opening_says_so_too(tmp_path):
    from octviewer.io.progressive import open_volume_progressive

    with pytest.raises(VolumeReadError, match="the path holds a NUL character"):
        open_volume_progressive(str(tmp_path / "adv.dcm") + "\x00x")


def test_f2_jpeg_baseline_dicom_bomb_refused_from_its_sof_marker(tmp_path):
    """The same bomb in a JPEG baseline frame (pydicom's decoder took 1.3 GB at 16000 x 16000); 2000 here."""
    import io

    import pydicom
    from PIL import Image
    from pydicom.uid import JPEGBaseline8Bit

    from octviewer import load_volume

    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(buffer, "JPEG")
    frame = bytearray(buffer.getvalue())
    struct.pack_into(">HH", frame, frame.find(b"\xff\xc0") + 5, 2000, 2000)
    path = _j2k_dicom(tmp_path, [bytes(frame)] * 2)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.save_as(path)
    with pytest.raises(VolumeReadError, match="B-scan 1's JPEG data decodes to 2000 x 2000 pixels.*before decoding"):
        load_volume(path)
