"""Checkpoints written so that a kill, a full disk or a power cut never leaves a file that lies.

``atomic_save`` writes ``<name>.part``, flushes and fsyncs it, renames it over the target and
fsyncs the folder, so after a crash the target is either the old or the new complete file. When
the write fails (disk full, quota, permissions) the ``.part`` is removed and ``CheckpointError``
names the file and the reason. ``load_checkpoint`` turns an unreadable file into a message that
says how to go on (delete the stage folder, or start over without ``--resume``).
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import torch

from octviewer.model.model_file import check_torch_archive


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message names the file and what to do."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename itself is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        buffer = io.BytesIO()
        torch.save(obj, buffer)  # serialise first: a pickling problem never touches the disk
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if full else str(exc) or type(exc).__name__
        raise CheckpointError(f"cannot write checkpoint {path}: {reason}; free some space and rerun with "
                              "--resume (the previous checkpoint is intact)") from exc
    _fsync_dir(path.parent)


def load_checkpoint(path: Path, device) -> dict:
    path = Path(path)
    try:
        check_torch_archive(path)  # a compressed entry could unpack to gigabytes (attack run 4, F8)
        ck = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(ck, dict) or "model" not in ck:
            raise ValueError("not a trainer checkpoint")
        return ck
    except Exception as exc:  # any reader failure means the same thing here: this file cannot be used
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {str(exc)[:200]}); "
                              f"delete {path.parent} to redo that stage, or start over without --resume") from exc
