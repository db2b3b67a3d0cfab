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


def test_own_npz_dated_three_days_ahead_is_still_refused(tmp_path):
    from octviewer import load_volume

    with pytest.raises(VolumeReadError, match="before 1991 or after today"):
        load_volume(_own_npz(tmp_path, 3))
