"""Attack run 6 (session 14), outputs that destroyed data and the results store on a full disk: each
test fails on the code before its fix (A6-3, A6-7, A6-10, A6-11, A6-14, A6-17 in /tmp/attack6/LOG.md)."""

import os
import resource
import subprocess
import sys

import pytest

from octviewer.pipeline.store import ResultsStore, StoreError

# ---------------------------------------------------------------- A6-7: a full disk is not damage


def test_a_good_store_on_a_full_disk_is_left_where_it_is(tmp_path):
    """Under a file-size limit (EFBIG, as ENOSPC on a full disk) a good store was called "damaged
    (disk I/O error)" and moved aside: every remembered result gone from its place."""
    path = tmp_path / "results.sqlite"
    store = ResultsStore(path)
    store.put_study_headers("/study", {f"{i}.dcm": {"pad": "x" * 2000} for i in range(40)})
    store.close()
    before = path.read_bytes()
    limit = 8192
    code = ("import sys\nfrom octviewer.pipeline.store import ResultsStore, StoreError\n"
            f"try:\n    ResultsStore({str(path)!r})\nexcept StoreError as exc:\n    print(exc)\n    sys.exit(3)\n")
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard)))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "cannot be written" in run.stdout and "disk full?" in run.stdout and str(path) in run.stdout
    assert "damaged" not in run.stdout and "moved" not in run.stdout
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == []
    assert path.read_bytes() == before
    assert len(ResultsStore(path).study_headers("/study")) == 40  # room again: every result is still there


# ---------------------------------------------------------------- A6-3: a journal that is a link is named


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_journal_that_is_a_link_is_named_and_nothing_is_moved(tmp_path, suffix):
    """A -wal/-shm companion that is a (dangling) link: the fresh store was moved aside as "damaged
    (unable to open database file)" on every run, and the link was never named."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = tmp_path / "data" / "results.sqlite"
    path.parent.mkdir()
    os.symlink(elsewhere / "stolen", str(path) + suffix)
    for _ in range(2):
        with pytest.raises(StoreError, match=f"results.sqlite{suffix} is a symbolic link"):
            ResultsStore(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name + suffix]
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_as_the_store_is_not_moved_aside(tmp_path):
    """A FIFO as the store was moved aside as "damaged (disk I/O error)"."""
    path = tmp_path / "results.sqlite"
    os.mkfifo(path)
    with pytest.raises(StoreError, match="not a regular file"):
        ResultsStore(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]


# ---------------------------------------------------------------- A6-10, A6-11: rewriting a model on a full disk

DEMO_MODEL = os.path.join(os.path.dirname(__file__), "..", "resources", "models", "demo_semt.safetensors")


def _limited(code: str, limit: int) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python whose files may not grow past ``limit`` bytes (EFBIG, as a full disk)."""
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard)))


def test_signing_a_model_on_a_full_disk_names_it_and_exits_3(tmp_path):
    """``sign`` said "error: [Errno 27] File too large": Python's words, no file named, exit 2."""
    import shutil

    from octviewer.model.sign import main as sign_main

    model = tmp_path / "model.safetensors"
    shutil.copyfile(DEMO_MODEL, model)
    assert sign_main(["new-key", str(tmp_path / "k.pem")]) == 0
    before = model.read_bytes()
    run = _limited(f"from octviewer.model.sign import main\nraise SystemExit(main(['sign', {str(model)!r}, "
                   f"'--key', {str(tmp_path / 'k.pem')!r}]))\n", len(before) - 4096)
    assert run.returncode == 3, run.stdout + run.stderr
    assert run.stdout.strip() == "error: model.safetensors: cannot be written (File too large); it is unchanged"
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem", "k.pub", "model.safetensors"]


def test_attaching_an_evaluation_on_a_full_disk_is_a_model_write_error(tmp_path):
    """``attach_evaluation`` raised a bare OSError (a traceback after the whole evaluation)."""
    import shutil

    model = tmp_path / "model.safetensors"
    shutil.copyfile(DEMO_MODEL, model)
    before = model.read_bytes()
    run = _limited("from octviewer.model.model_file import attach_evaluation\n"
                   "from octviewer.model.meta import ModelWriteError\n"
                   f"try:\n    attach_evaluation({str(model)!r}, {{}})\n"
                   "except ModelWriteError as exc:\n    print(exc)\n    raise SystemExit(3)\n", len(before) - 4096)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "model.safetensors: cannot be written (File too large); it is unchanged" in run.stdout
    assert model.read_bytes() == before


def test_evaluate_attach_that_cannot_write_the_model_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    """The CLI side of A6-11: the model write error is an output problem (exit 3), one line, no traceback."""
    from octviewer.model import model_file
    from octviewer.model.meta import ModelWriteError
    from trainer import cli, evaluate_model

    def full_disk(path, evaluation, sign_with=None):
        raise ModelWriteError(path, "cannot be written (File too large); it is unchanged")

    monkeypatch.setattr(evaluate_model, "evaluate_model", lambda *a, **k: {"image_level": {"n": 0}})
    monkeypatch.setattr(evaluate_model, "attachable_summary", lambda *a, **k: {})
    monkeypatch.setattr(model_file, "attach_evaluation", full_disk)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,eye,visit,label\n")
    rc = cli.main(["evaluate", "--model", str(tmp_path / "model.safetensors"), "--data", str(manifest),
                   "--split", "all", "--attach", "--json"])
    err = capsys.readouterr().err
    assert rc == 3
    assert err.strip() == "error: model.safetensors: cannot be written (File too large); it is unchanged"


