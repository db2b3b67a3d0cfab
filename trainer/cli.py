"""``octviewer-train`` (also ``python -m trainer`` and ``torchrun ... -m trainer``)."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from octviewer.core.text import printable_stderr

from . import stop
from .command import ArgumentError, OutputPathError, check_run_folder, error_exit, is_evaluation, is_manifest
from .command import check_out as _check_out
from .command import write_out as _write_out
from .config import Config, checked_values, read_config_file
from .manifest import ManifestError


def fit(cfg: Config) -> dict:
    """``train.fit``, imported when a fit starts: it imports torch (seconds), and a Ctrl-C or SIGTERM in those
    seconds, before main had installed the stop handlers, ended in a KeyboardInterrupt traceback (attack run 8).
    It makes the run and cache folders (``_make_work_folders``) only once the manifest has passed."""
    from .train import fit as train_fit

    return train_fit(cfg, make_folders=lambda: _make_work_folders(cfg))


def _alpha(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"alpha must be NAME=VALUE (e.g. md=2), got {text!r}")
    return name.strip().lower(), float(value)


def variant_name(text: str) -> str:
    """A --variants entry, checked by argparse (one line, exit 2, nothing made): an unknown name was a
    ValueError traceback after the run folder was made (attack run 9, A9-15)."""
    from octviewer.model import ARCHITECTURES  # imports torch: only while a training command's options are read

    if text not in ARCHITECTURES:
        raise argparse.ArgumentTypeError(f"unknown network {text[:40]!r}; one of {', '.join(ARCHITECTURES)}")
    return text


#: --help text per Config field (defaults are shown by argparse from Config where they matter)
HELP = {
    "epochs": "epochs of the (second-stage) training (default 10)",
    "stage1_epochs": "SEMT: epochs of the surrogate-labelled first stage (default: as --epochs)",
    "batch_size": "B-scans per batch (default 32)",
    "lr": "learning rate (default 1e-3)",
    "weight_decay": "AdamW weight decay (default 1e-4)",
    "aggregation": "VF per volume from its B-scans: auto (chosen on validation), mean, median, central",
    "train_set": "all, or part (only VF-labelled training volumes: the paper's Part rows)",
    "label_fraction": "share of training patients whose glaucoma label is used (per class, seeded by the split "
                      "seed); the others train only the VF heads of mt/semt (default 1)",
    "image_size": "B-scans are resized to this square size in pixels (default 224)",
    "reg_channels": "channels of each VF regression module, mt/semt (default 128)",
    "init": "imagenet (needs the torchvision weights on this computer), random, a ResNet18 state-dict path, "
            "or a model file (.safetensors) to fine-tune: its weights, input size and VF scaling are kept",
    "seed": "training seed: initialisation, order, augmentation (default 0)",
    "split_seed": "seed of the patient split (default: --seed)",
    "device": "auto, cpu, cuda, cuda:1, mps (default auto)",
    "bscans_per_volume": "B-scans drawn per volume per epoch (default: all)",
    "skip_bad": "leave out unreadable volumes instead of stopping (they are listed)",
    "allow_pickle": "let trusted .npz files with Python-object fields load (this runs code from the file)",
    "resume": "continue the run in --out from its last checkpoint",
    "cache_dir": "folder of the decoded uint8 cache (default: inside --out)",
    "half": "store the model file in half precision (about half the size)",
    "progress_json": "also write progress records (JSON lines) to this file",
    "synthetic": "mark the model as trained on SYNTHETIC data (default: from the manifest)",
    "report_paths": "name volumes by path in the outputs instead of pseudonymous keys",
}


def _add_fit_args(p):
    from octviewer.model import ARCHITECTURES  # imports torch (seconds): main's stop handlers are in place by now

    p.add_argument("--config", type=Path, help="YAML file with any of the options below")
    for f in fields(Config):
        if f.name in ("data", "out"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", "bool | None"):
            p.add_argument(flag, action="store_true", default=None, help=HELP.get(f.name))
        elif f.name == "alpha":
            p.add_argument(flag, type=_alpha, nargs="+", metavar="NAME=VALUE", help="alpha per VF index")
        elif f.name == "alpha_grid":
            p.add_argument(flag, type=float, nargs="+", help="alpha multipliers tried; the best on validation wins")
        elif f.name in ("train_set", "variant") and p.prog.endswith("ablation"):
            continue
        elif f.name == "volume_shape":
            p.add_argument(flag, type=int, nargs=3, metavar=("BSCANS", "DEPTH", "WIDTH"),
                           help="3-D networks: the cube is resampled to this shape (default 64 128 64)")
        else:
            kind = int if "int" in str(f.type) else float if "float" in str(f.type) else str
            choices = ARCHITECTURES if f.name == "variant" else None
            what = f"network: {', '.join(ARCHITECTURES)} (default semt)" if f.name == "variant" else HELP.get(f.name)
            p.add_argument(flag, type=kind, choices=choices, help=what)


def _config(args) -> Config:
    values = {}
    if getattr(args, "config", None):
        values.update(read_config_file(args.config))
    given = {k: v for k, v in vars(args).items() if v is not None and k in {f.name for f in fields(Config)}}
    if isinstance(given.get("alpha"), list):  # --alpha md=2 vf=1: (name, value) pairs; a --config's is checked below
        given["alpha"] = dict(given["alpha"])
    values.update(given)
    if getattr(args, "command", None) == "ablation":  # its --train-set (all, part, both) is its own, set per run
        values.pop("train_set", None)
    # every option's type and range, before any work (a seed below 0, --epochs 0: attack runs 3 and 4; the
    # rest: attack run 5, F11, F12); stage1 0 is "as --epochs"
    return Config(**checked_values(values))


def _manifest_volumes(manifest) -> list[str]:
    """The volume paths of a manifest's good rows (a manifest with bad rows is refused before anything
    is written), read without opening the volumes: evaluate's --out naming one of them replaced that scan with
    the JSON report, exit 0 (attack run 4, F16)."""
    from .manifest import read_manifest

    try:
        records, _ = read_manifest(manifest, skip_bad=True, check_files=False)
    except ManifestError:  # an unreadable manifest is refused by evaluate itself, before any write
        return []
    return [r.path for r in records]


def _run_folder(out: Path, option: str = "--out") -> None:
    """Make the run folder --out (or the --cache-dir), or OutputPathError in one line: a file, a FIFO, a
    path under a file or in /proc ended in a raw traceback from mkdir (attack run 3 F20), a --cache-dir
    that is a file only after the manifest was read (attack run 6, A6-18)."""
    from octviewer.core.files import file_kind, private_folder

    try:
        # each level it makes owner-only: the cache holds every training scan's pixels and the run its checkpoints,
        # beside reports that are owner-only (attack run 13, A13-8); a folder that is there is left as it is
        private_folder(out)
    except (FileExistsError, NotADirectoryError) as exc:
        if not os.path.lexists(out):  # a file on the way to it
            raise OutputPathError(f"{option} {out}: cannot be made ({exc.strerror or type(exc).__name__})") from None
        mode = os.stat(out).st_mode
        what = "a file" if stat.S_ISREG(mode) else file_kind(mode)
        raise OutputPathError(f"{option} {out}: is {what}, not a folder; give a folder's name") from None
    except OSError as exc:
        raise OutputPathError(f"{option} {out}: cannot be made ({exc.strerror or type(exc).__name__})") from None


def _check_folder_can_be_made(out: Path, option: str = "--out") -> None:
    """``_run_folder``'s refusals, told before anything is left on disk: ``out`` is a folder, or the nearest
    existing folder above it takes a new folder (one is made there and removed). fit reads its manifest before it
    makes its folders (a refused manifest left an empty run folder: H87, issue 27), and a --out naming a file must
    still be refused at once, not after the manifest's volumes were decoded."""
    from octviewer.core.files import file_kind

    path = Path(os.path.abspath(out))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    if os.path.isdir(path):
        if path != Path(os.path.abspath(out)):  # a folder made and removed at once: permissions, a read-only disk,
            try:  # /proc (root may "write" there by its mode bits) answer as making the run folder would
                os.rmdir(tempfile.mkdtemp(prefix=".octviewer-train-", dir=path))
            except OSError as exc:
                raise OutputPathError(f"{option} {out}: cannot be made ({exc.strerror or type(exc).__name__})") \
                    from None
        return
    if path != Path(os.path.abspath(out)):
        raise OutputPathError(f"{option} {out}: cannot be made (Not a directory)")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:  # a dangling link
        raise OutputPathError(f"{option} {out}: cannot be made ({exc.strerror or type(exc).__name__})") from None
    what = "a file" if stat.S_ISREG(mode) else file_kind(mode)
    raise OutputPathError(f"{option} {out}: is {what}, not a folder; give a folder's name")


