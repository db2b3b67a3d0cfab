"""``octviewer-predict``: screen many volumes from the command line into one CSV.

Unreadable or unsupported files, and volumes on which the model gives no valid result, are error
rows with their reason while the rest go on; the exit status is non-zero if any failed.

Each volume is measured first (``octviewer.structure.measure``: RNFL and disc columns, and the
quality gate). A volume that fails the gate gets no probability: its row carries the structure
columns with the quality figure and the reasons in ``error`` (``--no-quality-gate`` analyses it
anyway, for research on the gate itself).

No identifiers leave through the outputs: patient IDs are never written, and by default files are
named by a pseudonymous key (``octviewer.core.pseudonym``; ``--key-file`` writes the key -> path
mapping separately, ``--no-pseudonymise`` writes paths). Every text cell is neutralised against
spreadsheet formula injection (``octviewer.core.csv_safe``); numbers stay numbers.
``--cam-out DIR`` writes each volume's en-face CAM (``cam.enface_cam``: one row per B-scan, on the
volume's grid, logit units relative to the threshold) as ``<file stem>_cam.npy`` (``<key>_cam.npy``
when pseudonymised).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

#: structure columns (``octviewer.structure.COLUMNS``, shared with ``octviewer-measure``) follow the estimates
COLUMNS = ["file", "laterality", "scan_pattern", "quality", "probability", "decision", "threshold", "vfi", "md", "psd",
           "rnfl_global_um", "rnfl_T_um", "rnfl_TS_um", "rnfl_TI_um", "rnfl_N_um", "rnfl_NS_um", "rnfl_NI_um",
           "rnfl_class", "cup_to_disc", "rim_area_mm2", "cup_to_disc_average", "disc_area_mm2", "cup_area_mm2",
           "bmo_mrw_um", "seconds", "error", "notice"]


def expand(inputs: list[str]) -> tuple[list[Path], list[Path]]:
    """(volumes, skipped): files as given; folders searched for volume files by the io registry
    (``octviewer.io.find_volumes``), or taken as one volume (image stack, HEYEX export). Entries
    that are neither regular files nor folders (FIFOs, devices, broken links) are returned as
    skipped, never opened (opening a FIFO blocks)."""
    from ..io import find_volumes

    paths, skipped = [], []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found, passed_over = find_volumes(p)
            paths.extend(found)
            skipped.extend(entry for entry, _reason in passed_over)
        else:
            paths.append(p)
    return paths, skipped


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from .. import VolumeReadError, load_volume
    from ..core.csv_safe import csv_row, notice
    from ..core.pseudonym import install_salt, pseudonym, scrub, write_key_file
    from ..resources import DEMO_MODEL
    from ..structure import measure, report_columns
    from .cam import enface_cam
    from .meta import ModelFileError
    from .predictor import InvalidOutput, Predictor, ScanNotSupported

    parser = argparse.ArgumentParser(prog="octviewer-predict", description=(
        "Estimate glaucoma probability and VF indices for OCT volumes (research use only, not a medical device)."))
    parser.add_argument("inputs", nargs="+", help="volume files or folders")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="model file (default: the bundled demo model)")
    parser.add_argument("--out", type=Path, required=True, help="results CSV")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--cam-out", type=Path, default=None,
                        help="folder for each volume's en-face CAM, <file stem>_cam.npy shaped (n_bscans, width)")
    parser.add_argument("--pseudonymise", action=argparse.BooleanOptionalAction, default=True,
                        help="name files by a stable pseudonymous key instead of their path (default: on)")
    parser.add_argument("--key-file", type=Path, default=None,
                        help="also write the key -> path mapping to this CSV (owner-readable only)")
    parser.add_argument("--segmentation", choices=("vendor", "own"), default="vendor",
                        help="layer segmentation for the structure columns: the file's own when present (vendor) "
                             "or octviewer's (own)")
    parser.add_argument("--quality-gate", action=argparse.BooleanOptionalAction, default=True,
                        help="give no probability for a volume that fails the quality check (default: on)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="let trusted .npz files with Python-object fields load (this runs code from the file)")
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(str(args.model), device=args.device)
    except (ModelFileError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if predictor.model.meta.synthetic_data:
        print(f"note: model '{predictor.model.name}' was trained on SYNTHETIC data; results are not clinically valid",
              file=sys.stderr)
    synthetic = predictor.model.meta.synthetic_data
    files, skipped = expand(args.inputs)
    salt = install_salt() if args.pseudonymise else None
    keys: dict[str, str] = {}

    def name_of(path: Path) -> str:
        if not args.pseudonymise:
            return str(path)
        key = pseudonym(path, salt)
        keys[key] = os.path.abspath(path)
        return key

    def message(exc: Exception, path: Path, name: str) -> str:
        text = str(exc)
        return scrub(text, path, name) if args.pseudonymise else text

    if args.cam_out is not None:
        args.cam_out.mkdir(parents=True, exist_ok=True)
    cam_names: set[str] = set()
    failures = refused = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for path in skipped:
            failures += 1
            name = name_of(path)
            writer.writerow(csv_row({"file": name, "error": f"{name}: not a regular file (FIFO, socket or "
                                                            "device), not opened", "notice": notice(None, synthetic)}))
            tqdm.write(f"skipped {name}: not a regular file", file=sys.stderr)
        for path in tqdm(files, desc="screening", unit="vol"):
            started = time.perf_counter()
            name = name_of(path)
            row = {"file": name, "notice": notice(None, synthetic)}
            try:
                volume = load_volume(path, allow_pickle=args.allow_pickle)
                row["notice"] = notice(volume, synthetic)
                structure = measure(volume, source=args.segmentation)
                row.update(report_columns(structure))
                if args.quality_gate and not structure.quality.ok:
                    failures += 1
                    refused += 1
                    row["error"] = message(ValueError(f"{name}: not analysed: the scan failed the quality check "
                                                      f"({'; '.join(structure.quality.reasons)})"), path, name)
                    tqdm.write(f"refused {row['error']}", file=sys.stderr)
                    row["seconds"] = f"{time.perf_counter() - started:.3f}"
                    writer.writerow(csv_row(row))
                    f.flush()
                    continue
                pred = predictor.predict(volume)
                row.update(laterality=volume.laterality or "", probability=f"{pred.probability:.4f}",
                           decision=pred.decision, threshold=f"{pred.threshold:.4f}",
                           **{k: f"{v:.2f}" for k, v in pred.vf.items()})
                if args.cam_out is not None:
                    stem = name if args.pseudonymise else path.stem
                    if stem in cam_names:  # the same stem in two folders: keep both
                        stem = f"{stem}_{pseudonym(path, salt or install_salt())[4:12]}"
                    cam_names.add(stem)
                    np.save(args.cam_out / f"{stem}_cam.npy", enface_cam(pred, volume))
            except (VolumeReadError, ScanNotSupported, InvalidOutput, ValueError, OSError) as exc:
                failures += 1
                text = message(exc, path, name)
                # every message names its file (ScanNotSupported and InvalidOutput do not by themselves)
                row["error"] = text if text.startswith(f"{name}:") else f"{name}: {text}"
                tqdm.write(f"skipped {row['error']}", file=sys.stderr)
            except Exception as exc:  # a bug must not stop the other volumes; it is still a failure
                failures += 1
                row["error"] = f"{name}: internal error ({type(exc).__name__}); please report it"
                tqdm.write(f"skipped {row['error']}", file=sys.stderr)
            row["seconds"] = f"{time.perf_counter() - started:.3f}"
            writer.writerow(csv_row(row))
            f.flush()
    if args.key_file is not None:
        if args.pseudonymise:
            write_key_file(args.key_file, keys)
            print(f"wrote the key file {args.key_file}: keep it apart from the results", file=sys.stderr)
        else:
            print("note: --key-file ignored with --no-pseudonymise (the CSV holds the paths)", file=sys.stderr)
    total = len(files) + len(skipped)
    print(f"wrote {args.out}: {total - failures} analysed, {failures} failed"
          + (f" ({refused} refused by the quality check)" if refused else ""))
    if args.pseudonymise and args.key_file is None:
        print("files are named by pseudonymous keys (vol-...): --key-file KEYS.csv writes the key -> path "
              "mapping, --no-pseudonymise writes paths", file=sys.stderr)
    return 1 if failures else 0