# ---------------------------------------------------------------- A6-17: --out naming the study's own tables


@pytest.fixture(scope="module")
def one_scan_study(tmp_path_factory):
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=5) / "scans"


def test_predict_and_measure_refuse_an_out_that_is_not_their_csv(one_scan_study, tmp_path, capsys):
    """``--out FOLDER/manifest.csv`` / ``--out FOLDER/vf.csv`` replaced the study's table with the
    results, exit 0. Refused before the run (predict: before the model is loaded), exit 3."""
    from octviewer.pipeline.measure_cli import main as measure
    from octviewer.pipeline.predict_cli import main as predict

    manifest, vf = tmp_path / "manifest.csv", tmp_path / "vf.csv"
    manifest.write_text("path,patient_id,eye,visit,label\nscans/a.dcm,P1,OD,2020-01-01,normal\n")
    vf.write_text("patient_id,eye,date,md\nP1,OD,2020-01-01,-3\n")
    before = manifest.read_bytes(), vf.read_bytes()
    assert predict([str(one_scan_study), "--out", str(manifest)]) == 3
    assert measure([str(one_scan_study), "--out", str(vf)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"octviewer-predict: --out {manifest} exists and is not a results CSV of this command")
    assert err[1].startswith(f"octviewer-measure: --out {vf} exists and is not a results CSV of this command")
    assert (manifest.read_bytes(), vf.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv", "vf.csv"]
    # under a file (attack run 24, A24-6): said so, where it was said to exist
    assert predict([str(one_scan_study), "--out", str(vf / "x.csv")]) == 3
    assert measure([str(one_scan_study), "--out", str(vf / "x.csv")]) == 3
    err = capsys.readouterr().err.splitlines()
    assert all(line.endswith(f"{vf} is a file, not a folder") and "exists" not in line for line in err), err


def test_measure_runs_again_into_its_own_csv_and_resumes(one_scan_study, tmp_path):
    from octviewer.pipeline.measure_cli import main as measure

    out = tmp_path / "m.csv"
    out.write_bytes(b"")  # an empty file holds nothing to lose
    assert measure([str(one_scan_study), "--out", str(out)]) in (0, 1)
    first = out.read_text()
    assert measure([str(one_scan_study), "--out", str(out)]) in (0, 1)
    assert measure([str(one_scan_study), "--out", str(out), "--resume"]) in (0, 1)
    assert out.read_text().splitlines()[0] == first.splitlines()[0]


# ---------------------------------------------------------------- A6-14: octviewer-synth over a clinic's folder


def test_synth_refuses_a_folder_with_a_clinics_manifest_or_volumes(tmp_path, capsys, monkeypatch):
    """``octviewer-synth --out DIR`` replaced DIR's own manifest.csv and put synthetic volumes beside
    the real ones, exit 0. Refused before anything is rendered, one line naming the file, exit 3."""
    import octviewer.synth as synth
    from octviewer.synth.cli import main

    def never(*args, **kwargs):
        raise AssertionError("rendered")

    monkeypatch.setattr(synth, "generate_cohort", never)
    clinic = tmp_path / "clinic"
    (clinic / "volumes").mkdir(parents=True)
    (clinic / "manifest.csv").write_text("path,patient_id,eye,visit,label\n"
                                         "volumes/real.dcm,REAL01,OD,2020-01-01,normal\n")
    (clinic / "volumes" / "real.dcm").write_bytes(b"precious")
    assert main(["--out", str(clinic), "--patients", "1", "--preset", "tiny"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{clinic / 'manifest.csv'} was not written by octviewer-synth" in err
    (clinic / "manifest.csv").unlink()  # the volumes alone are someone's too
    assert main(["--out", str(clinic), "--patients", "1", "--preset", "tiny"]) == 3
    assert f"{clinic / 'volumes'} holds files octviewer-synth did not write" in capsys.readouterr().err
    assert sorted(p.name for p in clinic.rglob("*")) == ["real.dcm", "volumes"]


def test_synth_writes_again_over_its_own_output_whole_or_stopped(tmp_path):
    from octviewer.synth.cli import main

    out = tmp_path / "c"
    assert main(["--out", str(out), "--patients", "1", "--preset", "tiny", "--workers", "1"]) == 0
    first = (out / "manifest.csv").read_bytes()
    assert main(["--out", str(out), "--patients", "1", "--preset", "tiny", "--workers", "1"]) == 0
    assert (out / "manifest.csv").read_bytes() == first
    (out / "manifest.csv").unlink()  # as a run stopped before its manifest leaves it
    assert main(["--out", str(out), "--patients", "1", "--preset", "tiny", "--workers", "1"]) == 0
    assert (out / "manifest.csv").read_bytes() == first


def test_pacs_screen_refuses_an_out_that_is_a_study_manifest_before_asking_the_archive(tmp_path, capsys):
    """`octviewer-pacs screen --out` goes through predict's output check: it lacked predict's header,
    so a study's manifest.csv given as --out was replaced by the results (A6-17 by the PACS command).
    No archive is running here: the refusal comes before the archive is asked."""
    from octviewer.pacs.cli import main

    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,patient_id,eye,visit,label\nvolumes/a.dcm,P1,OD,2020-01-01,normal\n")
    before = manifest.read_bytes()
    code = main(["--settings", str(tmp_path / "pacs.json"), "screen", "--patient-id", "P1", "--out", str(manifest)])
    assert code == 3 and str(manifest) in capsys.readouterr().err
    assert manifest.read_bytes() == before
