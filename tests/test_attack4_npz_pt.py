"""Attack run 4, F7 and F8: zip bombs in a Harvard .npz and in a .pt checkpoint.

Each bomb is a zip member of tens of MB of zeros, deflated to a few tens of kB: enough for
tracemalloc to tell "decompressed" from "not decompressed", small enough to build in a fraction
of a second (the attack used 1.5e9 bytes: 17 s and 2.2 GB before the fixes).
"""

import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from trainer.public import import_harvard

BOMB_BYTES = 64 << 20


def _write_member(archive: zipfile.ZipFile, name: str, header: dict, nbytes: int) -> None:
    """An .npy member whose header declares ``header`` followed by ``nbytes`` zero bytes, deflated."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        chunk = bytes(1 << 22)
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)


def _peak_mb(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def test_harvard_npz_bomb_members_are_not_decompressed(tmp_path):
    """F7: a plausible non-scalar member and a 'scalar' of a 64 MB string are skipped from their headers."""
    (tmp_path / "train").mkdir()
    path = tmp_path / "train" / "data_1.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in (("glaucoma", np.array(1)), ("md", np.array(-1.5)), ("pid", np.array("P001_x"))):
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(name + ".npy", buffer.getvalue())
        _write_member(archive, "notes.npy", {"descr": "|u1", "fortran_order": False, "shape": (8192, 8192)},
                      BOMB_BYTES)
        _write_member(archive, "remark.npy", {"descr": f"|S{BOMB_BYTES}", "fortran_order": False, "shape": ()},
                      BOMB_BYTES)
    assert path.stat().st_size < 1_000_000
    (rows, problems), peak = _peak_mb(import_harvard, tmp_path)
    assert peak < 16, f"{peak:.0f} MB allocated: a member was decompressed"
    assert [(r["patient_id"], r["label"], r["md"]) for r in rows] == [("P001", "glaucoma", "-1.50")]
    assert not problems


def _deflated_checkpoint(path, nbytes: int = 4 << 20):
    """A torch.save checkpoint re-zipped with DEFLATE entries (torch's zip reader inflates them)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"model": {"fc.weight": torch.zeros(nbytes, dtype=torch.uint8)}, "meta": {}}, buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    return path


def _no_torch_load(*args, **kwargs):
    raise AssertionError("torch.load was called on a checkpoint with compressed entries")


def test_pt_with_compressed_entries_is_refused_before_torch_load(tmp_path, monkeypatch):
    """F8: --model and --resume refuse a deflated .pt from its zip directory, without inflating a tensor."""
    import torch

    from octviewer.model import ModelFileError, load_model
    from octviewer.model.model_file import check_torch_archive
    from trainer.checkpoint import CheckpointError, load_checkpoint

    genuine = tmp_path / "genuine.pt"
    torch.save({"model": {"w": torch.ones(3)}, "epoch": 0}, genuine)
    check_torch_archive(genuine)  # what torch.save writes passes
    bomb = _deflated_checkpoint(tmp_path / "bomb.pt")
    assert bomb.stat().st_size < 100_000
    monkeypatch.setattr(torch, "load", _no_torch_load)
    with pytest.raises(ModelFileError, match="compressed") as info:
        load_model(bomb)
    assert "bomb.pt" in str(info.value)
    with pytest.raises(CheckpointError, match="compressed") as info:
        load_checkpoint(bomb, "cpu")
    assert "bomb.pt is unreadable" in str(info.value)
    # and the local ImageNet weights file given as --init (octviewer.model.networks)
    from octviewer.model import InitError
    from octviewer.model.networks import Backbone2d

    with pytest.raises(InitError, match="compressed"):
        Backbone2d(str(bomb))
