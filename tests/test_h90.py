"""Attack run 14's low findings A14-6, A14-12, A14-13, A14-14 (H90): each through the command's main or the window."""

from __future__ import annotations

import csv
import os

import pytest

from trainer import stop


@pytest.fixture(autouse=True)
def _no_stop_left():
    stop.clear()
    yield
    stop.clear()


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def _write(rows, out):
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


# -- A14-13: label_scarce prepare refuses what validate refuses, in its words, exit 2, nothing written ----------

def _refused_alike(manifest, capsys) -> str:
    from trainer import label_scarce as ls
    from trainer.cli import main

    assert main(["validate", "--data", str(manifest)]) == 2
    said = capsys.readouterr().err
    out = manifest.parent / f"{manifest.stem}_prepared.csv"
    assert ls.main(["prepare", "--cohort", str(manifest), "--out", str(out), "--test-patients", "2",
                    "--val-patients", "2"]) == 2
    err = capsys.readouterr().err
    assert err == said, (err, said)  # the same words (no "one per eye?" warning before them)
    assert not out.exists()
    return err


def test_a14_13_prepare_refuses_swapped_rows_as_validate_does(tiny_cohort, capsys):
    rows = _rows(tiny_cohort)
    a = next(k for k, r in enumerate(rows) if r["label"] == "normal" and r["eye"] == "OD")
    b = next(k for k, r in enumerate(rows) if r["label"] == "glaucoma" and r["eye"] == "OD")
    rows[a]["path"], rows[b]["path"] = rows[b]["path"], rows[a]["path"]
    err = _refused_alike(_write(rows, tiny_cohort.parent / "h90_swapped.csv"), capsys)
    assert f"row {a + 2}: its scan's own header names another patient" in err and "one per eye" not in err, err


def test_a14_13_prepare_refuses_an_unreadable_volume_as_validate_does(tiny_cohort, capsys):
    rows = _rows(tiny_cohort)
    src = tiny_cohort.parent / rows[3]["path"]
    cut = tiny_cohort.parent / "h90_cut.dcm"
    data = src.read_bytes()
    cut.write_bytes(data[:len(data) - len(data) // 3])  # the header reads, the pixel data is cut short
    rows[3]["path"] = cut.name
    err = _refused_alike(_write(rows, tiny_cohort.parent / "h90_cut.csv"), capsys)
    assert "row 5: unreadable volume" in err, err


# -- A14-14: --progress-json naming the run folder is refused before anything is made ---------------------------

def test_a14_14_progress_json_naming_the_run_folder_is_refused_before_it_is_made(tiny_cohort, tmp_path, capsys):
    from trainer.cli import main

    run, cache = tmp_path / "run", tmp_path / "cache"
    fit = ["fit", "--data", str(tiny_cohort), "--variant", "resnet2d", "--epochs", "1", "--image-size", "32",
           "--init", "random", "--out", str(run)]
    for given, words in ((run, "names the --out folder, not a file"), (tmp_path, "names a folder above --out"),
                         (cache, "names the --cache-dir folder, not a file")):
        assert main([*fit, "--cache-dir", str(cache), "--progress-json", str(given)]) == 3
        err = capsys.readouterr().err
        assert words in err and "nothing was written" in err, err
        assert not run.exists() and not cache.exists()


# -- A14-12: the demo rewrites a file at one of its own scan paths only when it is its SYNTHETIC DICOM -----------

def test_a14_12_demo_refuses_a_file_at_its_scan_path_that_it_did_not_write(tmp_path, capsys):
    import pydicom

    from octviewer.study.demo import main

    args = ["--patients", "1", "--visits", "2", "--preset", "tiny", "--seed", "0"]
    first = tmp_path / "first"
    assert main(["--out", str(first), *args]) == 0
    assert main(["--out", str(first), *args]) == 0  # an earlier demo's output is its own: written again
    scan = sorted((first / "scans").glob("DEMO00-000/OD_*.dcm"))[0]
    capsys.readouterr()
    real = pydicom.dcmread(scan)  # a DICOM of another maker under the demo's name: not the demo's
    real.Manufacturer = "Heidelberg Engineering"
    del real.ImageComments
    for name, content in (("mine", b"mine\n"), ("real", None)):
        folder = tmp_path / name / "scans" / "DEMO00-000"
        folder.mkdir(parents=True)
        if content is None:
            real.save_as(folder / scan.name)
            content = (folder / scan.name).read_bytes()
        else:
            (folder / scan.name).write_bytes(content)
        assert main(["--out", str(tmp_path / name), *args]) == 3
        err = capsys.readouterr().err
        assert "1 file(s) under the demo's names that are not its SYNTHETIC DICOM" in err, err
        assert (folder / scan.name).read_bytes() == content  # the user's file as it was
        assert os.listdir(folder) == [scan.name] and os.listdir(tmp_path / name) == ["scans"]  # nothing written
