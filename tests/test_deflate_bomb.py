"""DICOM files in the Deflated Explicit VR Little Endian transfer syntax (attack run H4): pydicom
inflates the whole data set before reading a tag, so a file of a few hundred kB holding a private
element of zeros took gigabytes. The data set is now inflated in bounded pieces and counted against
the byte budget first (``octviewer.io.limits.check_deflated_dicom``); a deflated file within the
budget still reads as before."""

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from pydicom.filereader import _read_file_meta_info, read_preamble

from octviewer.io.limits import BUDGET_FLOOR

#: Zeros in the bomb's private element: past the 256 MiB floor that a small file is allowed.
BOMB_BYTES = BUDGET_FLOOR + (16 << 20)
#: Peak Python allocations allowed while a bomb is refused (the old read took more than the bomb).
PEAK_LIMIT = 64 << 20


def _deflated(path, out):
    """``path`` saved again in the deflated transfer syntax, to ``out``."""
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(out, enforce_file_format=True)
    return out


def _bomb(deflated_path, out):
    """A deflated file whose data set ends in a private OB element of ``BOMB_BYTES`` zeros,
    compressed piece by piece (the test never holds the zeros)."""
    data = deflated_path.read_bytes()
    f = io.BytesIO(data)
    read_preamble(f, force=True)
    _read_file_meta_info(f)
    prefix, dataset = data[: f.tell()], zlib.decompress(data[f.tell():], -zlib.MAX_WBITS)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [prefix, packer.compress(dataset + struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, BOMB_BYTES))]
    zeros = bytes(1 << 20)
    for _ in range(BOMB_BYTES >> 20):
        parts.append(packer.compress(zeros))
    parts.append(packer.flush())
    out.write_bytes(b"".join(parts))
    assert out.stat().st_size < 2 << 20
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny synthetic OCT scan and an OPV file, each deflated and as a deflate bomb."""
    import datetime as dt

    from octviewer.study.demo import write_demo_study
    from octviewer.study.vf import write_opv

    tmp = tmp_path_factory.mktemp("deflate")
    study = write_demo_study(tmp / "study", patients=1, visits=1, preset="tiny", seed=3)
    scan = sorted((study / "scans").rglob("*.dcm"))[0]
    opv = tmp / "opv.dcm"
    write_opv(opv, "SYN-1", "OD", dt.date(2020, 1, 2), -3.0, 4.0, 90.0, synthetic=True)
    (tmp / "bombs").mkdir()
    oct_deflated, opv_deflated = _deflated(scan, tmp / "oct_deflated.dcm"), _deflated(opv, tmp / "opv_deflated.dcm")
    return {"scan": scan, "oct_deflated": oct_deflated, "opv_deflated": opv_deflated,
            "oct_bomb": _bomb(oct_deflated, tmp / "bombs" / "oct_bomb.dcm"),
            "opv_bomb": _bomb(opv_deflated, tmp / "bombs" / "opv_bomb.dcm"), "bombs": tmp / "bombs"}


def _peak(call):
    """(what ``call`` raised or returned, peak bytes Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except Exception as exc:  # noqa: BLE001 - the caller looks at what it was
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_oct_deflate_bomb_is_refused_without_being_inflated(files):
    from octviewer.io import VolumeReadError, load_volume

    result, peak = _peak(lambda: load_volume(files["oct_bomb"]))
    assert isinstance(result, VolumeReadError), result
    assert "deflate-compressed" in str(result) and "oct_bomb.dcm" in str(result)
    assert peak < PEAK_LIMIT


def test_an_opv_deflate_bomb_is_refused_without_being_inflated(files):
    from octviewer.study.vf import VfReadError, read_opv

    result, peak = _peak(lambda: read_opv(files["opv_bomb"]))
    assert isinstance(result, VfReadError), result
    assert "deflate-compressed" in str(result)
    assert peak < PEAK_LIMIT


def test_the_study_index_skips_deflate_bombs_with_their_reason(files, tmp_path):
    from octviewer.study import index_folder

    index, peak = _peak(lambda: index_folder(files["bombs"], cache_dir=tmp_path))
    assert not isinstance(index, Exception), index
    assert index.scans == [] and index.vf == []
    assert "deflate-compressed" in repr(index.__dict__)
    assert peak < PEAK_LIMIT


def test_deflated_files_within_the_budget_still_read(files):
    from octviewer.io import load_volume
    from octviewer.study.vf import read_opv

    assert np.array_equal(load_volume(files["oct_deflated"]).data, load_volume(files["scan"]).data)
    m = read_opv(files["opv_deflated"])
    assert (m.md_db, m.psd_db, m.vfi, m.eye) == (-3.0, 4.0, 90.0, "OD")