def _check_work_folders(cfg) -> None:
    """Before any work, nothing made: the run folder new, empty or, with --resume, the same run's
    (check_run_folder: A8-10), and the run and cache folders ones that can be made."""
    check_run_folder(Path(cfg.out), bool(cfg.resume), also=[cfg.progress_json] if cfg.progress_json else ())
    _check_folder_can_be_made(Path(cfg.out))
    if cfg.cache_dir:
        _check_folder_can_be_made(Path(cfg.cache_dir), "--cache-dir")


def _make_work_folders(cfg) -> None:
    """The run folder and the cache folder (owner-only where made: A13-8)."""
    _run_folder(Path(cfg.out))
    if cfg.cache_dir:
        _run_folder(Path(cfg.cache_dir), "--cache-dir")


def _work_folders(cfg) -> None:
    """ablation's: the run and cache folders checked and made before any work."""
    _check_work_folders(cfg)
    _make_work_folders(cfg)


def _check_salt() -> None:
    """Make or read the pseudonym salt before any work (SaltError: one line, exit 3): the report's volume
    keys need it, and a fit with no place for it trained to the end, then died in a traceback (A8-12). The
    batch commands' hint "or use --no-pseudonymise" names an option no trainer command has (--report-paths
    still keys the patients), so it is left out here (attack run 9, A9-4)."""
    from octviewer.core.pseudonym import SaltError, install_salt

    try:
        install_salt()
    except SaltError as exc:
        raise SaltError(str(exc).replace(", or use --no-pseudonymise", "")) from None


