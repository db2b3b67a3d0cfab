"""Corrupted files: truncations and byte flips give VolumeReadError or a valid volume, nothing else.

Every reader is exercised through ``load_volume``; hypothesis chooses the offsets and flips. A
lying size field must never turn into a huge allocation, so each case runs under a memory cap.
"""

import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octviewer import OctVolume, Spacing, VolumeReadError, load_volume, save_volume


def _seed_files(tmp_path_factory):
    import tifffile

    root = tmp_path_factory.mktemp("seeds")
    rng = np.random.default_rng(0)
    v = OctVolume(rng.integers(0, 255, (6, 40, 32), dtype=np.uint8), Spacing(0.1, 0.004, 0.02), laterality="OD")
    files = {
        "dicom": save_volume(v, root / "v.dcm"),
        "dicom_rle": save_volume(v, root / "r.dcm", compression="rle"),
        "npz": save_volume(v, root / "v.npz"),
    }
    np.save(root / "v.npy", v.data)
    files["npy"] = root / "v.npy"
    tifffile.imwrite(root / "v.tif", v.data)
    files["tiff"] = root / "v.tif"
    return files


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, request):
    files = {k: p.read_bytes() for k, p in _seed_files(tmp_path_factory).items()}
    import os
    samples = os.environ.get("OCTVIEWER_SAMPLES")
    if samples:
        from pathlib import Path
        files["vol"] = (Path(samples) / "eyepy_synthetic" / "test_volume.vol").read_bytes()
    return files


SUFFIX = {"dicom": ".dcm", "dicom_rle": ".dcm", "npz": ".npz", "npy": ".npy", "tiff": ".tif", "vol": ".vol"}


def _check(tmp_path, kind, raw):
    path = tmp_path / f"fuzz{SUFFIX[kind]}"
    path.write_bytes(raw)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # a lying header must not allocate GBs: allow 3 GiB above what the process already maps
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 3 * 1024**3, hard))
    try:
        volume = load_volume(path)
        assert volume.data.ndim == 3
    except VolumeReadError as exc:
        assert path.name in str(exc)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("kind", list(SUFFIX))
@FUZZ
@given(data=st.data())
def test_truncation(tmp_path, seeds, kind, data):
    if kind not in seeds:
        pytest.skip("sample not available")
    raw = seeds[kind]
    cut = data.draw(st.integers(0, len(raw) - 1))
    _check(tmp_path, kind, raw[:cut])


@pytest.mark.parametrize("kind", list(SUFFIX))
@FUZZ
@given(data=st.data())
def test_byte_flips(tmp_path, seeds, kind, data):
    if kind not in seeds:
        pytest.skip("sample not available")
    raw = bytearray(seeds[kind])
    # most structure lives in the first kilobytes: bias flips there, but reach the whole file
    for _ in range(data.draw(st.integers(1, 8))):
        limit = data.draw(st.sampled_from([min(len(raw), 4096), len(raw)]))
        pos = data.draw(st.integers(0, limit - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    _check(tmp_path, kind, bytes(raw))
