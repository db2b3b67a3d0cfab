"""Leftovers of attack run 4's review (issue 27): small findings, each fixed on its own."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from octviewer.io.errors import VolumeReadError


def _tiff_declaring(tmp_path, compression: int, name: str = "stack.tif"):
    """An uncompressed 4-page grey stack whose Compression tag (259) is patched to `compression`:
    files a codec of imagecodecs wrote, without needing imagecodecs to write them."""
    import tifffile

    path = tmp_path / name
    tifffile.imwrite(path, np.arange(4 * 32 * 16, dtype=np.uint8).reshape(4, 32, 16), photometric="minisblack")
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        entries = [page.tags[259].offset for page in tif.pages]
    for at in entries:
        assert struct.unpack_from("<H", raw, at)[0] == 259
        struct.pack_into("<H", raw, at + 8, compression)
    path.write_bytes(bytes(raw))
    return path


def _imagecodecs_missing(compression: int) -> bool:
    import tifffile

    try:
        tifffile.TIFF.DECOMPRESSORS[compression]
    except KeyError:
        return True
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return compression == 50000  # tifffile's zstd fallback needs Python 3.14
    return False


@pytest.mark.parametrize("compression, name", [(50000, "ZSTD"), (7, "JPEG"), (5, "LZW"), (50001, "WEBP"),
                                               (50002, "JPEGXL")])
def test_tiff_codec_that_needs_imagecodecs_is_named(tmp_path, compression, name):
    """zstd was "corrupt or not a supported OCT file (No module named 'compression')", the others
    "corrupt ... (<COMPRESSION.JPEG: 7> requires the 'imagecodecs' package)"."""
    if not _imagecodecs_missing(compression):
        pytest.skip("imagecodecs decodes this compression here")
    from octviewer.io.loading import load_volume

    path = _tiff_declaring(tmp_path, compression)
    with pytest.raises(VolumeReadError) as err:
        load_volume(path)
    message = str(err.value)
    assert message.startswith("stack.tif: ")
    assert f"compression {name}, which needs the imagecodecs package" in message
    assert "corrupt" not in message


def test_tiff_predictor_that_needs_imagecodecs_is_named(tmp_path):
    """A deflate stack whose Predictor tag (317) says floating point: "corrupt ... (<PREDICTOR...>)"."""
    import tifffile

    from octviewer.io.loading import load_volume

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.arange(4 * 32 * 16, dtype=np.uint16).reshape(4, 32, 16), photometric="minisblack",
                     compression="zlib", predictor=2)
    raw = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        entries = [page.tags[317].offset for page in tif.pages]
    for at in entries:
        struct.pack_into("<H", raw, at + 8, 3)
    path.write_bytes(bytes(raw))
    try:
        tifffile.TIFF.UNPREDICTORS[3]
        pytest.skip("imagecodecs decodes the floating-point predictor here")
    except KeyError:
        pass
    with pytest.raises(VolumeReadError, match="predictor FLOATINGPOINT, which needs the imagecodecs package"):
        load_volume(path)


def test_tiff_unknown_compression_is_said_in_words(tmp_path):
    from octviewer.io.loading import load_volume

    with pytest.raises(VolumeReadError, match="declare compression 999, which no TIFF reader knows"):
        load_volume(_tiff_declaring(tmp_path, 999))


# -- our own .npz: a stored date a day or two ahead is a clock behind the writer's -------------------------
def _own_npz(tmp_path, acquired):
    import datetime as dt

    from octviewer import save_volume
    from octviewer.core import OctVolume

    path = tmp_path / "own.npz"
    save_volume(OctVolume(data=np.zeros((2, 32, 32), np.uint8), acquired=dt.date.today() + dt.timedelta(acquired)),
                path)
    return path


def test_own_npz_dated_two_days_ahead_opens(tmp_path):
    """A workstation whose clock is behind the writer's refused the file ("after today")."""
    import datetime as dt

    from octviewer import load_volume

    assert load_volume(_own_npz(tmp_path, 2)).acquired == dt.date.today() + dt.timedelta(2)


def test_own_npz_dated_three_days_ahead_opens_with_the_date_unknown(tmp_path):
    """Beyond the slack the date is unknown with a note, as a DICOM's (attack run 5, F18), not a refusal."""
    from octviewer import load_volume

    volume = load_volume(_own_npz(tmp_path, 3))
    assert volume.acquired is None and any("later than this workstation's date" in n for n in volume.notes)


# -- Bioptigen .OCT: the frame date and the time points OCT-Converter dropped --------------------------------
def _boct(tmp_path, frames=1, scans=3, date=(2020, 5, 0, 17, 10, 0, 0, 0)):
    """test_attack4_e2e_boct's file (a 'rect' scan of frames x scans B-scans of 96 x 48), each
    frame's FRAMEDATETIME set to ``date`` (year, month, day of week, day, hour, minute, second, ms)."""
    pytest.importorskip("oct_converter")
    from test_attack4_e2e_boct import write_boct

    path = write_boct(tmp_path / "scan_OD.OCT", frames, 96, [48] * (frames * scans), scans=scans)
    written = struct.pack("<I8H", 16, 2020, 5, 0, 17, 10, 0, 0, 0)
    path.write_bytes(path.read_bytes().replace(written, struct.pack("<I8H", 16, *date)))
    return path


def test_bioptigen_frame_date_is_kept(tmp_path):
    """A valid date was read by OCT-Converter and dropped."""
    import datetime as dt

    from octviewer.io.loading import load_volume

    volume = load_volume(_boct(tmp_path))
    assert volume.acquired == dt.datetime(2020, 5, 17, 10, 0, 0)
    assert not any("time points" in note or "date" in note for note in volume.notes)


@pytest.mark.parametrize("year, month", [(2020, 13), (1900, 1), (2090, 1)])
def test_bioptigen_impossible_frame_date_is_a_note_not_a_refusal(tmp_path, year, month):
    """OCT-Converter's datetime() on month 13 made the scan "corrupt (month must be in 1..12)"."""
    from octviewer.io.loading import load_volume

    volume = load_volume(_boct(tmp_path, date=(year, month, 0, 17, 10, 0, 0, 0)))
    assert volume.data.shape == (3, 96, 48) and volume.acquired is None
    # month 13 is no calendar date (the reader says so); 1900 and 2090 are, and take every format's rule
    words = "acquisition date is unknown" if month == 13 else "the stored acquisition date "
    assert any(words in note for note in volume.notes), volume.notes


def test_bioptigen_extra_time_points_are_said(tmp_path):
    from octviewer.io.loading import load_volume

    volume = load_volume(_boct(tmp_path, frames=4, scans=3))
    assert volume.data.shape == (3, 96, 48)
    assert any("4 time points" in note and "3 more were dropped" in note for note in volume.notes)
    assert volume.data[0, :3, 0].tolist() == [0, 1, 2]
