"""Public dataset layouts, as miniature fakes: import, validation and a one-epoch CPU fit."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from octviewer.io.stacks import parse_zenodo_name
from trainer.manifest import read_manifest

FAST = ["--image-size", "32", "--init", "random", "--batch-size", "8", "--epochs", "1"]


@pytest.fixture
def harvard(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "harvard_gf"
    n = 0
    for split, count in (("train", 8), ("val", 4), ("test", 4)):
        (root / split).mkdir(parents=True)
        for k in range(count):
            g = k % 2
            np.savez(root / split / f"data_{n:05d}.npz", oct_bscans=rng.integers(0, 255, (6, 32, 32), dtype=np.uint8),
                     slo_fundus=rng.integers(0, 255, (40, 40), dtype=np.uint8), glaucoma=np.array(g),
                     md=np.array(-6.0 * g + rng.normal()), tds=rng.normal(size=52), race=np.array(k % 3),
                     male=np.array(k % 2), hispanic=np.array(0), pid=np.array(f"P{n // 2:04d}_{n % 2}"))
            n += 1
    # a field that would need pickle: skipped with a warning, never unpickled
    np.savez(root / "train" / "data_99999.npz", oct_bscans=np.zeros((6, 32, 32), np.uint8), glaucoma=np.array(1),
             note=np.array([{"x": 1}], dtype=object), pid=np.array("P9999_0"))
    return root


@pytest.fixture
def zenodo(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "zenodo"
    root.mkdir()
    for i in range(12):
        label = "POAG" if i % 2 else "Normal"
        np.save(root / f"{label}-{1000 + i // 2:06d}-2012-0{1 + i % 9}-1{i % 9}-{'OD' if i % 3 else 'OS'}.npy",
                rng.integers(0, 255, (64, 128, 64), dtype=np.uint8))
    np.save(root / "scan_without_a_proper_name.npy", np.zeros((64, 128, 64), np.uint8))
    return root


def _run(*args):
    return subprocess.run([sys.executable, "-m", "trainer", *args], capture_output=True, text=True)


def test_zenodo_names():
    assert parse_zenodo_name("POAG-000123-2012-01-31-OS") == {
        "label": "glaucoma", "patient_id": "000123", "visit": __import__("datetime").date(2012, 1, 31), "eye": "OS"}
    assert parse_zenodo_name("Normal-7-2013-12-01-OD")["label"] == "normal"
    for bad in ("POAG-1-2012-13-01-OD", "Glaucoma-1-2012-01-01-OD", "POAG-1-2012-01-01-OU", "POAG-1-OD"):
        assert parse_zenodo_name(bad) is None


def test_harvard_import_and_fit(harvard, tmp_path):
    manifest = tmp_path / "h.csv"
    result = _run("import", "harvard", str(harvard), "--out", str(manifest))
    assert result.returncode == 0, result.stderr
    assert "field 'note' holds Python objects" in result.stderr and "allow_pickle=True" in result.stderr
    rows = list(csv.DictReader(open(manifest)))
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert all(r["md"] for r in rows if r["path"].endswith("00000.npz"))
    assert rows[0]["patient_id"] == "P0000" and "race" in rows[0]
    records, _ = read_manifest(manifest)
    assert len(records) == 17
    out = tmp_path / "run"
    fit = _run("fit", "--data", str(manifest), "--out", str(out), "--variant", "semt", *FAST)
    assert fit.returncode == 2 and "field 'note' holds Python objects" in fit.stderr  # refused, not unpickled
    fit = _run("fit", "--data", str(manifest), "--out", str(out), "--variant", "semt", "--skip-bad", *FAST)
    assert fit.returncode == 0, fit.stderr[-2000:]
    from octviewer.model import load_model
    assert load_model(out / "model.safetensors").vf_names == ("md",)  # Harvard-GF carries MD alone
    ev = _run("evaluate", "--model", str(out / "model.safetensors"), "--data", str(manifest), "--by", "race",
              "--device", "cpu", "--json")
    assert ev.returncode == 0, ev.stderr[-2000:]
    report = json.loads(ev.stdout)
    assert set(report["by_group"]["race"]) <= {"0", "1", "2"}


def test_zenodo_import_and_3d_fit(zenodo, tmp_path):
    manifest = tmp_path / "z.csv"
    result = _run("import", "zenodo-onh", str(zenodo), "--out", str(manifest))
    assert result.returncode == 0
    assert "scan_without_a_proper_name.npy: name does not follow" in result.stderr
    rows = list(csv.DictReader(open(manifest)))
    assert len(rows) == 12 and all(r["eye"] in ("OD", "OS") and r["visit"] for r in rows)
    out = tmp_path / "run3d"
    fit = _run("fit", "--data", str(manifest), "--out", str(out), "--variant", "cnn3d", *FAST)
    assert fit.returncode == 0, fit.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["variant"] == "cnn3d"
    from octviewer.model import load_model
    assert tuple(load_model(out / "model.safetensors").preprocess.volume_shape) == (64, 128, 64)  # native size
