"""``octviewer-predict``: screen many volumes from the command line into one CSV.

Each volume goes through the one pipeline (``analyse_scan``): the quality gate, the network, the
whole structure measurement. Unreadable or unsupported files, refused scans and volumes on which the
model gives no valid result are error rows with their reason while the rest go on. A refused scan's
row carries its structure columns with the quality figure and the reasons in ``error``
(``--no-quality-gate`` analyses it anyway, for research on the gate itself).

No identifiers leave through the outputs: patient IDs are never written, and by default files are
named by a pseudonymous key (``octviewer.core.pseudonym``; ``--key-file`` writes the key -> path
mapping separately, owner-readable only, ``--no-pseudonymise`` writes paths). Every text cell is
neutralised against spreadsheet formula injection (``octviewer.core.csv_safe``); numbers stay numbers.
``--cam-out DIR`` writes each volume's en-face CAM (``cam.enface_cam``: one row per B-scan, on the
volume's grid, logit units relative to the threshold) as ``<file stem>_cam.npy`` (``<key>_cam.npy``
when pseudonymised).

``--resume`` after a killed run skips the scans whose rows were written and gives the same CSV as an
uninterrupted run (``outputs.ResumableCsv``); rows of another model file or other settings (the
``settings`` column: precision, device, quality gate, segmentation, code versions) or with
impossible values refuse the resume. Results also go to the results store (``--no-store``
to skip it), where the viewer finds them.
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (attack run 12, A12-5)
    from octviewer.core.stop import run_module

    run_module("octviewer.pipeline.predict_cli", hint="run again with --resume to continue", prog="octviewer-predict")

import argparse
import os
import re
import sys
from pathlib import Path

from ..core.files import private_folder
from ..core.text import printable_stderr
from ..structure.columns import COLUMNS as STRUCTURE_COLUMNS
from .outputs import (
    EXIT_CODES_HELP,
    EXIT_MODEL,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_SCANS_FAILED,
    QUALITY_CHECK_COLUMN,
    OutputError,
    check_outputs,
    expand,
    stoppable,
)
from .predict_rows import REFUSED, analysed_row

#: The scan's laterality, pattern and quality, the estimates, then the rest of the structure columns
#: (``octviewer.structure.COLUMNS``, shared with ``octviewer-measure``, so a new measure reaches both).
COLUMNS = ["file", *STRUCTURE_COLUMNS[:3], "probability", "decision", "threshold", "vfi", "md", "psd",
           *STRUCTURE_COLUMNS[3:], "seconds", "error", "notice", "model_digest", "model_signature", "settings",
           QUALITY_CHECK_COLUMN]
#: Column names older versions wrote and this one no longer does: a results CSV holding them is still
#: this command's own, and --out may replace it after an upgrade (review H36, item 1). None so far:
#: every older header is a subset of COLUMNS. A name removed from COLUMNS belongs here.
RETIRED_COLUMNS: list[str] = []
#: A column every version wrote and that sets the results CSV apart from a list of scans (A10-14).
REQUIRED_COLUMNS = ("probability",)

#: A Dask scheduler address: an optional scheme, a host name or address (IPv6 in brackets), a port;
# the port is required: Dask refuses an address without one only after a traceback and a 40 s wait
# for its client (attack run 4, F14: "garbage", tcp://host)
_CLUSTER_ADDRESS = re.compile(r"((tcp|tls|ws|wss|ucx)://)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})")


def _own_cam(path: Path, cam_out: Path) -> bool:
    """``path`` is named as a CAM file (``<key>_cam.npy``) in the --cam-out folder."""
    return path.name.endswith("_cam.npy") and os.path.realpath(path.parent) == os.path.realpath(cam_out)


def _looks_like_cam(path: Path) -> bool:
    """``path``'s .npy header says what this command's CAMs are: a 2-D float array (read from the header
    only). A NumPy volume a user named ``*_cam.npy`` is 3-D, or of integers: a scan, not ours."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            read = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}.get(version)
            if read is None:  # np.save writes version 1.0 for a CAM
                return False
            shape, _, dtype = read(f)
    except Exception:  # noqa: BLE001 - not a .npy file at all: no CAM of ours either
        return False
    return len(shape) == 2 and dtype.kind == "f"


def _not_own_cams(files: list[Path], cam_out: Path, named: set) -> list[Path]:
    """``files`` without the CAMs an earlier run wrote to --cam-out: with --cam-out inside an input
    folder, the next run read them back as scans and failed on each (attack run 4, F18). Only files found
    by searching a folder, named as our CAMs and shaped as ours; a file named on the command line is an
    input, and was dropped as "our own CAM", then overwritten by another scan's CAM (attack run 14, A14-4).
    ``named``: the (device, inode) or resolved path of each file named on the command line."""
    kept = [p for p in files if _identity(p) in named or not (_own_cam(p, cam_out) and _looks_like_cam(p))]
    if len(kept) < len(files):
        print(f"note: {len(files) - len(kept)} CAM file(s) of --cam-out in the input folders are not read as scans",
              file=sys.stderr)
    return kept


