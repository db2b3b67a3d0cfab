"""One scan's row of ``octviewer-predict``: the pipeline's result in the CSV's words, or the error
that stopped it. Its own module because the single-process command and the scan workers of
``parallel`` both build rows, and neither may import the other."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

REFUSED = "not analysed: the scan failed the quality check"


def analysed_row(batch, path: Path, name: str, predictor, args, synthetic: bool, cam_stem: str | None) -> dict:
    """One scan's row: the pipeline's result, or the error that stopped it."""
    from .. import VolumeReadError, load_volume
    from ..core.csv_safe import notice
    from ..model import InvalidOutput, ScanNotSupported
    from ..model.predictor import VF_CLIPPED
    from ..structure import report_columns
    from . import ScanOptions, analyse_scan
    from .outputs import QUALITY_CHECK_COLUMN, OutputError, quality_check_cells
    from .scan import analysis_settings

    started = time.perf_counter()
    row = {"file": name, "notice": notice(None, synthetic)}
    try:
        volume = load_volume(path, allow_pickle=args.allow_pickle)
        row["notice"] = notice(volume, synthetic)
        options = ScanOptions(gate=args.quality_gate, segmentation=args.segmentation)
        result = analyse_scan(volume, predictor, options, store=batch.store)
        if result.structure is not None:
            row.update(report_columns(result.structure))
        pred = result.prediction
        # the window's CSV's column and notice sentence, by the one rule (attack run 15, A15-11)
        row[QUALITY_CHECK_COLUMN], gate_note = quality_check_cells(pred, result.quality,
                                                                   result.settings or analysis_settings(options))
        row["notice"] = "; ".join(filter(None, [row["notice"], gate_note]))
        if pred is None:
            why = (f"{REFUSED} ({'; '.join(result.reasons)})" if result.refused else "; ".join(result.reasons))
            row["error"] = batch.named_message(why, path, name)
            batch.note("refused" if result.refused else "skipped", row["error"])
        else:
            row.update(laterality=volume.laterality or "", probability=f"{pred.probability:.4f}",
                       decision=pred.decision, threshold=f"{pred.threshold:.4f}",
                       **{k: f"{v:.2f}" for k, v in pred.vf.items()})
            flagged = [n for n in pred.notes if n.startswith((VF_CLIPPED, "model file not verified"))]
            row["notice"] = "; ".join([row["notice"], *flagged])
            if result.structure_error:
                row["error"] = batch.named_message(result.structure_error, path, name)
                batch.note("skipped", row["error"])
            if cam_stem is not None:
                _save_cam(args.cam_out / f"{cam_stem}_cam.npy", pred, volume, private=not args.pseudonymise)
    except OutputError:  # a CAM that cannot be written stops the run (exit 3); the scan itself is not at fault
        raise
    except (VolumeReadError, ScanNotSupported, InvalidOutput, ValueError, OSError) as exc:
        row["error"] = batch.named_message(str(exc), path, name)
        batch.note("skipped", row["error"])
    except Exception as exc:  # a bug must not stop the other volumes; it is still a failure
        row["error"] = f"{name}: internal error ({type(exc).__name__}); please report it"
        batch.note("skipped", row["error"])
    row["seconds"] = f"{time.perf_counter() - started:.3f}"
    return row


def _save_cam(path: Path, pred, volume, private: bool = False) -> None:
    """The en-face CAM as ``path``, or OutputError (one line naming the CAM file and the reason).

    Written to ``<name>.tmp`` and renamed into place, never through a link (``core.files``): np.save
    followed a ``<key>_cam.npy`` link in the --cam-out folder and overwrote the file it led to, and on
    a full disk it left a 0-byte CAM beside a row that said the scan had failed (attack run 2 M1). A
    CAM that cannot be written is an output failure like the CSV's: the run stops with exit 3, this
    scan's row is not written (so ``--resume`` analyses it again and writes its CAM), and a temporary
    file is removed, so no empty or partial CAM is left. ``private``: owner-only, for a CAM named after its scan's
    file (``--no-pseudonymise``: the stem is the patient's name, attack run 13, A13-2)."""
    from ..core.files import FileRefused, check_writable, open_for_writing
    from ..model import enface_cam
    from .outputs import RESUME_HINT, OutputError, shown, write_failed

    cam = enface_cam(pred, volume)
    tmp = path.with_name(path.name + ".tmp")
    try:
        try:
            check_writable(os.lstat(path))  # a link at the CAM's own name is refused, not replaced
        except FileNotFoundError:
            pass
        fd = open_for_writing(tmp, mode=0o600 if private else 0o666)
    except FileRefused as exc:
        raise OutputError(f"--cam-out {shown(path)} {exc}{RESUME_HINT}") from None
    except OSError as exc:
        raise write_failed("--cam-out", path, exc, RESUME_HINT) from None
    try:
        with open(fd, "wb") as f:
            np.save(f, cam)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_failed("--cam-out", path, exc, RESUME_HINT) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
