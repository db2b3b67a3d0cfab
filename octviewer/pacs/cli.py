"""``octviewer-pacs``: the archive from the command line: configure, echo, find, retrieve, screen, send, retry.

``screen`` is the batch path: find a patient's OCT series, retrieve them into the local folder and
run ``octviewer-predict`` on them (same CSV, same pseudonymous keys). ``send`` analyses one scan and
sends its structured report (and a PDF report, when given) to the archive; a send that fails stays
in the outbox for ``retry``. Patient identifiers are printed only where the user asks for them
(``find --show-patient``), never logged.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from ..core.person import names_differ
from ..core.stop import stoppable
from ..core.text import one_line, printable_stderr
from .config import PacsConfigError, PacsSettings, load_settings, save_settings, saved_values, settings_path
from .net import (
    MODALITIES,
    PacsError,
    PacsOtherPatient,
    PacsQueryError,
    check_query,
    echo,
    find_series,
    find_studies,
    is_uid,
    one_patient,
    retrieve,
    two_ways_words,
)
from .outbox import Outbox, OutboxError
from .sr import SrError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="octviewer-pacs", description=(
        "Query and retrieve OCT and perimetry from a DICOM archive, screen them, and send results back "
        "(research use only, not a medical device)."), epilog=(
        "exit status: 0 done; 1 the archive could not be reached or refused (a send stays in the outbox for "
        "retry); 2 bad settings, arguments, scan, model or --pdf; screen: octviewer-predict's codes"))
    p.add_argument("--settings", type=Path, default=None, help=f"settings file (default: {settings_path()})")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("configure", help="save the archive's and this workstation's settings (file mode 0600)")
    for flag, dest, kind in (("--archive-ae", "archive_ae", str), ("--host", "archive_host", str),
                             ("--port", "archive_port", str), ("--local-ae", "local_ae", str),
                             ("--local-port", "local_port", str), ("--ca", "tls_ca_file", str),
                             ("--cert", "tls_cert_file", str), ("--key", "tls_key_file", str),
                             ("--timeout", "timeout_s", float)):
        c.add_argument(flag, dest=dest, type=kind, default=None)  # ports as text: PacsSettings reads ASCII digits only
    c.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None)
    c.add_argument("--retrieve", choices=["get", "move"], default=None, help="C-GET (default) or C-MOVE")

    sub.add_parser("echo", help="test the connection (C-ECHO)")

    def query_options(q):
        q.add_argument("--patient-id", default="", help="patient ID; find: * and ? as wildcards, screen: the "
                       "ID itself")
        q.add_argument("--name", default="", help="patient name, DICOM style (FAMILY^GIVEN); * and ? as wildcards")
        q.add_argument("--from", dest="date_from", type=_date, default=None, help="first study date, YYYY-MM-DD")
        q.add_argument("--to", dest="date_to", type=_date, default=None, help="last study date, YYYY-MM-DD")

    f = sub.add_parser("find", help="list studies (and their series)")
    query_options(f)
    f.add_argument("--modality", action="append", default=None, help="OPT, OPV (repeat; default both)")
    f.add_argument("--series", action="store_true", help="list each study's series too")
    f.add_argument("--show-patient", action="store_true", help="print patient IDs and names (off by default)")

    r = sub.add_parser("retrieve", help="retrieve a series (or a whole study) into the local folder")
    r.add_argument("study_uid")
    r.add_argument("series_uid", nargs="?", default=None)
    r.add_argument("--patient-id", default="", help="keep only this patient's instances (default: the patient the "
                   "archive files the study under; another patient's are refused)")

    s = sub.add_parser("screen", help="retrieve a patient's OCT series and screen them with octviewer-predict")
    query_options(s)
    s.add_argument("--issuer", default="", help="the IssuerOfPatientID of the patient ID, where the archive holds "
                   "several hospitals' IDs (one ID, two people)")
    s.add_argument("--out", type=Path, required=True, help="results CSV")
    s.add_argument("predict_args", nargs=argparse.REMAINDER,
                   help="after --: more octviewer-predict options (--model, --key-file, ...)")

    d = sub.add_parser("send", help="analyse a DICOM scan and send its structured report (and PDF) to the archive")
    d.add_argument("scan", type=Path, help="the scan's DICOM file (the report is filed in its study)")
    d.add_argument("--model", type=Path, default=None, help="model file (default: the bundled demo model)")
    d.add_argument("--pdf", type=Path, default=None, help="a PDF report of the scan to send beside it")
    d.add_argument("--device", default="auto")

    t = sub.add_parser("retry", help="send the results waiting in the outbox for this archive")
    t.add_argument("--unaddressed", action="store_true", help="also send, to this archive, the results an earlier "
                   "version queued without recording their archive")
    o = sub.add_parser("outbox", help="list the results waiting in the outbox, with their archive")
    o.add_argument("--drop", action="append", default=[], metavar="UID",
                   help="remove this queued object (its UID as listed) unsent; repeat for more")
    return p


def _settings(args) -> PacsSettings:
    return load_settings(args.settings)


def _configure(args) -> int:
    """The saved values with the options' changes, checked as a whole: a saved value that no longer
    holds (a CA file since removed) is repaired by the option that changes it; where none does, the
    message names the file that holds it (attack run 11, A11-12)."""
    file = args.settings or settings_path()
    saved = saved_values(file)
    changes = {k: getattr(args, k) for k in ("archive_ae", "archive_host", "archive_port", "local_ae", "local_port",
                                             "tls_ca_file", "tls_cert_file", "tls_key_file", "timeout_s", "tls",
                                             "retrieve") if getattr(args, k) is not None}
    try:
        settings = PacsSettings(**{**saved, **changes})
    except PacsConfigError as exc:
        try:
            PacsSettings(**saved)
        except PacsConfigError as stale:  # a value the file holds, not the options: say where, and how to repair
            if str(stale) == str(exc):
                raise PacsConfigError(f"{exc} (saved in {file}: give configure the option that changes it, or "
                                      "remove that file to start again from the defaults)") from None
        raise
    path = save_settings(settings, args.settings)
    print(f"saved to {path}: {load_settings(path).describe()}")
    return EXIT_OK


def _find(args) -> int:
    settings = _settings(args)
    modalities = tuple(args.modality or MODALITIES)
    hits = find_studies(settings, args.patient_id, args.name, args.date_from, args.date_to, modalities)
    for hit in hits:
        who = f"{hit.patient_id}  {hit.patient_name}  " if args.show_patient else ""
        # the archive's text on stdout, as on stderr: ESC/BEL/RLO in a description retitled, cleared or
        # reversed the user's terminal (attack run 5, F16)
        print(one_line(f"{who}{hit.study_date or 'no date'}  {'/'.join(hit.modalities) or '?'}  "
                       f"{hit.description or '-'}  study {hit.study_uid}"))
        if args.series:
            for series in find_series(settings, hit.study_uid, modalities):
                print(one_line(f"    {series.modality} {series.laterality or '--'} #{series.series_number or '?'} "
                               f"({series.n_instances or '?'} instances) {series.description or '-'}  "
                               f"series {series.series_uid}"))
    print(f"{len(hits)} stud{'y' if len(hits) == 1 else 'ies'} found")
    return EXIT_OK


def _progress(done, total):
    print(f"\r  {done}/{total or '?'} instances", end="", file=sys.stderr, flush=True)


def _retrieve(args) -> int:
    for uid in (args.study_uid, args.series_uid):
        if uid is not None and not is_uid(uid):  # the user's typing, before the archive is asked
            raise PacsQueryError(f"not a DICOM UID: {one_line(uid[:70])!r}")
    got = retrieve(_settings(args), args.study_uid, args.series_uid, progress=_progress,
                   patient_id=args.patient_id)
    print(file=sys.stderr)
    print(f"{got.message}: {got.folder}")
    return EXIT_OK if not got.failed else EXIT_FAILED


def _screen_problem(args, extra: list[str]) -> tuple[int, str] | None:
    """(exit code, line) when --out, the options after -- or the model cannot be used, looked at before
    the archive is asked for anything: each was found only after the patient's series, GBs of cubes,
    had been retrieved (attack run 3 F26). The exit codes are octviewer-predict's (2 model, 3 output)."""
    from ..core.files import FileRefused, open_for_writing
    from ..model import ModelFileError, load_model
    from ..pipeline.outputs import EXIT_MODEL, EXIT_OUTPUT, OutputError, check_outputs
    from ..pipeline.predict_cli import COLUMNS, RETIRED_COLUMNS
    from ..pipeline.predict_cli import parser as predict_parser
    from ..resources import DEMO_MODEL

    options = predict_parser().parse_args(["--out", str(args.out), *extra])  # a wrong option: argparse, exit 2
    try:
        check_outputs([], options.out, folders={"--cam-out": options.cam_out}, files={"--key-file": options.key_file},
                      model=options.model or DEMO_MODEL, columns=COLUMNS, retired=RETIRED_COLUMNS)
    except OutputError as exc:
        return EXIT_OUTPUT, f"octviewer-pacs screen: {exc}"
    journal = options.out.with_name(options.out.name + ".partial")
    if options.out.parent.is_dir() and not os.path.lexists(journal):  # /proc passes every look: try the write
        try:
            os.close(open_for_writing(journal))
            journal.unlink()
        except (FileRefused, OSError) as exc:
            reason = str(exc) if isinstance(exc, FileRefused) else exc.strerror or type(exc).__name__
            return EXIT_OUTPUT, f"octviewer-pacs screen: --out {options.out} cannot be written: {reason}"
    try:
        load_model(options.model or DEMO_MODEL)
    except ModelFileError as exc:
        return EXIT_MODEL, f"error: {exc}"
    return None


