"""``octviewer-predict``: screen many volumes from the command line into one CSV.

Unreadable or unsupported files are listed with their reason while the rest go on; the exit
status is non-zero if any failed. Patient identifiers are not written.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

VOLUME_SUFFIXES = {".dcm", ".dicom", ".vol", ".e2e", ".npz", ".npy", ".tif", ".tiff", ".fds", ".fda", ".img", ".oct"}
COLUMNS = ["file", "laterality", "probability", "decision", "vfi", "md", "psd", "seconds", "error"]


def expand(inputs: list[str]) -> list[Path]:
    """Files as given; folders searched for volume files, or taken as one volume (image stack)."""
    paths = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VOLUME_SUFFIXES)
            paths.extend(found or [p])
        else:
            paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from .. import VolumeReadError, load_volume
    from ..resources import DEMO_MODEL
    from .model_file import ModelFileError
    from .predictor import Predictor, ScanNotSupported

    parser = argparse.ArgumentParser(prog="octviewer-predict", description=(
        "Estimate glaucoma probability and VF indices for OCT volumes (research use only, not a medical device)."))
    parser.add_argument("inputs", nargs="+", help="volume files or folders")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="model file (default: the bundled demo model)")
    parser.add_argument("--out", type=Path, required=True, help="results CSV")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="let trusted .npz files with Python-object fields load (this runs code from the file)")
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(str(args.model), device=args.device)
    except (ModelFileError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if predictor.model.meta.get("synthetic_data"):
        print(f"note: model '{predictor.model.name}' was trained on SYNTHETIC data; results are not clinically valid",
              file=sys.stderr)
    files = expand(args.inputs)
    failures = 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for path in tqdm(files, desc="screening", unit="vol"):
            started = time.perf_counter()
            row = {"file": str(path)}
            try:
                volume = load_volume(path, allow_pickle=args.allow_pickle)
                pred = predictor.predict(volume)
                row.update(laterality=volume.laterality or "", probability=f"{pred.probability:.4f}",
                           decision=pred.decision, **{k: f"{v:.2f}" for k, v in pred.vf.items()})
            except (VolumeReadError, ScanNotSupported) as exc:
                failures += 1
                row["error"] = str(exc)
                tqdm.write(f"skipped {path}: {exc}", file=sys.stderr)
            row["seconds"] = f"{time.perf_counter() - started:.3f}"
            writer.writerow(row)
            f.flush()
    print(f"wrote {args.out}: {len(files) - failures} analysed, {failures} failed")
    return 1 if failures else 0
