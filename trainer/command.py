"""What the trainer's commands share around their work: the --out checks and writes, and how an
error ends a command (one line, an exit code). ``octviewer-train`` and ``python -m trainer.label_scarce``
both use it; it imports no torch, so a label-scarce ``prepare`` or ``summary`` starts in a moment.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path


class OutputPathError(ValueError):
    """An --out the command may not write; exit code 3, as for the batch commands."""


class ArgumentError(ValueError):
    """Options the input cannot satisfy (a split asking for more patients than the cohort has); exit code 2."""


#: Exit code per error class, by the class's module and name: the classes of the model and checkpoint
#: modules would import torch (ten seconds) only to be compared with. An error is matched by the first
#: class of its MRO listed (ModelWriteError before its base ModelFileError: a full disk is no bad model).
EXIT_CODES = {
    "trainer.command.OutputPathError": 3, "octviewer.model.meta.ModelWriteError": 3,
    "trainer.command.ArgumentError": 2, "trainer.manifest.ManifestError": 2,
    "octviewer.model.networks.InitError": 2, "trainer.config.RunMismatch": 2,
    "trainer.checkpoint.CheckpointError": 2, "octviewer.io.errors.VolumeReadError": 2,
    "trainer.config.ConfigFileError": 2, "octviewer.model.meta.ModelFileError": 2,
    "trainer.train.StartModelError": 2, "trainer.stop.Stopped": 130,
    "octviewer.core.pseudonym.SaltError": 3,
}


def error_exit(exc: BaseException) -> int | None:
    """Print one of the trainer's errors as the command ends it and return its exit code (2 bad input,
    3 bad output, 130 stopped); None for any other exception, which the caller re-raises."""
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(f"{cls.__module__}.{cls.__qualname__}")
        if code == 130:
            print(str(exc) or "stopped", file=sys.stderr)
            return code
        if code is not None:
            print(f"error: {exc}", file=sys.stderr)
            return code
    return None


def check_out(out: Path, *inputs, new: bool = False, option: str = "--out", ours=None) -> None:
    """Before any work: --out is no input of the command (evaluate wrote its JSON over the model and
    the manifest), no link, FIFO or folder, and its folder exists (attack run 2). ``ours(path)``: an
    existing --out is replaced only when it is the command's own kind of file (a manifest for import,
    an evaluation report for evaluate): `import --out STUDY/vf.csv` replaced a study's VF table with a
    manifest (review H36, item 2)."""
    from octviewer.core.files import FileRefused, check_writable
    from octviewer.pipeline.outputs import protected_as

    out = Path(out)
    if what := protected_as(out):  # the pseudonym salt, the signing key, the results store (attack run 3 F13, F14)
        raise OutputPathError(f"{option} {out.name}: is {what}; refusing to overwrite it")
    for given in inputs:
        if Path(given).exists() and out.exists() and os.path.samefile(out, given):
            raise OutputPathError(f"{option} {out.name}: names an input of the command; give another file")
        if Path(given).is_dir() and out.parent.is_dir() and within(out.parent, Path(given)):
            raise OutputPathError(f"{option} {out.name}: is inside a volume folder the command reads; "
                                  "give another place")
    if not out.parent.is_dir():
        what = "is a file, not a folder" if out.parent.exists() else "does not exist"
        raise OutputPathError(f"{option} {out.name}: the folder {out.parent.name or '.'} {what}")
    if new and (out.exists() or out.is_symlink()):
        raise OutputPathError(f"{option} {out.name}: exists; give the name of a new file (nothing is overwritten)")
    if ours is not None and out.is_file() and not out.is_symlink() and out.stat().st_size and not ours(out):
        raise OutputPathError(f"{option} {out.name}: exists and is not a file this command writes; give the name of "
                              "a new file (nothing is overwritten)")
    try:
        check_writable(os.lstat(out))
    except FileNotFoundError:
        pass
    except FileRefused as exc:
        raise OutputPathError(f"{option} {out.name}: {exc}") from None


#: What octviewer-train writes in a run folder (fit) and in an ablation's folder (its runs, one folder each).
RUN_ENTRIES = re.compile(r"config\.json|model\.safetensors|report\.(json|md)|reliability\.png|surrogates\.csv"
                         r"|stage\w*|cache|ranks|ablation\.(json|md)|\w+-(all|part)-seed\d+")


#: What a fit refused before training leaves (its recorded config, decoded scans): nothing to lose, so the
#: folder takes a new start without --resume; after a fix to the data, --resume would refuse the changed data.
NOTHING_TRAINED = {"config.json", "cache"}


def check_run_folder(out: Path, resume: bool, option: str = "--out", also=()) -> None:
    """Before any work, the run folder of fit or ablation (``label_scarce train``'s per-seed folders too): new or
    empty, or, with --resume only, a folder of this command's runs (its own entries, a run's config.json among
    them). A clinic's study folder took the run files and the decoded scans' cache, and a second fit without
    --resume replaced a finished run's model.safetensors, perhaps the one in use (attack run 8, A8-10). ``also``:
    the --progress-json file, which may lie in the folder. Entries are counted, never named (a scan's name may
    be a patient's)."""
    out = Path(out)
    try:
        names = os.listdir(out)
    except (FileNotFoundError, NotADirectoryError):
        return  # made later, or refused in words as a file, a FIFO ... (cli._run_folder)
    except OSError as exc:
        raise OutputPathError(f"{option} {out}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    mine = {Path(p).name for p in also if Path(p).parent.resolve() == out.resolve()}
    others = [n for n in names if not RUN_ENTRIES.fullmatch(n) and n not in mine]
    runs = [out / "config.json", *(out / n / "config.json" for n in names if n.endswith(tuple("0123456789")))]
    if names and (others or not any(is_run_config(p) for p in runs)):
        raise OutputPathError(f"{option} {out}: holds {len(others) or len(names)} file(s) or folder(s) "
                              "octviewer-train did not write; give a new or empty folder (nothing was written)")
    if names and not resume and not set(names) - mine <= NOTHING_TRAINED:
        raise OutputPathError(f"{option} {out}: holds an earlier run; --resume continues it, or give a new or empty "
                              "folder (nothing is overwritten)")


def is_run_config(path: Path) -> bool:
    """A run's config.json (``trainer.config.check_and_record``): a JSON object with its config and identity."""
    from octviewer.core.files import FileRefused, read_small_file

    try:
        config = json.loads(read_small_file(path, 1 << 20))
    except (FileRefused, OSError, ValueError):
        return False
    return isinstance(config, dict) and "config" in config and "identity" in config


def within(folder: Path, top: Path) -> bool:
    """``folder`` is ``top`` or below it (resolved: links and ``..`` spellings count)."""
    folder, top = folder.resolve(), top.resolve()
    return folder == top or top in folder.parents


def write_out(out: Path, text: str, option: str = "--out") -> None:
    """Write ``text`` to ``out``, owner-only, never through a link or into a FIFO (OutputPathError)."""
    from octviewer.core.files import FileRefused, open_for_writing

    out = Path(out)
    try:
        fd = open_for_writing(out, 0o600)
        os.fchmod(fd, 0o600)  # an existing report kept its 0644 through open(): owner-only before any byte (F16)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except FileRefused as exc:
        raise OutputPathError(f"{option} {out.name}: {exc}") from None
    except OSError as exc:
        raise OutputPathError(f"{option} {out.name}: cannot be written ({exc.strerror or type(exc).__name__})") \
            from None


def is_manifest(path: Path) -> bool:
    """A training manifest (``octviewer-train import`` writes them; its first columns are path and
    patient_id): what an import may replace."""
    from octviewer.core.files import FileRefused, csv_header

    try:
        header = csv_header(path)
    except (FileRefused, OSError):
        return False
    return header is None or header[:2] == ["path", "patient_id"]


def is_evaluation(path: Path) -> bool:
    """An evaluation report (``octviewer-train evaluate --out``): a JSON object with its model and test
    volumes. Read up to 64 MiB (a report lists every test volume)."""
    import json

    from octviewer.io import VolumeReadError
    from octviewer.io.limits import open_regular

    try:
        with open_regular(path) as f:
            report = json.loads(f.read(64 * 1024 * 1024))
    except (VolumeReadError, OSError, ValueError):
        return False
    return isinstance(report, dict) and "model" in report and "test_volumes" in report