def _screen(args) -> int:
    from ..pipeline.predict_cli import main as predict_main

    settings = _settings(args)
    # before the model and outputs; one patient's screen takes no wildcard ID (A10-2)
    check_query(args.patient_id, args.name, args.date_from, args.date_to, exact_id=True)
    extra = [a for a in args.predict_args if a != "--"]
    if problem := _screen_problem(args, extra):
        print(problem[1], file=sys.stderr)
        return problem[0]
    folders = []
    studies = find_studies(settings, args.patient_id, args.name, args.date_from, args.date_to, ("OPT",),
                           issuer=args.issuer)
    person = one_patient(studies)  # one person, before anything is retrieved (A12-7, A14-19)
    # one person's name written two ways (or a second person of one ID, issuer and birth date): kept, said (A16-1)
    two_ways = names_differ(h.patient for h in studies)
    if two_ways:
        print(f"note: {two_ways_words('the studies of this patient ID')}", file=sys.stderr)
    seen: tuple = ()  # the people the kept instances name, each new instance compared with all (A18-7)
    # what the instances under this ID naming another person gave otherwise, where the person asked for (the
    # archive's answer, --issuer) does not tell which is the patient (A19-12); a mis-filed series of someone the
    # answer does tell apart is refused alone and the patient's screened (A22-16)
    differed = []
    for study in studies:
        for series in find_series(settings, study.study_uid, ("OPT",)):
            try:  # only the screened patient's instances are kept (A14-2): a shared study UID's other patient
                got = retrieve(settings, study.study_uid, series.series_uid, progress=_progress,
                               patient_id=person, seen=seen)
            except PacsOtherPatient as exc:  # a series of another patient: said, not screened, the rest go on
                print(f"\nseries {series.series_uid}: {exc}", file=sys.stderr)
                differed += [exc.differed or "another issuer of the ID or birth date"] if exc.ambiguous else []
                continue
            print(file=sys.stderr)
            # refused, not screened (A12-2, A14-2), or a name written otherwise, kept (A16-1): said
            if got.foreign or got.other_patient or got.other_name:
                print(got.message, file=sys.stderr)
            two_ways = two_ways or bool(got.other_name)
            differed += [got.differed or "another issuer of the ID or birth date"] if got.ambiguous else []
            seen = got.persons
            folders.append(str(got.folder))
    if differed:
        return _two_people(folders, differed)
    if not folders:
        print("no OCT (OPT) series found for that search", file=sys.stderr)
        return EXIT_FAILED
    # unwrapped: a stop is this command's (main's line), not "octviewer-predict: stopped" (A10-16)
    code = predict_main.__wrapped__([*folders, "--out", str(args.out), *extra])
    if two_ways and args.out.is_file():
        _notice_in_csv(args.out, two_ways_words("the screened patient's studies or instances"))
    return code


