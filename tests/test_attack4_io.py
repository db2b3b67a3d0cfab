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
