"""Findings of the seventh walk-through (H35, session 14) that are not window layout."""

import numpy as np
import pytest
import tifffile

from octviewer.io import VolumeReadError, load_volume


def test_a_tiff_written_one_bscan_at_a_time_is_read_as_a_stack(tmp_path):
    """tifffile's imwrite(append=True) gives each page a "shaped" description of its own, and the first
    page was refused as "a single 2-D image" although the file holds 10 B-scans."""
    rng = np.random.default_rng(0)
    bscans = rng.integers(0, 255, (10, 64, 96), dtype=np.uint8)
    path = tmp_path / "pages.tif"
    for bscan in bscans:
        tifffile.imwrite(path, bscan, append=True)
    assert len(tifffile.TiffFile(path).series) == 10  # what made the reader see one image
    assert np.array_equal(load_volume(path).data, bscans)


def test_pages_of_another_size_written_one_at_a_time_are_still_refused(tmp_path):
    path = tmp_path / "odd.tif"
    for shape in ((64, 96), (64, 96), (32, 96)):
        tifffile.imwrite(path, np.zeros(shape, np.uint8), append=True)
    with pytest.raises(VolumeReadError, match="pages disagree"):
        load_volume(path)