def _two_people(folders: list[str], differed: list[str]) -> int:
    """Refuse the whole screen where the instances under the patient's ID name two people. Where the archive's
    answers are readable, ``one_patient`` refuses such an ID before anything is retrieved; an archive that answers
    both names as "^" (a Latin-1 archive and two names in kanji) left the instances' own headers to tell them
    apart, and the screen analysed whichever person was retrieved first (attack run 19, A19-12). Which of them is
    the patient cannot be told there either: the series this screen retrieved are removed, nothing is screened."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"octviewer-pacs screen: the instances of this patient ID name different people "
          f"({'; '.join(dict.fromkeys(differed))}: an archive holding several hospitals' IDs, or a mis-filed "
          "study); screen takes one person, so nothing was screened and nothing retrieved is kept: give --issuer "
          "(where their studies carry one) or --from/--to (where their study dates differ) to pick one, or check "
          "the archive", file=sys.stderr)
    return EXIT_FAILED


def _notice_in_csv(out: Path, sentence: str) -> None:
    """``sentence`` added to the ``notice`` cell of every row of the screen's CSV, which names no patient: a
    screen of studies writing the name two ways said it on the terminal only, and the CSV read later looked like
    any other (attack run 16, A16-1). Rewritten in place (a temporary file, then a rename, the file's mode kept);
    a CSV that cannot be rewritten is said, its rows stay as octviewer-predict wrote them."""
    import csv
    import io

    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(out, encoding="utf-8", errors="surrogateescape", newline="") as f:
            text = f.read()
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows, columns = list(reader), reader.fieldnames or []
        if "notice" not in columns:
            return
        for row in rows:
            if sentence not in row["notice"]:
                row["notice"] = "; ".join(filter(None, [row["notice"], sentence]))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, os.stat(out).st_mode & 0o777)
        with open(fd, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, out)
    except (OSError, csv.Error) as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        print(f"octviewer-pacs screen: the note could not be added to the notice column of {out} "
              f"({getattr(exc, 'strerror', None) or type(exc).__name__}); it is said above only", file=sys.stderr)


def _send(args) -> int:
    settings = _settings(args)
    pdf = _pdf(args.pdf, args.scan) if args.pdf else None  # before the network is loaded and the scan analysed

    from .results import (
        model_identity,
        model_trust,
        pdf_model_problem,
        pdf_settings_problem,
        results_datasets,
        source_dataset,
    )

    # a scan that is no file, a bomb or a header the report cannot carry is refused before the network
    # stack loads (seconds and most of a GB), not only before the analysis (A11-5)
    source_dataset(args.scan)

    from ..io import load_volume
    from ..model import Predictor
    from ..pipeline import ScanOptions, analyse_scan
    from ..pipeline.store import ResultsStore
    from ..resources import DEMO_MODEL

    predictor = Predictor(str(args.model or DEMO_MODEL), device=args.device)
    options = ScanOptions()  # the quality gate on, the file's own lines where it has them
    if pdf is not None and (problem := pdf_model_problem(pdf, predictor.model)  # before the analysis (A12-13)
                            or pdf_settings_problem(pdf, options)):  # and its settings (A13-11)
        raise SrError(f"--pdf {args.pdf}: {problem}")
    if warning := predictor.model.trust.warning:  # as octviewer-predict says it; the SR carries it too (A12-10)
        print(f"note: {warning}", file=sys.stderr)
    # screened before: not again
    result = analyse_scan(load_volume(args.scan), predictor, options, store=ResultsStore())
    datasets = results_datasets(args.scan, result, *model_identity(predictor.model), pdf=pdf,
                                trust=model_trust(predictor.model))
    outcome = Outbox().send(settings, datasets)
    print(outcome.message)
    return EXIT_OK if not outcome.error else EXIT_FAILED


#: An encapsulated PDF report is a few hundred kB; more is no report of ours.
MAX_PDF_BYTES = 64 << 20


def _pdf(path: Path, scan: Path) -> bytes:
    """The --pdf file's bytes, read as settings are (``core.files``): a FIFO blocked ``send`` for
    good after the analysis, and a link to /dev/zero filled memory. Only the identified report
    octviewer made of ``scan`` (``results.pdf_problem``)."""
    from ..core.files import FileRefused, read_small_file
    from .results import pdf_problem

    try:
        data = read_small_file(path, MAX_PDF_BYTES)
    except FileRefused as exc:
        raise SrError(f"--pdf {path}: {exc}") from None
    if not data.startswith(b"%PDF"):  # checked here too, so a wrong file is named before the analysis (A8-16)
        raise SrError(f"--pdf {path}: not a PDF file (it does not begin with %PDF)")
    if problem := pdf_problem(data, scan):
        raise SrError(f"--pdf {path}: {problem}")
    return data


def _retry(args) -> int:
    outcome = Outbox().flush(_settings(args), unaddressed=args.unaddressed)
    print(outcome.message)
    return EXIT_OK if not outcome.error else EXIT_FAILED


def _outbox(args) -> int:
    box = Outbox()
    if args.drop:
        dropped = box.drop(args.drop)
        print(f"{dropped} object(s) removed from the outbox unsent"
              + (f"; {len(args.drop) - dropped} UID(s) given are not in it" if dropped < len(args.drop) else ""))
    pending = box.pending()
    for item in pending:
        where = f"for {item.destination}" if item.destination else "archive not recorded"
        print(one_line(f"{item.queued}  {item.kind}  {where}  {item.attempts} attempt(s)  "
                       f"{item.last_error or '-'}  {item.sop_instance_uid}"))
    print(f"{len(pending)} object(s) waiting")
    return EXIT_OK


COMMANDS = {"configure": _configure, "echo": None, "find": _find, "retrieve": _retrieve, "screen": _screen,
            "send": _send, "retry": _retry, "outbox": _outbox}


@printable_stderr
def main(argv: list[str] | None = None) -> int:
    """Ctrl-C and SIGTERM at any moment (the retrieve, the model's loading, the screen) are one line and
    exit 130: they were a KeyboardInterrupt traceback or a silent kill, exit 143 (attack run 10, A10-16).
    A stopped retrieve's series stay in the data folder; the screen's results CSV takes --resume."""
    args = parser().parse_args(argv)
    hint = (f"run it again to continue (after --, add --resume where {args.out} was begun)"
            if args.command == "screen" else "run it again")
    return stoppable(f"octviewer-pacs {args.command}", hint)(_run)(args)


def _run(args) -> int:
    try:
        if args.command == "echo":
            settings = _settings(args)
            echo(settings)
            print(f"the archive answered: {settings.describe()}")
            return EXIT_OK
        return COMMANDS[args.command](args)
    except OutboxError as exc:  # the outbox file, not the settings (attack run 4, F6)
        print(f"PACS: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PacsConfigError as exc:
        print(f"PACS settings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PacsQueryError as exc:  # the search asked for, not the archive
        print(f"PACS: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PacsError as exc:  # the archive or the network: try again later
        print(f"PACS: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SrError as exc:  # the scan, its header or --pdf: bad input, as for the batch commands (A8-16)
        print(f"PACS: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a scan or model that cannot be read: its reader's message, no traceback
        print(f"octviewer-pacs {args.command}: {_reader_message(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _reader_message(exc: Exception) -> str:
    """A reader's own message, which names the file, as it is; Python's class name only in front of
    anything else: "VolumeReadError: bomb.dcm: ..." showed the user a class name (attack run 11, A11-6)."""
    readers = {"octviewer.io.errors": "VolumeReadError", "octviewer.model.meta": "ModelFileError",
               "octviewer.pipeline.store": "StoreError"}
    # looked up where loaded (an error of a class means its module is): asking must not load torch
    known = tuple(getattr(sys.modules[m], name) for m, name in readers.items() if m in sys.modules)
    return str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
