"""Attack run 7, trainer findings (A7-5, A7-6, A7-7, A7-14, A7-21, A7-22): one line, the right exit code."""

from __future__ import annotations

import csv
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from trainer import label_scarce as ls
from trainer import stop

DEMO_MODEL = Path(__file__).resolve().parent.parent / "resources" / "models" / "demo_semt.safetensors"


@pytest.fixture(autouse=True)
def _no_stop_left():
    stop.clear()
    yield
    stop.clear()


def _cohort(folder: Path, patients: int = 6) -> Path:
    """A cohort manifest of ``patients`` (half glaucoma), two rows each, with tiny distinct .npy volumes (prepare
    checks the cohort as validate does, volumes opened: A14-13)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "patient_id", "eye", "visit", "label"])
        for p in range(patients):
            for eye in ("OD", "OS"):
                np.save(folder / f"v{p}_{eye}.npy", rng.integers(0, 255, (4, 16, 16), dtype=np.uint8))
                w.writerow([f"v{p}_{eye}.npy", f"P{p}", eye, "2020-01-01", "glaucoma" if p % 2 else "normal"])
    return path


def _prepare(cohort: Path, out: Path, *counts: str) -> int:
    return ls.main(["prepare", "--cohort", str(cohort), "--out", str(out), "--test-patients", counts[0],
                    "--val-patients", counts[1]])


# -- A7-5: bad input is one line and exit 2, not a traceback -------------------------------------------------

def test_label_scarce_bad_manifests_are_one_line_exit_2(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    no_label = tmp_path / "nolabel.csv"
    no_label.write_text("path,patient_id,eye,visit\nv0_OD.dcm,P0,OD,2020-01-01\n")
    short = tmp_path / "short.csv"
    short.write_text("path,patient_id,eye,visit,label\nv0_OD.dcm\n")
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    assert _prepare(no_label, tmp_path / "p1.csv", "1", "1") == 2
    assert "nolabel.csv" in capsys.readouterr().err
    assert _prepare(short, tmp_path / "p2.csv", "1", "1") == 2
    assert "short.csv" in capsys.readouterr().err
    assert _prepare(fifo, tmp_path / "p3.csv", "1", "1") == 2  # blocked for good
    assert "FIFO" in capsys.readouterr().err
    assert ls.main(["summary", "--data", str(tmp_path / "missing.csv"), str(tmp_path)]) == 2
    assert ls.main(["cache", "--data", str(fifo), "--cache-dir", str(tmp_path / "c"), "--image-size", "16"]) == 2
    assert ls.main(["prepare", "--cohort", str(cohort), "--out", "/tmp/elsewhere.csv", "--test-patients", "1",
                    "--val-patients", "1"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err and "must be in the folder" in err


def test_every_exit_code_names_a_class_that_exists():
    """error_exit matches classes by name (no torch import to compare with): a rename must fail here."""
    from trainer.command import EXIT_CODES

    for name in EXIT_CODES:
        module, _, cls = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), name


# -- A7-6: --out is checked and written as octviewer-train's ---------------------------------------------------

def test_prepare_out_link_fifo_or_cohort_is_refused_exit_3(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    before = cohort.read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    (tmp_path / "link.csv").symlink_to(notes)
    assert _prepare(cohort, tmp_path / "link.csv", "1", "1") == 3
    assert notes.read_text() == "notes" and "symbolic link" in capsys.readouterr().err
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the old open(out, "w") did not block the test
    try:
        assert _prepare(cohort, fifo, "1", "1") == 3
        assert "FIFO" in capsys.readouterr().err
    finally:
        os.close(reader)
    assert _prepare(cohort, cohort, "1", "1") == 3
    assert cohort.read_bytes() == before and "input" in capsys.readouterr().err


def test_summary_does_not_write_through_a_link(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    root = tmp_path / "runs"
    root.mkdir()
    (root / "summary.md").symlink_to(notes)
    assert ls.main(["summary", "--data", str(cohort), str(root)]) == 3
    assert notes.read_text() == "notes" and not (root / "summary.json").exists()
    assert "symbolic link" in capsys.readouterr().err


# -- A7-7: the counts asked are the counts given, or refused --------------------------------------------------

def test_prepare_counts_are_checked_and_delivered(tmp_path, capsys):
    cohort = _cohort(tmp_path)
    assert _prepare(cohort, tmp_path / "p.csv", "-5", "-5") == 2
    assert "1 or more" in capsys.readouterr().err and not (tmp_path / "p.csv").exists()
    counts = ls.prepare(cohort, tmp_path / "p.csv", 1, 1)  # 3 + 3 patients: round(0.5) gave 0 and 0
    assert counts["test"]["patients"] == 1 and counts["val"]["patients"] == 1 and counts["train"]["patients"] == 4
    with open(tmp_path / "p.csv") as f:
        label_of = {r["split"]: r["label"] for r in csv.DictReader(f) if r["split"] != "train"}
    assert set(label_of.values()) == {"glaucoma", "normal"}  # the tie goes to one class for test, the other for val
    assert _prepare(cohort, tmp_path / "q.csv", "3", "3") == 2
    assert "keep any for training" in capsys.readouterr().err


# -- A7-14: the Zenodo import checks the patient part of a name as the Harvard import checks its pid ----------

def test_zenodo_import_leaves_out_names_with_hidden_characters(tmp_path):
    from trainer.public import import_zenodo

    for name in ("POAG-P\u202e321-2019-01-01-OD", "Normal-P\x1b[2J9-2019-01-01-OS", "POAG-P1\t-2019-01-01-OS",
                 "Normal-P7-2019-01-01-OD"):
        (tmp_path / f"{name}.npy").write_bytes(b"")
    rows, problems = import_zenodo(tmp_path)
    assert [r["patient_id"] for r in rows] == ["P7"]
    assert sum("the patient part of the name holds" in p and "left out" in p for p in problems) == 3


# -- A7-21, A7-22: evaluate's --by and Ctrl-C; validate's Ctrl-C -------------------------------------------------

def _two_rows(tiny_cohort: Path) -> Path:
    """The first two rows of the session's cohort, beside it (its paths are relative)."""
    lines = tiny_cohort.read_text().splitlines()
    small = tiny_cohort.parent / "two_rows.csv"
    small.write_text("\n".join(lines[:3]) + "\n")
    return small


