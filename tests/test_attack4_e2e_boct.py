"""Attack run 4, the formats it had not tried: Heidelberg .e2e (through eyepy) and Bioptigen .OCT
(through OCT-Converter). Every file is a few kB, written here after the two libraries' own format
descriptions (eyepy's e2e_format, OCT-Converter's boct_binary)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from octviewer import VolumeReadError, load_volume

# --- Heidelberg .e2e -------------------------------------------------------------------------------

_IMAGE, _BSCANMETA, _LAYER, _LATERALITY, _ENFACE_MODALITY = 1073741824, 10004, 10019, 11, 9007


def _e2e_bscan_meta(height, width, n_bscans, i):
    from eyepy.io.he.e2e_format import type10004_format

    meta = type10004_format.parse(bytes(428))
    meta.size_y, meta.size_x, meta.n_bscans, meta.aktImage, meta.scan_pattern = height, width, n_bscans, i, 3
    meta.imgSizeWidth, meta.scale_y = width, 0.0039
    meta.start_x, meta.end_x, meta.start_y, meta.end_y = 0.0, 20.0, float(i), float(i)
    return type10004_format.build(meta)


def _e2e_image(kind, height, width, data: bytes):
    return struct.pack("<5I", len(data), kind, height * width, height, width) + data


def write_e2e(path, n_bscans=3, height=32, width=24, stored=None, eye=b"R"):
    """A one-series .e2e: a localizer, and per B-scan a header declaring height x width, an image
    of ``stored`` (height, width) (default: as declared) and one layer as wide as the image."""
    ih, iw = stored or (height, width)
    modality = b"".join(s.encode("utf-16-le").ljust(20, b"\0") for s in ("OCT", "IR"))
    items = [(-1, _LATERALITY, bytes(14) + eye + bytes(12)),
             (-1, _ENFACE_MODALITY, struct.pack("<2I", 2, 20) + modality),
             (-1, _IMAGE, _e2e_image(33620481, 16, 16, bytes(range(256))))]
    rng = np.random.default_rng(0)
    for i in range(n_bscans):
        pixels = rng.integers(0x3000, 0x3C00, ih * iw, dtype=np.uint16).tobytes()
        layer = struct.pack("<5I", 0, 0, 0, iw, 0) + np.full(iw, 10.0, "<f4").tobytes()
        items += [(2 * i, _BSCANMETA, _e2e_bscan_meta(height, width, n_bscans, i)),
                  (2 * i, _IMAGE, _e2e_image(35652097, ih, iw, pixels)), (2 * i, _LAYER, layer)]
    version = b"CMDb".ljust(12, b"\0") + struct.pack("<I", 100) + bytes(20)

    def directory(n, at):
        return b"MDbMDir".ljust(12, b"\0") + struct.pack("<I", 100) + bytes(20) + struct.pack("<4I", n, at, 0, 0)

    chunk_at = len(version) + 52
    pos = chunk_at + 52 + 44 * len(items)
    folders = containers = b""
    for slice_id, kind, data in items:
        ind = 1 if kind == _IMAGE and slice_id >= 0 else 0
        ids = struct.pack("<4i", 1, 1, 1, slice_id)
        tail = struct.pack("<2H2I", ind, 0, kind, 0)
        folders += struct.pack("<4I", len(folders) // 44, pos, len(data), 0) + ids + tail
        containers += b"MDbData".ljust(12, b"\0") + struct.pack("<5I", 0, 0, pos, len(data), 0) + ids + tail + data
        pos += 60 + len(data)
    path.write_bytes(version + directory(0, 0) + directory(len(items), chunk_at) + folders + containers)
    return path


def test_e2e_well_formed_loads(tmp_path):
    volume = load_volume(write_e2e(tmp_path / "scan.e2e"))
    assert volume.data.shape == (3, 32, 24)


def test_e2e_stored_images_smaller_than_declared_are_refused(tmp_path):
    # B-scan headers said 2000 x 2000, each stored image was 1 x 1: eyepy broadcast every pixel into a
    # (4, 2000, 2000) float32 volume and the 4 kB file loaded (16 x 4000 x 4000: 17 s, 5.3 GB).
    path = write_e2e(tmp_path / "bomb.e2e", n_bscans=4, height=2000, width=2000, stored=(1, 1))
    assert path.stat().st_size < 8000
    with pytest.raises(VolumeReadError, match="1 x 1 pixels where the file declares 2000 x 2000"):
        load_volume(path)


@pytest.mark.parametrize("eye, laterality", [(b"R", "OD"), (b"L", "OS")])
def test_e2e_laterality_is_kept(tmp_path, eye, laterality):
    # eyepy gives the stored character's code ('82', '76'); only 'OD'/'OS' were kept, so every .e2e had none
    assert load_volume(write_e2e(tmp_path / "scan.e2e", eye=eye)).laterality == laterality


def test_e2e_spacing_is_unknown_not_one_millimetre(tmp_path):
    # eyepy states an .e2e's scale as 1 "px" (and the localizer's in degrees): it was read as 1.0 mm
    volume = load_volume(write_e2e(tmp_path / "scan.e2e"))
    assert (volume.spacing.depth_mm, volume.spacing.ascan_mm, volume.spacing.bscan_mm) == (None, None, None)
    assert volume.localizer.spacing_mm == (None, None)
    assert "the file states no physical spacing" in volume.notes


# --- Bioptigen .OCT --------------------------------------------------------------------------------


def _key(name):
    return struct.pack("<I", len(name)) + name.encode()


def _int(name, value):
    return _key(name) + struct.pack("<2I", 4, value)


def _float(name, value):
    return _key(name) + struct.pack("<Id", 8, value)


def _text(name, value):
    return _key(name) + struct.pack("<I", len(value)) + value.encode()


def write_boct(path, frames, depth, frame_ascans, scans=1):
    """A Bioptigen .OCT of len(frame_ascans) frames ('rect' scan type), frame i holding frame_ascans[i]
    A-scans of ``depth`` samples, each sample = 1000 * A-scan + depth index; the header declares
    ``frames`` x ``scans`` B-scans."""
    out = struct.pack("<IH", 0x1A2B3C4D, 2) + _key("FRAMEHEADER") + struct.pack("<I", 0)
    out += _int("FRAMECOUNT", len(frame_ascans)) + _int("LINECOUNT", 1) + _int("LINELENGTH", depth)
    out += _int("SAMPLEFORMAT", 2) + _text("DESCRIPTION", "x")
    out += _float("XMIN", 0) + _float("XMAX", 1) + _text("XCAPTION", "x")
    out += _float("YMIN", 0) + _float("YMAX", 1) + _text("YCAPTION", "y") + _int("SCANTYPE", 1)
    out += b"".join(_float(k, 2.0) for k in ("SCANDEPTH", "SCANLENGTH", "AZSCANLENGTH", "ELSCANLENGTH",
                                              "OBJECTDISTANCE", "SCANANGLE"))
    out += _int("SCANS", scans) + _int("FRAMES", frames) + _int("DOPPLERFLAG", 0)
    out += _key("CONFIG") + struct.pack("<2I", 0, 0)
    parts = [out]
    for ascans in frame_ascans:
        pixels = (np.arange(ascans)[:, None] * 1000 + np.arange(depth)[None, :]).astype("<u2")
        parts += [_key("FRAMEDATA") + struct.pack("<I", 0),
                  _key("FRAMEDATETIME") + struct.pack("<I8H", 16, 2020, 5, 0, 17, 10, 0, 0, 0),
                  _float("FRAMETIMESTAMP", 0.0) + _int("FRAMELINES", ascans),
                  _key("FRAMESAMPLES") + struct.pack("<I", pixels.nbytes) + pixels.tobytes() + bytes(4)]
    path.write_bytes(b"".join(parts))
    return path


def test_bioptigen_bscans_are_depth_by_ascans(tmp_path):
    # OCT-Converter gives (A-scans, depth); the volume came back transposed against (n, depth, width)
    pytest.importorskip("oct_converter")
    volume = load_volume(write_boct(tmp_path / "scan_OD.OCT", 1, 96, [48, 48, 48], scans=3))
    assert volume.data.shape == (3, 96, 48)
    assert volume.data[0, :3, 0].tolist() == [0, 1, 2] and volume.data[0, 0, :3].tolist() == [0, 1000, 2000]
    assert volume.laterality == "OD"


def test_bioptigen_empty_frames_are_refused(tmp_path):
    # one real frame, then frame headers of 0 A-scans: OCT-Converter np.resize'd each into a frame of
    # zeros (1,999 of them: 2.07 GB, 9.6 s, and the 1.3 MB file loaded)
    pytest.importorskip("oct_converter")
    path = write_boct(tmp_path / "bomb_OD.OCT", 1, 256, [128] + [0] * 99, scans=100)
    with pytest.raises(VolumeReadError, match="frame 2 holds 0 A-scans where the first holds 128"):
        load_volume(path)


def test_bioptigen_budget_is_checked_before_oct_converter_runs(tmp_path, monkeypatch):
    # the byte budget used to be checked only on OCT-Converter's result, after it had allocated
    oct_converter = pytest.importorskip("oct_converter.readers")

    def ran(*args, **kwargs):
        raise AssertionError("OCT-Converter ran")

    monkeypatch.setattr(oct_converter.BOCT, "read_oct_volume", ran)
    path = write_boct(tmp_path / "big_OD.OCT", 1, 1024, [512] + [0] * 299, scans=300)  # 300 MiB from 1 MB
    with pytest.raises(VolumeReadError, match="would decode to"):
        load_volume(path)
