"""`octviewer-train evaluate --out` and `recalibrate --out` never destroy what they were given (attack
run 2): every refusal comes before the network runs, in one line, with exit code 3 (bad output path,
as for the batch commands)."""

import os
import shutil

import pytest

from octviewer.resources import DEMO_MODEL
from trainer.cli import main


@pytest.fixture
def model(tmp_path):
    return shutil.copy(DEMO_MODEL, tmp_path / "m.safetensors")


@pytest.mark.parametrize("command", ["evaluate", "recalibrate"])
def test_out_naming_an_input_is_refused_before_any_work(command, model, tiny_cohort, tmp_path, capsys):
    before = {p: open(p, "rb").read() for p in (model, tiny_cohort)}
    for out in (model, tiny_cohort):
        assert main([command, "--model", str(model), "--data", str(tiny_cohort), "--out", str(out)]) == 3
        err = capsys.readouterr().err
        assert "names an input" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(open(p, "rb").read() == data for p, data in before.items())


@pytest.mark.parametrize("command", ["evaluate", "recalibrate"])
def test_out_that_is_a_link_fifo_or_in_a_missing_folder_is_refused(command, model, tiny_cohort, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("clinic notes")
    link = tmp_path / "link.json"
    link.symlink_to(notes)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for out, words in ((link, "symbolic link"), (fifo, "not a file"), (tmp_path / "no" / "r.json", "does not exist")):
        if command == "recalibrate" and out != tmp_path / "no" / "r.json":
            words = "exists"  # recalibrate writes new files only
        assert main([command, "--model", str(model), "--data", str(tiny_cohort), "--out", str(out)]) == 3
        err = capsys.readouterr().err
        assert words in err, err
    assert notes.read_text() == "clinic notes"


def test_recalibrate_never_overwrites_and_needs_both_classes(model, tiny_cohort, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("clinic notes")
    assert main(["recalibrate", "--model", str(model), "--data", str(tiny_cohort), "--out", str(notes)]) == 3
    assert "exists" in capsys.readouterr().err and notes.read_text() == "clinic notes"
    few = tmp_path / "few.csv"  # the header and two rows of each class: refused from the manifest alone
    lines = tiny_cohort.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    label = header.split(",").index("label")
    keep = ([r for r in rows if r.split(",")[label] == "normal"][:2]
            + [r for r in rows if r.split(",")[label] == "glaucoma"][:2])
    base = tiny_cohort.parent
    path = header.split(",").index("path")
    keep = [",".join(str(base / c) if i == path else c for i, c in enumerate(r.split(","))) for r in keep]
    few.write_text("\n".join([header, *keep]) + "\n")
    out = str(tmp_path / "r.safetensors")
    assert main(["recalibrate", "--model", str(model), "--data", str(few), "--out", out]) == 2
    assert "at least 10 volumes of each class" in capsys.readouterr().err
    assert not (tmp_path / "r.safetensors").exists()


def test_fit_without_validation_volumes_is_refused_before_training(tiny_cohort, tmp_path, capsys):
    """Four patients, all in training: the run trained on NaN validation losses, then blamed an
    unreadable checkpoint and advised deleting the stage (attack run 2 M7)."""
    import csv

    rows = list(csv.DictReader(open(tiny_cohort)))
    for r in rows:
        r["path"] = str(tiny_cohort.parent / r["path"])
        r["split"] = "train"
    m = tmp_path / "m.csv"
    with open(m, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["fit", "--data", str(m), "--out", str(tmp_path / "run"), "--variant", "resnet2d", "--init", "random",
                 "--image-size", "32", "--epochs", "1", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "validation split holds no volumes" in err and "checkpoint" not in err