def _folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a path longer than PATH_MAX: a file named, whose row says why it cannot be read
        return False


def _identity(path) -> tuple | str:
    """One file however it is named: (device, inode), or its resolved path where it cannot be looked at."""
    try:
        st = os.stat(path)
        return (st.st_dev, st.st_ino) if st.st_ino else os.path.realpath(path)
    except (OSError, ValueError):
        return os.path.realpath(path)


def _cam_stems(files: list[Path], args) -> dict[Path, str]:
    """Each scan's CAM name (``<stem>_cam.npy`` in --cam-out): its key, or with --no-pseudonymise its
    file's stem (the same stem in two folders: both kept, the second with a part of its key). Named for
    every scan, done or not, so a resumed run names alike; before anything is written, so a CAM that
    would replace an input is refused first (``cam_problem``)."""
    from ..core.pseudonym import SaltError, install_salt, pseudonym

    salt: list[bytes] = []  # read once, when first needed: --no-pseudonymise reads it only for two CAMs of one stem

    def key(path: Path) -> str:
        if not salt:
            try:
                salt.append(install_salt())
            except SaltError as exc:
                raise OutputError(str(exc)) from None
        return pseudonym(path, salt[0])

    stems: dict[Path, str] = {}
    taken: set[str] = set()
    for path in files:
        stem = key(path) if args.pseudonymise else path.stem
        if stem in taken:
            stem = f"{stem}_{key(path)[4:12]}"
        stems[path] = stem
        taken.add(stem)
    return stems


def cam_problem(stems: dict[Path, str], cam_out: Path, inputs: list[Path]) -> str:
    """Why a CAM cannot be written: its path is one of the inputs (``X.dcm X_cam.npy --cam-out .`` replaced
    the scan X_cam.npy by X.dcm's CAM, A14-4), refused as ``check_outputs`` refuses --out or --key-file; ""
    when none is."""
    given = {_identity(p) for p in inputs}
    for stem in stems.values():
        cam = cam_out / f"{stem}_cam.npy"
        if os.path.lexists(cam) and _identity(cam) in given:
            return f"--cam-out {cam} is one of the inputs; refusing to overwrite a scan"
    return ""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="octviewer-predict", epilog=EXIT_CODES_HELP, description=(
        "Estimate glaucoma probability and VF indices for OCT volumes (research use only, not a medical device)."))
    p.add_argument("inputs", nargs="*", help="volume files or folders")
    p.add_argument("--model", type=Path, default=None, help="model file (default: the bundled demo model)")
    p.add_argument("--out", type=Path, default=None, help="results CSV (required unless --clear-store)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--cam-out", type=Path, default=None,
                   help="folder for each volume's en-face CAM, <file stem>_cam.npy shaped (n_bscans, width)")
    p.add_argument("--pseudonymise", action=argparse.BooleanOptionalAction, default=True,
                   help="name files by a stable pseudonymous key instead of their path (default: on)")
    p.add_argument("--key-file", type=Path, default=None,
                   help="also write the key -> path mapping to this CSV (owner-readable only)")
    p.add_argument("--segmentation", choices=("vendor", "own"), default="vendor",
                   help="layer segmentation for the structure columns: the file's own when present (vendor) "
                        "or octviewer's (own)")
    p.add_argument("--quality-gate", action=argparse.BooleanOptionalAction, default=True,
                   help="give no probability for a volume that fails the quality check (default: on)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="let trusted .npz files with Python-object fields load (this runs code from the file)")
    p.add_argument("--resume", action="store_true",
                   help="after a killed run: keep the rows already written to --out, analyse only the rest")
    p.add_argument("--store", action=argparse.BooleanOptionalAction, default=True,
                   help="read and keep results in the results store, where the viewer finds them (default: on)")
    p.add_argument("--clear-store", action="store_true", help="empty the results store and exit")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="the network's arithmetic: auto (bf16 on GPUs and on CPUs that do bf16 in hardware, else "
                        "fp32), fp32 (exact) or bf16")
    p.add_argument("--workers", type=int, default=1,
                   help="scan processes that read and measure while the network runs (one model per device)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (README: on a cluster)")
    return p