def test_evaluate_by_a_column_the_manifest_lacks_is_refused(tiny_cohort, capsys):
    pytest.importorskip("torch")
    from trainer.cli import main

    rc = main(["evaluate", "--model", str(DEMO_MODEL), "--data", str(_two_rows(tiny_cohort)), "--split", "all",
               "--by", "nosuchcol", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "--by 'nosuchcol'" in err and "Traceback" not in err
    assert "running the network" not in err  # refused before the network ran


def test_evaluate_stops_between_volumes(tiny_cohort, monkeypatch, capsys):
    pytest.importorskip("torch")
    from trainer import cli

    seen = []

    def progress(done, total):  # a Ctrl-C arriving during the first volume
        seen.append(done)
        stop.request_stop()
    monkeypatch.setattr(cli, "_network_progress", progress)
    rc = cli.main(["evaluate", "--model", str(DEMO_MODEL), "--data", str(tiny_cohort), "--split", "all",
                   "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 130 and seen == [1] and "stopped after 1 of" in err and "Traceback" not in err


def test_validate_stops_at_a_stop_request(tiny_cohort, capsys):
    pytest.importorskip("torch")
    from trainer.cli import main

    stop.request_stop()  # main installs the handlers; the flag they set is read while the rows are checked
    rc = main(["validate", "--data", str(tiny_cohort)])
    assert rc == 130 and "stopped while reading" in capsys.readouterr().err


def test_recalibrate_stops_between_volumes(tiny_cohort):
    pytest.importorskip("torch")
    from trainer.recalibrate import network_outputs

    seen = []

    def progress(done, total):
        seen.append(done)
        stop.request_stop()
    with pytest.raises(stop.Stopped, match="stopped after 1 of"):
        network_outputs(DEMO_MODEL, tiny_cohort, progress=progress)
    assert seen == [1]