def _check_progress_json(cfg) -> None:
    """--progress-json under --out's rules, before any work: it appended through a link, into the manifest
    and into a scan, and a FIFO hung the command for good (attack run 8, A8-18). An existing file is
    appended to only when it holds progress records (JSON lines)."""
    if cfg.progress_json and cfg.progress_json != "-":
        _progress_json_not_a_work_folder(cfg)
        _check_out(Path(cfg.progress_json), cfg.data, *_manifest_volumes(cfg.data), option="--progress-json",
                   ours=_is_progress)


def _progress_json_not_a_work_folder(cfg) -> None:
    """--progress-json naming the run folder --out or the --cache-dir, or a folder above one of them (folders the
    command makes), is refused before anything is made: fit made the run folder, then refused --progress-json as
    "a folder" the user never had and left it behind (attack run 14, A14-14). A file inside an existing --out is
    fine (the run folder's check counts it as the command's own); in one not made yet, check_out says its folder
    does not exist."""
    given = Path(cfg.progress_json).resolve()
    for option, folder in (("--out", cfg.out), ("--cache-dir", cfg.cache_dir)):
        if folder and (given == (made := Path(folder).resolve()) or given in made.parents):
            what = f"the {option} folder" if given == made else f"a folder above {option}"
            raise OutputPathError(f"--progress-json {cfg.progress_json}: names {what}, not a file; give a file's "
                                  "name in a folder that exists; nothing was written")


def _is_progress(path: Path) -> bool:
    """A file of progress records: its first line a JSON object (what --progress-json may append to)."""
    try:
        with open(path, "rb") as f:
            return f.readline(4096).lstrip().startswith(b"{")
    except OSError:
        return False


def _one_class(report: dict) -> str:
    """Why an evaluation's volumes cannot be stored as a model's figures (A8-6's rule, ``one_class_problems``),
    or "": one class only, its AUC NaN, was stored as "On independent data ..." (attack run 9, A9-11)."""
    from .manifest import one_class_problems

    labels = [v["label"] for v in report.get("test_volumes", [])]
    problems = one_class_problems({"test": {"volumes": len(labels), "glaucoma": sum(labels)}})
    return problems[0] if problems else ""


#: Whether _network_progress left its line unfinished (the cursor after "running the network: 3/10 volumes").
_PROGRESS_LINE = {"open": False}


def _network_progress(done: int, total: int) -> None:
    """One line on stderr, rewritten in place, while evaluate or recalibrate runs the network."""
    print(f"\rrunning the network: {done}/{total} volumes", end="\n" if done == total else "",
          file=sys.stderr, flush=True)
    _PROGRESS_LINE["open"] = done != total


def _end_progress_line() -> None:
    """End the progress line left unfinished, so that the message of a stop or an error starts a line of its
    own: "stopped after 3 of 10 volumes" was printed on the progress line (attack run 8)."""
    if _PROGRESS_LINE["open"]:
        _PROGRESS_LINE["open"] = False
        print(file=sys.stderr, flush=True)


