"""The journal (``<out>.partial``) and temporary CSV (``<out>.tmp``) of the batch commands, as a hostile
file or a careless user leaves them (issue 27, round 2, second attack run): a link there to the model
file or to a scan, and a journal edited to resume with rows this program never writes."""

import csv
import os
import shutil

import pytest

from octviewer.pipeline.outputs import EXIT_OUTPUT, EXIT_SCANS_FAILED


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Two tiny synthetic cubes (no network needed for the refusals; the finished run uses them)."""
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=3)
    return sorted((study / "scans").rglob("*.dcm"))[:2]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from test_pipeline import tiny_model

    return tiny_model(tmp_path_factory.mktemp("model"))


def _commands(model_path):
    from octviewer.pipeline import measure_cli, predict_cli

    return [(predict_cli.main, ["--model", model_path, "--device", "cpu", "--no-store"]),
            (measure_cli.main, ["--no-store"])]


@pytest.mark.parametrize("end", [".partial", ".tmp"])
def test_a_journal_or_temporary_csv_linked_to_the_model_is_refused(end, scans, model_path, tmp_path, capsys):
    """``<out>.partial`` (or ``<out>.tmp``) as a link to the model file: the CSV was written through the
    link, and the model file became a 2 kB CSV."""
    from octviewer.pipeline import predict_cli

    model = tmp_path / "model.safetensors"
    shutil.copy(model_path, model)
    before = model.read_bytes()
    out = tmp_path / "r.csv"
    out.with_name(out.name + end).symlink_to(model)
    argv = [str(scans[0]), "--out", str(out), "--model", str(model), "--device", "cpu", "--no-store"]
    assert predict_cli.main(argv) == EXIT_OUTPUT
    assert "is the model file" in capsys.readouterr().err
    assert model.read_bytes() == before and not out.exists()


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
def test_a_journal_hard_linked_to_a_scan_is_refused(which, scans, model_path, tmp_path, capsys):
    """``<out>.partial`` as a hard link to one of the inputs truncated the scan before it was read."""
    main, extra = _commands(model_path)[which]
    scan = tmp_path / "scan.dcm"
    shutil.copy(scans[0], scan)
    before = scan.read_bytes()
    out = tmp_path / "r.csv"
    os.link(scan, out.with_name(out.name + ".partial"))
    assert main([str(scan), "--out", str(out), *extra]) == EXIT_OUTPUT
    assert "is one of the inputs" in capsys.readouterr().err
    assert scan.read_bytes() == before


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
@pytest.mark.parametrize("what, link", [(".partial", "symbolic"), (".partial", "hard"), (".tmp", "hard"),
                                        ("--key-file", "symbolic"), ("--key-file", "hard")])
def test_nothing_is_written_through_a_link_to_any_other_file(which, what, link, scans, model_path, tmp_path, capsys):
    """``<out>.partial``, ``<out>.tmp`` or the ``--key-file`` as a symbolic or hard link to a file that is
    neither an input, the model nor the results store (a clinic's notes, another key file): the rows or
    the key -> path lines were written through the link and overwrote it (attack run H1)."""
    main, extra = _commands(model_path)[which]
    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    out, key_file = tmp_path / "r.csv", tmp_path / "keys.csv"
    target = key_file if what == "--key-file" else out.with_name(out.name + what)
    if link == "symbolic":
        target.symlink_to(other)
    else:
        os.link(other, target)
    assert main([str(scans[0]), "--out", str(out), "--key-file", str(key_file), *extra]) == EXIT_OUTPUT
    err = capsys.readouterr().err
    assert f"{target} " in err and f"{link} link" in err and "Traceback" not in err
    assert other.read_text() == "keep me\n" and not out.exists()


def test_a_link_made_after_the_check_is_not_written_through(tmp_path):
    """The journal and the key file are opened with O_NOFOLLOW / O_EXCL and checked with fstat, so a link
    put there after check_outputs looked is refused too, not only one that was there before."""
    from octviewer.core.files import FileRefused
    from octviewer.core.pseudonym import write_key_file
    from octviewer.pipeline.outputs import OutputError, ResumableCsv

    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    out = tmp_path / "r.csv"
    os.link(other, out.with_name(out.name + ".partial"))
    with pytest.raises(OutputError, match="hard link"):
        ResumableCsv(out, ["file", "quality"])
    (tmp_path / "keys.csv").symlink_to(other)
    with pytest.raises(FileRefused, match="symbolic link"):
        write_key_file(tmp_path / "keys.csv", {"vol-1": "/x.dcm"})
    assert other.read_text() == "keep me\n"


@pytest.fixture(scope="module")
def finished(scans, model_path, tmp_path_factory):
    """The rows of one finished octviewer-predict run, for the damaged copies below."""
    from octviewer.pipeline import predict_cli

    out = tmp_path_factory.mktemp("finished") / "r.csv"
    options = ["--model", model_path, "--device", "cpu", "--no-store", "--no-quality-gate"]
    assert predict_cli.main([*map(str, scans), "--out", str(out), *options]) in (0, EXIT_SCANS_FAILED)
    with open(out, newline="") as f:
        return options, list(csv.DictReader(f))


def _write_journal(journal, rows, tail: str = "") -> None:
    with open(journal, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if tail:  # appended to the last row
        data = journal.read_bytes()
        journal.write_bytes(data[:-2] + tail.encode() + b"\r\n")


@pytest.mark.parametrize("damage, why", [
    ("extra cell", "another number of cells"), ("a 200 kB cell", "not a results CSV"),
    ("notice", "a formula"), ("laterality", "a formula"), ("no outcome", "neither a result nor an error"),
    ("no file", "names no file")])
def test_resume_refuses_a_journal_this_program_never_writes(damage, why, finished, scans, tmp_path, capsys):
    """A journal row with a cell more than the header ended in a raw ValueError from csv.DictWriter, a
    cell over 128 kB in a raw _csv.Error (both exit 1, "some scans failed"); a cell holding a
    spreadsheet formula (``=cmd|' /C calc'!A0``) was copied into the finished CSV as it stood; a row
    with neither a result nor an error was taken as a finished scan, one naming no file dropped."""
    from octviewer.pipeline import predict_cli

    options, rows = finished
    rows = [dict(row) for row in rows]
    out = tmp_path / "r.csv"
    journal = out.with_name(out.name + ".partial")
    tail = ""
    if damage == "extra cell":
        tail = ",EXTRA"
    elif damage == "a 200 kB cell":
        rows[1]["settings"] = "x" * 200_000
    elif damage == "no outcome":  # attack run M11: a row with neither a result nor an error was taken
        rows[0].update(dict.fromkeys(("probability", "decision", "threshold", "vfi", "md", "psd", "error"), ""))
    elif damage == "no file":  # such a row was dropped without a word
        rows[0]["file"] = ""
    else:
        rows[0][damage] = "=cmd|' /C calc'!A0"
    _write_journal(journal, rows, tail)
    before = journal.read_bytes()
    capsys.readouterr()
    assert predict_cli.main([*map(str, scans), "--out", str(out), *options, "--resume"]) == EXIT_OUTPUT
    err = capsys.readouterr().err
    assert str(journal) in err and why in err and "Traceback" not in err
    assert journal.read_bytes() == before and not out.exists()


def test_resume_takes_its_own_rows_with_a_line_separator_in_a_file_name(finished, scans, model_path, tmp_path,
                                                                         capsys):
    """A file name holding U+2028 (or another character str.splitlines() splits at) is written unquoted;
    reading the journal back by splitlines() cut that row in two, and --resume refused the program's own
    CSV ("made with another model_digest: None")."""
    from octviewer.pipeline import predict_cli

    options, _ = finished
    scan = tmp_path / "P\u2028X.dcm"
    shutil.copy(scans[0], scan)
    out = tmp_path / "r.csv"
    argv = [str(scan), "--out", str(out), "--no-pseudonymise", *options]
    assert predict_cli.main(argv) in (0, EXIT_SCANS_FAILED)
    first = out.read_text()
    capsys.readouterr()
    assert predict_cli.main([*argv, "--resume"]) in (0, EXIT_SCANS_FAILED)
    assert "resuming: 1 scans already" in capsys.readouterr().err
    assert out.read_text() == first


def test_a_cam_is_not_written_through_a_link_in_the_cam_folder(scans, model_path, tmp_path, capsys):
    """np.save followed a ``<stem>_cam.npy`` link in the --cam-out folder and overwrote the file it led to
    (found with attack run H1). A CAM that cannot be written is an output failure (attack run 2 M1):
    one line naming the CAM file and why, exit 3."""
    from octviewer.pipeline import predict_cli

    other = tmp_path / "notes.txt"
    other.write_text("keep me\n")
    cams = tmp_path / "cams"
    cams.mkdir()
    (cams / f"{scans[0].stem}_cam.npy").symlink_to(other)
    out = tmp_path / "r.csv"
    argv = [str(scans[0]), "--out", str(out), "--model", str(model_path), "--device", "cpu", "--no-store",
            "--no-quality-gate", "--no-pseudonymise", "--cam-out", str(cams)]
    assert predict_cli.main(argv) == EXIT_OUTPUT
    assert other.read_text() == "keep me\n"
    err = [line for line in capsys.readouterr().err.splitlines() if "--cam-out" in line]
    assert len(err) == 1 and f"{scans[0].stem}_cam.npy" in err[0] and "symbolic link" in err[0]
    assert sorted(p.name for p in cams.iterdir()) == [f"{scans[0].stem}_cam.npy"]  # the link, nothing beside it


def test_a_cam_write_on_a_full_disk_is_an_output_failure_and_resumable(scans, model_path, tmp_path, capsys,
                                                                          monkeypatch):
    """Attack run 2 M1: on a full disk every scan was counted "failed" although its row held the
    probability, a 0-byte ``<key>_cam.npy`` was left for each, the error named no CAM file, exit 1.
    Now: one line naming the CAM file and the reason, exit 3, no empty or partial CAM, the journal
    kept for --resume, which then writes the missing CAM and the CSV."""
    import errno

    import numpy as np

    from octviewer.pipeline import predict_cli

    real_save, saved = np.save, []

    def full_disk(f, array, *a, **k):
        if saved:  # the first CAM fits, the second fills the disk halfway through
            f.write(b"\x93NUMPY" + bytes(100))
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(1)
        return real_save(f, array, *a, **k)

    cams, out = tmp_path / "cams", tmp_path / "r.csv"
    argv = [*map(str, scans), "--out", str(out), "--model", str(model_path), "--device", "cpu", "--no-store",
            "--no-quality-gate", "--no-pseudonymise", "--cam-out", str(cams)]
    monkeypatch.setattr(np, "save", full_disk)
    assert predict_cli.main(argv) == EXIT_OUTPUT
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "No space left on device" in line]
    assert len(lines) == 1 and f"{scans[1].stem}_cam.npy" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in err and "failed" not in err
    assert sorted(p.name for p in cams.iterdir()) == [f"{scans[0].stem}_cam.npy"]  # no 0-byte or .tmp CAM
    journal = out.with_name(out.name + ".partial")
    with open(journal, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [str(scans[0])] and not rows[0]["error"] and not out.exists()
    monkeypatch.setattr(np, "save", real_save)
    assert predict_cli.main([*argv, "--resume"]) == 0
    assert sorted(p.name for p in cams.iterdir()) == sorted(f"{s.stem}_cam.npy" for s in scans)
    assert np.load(cams / f"{scans[1].stem}_cam.npy").ndim == 2
    with open(out, newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == [str(s) for s in scans]


def test_a_second_run_with_the_same_out_is_refused_while_the_first_writes(scans, tmp_path, capsys):
    """Two runs with one --out (attack run 2 M2): the second emptied the first's live journal and
    both said "wrote"; now the journal is locked and the second is one line, exit 3."""
    from octviewer.pipeline import measure_cli
    from octviewer.pipeline.outputs import ResumableCsv

    out = tmp_path / "r.csv"
    first = ResumableCsv(out, measure_cli._columns())  # measure's own CSV: another one is refused (A6-17)
    first.write({"file": "a.dcm", "quality": "good"})
    assert measure_cli.main(["--no-store", "--out", str(out), str(scans[0])]) == EXIT_OUTPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"another run is writing {out}" in err[0]
    assert "a.dcm" in (tmp_path / "r.csv.partial").read_text() and not out.exists()
    first.finish(["a.dcm"])
    assert "a.dcm" in out.read_text() and not (tmp_path / "r.csv.partial").exists()
    assert measure_cli.main(["--no-store", "--out", str(out), str(scans[0])]) != EXIT_OUTPUT  # the lock is let go


def test_resume_drops_a_row_cut_just_after_a_newline_inside_a_quoted_file_name(scans, tmp_path, capsys):
    """Attack run 2 M11: a journal cut just after the newline inside a quoted file name ended with a
    line end, so the cut row was read as whole and --resume refused the journal (exit 3)."""
    from octviewer.pipeline import measure_cli

    scan = tmp_path / "new\nline.dcm"
    shutil.copy(scans[0], scan)
    out = tmp_path / "r.csv"
    argv = ["--no-store", "--no-pseudonymise", "--out", str(out), str(scans[1]), str(scan)]
    assert measure_cli.main(argv) in (0, EXIT_SCANS_FAILED)
    first = out.read_bytes()
    cut = first.index(b"new\n") + 4
    (tmp_path / "r.csv.partial").write_bytes(first[:cut])
    out.unlink()
    capsys.readouterr()
    assert measure_cli.main([*argv, "--resume"]) in (0, EXIT_SCANS_FAILED)
    assert "resuming: 1 scans already" in capsys.readouterr().err
    assert out.read_bytes() == first


def test_ctrl_c_is_one_line_and_exit_130_and_the_journal_resumes(scans, tmp_path, capsys, monkeypatch):
    """Attack run 2 L1: Ctrl-C printed a raw KeyboardInterrupt traceback."""
    from octviewer.pipeline import measure_cli

    measured, calls = measure_cli._measured, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return measured(*args)

    monkeypatch.setattr(measure_cli, "_measured", interrupted)
    out = tmp_path / "r.csv"
    argv = ["--no-store", "--no-pseudonymise", "--out", str(out), *map(str, scans)]
    assert measure_cli.main(argv) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "octviewer-measure: stopped; run again with --resume to continue"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert str(scans[0]) in (tmp_path / "r.csv.partial").read_text() and not out.exists()
    assert measure_cli.main([*argv, "--resume"]) in (0, EXIT_SCANS_FAILED)
    assert "resuming: 1 scans already" in capsys.readouterr().err and len(calls) == 3


def test_sigterm_ends_a_batch_as_ctrl_c_does(scans, tmp_path, capsys, monkeypatch):
    """A scheduler's time limit (SIGTERM) killed octviewer-measure/-predict without a word, exit 143; it now
    ends as Ctrl-C does: one line, exit 130, the journal kept for --resume (attack run 9, A9-13)."""
    import signal

    from octviewer.pipeline import measure_cli

    measured, calls = measure_cli._measured, []

    def terminated(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return measured(*args)

    monkeypatch.setattr(measure_cli, "_measured", terminated)
    out = tmp_path / "r.csv"
    argv = ["--no-store", "--no-pseudonymise", "--out", str(out), *map(str, scans)]
    before = signal.getsignal(signal.SIGTERM)
    assert measure_cli.main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("stopped; run again with --resume to continue")
    assert str(scans[0]) in (tmp_path / "r.csv.partial").read_text() and not out.exists()
    assert signal.getsignal(signal.SIGTERM) is before  # the process's own handler is given back
