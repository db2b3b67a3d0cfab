"""The batch commands on the pipeline: --resume after a SIGKILL, outputs that cannot be written or
that name an input (own exit code, one line, nothing written), owner-only key files, folders as
inputs of octviewer-measure, and a folder of scans that is never read as one image stack."""

import csv
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from octviewer.pipeline.outputs import EXIT_OUTPUT, EXIT_SCANS_FAILED


@pytest.fixture(scope="module")
def study_scans(tmp_path_factory):
    """24 tiny synthetic cubes the quality gate passes (the network runs on each)."""
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=3, visits=4, preset="tiny", seed=5)
    return study / "scans"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from test_pipeline import tiny_model

    return tiny_model(tmp_path_factory.mktemp("model"))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def _journal_rows(path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except FileNotFoundError:
        return 0


def _kill_after_rows(cmd, journal, rows: int, env) -> None:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while _journal_rows(journal) < rows:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("command", ["predict", "measure"])
def test_resume_after_sigkill_gives_the_same_csv(command, study_scans, model_path, tmp_path):
    module = {"predict": "octviewer.pipeline.predict_cli", "measure": "octviewer.pipeline.measure_cli"}[command]
    extra = ["--model", model_path, "--device", "cpu"] if command == "predict" else []
    args = [str(study_scans), "--no-store", *extra]
    env = {**os.environ, "OCTVIEWER_DATA": str(tmp_path / "data")}
    out = tmp_path / "killed.csv"
    cmd = [sys.executable, "-m", module, *args, "--out", str(out)]
    _kill_after_rows(cmd, tmp_path / "killed.csv.partial", 5, env)
    assert not out.exists()  # a killed run leaves no CSV that looks complete
    before = (tmp_path / "killed.csv.partial").read_text()
    finished = before.count("\n") - 1
    resumed = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode in (0, EXIT_SCANS_FAILED), resumed.stderr
    assert f"resuming: {finished} scans already" in resumed.stderr
    whole = tmp_path / "whole.csv"
    subprocess.run([sys.executable, "-m", module, *args, "--out", str(whole)], env=env, check=False, timeout=600)
    rows, reference = _rows(out), _rows(whole)
    assert len(rows) == 24 and _without_timing(rows) == _without_timing(reference)
    # the finished rows were kept as written (their timing too), not computed again
    kept = list(csv.DictReader(before.splitlines(keepends=True)))
    if not before.endswith("\n"):
        kept = kept[:-1]
    assert rows[: len(kept)] == kept
    assert not (tmp_path / "killed.csv.partial").exists()


def test_resume_refuses_another_commands_csv(study_scans, tmp_path, capsys):
    from octviewer.pipeline.measure_cli import main

    out = tmp_path / "r.csv"
    out.write_text("patient,secret\nP1,x\n")
    assert main([str(study_scans), "--out", str(out), "--resume"]) == EXIT_OUTPUT
    assert "not a results CSV of this command" in capsys.readouterr().err
    assert out.read_text() == "patient,secret\nP1,x\n"


def _commands(model_path):
    from octviewer.pipeline import measure_cli, predict_cli

    return [("predict", predict_cli.main, ["--model", model_path, "--device", "cpu"]),
            ("measure", measure_cli.main, [])]


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
@pytest.mark.parametrize("place", ["folder", "under a file", "read-only"])
def test_unwritable_out_is_one_line_and_its_own_exit_code(which, place, study_scans, model_path, tmp_path, capsys):
    _, main, extra = _commands(model_path)[which]
    if place == "folder":
        out = tmp_path / "results"
        out.mkdir()
    elif place == "under a file":
        (tmp_path / "notes.txt").write_text("x")
        out = tmp_path / "notes.txt" / "r.csv"
    else:  # /proc refuses new files even to root, where a mode of 0555 would not
        out = tmp_path / "ro" / "r.csv"
        (tmp_path / "ro").mkdir()
        os.chmod(tmp_path / "ro", 0o555)
        if os.geteuid() == 0:
            out = __import__("pathlib").Path("/proc/octviewer-test/r.csv")
    scan = sorted(study_scans.rglob("*.dcm"))[0]
    code = main([str(scan), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == EXIT_OUTPUT != EXIT_SCANS_FAILED
    assert "Traceback" not in err and str(out) in err
    assert len([line for line in err.splitlines() if str(out) in line]) == 1


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
@pytest.mark.parametrize("option", ["--out", "--key-file", "--cam-out"])
def test_output_naming_an_input_is_refused_before_anything_is_written(which, option, study_scans, model_path,
                                                                       tmp_path, capsys):
    name, main, extra = _commands(model_path)[which]
    if option == "--cam-out" and name == "measure":
        pytest.skip("octviewer-measure writes no CAM")
    scan = tmp_path / "scan.dcm"
    scan.write_bytes(sorted(study_scans.rglob("*.dcm"))[0].read_bytes())
    before = scan.read_bytes()
    outputs = {"--out": str(tmp_path / "r.csv"), option: str(scan)}
    argv = [str(scan), *[x for kv in outputs.items() for x in kv], *extra]
    assert main(argv) == EXIT_OUTPUT
    assert scan.read_bytes() == before  # the scan is untouched (it was cut to 350 bytes)
    assert "is one of the inputs" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.dcm"]  # nothing written at all
    # named through a folder given as input, or through another spelling of the path: still refused
    assert main([str(tmp_path), "--out", str(tmp_path / "." / "scan.dcm"), *extra]) == EXIT_OUTPUT
    assert scan.read_bytes() == before


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
def test_existing_key_file_is_made_owner_only(which, study_scans, model_path, tmp_path):
    _, main, extra = _commands(model_path)[which]
    keys = tmp_path / "keys.csv"
    keys.write_text("key,path\nold,/scans/old.dcm\n")  # an earlier run's key file (another file is refused)
    os.chmod(keys, 0o666)
    scan = sorted(study_scans.rglob("*.dcm"))[0]
    main([str(scan), "--out", str(tmp_path / "r.csv"), "--key-file", str(keys), *extra])
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert os.path.abspath(scan) in keys.read_text()


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
def test_rows_that_name_the_files_are_owner_only_as_the_key_file_is(which, study_scans, model_path, tmp_path):
    """A13-2: with --no-pseudonymise every row names its scan's file (a clinic's file name carries the patient's
    name), and the CSV was written 0644 under the usual umask while the key file, holding the same paths, is 0600;
    also over an earlier run's CSV, and predict's CAMs, which are named after the files."""
    _, main, extra = _commands(model_path)[which]
    scan = sorted(study_scans.rglob("*.dcm"))[0]
    out = tmp_path / "r.csv"
    old_umask = os.umask(0o022)
    try:
        main([str(scan), "--out", str(out), *extra])  # pseudonymised: the umask decides, as for any output
        assert stat.S_IMODE(out.stat().st_mode) == 0o644 and str(scan) not in out.read_text()
        cams = ["--cam-out", str(tmp_path / "cams")] if which == 0 else []
        main([str(scan), "--out", str(out), "--no-pseudonymise", *cams, *extra])
    finally:
        os.umask(old_umask)
    assert str(scan) in out.read_text() and stat.S_IMODE(out.stat().st_mode) == 0o600
    if which == 0:
        [cam] = (tmp_path / "cams").iterdir()
        assert cam.name == f"{scan.stem}_cam.npy" and stat.S_IMODE(cam.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "cams").stat().st_mode) == 0o700


def test_measure_expands_folders_as_predict_does(study_scans, tmp_path):
    from octviewer.pipeline.measure_cli import main

    out = tmp_path / "r.csv"
    assert main([str(study_scans), "--out", str(out), "--no-pseudonymise"]) in (0, EXIT_SCANS_FAILED)
    rows = _rows(out)
    assert sorted(r["file"] for r in rows) == sorted(str(p) for p in study_scans.rglob("*.dcm"))
    assert all(r["quality"].startswith(("measured", "refused")) for r in rows)  # each one read and judged


def test_folder_of_scans_with_a_multipage_tiff_is_not_a_volume(study_scans, tmp_path):
    import shutil

    import tifffile

    from octviewer import VolumeReadError, load_volume

    folder = tmp_path / "mixed"
    folder.mkdir()
    for scan in sorted(study_scans.rglob("*.dcm"))[:3]:
        shutil.copy(scan, folder / scan.name)
    tifffile.imwrite(folder / "stack.tif", np.zeros((6, 32, 16), np.uint8))  # 6 pages (4 reads as RGBA planes)
    with pytest.raises(VolumeReadError, match="scan file"):
        load_volume(folder)
    alone = tmp_path / "tiff_only"
    alone.mkdir()
    tifffile.imwrite(alone / "stack.tif", np.zeros((6, 32, 16), np.uint8))
    with pytest.raises(VolumeReadError, match="multi-page TIFF"):
        load_volume(alone)


def test_outputs_never_replace_the_model_file_or_the_results_store(study_scans, model_path, tmp_path, capsys):
    """--out naming the model file replaced a 24 MB model by a 1 kB CSV (exit 0); naming the store
    destroyed every remembered result."""
    from octviewer.pipeline import predict_cli
    from octviewer.pipeline.store import default_path

    scan = sorted(study_scans.rglob("*.dcm"))[0]
    model = tmp_path / "model.safetensors"
    model.write_bytes(open(model_path, "rb").read())
    before = model.read_bytes()
    assert predict_cli.main([str(scan), "--out", str(model), "--model", str(model), "--device", "cpu"]) == EXIT_OUTPUT
    assert model.read_bytes() == before
    assert "is the model file" in capsys.readouterr().err
    store = default_path()
    store.parent.mkdir(parents=True, exist_ok=True)
    store.touch()
    assert predict_cli.main([str(scan), "--out", str(store), "--model", str(model), "--device", "cpu"]) == EXIT_OUTPUT
    assert "is the results store" in capsys.readouterr().err


@pytest.mark.parametrize("which", [0, 1], ids=["predict", "measure"])
@pytest.mark.parametrize("option", ["--out", "--key-file", "partial"])
def test_a_fifo_or_device_as_output_is_refused_before_any_work(which, option, study_scans, model_path, tmp_path,
                                                               capsys):
    """A FIFO as --key-file or <out>.partial blocked the command for good after every scan was
    analysed; an existing FIFO or device as --out was replaced by the CSV."""
    _, main, extra = _commands(model_path)[which]
    out = tmp_path / "r.csv"
    fifo = tmp_path / ("r.csv.partial" if option == "partial" else "special")
    os.mkfifo(fifo)
    outputs = ["--out", str(out)] if option == "partial" else ["--out", str(tmp_path / "r.csv")]
    if option == "--out":
        outputs = ["--out", str(fifo)]
    elif option == "--key-file":
        outputs += ["--key-file", str(fifo)]
    scan = sorted(study_scans.rglob("*.dcm"))[0]
    started = time.perf_counter()
    assert main([str(scan), *outputs, *extra]) == EXIT_OUTPUT
    assert time.perf_counter() - started < 20
    assert "device, FIFO or socket" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not out.exists()


def _finished_journal(main, argv, out):
    """A complete run's CSV moved back to ``<out>.partial``: a journal whose every row is finished."""
    assert main(argv) in (0, EXIT_SCANS_FAILED)
    journal = out.with_name(out.name + ".partial")
    out.rename(journal)
    return journal


def test_resume_refuses_rows_of_another_model_or_other_settings(study_scans, model_path, tmp_path, capsys):
    """--resume took the rows of a journal written with another model (or precision, gate,
    segmentation) and passed them on beside this run's rows as one run's."""
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model
    from octviewer.pipeline import measure_cli, predict_cli

    scans = [str(p) for p in sorted(study_scans.rglob("*.dcm"))[:2]]
    out = tmp_path / "r.csv"
    torch.manual_seed(1)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    other = save_model(tmp_path / "other.safetensors", build_network("semt", init="random", reg_channels=8), meta)
    journal = _finished_journal(predict_cli.main, [*scans, "--out", str(out), "--model", str(other),
                                                   "--device", "cpu", "--no-store"], out)
    before = journal.read_text()
    capsys.readouterr()
    argv = [*scans, "--out", str(out), "--model", model_path, "--device", "cpu", "--no-store", "--resume"]
    assert predict_cli.main(argv) == EXIT_OUTPUT
    [line] = [line for line in capsys.readouterr().err.splitlines() if "--resume" in line]
    assert str(journal) in line and "another model_digest" in line
    assert journal.read_text() == before and not out.exists()  # kept for the user to decide
    # the same model with the quality gate off: other settings
    journal.unlink()
    _finished_journal(predict_cli.main, argv[:-1], out)
    assert predict_cli.main([*argv, "--no-quality-gate"]) == EXIT_OUTPUT
    assert "another settings" in capsys.readouterr().err
    # octviewer-measure: rows measured on the file's own segmentation do not resume an "own" run
    journal.unlink()
    _finished_journal(measure_cli.main, [*scans, "--out", str(out), "--no-store"], out)
    assert measure_cli.main([*scans, "--out", str(out), "--no-store", "--segmentation", "own", "--resume"]) \
        == EXIT_OUTPUT
    assert "another settings" in capsys.readouterr().err
    # and the same settings still resume
    assert measure_cli.main([*scans, "--out", str(out), "--no-store", "--resume"]) in (0, EXIT_SCANS_FAILED)
    assert "resuming: 2 scans already" in capsys.readouterr().err and len(_rows(out)) == 2


@pytest.fixture(scope="module")
def finished_rows(study_scans, model_path, tmp_path_factory):
    """The rows of one finished octviewer-predict run on two scans, and the options it ran with:
    each case below damages a copy of them (the run is the same for all, so it runs once)."""
    from octviewer.pipeline import predict_cli

    scans = [str(p) for p in sorted(study_scans.rglob("*.dcm"))[:2]]
    options = ["--model", model_path, "--device", "cpu", "--no-store", "--no-quality-gate"]
    out = tmp_path_factory.mktemp("finished") / "r.csv"
    return scans, options, _rows(_finished_journal(predict_cli.main, [*scans, "--out", str(out), *options], out))


@pytest.mark.parametrize("column, value, why", [
    ("probability", "nan", "not a number"), ("probability", "1.7000", "outside 0 to 1"),
    ("probability", "1_0", "not a number"), ("vfi", "250.00", "outside 0 to 100"),
    ("md", "-inf", "not a number"), ("decision", "flip", "does not follow")])
def test_resume_refuses_impossible_values(column, value, why, finished_rows, tmp_path, capsys):
    """A journal row with a NaN or out-of-range probability or VF index was passed on as a result."""
    from octviewer.pipeline import predict_cli

    scans, options, finished = finished_rows
    out = tmp_path / "r.csv"
    argv = [*scans, "--out", str(out), *options]
    journal = out.with_name(out.name + ".partial")
    rows = [dict(row) for row in finished]
    assert rows[0]["probability"]  # analysed, so the cell is there to damage
    rows[1][column] = value
    if column == "decision":
        rows[1][column] = "normal" if rows[1]["decision"] == "glaucoma" else "glaucoma"
    with open(journal, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert predict_cli.main([*argv, "--resume"]) == EXIT_OUTPUT
    err = capsys.readouterr().err
    assert str(journal) in err and "line 3" in err and column in err and why in err


def test_a_resume_with_other_scans_says_which_rows_it_keeps_and_which_it_drops(study_scans, tmp_path, capsys):
    """A12-11: ``--resume`` with other inputs said "resuming: 1 scans already in rs.csv", then dropped that row (a
    resumed run keeps only rows it would have written): the count was of rows it would not keep."""
    from octviewer.pipeline import measure_cli

    scans = [str(p) for p in sorted(study_scans.rglob("*.dcm"))[:3]]
    out = tmp_path / "m.csv"
    _finished_journal(measure_cli.main, [scans[0], "--out", str(out), "--no-store"], out)
    capsys.readouterr()
    assert measure_cli.main([*scans[1:], "--out", str(out), "--no-store", "--resume"]) in (0, EXIT_SCANS_FAILED)
    err = capsys.readouterr().err
    assert "resuming: 0 scans already in" in err and "1 row(s) of scans not in this run are dropped" in err
    assert len(_rows(out)) == 2