def _not_stopped() -> None:
    """Stopped when a Ctrl-C or SIGTERM came while torch was imported (building the parser), before fit or
    ablation make their folders; the other commands stop at their own first step (reading the manifest)."""
    if stop.requested():
        raise stop.Stopped("stopped before any work; nothing was written")


@printable_stderr
def main(argv: list[str] | None = None) -> int:
    stop.install_signal_handlers()  # first: a stop while torch loads is one line and exit 130, never a traceback
    from octviewer.core.files import no_home

    if no_home("octviewer-train"):  # the signing keys and the salt have no place (attack run 10, A10-18)
        return 2
    parser = argparse.ArgumentParser(prog="octviewer-train", description="Train and evaluate glaucoma OCT models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fit = sub.add_parser("fit", help="train a variant from a manifest and export a model file")
    p_fit.add_argument("--data", required=True, help="manifest CSV")
    p_fit.add_argument("--out", required=True, help="run folder")
    _add_fit_args(p_fit)
    p_eval = sub.add_parser("evaluate", help="evaluate a model file on a manifest's test split")
    p_eval.add_argument("--model", required=True, type=Path)
    p_eval.add_argument("--data", required=True)
    p_eval.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                        help="all: every volume (a held-out cohort the model never saw)")
    p_eval.add_argument("--seed", type=int, default=None, help="split seed (default: the model's)")
    p_eval.add_argument("--out", type=Path)
    p_eval.add_argument("--device", default="auto")
    p_eval.add_argument("--report-paths", action="store_true", help="name volumes by path, not pseudonymous key")
    p_eval.add_argument("--json", action="store_true", help="print the whole report as JSON instead of a summary")
    p_eval.add_argument("--attach", action="store_true",
                        help="store the evaluation's figures in the model file, so its model card shows them "
                             "(use with data the model never saw)")
    p_abl = sub.add_parser("ablation", help="train every variant on the same split, one combined table")
    p_abl.add_argument("--data", required=True)
    p_abl.add_argument("--out", required=True)
    p_abl.add_argument("--variants", nargs="+", type=variant_name,
                       default=["resnet2d", "mt", "semt", "cnn3d", "resnet3d"])
    p_abl.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (the split stays fixed)")
    p_abl.add_argument("--train-set", choices=["all", "part", "both"], default="all",
                       help="part: resnet2d and mt on VF-labelled volumes only (the paper's Part rows)")
    _add_fit_args(p_abl)
    p_imp = sub.add_parser("import", help="write a manifest for a public dataset (harvard, zenodo-onh)")
    p_imp.add_argument("dataset", choices=["harvard", "zenodo-onh"])
    p_imp.add_argument("root", type=Path)
    p_imp.add_argument("--out", type=Path, required=True, help="manifest CSV to write")
    p_eval.add_argument("--by", help="also report metrics per value of this manifest column (e.g. race)")
    p_rec = sub.add_parser("recalibrate", help="refit a model file's calibration and threshold (and with --vf its "
                                              "VF maps) on labelled volumes it never trained on; weights unchanged")
    p_rec.add_argument("--model", required=True, type=Path)
    p_rec.add_argument("--data", required=True, help="manifest CSV of the calibration cohort")
    p_rec.add_argument("--out", required=True, type=Path, help="the recalibrated model file to write (a new file)")
    p_rec.add_argument("--split", default="all", choices=["train", "val", "test", "all"])
    p_rec.add_argument("--seed", type=int, default=None, help="split seed (default: the model's)")
    p_rec.add_argument("--vf", action="store_true", help="also refit an affine map per VF index (needs measured VF)")
    p_val = sub.add_parser("validate", help="check a manifest and print the split summary")
    p_val.add_argument("--data", required=True)
    p_val.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # numpy's "expected non-negative integer" came as a traceback after the manifest was read (attack run 3 F8)
    seeds = [("--seed", getattr(args, "seed", None)), ("--split-seed", getattr(args, "split_seed", None)),
             *(("--seeds", s) for s in getattr(args, "seeds", None) or [])]
    if bad := next((name for name, value in seeds if value is not None and value < 0), None):
        parser.error(f"{bad} must be 0 or more")
    try:
        if args.command == "fit":
            cfg = _config(args)
            _not_stopped()
            _check_salt()
            _check_progress_json(cfg)
            _check_work_folders(cfg)  # made by fit once the manifest has passed
            fit(cfg)
        elif args.command == "import":
            from .public import import_harvard, import_zenodo, manifest_text
            rows, notes = (import_harvard if args.dataset == "harvard" else import_zenodo)(args.root)
            for note in notes:
                print(f"warning: {note}", file=sys.stderr)
            if not rows:
                return 2
            # before writing: --out naming one of the files imported truncated it (attack run 3 F1)
            _check_out(args.out, *(args.root / r["path"] for r in rows), ours=is_manifest)
            _write_out(args.out, manifest_text(rows, args.out, args.root))
            print(f"wrote {args.out}: {len(rows)} volumes")
        elif args.command == "validate":
            from .manifest import checked_split, manifest_warnings
            records, counts = checked_split(args.data, args.seed)
            print(json.dumps(counts, indent=2))
            for warning in manifest_warnings(records, counts):  # the Retrain dialog's check shows the same (A9-5)
                print(f"warning: {warning}", file=sys.stderr)
        elif args.command == "evaluate":
            from .evaluate_model import attachable_summary, evaluate_model
            from .recipe_summary import report_lines

            if args.out:
                _check_out(args.out, args.model, args.data)
                _check_out(args.out, *_manifest_volumes(args.data), ours=is_evaluation)
            if args.attach and args.split == "train":  # the training patients' figures read "On independent data"
                raise ArgumentError("--attach with --split train: a train split is for training, not independent "
                                    "data; nothing was stored in the model (evaluate on data it never saw)")
            _check_salt()
            report = evaluate_model(args.model, args.data, args.split, args.seed, args.device, by=args.by,
                                    report_paths=args.report_paths, progress=_network_progress)
            text = json.dumps(report, indent=2)
            if args.out:
                _write_out(args.out, text)
            if args.json:
                print(text)
            else:
                synthetic = " (model trained on SYNTHETIC data: engineering figures, not a clinical claim)" \
                    if report.get("synthetic_data") else ""
                n = report.get("image_level", {}).get("n", 0)
                print(f"model {report.get('model')}{synthetic}\n{args.split} split of {args.data}: {n} volumes; "
                      "95% patient-cluster intervals in brackets")
                print("\n".join(report_lines(report)))
                for column, groups in (report.get("by_group") or {}).items():
                    for value, m in groups.items():
                        print(f"- {column} = {value}: AUC {m.get('auc', float('nan')):.3f}, "
                              f"accuracy {m.get('accuracy', float('nan')):.3f} ({m.get('n', 0)} volumes)")
                if args.out:
                    print(f"the whole report: {args.out}")
            if report.get("digest_note"):
                print(f"note: {report['digest_note']}", file=sys.stderr)
            if args.attach and report.get("not_independent"):
                raise ArgumentError(f"--attach: not independent data, nothing stored in {args.model.name}: "
                                    f"{report['not_independent']}")
            if args.attach and (one_class := _one_class(report)):
                raise ArgumentError(f"--attach: its AUC cannot be computed, nothing stored in {args.model.name}: "
                                    f"{one_class}")
            if args.attach:
                from octviewer.model.model_file import attach_evaluation
                attach_evaluation(args.model, attachable_summary(report, args.data, args.split))
                print(f"stored the evaluation in {args.model}: its model card now shows it")
        elif args.command == "recalibrate":
            from .recalibrate import recalibrate

            _check_out(args.out, args.model, args.data, new=True)
            r = recalibrate(args.model, args.data, args.out, args.split, args.seed, vf=args.vf,
                            progress=_network_progress)
            print(f"{r['volumes']} volumes ({r['glaucoma']} glaucoma): "
                  f"ECE {r['ece_before']:.3f} -> {r['ece_after']:.3f} "
                  f"on these volumes, threshold {r['threshold_before']:.3f} -> {r['threshold_after']:.3f}")
            for name, row in r["vf"].items():
                after = f" -> {row['mae_after']:.2f}" if "mae_after" in row else " (kept)"
                print(f"{name} MAE {row['mae_before']:.2f}{after}")
            print(f"wrote {args.out} (unsigned, no attached evaluation): evaluate it on data it never saw, "
                  "e.g. octviewer-train evaluate --split all --attach")
        elif args.command == "ablation":
            from .ablation import run_ablation
            cfg = _config(args)
            _not_stopped()
            _check_salt()
            _check_progress_json(cfg)
            _work_folders(cfg)
            result = run_ablation(cfg, Path(args.out), args.variants, args.seeds, args.train_set)
            print(result["table"])
    except Exception as exc:  # the trainer's errors: one line and an exit code (2, 3, 130); others are bugs
        _end_progress_line()
        if (code := error_exit(exc)) is None:
            raise
        return code
    return 0