@stoppable("octviewer-predict")
@printable_stderr
def main(argv: list[str] | None = None) -> int:
    from . import ScanOptions
    from .batch import Batch, clear_store, settings

    args = parser().parse_args(argv)
    if args.clear_store:
        return clear_store("octviewer-predict")
    if not args.inputs or args.out is None:
        parser().error("the inputs and --out are required")
    cluster = _CLUSTER_ADDRESS.fullmatch(args.cluster) if args.cluster is not None else None
    if args.cluster is not None and not (cluster and 0 < int(cluster[4]) < 65536):
        # "not a url" was tried for 40 s and ended in a TimeoutError traceback (attack run 3 F11)
        parser().error(f"--cluster {args.cluster!r} is no scheduler address; give one like tcp://10.0.0.5:8786")
    from ..resources import DEMO_MODEL

    files, skipped = expand(args.inputs)
    cams: dict[Path, str] = {}
    if args.cam_out is not None:
        named = {_identity(p) for p in map(Path, args.inputs) if not _folder(p)}
        files = _not_own_cams(files, args.cam_out, named)
        skipped = [s for s in skipped if not _own_cam(s[0], args.cam_out)]
    try:
        check_outputs(files + [p for p, _ in skipped], args.out, folders={"--cam-out": args.cam_out},
                      files={"--key-file": args.key_file}, model=args.model or DEMO_MODEL, columns=COLUMNS,
                      retired=RETIRED_COLUMNS, required=REQUIRED_COLUMNS)
        if args.cam_out is not None:
            cams = _cam_stems(files, args)
            if problem := cam_problem(cams, args.cam_out, files + [p for p, _ in skipped]):
                raise OutputError(problem)
    except OutputError as exc:
        print(f"octviewer-predict: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    predictor = _predictor(args)
    if predictor is None:
        return EXIT_MODEL
    synthetic = predictor.model.meta.synthetic_data
    # every row names exactly the model file, whether a trusted key signed it, and how it ran
    options = ScanOptions(gate=args.quality_gate, segmentation=args.segmentation)
    run_cells = {"model_digest": predictor.model.short_digest, "model_signature": predictor.model.trust.text(),
                 "settings": settings(options, predictor)}
    if predictor.model.trust.warning:
        print(f"note: {predictor.model.trust.warning}", file=sys.stderr)
    if synthetic:
        print(f"note: model '{predictor.model.name}' was trained on SYNTHETIC data; results are not clinically valid",
              file=sys.stderr)
    try:
        batch = Batch("octviewer-predict", args, COLUMNS, skipped, run_cells=run_cells, files=files)
    except OutputError as exc:
        print(f"octviewer-predict: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    try:
        with batch:
            if args.cam_out is not None:
                try:
                    if args.pseudonymise:
                        args.cam_out.mkdir(parents=True, exist_ok=True)
                    else:  # its CAMs are named after the scans' files (A13-2)
                        private_folder(args.cam_out)
                except OSError as exc:
                    print(f"octviewer-predict: --cam-out {args.cam_out} cannot be made: {exc.strerror}",
                          file=sys.stderr)
                    return EXIT_OUTPUT
            parallel, todo = args.workers > 1 or bool(args.cluster), []
            for path in batch.scans(files, "screening"):
                name = batch.name_of(path)
                cam_stem = cams.get(path)  # None: no --cam-out
                if batch.finished(name):
                    continue
                if parallel:
                    todo.append((path, name, cam_stem))
                else:
                    batch.write(analysed_row(batch, path, name, predictor, args, synthetic, cam_stem))
            from .parallel import ClusterError, screen

            try:
                for row, notes in screen(args, predictor, synthetic, todo):
                    for kind, text in notes:
                        batch.note(kind, text)
                    batch.write(row)
            except ClusterError as exc:
                print(f"octviewer-predict: {exc}", file=sys.stderr)
                return EXIT_MODEL
            code = batch.finish(files)
    except OutputError as exc:  # the journal cannot be written (a full disk): the rows so far are kept
        print(f"octviewer-predict: {exc}", file=sys.stderr)
        return EXIT_OUTPUT
    if code == EXIT_OUTPUT:
        return code
    refused = sum(REFUSED in row["error"] for row in batch.rows())
    print(f"wrote {args.out}: {batch.total - batch.failures} analysed, {batch.failures} failed"
          + (f" ({refused} refused by the quality check)" if refused else ""))
    batch.say_how_files_are_named()
    return EXIT_SCANS_FAILED if batch.failures else EXIT_OK


def _predictor(args):
    from ..model import ModelFileError, Predictor
    from ..resources import DEMO_MODEL

    try:
        return Predictor(str(args.model or DEMO_MODEL), device=args.device, precision=args.precision)
    except (ModelFileError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())

