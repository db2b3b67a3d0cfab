"""octviewer-predict names the model file on every row: its digest and whether a trusted key signed it."""

import csv

import pytest
import torch
from corpus import small_volume

from octviewer import save_volume
from octviewer.model import Preprocess, build_network, default_metadata, load_model, save_model


@pytest.fixture
def unsigned_model(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    torch.manual_seed(0)
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    return save_model(tmp_path / "m.safetensors", build_network("semt", init="random", reg_channels=8), meta)


def test_every_row_carries_the_model_digest_and_signature(tmp_path, unsigned_model, capsys):
    from octviewer.pipeline.predict_cli import main

    scan = save_volume(small_volume((6, 64, 48)), tmp_path / "scan.dcm")
    out = tmp_path / "out.csv"
    main([str(scan), "--model", str(unsigned_model), "--out", str(out), "--device", "cpu", "--no-store",
          "--no-quality-gate"])
    with open(out, newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["model_digest"] == load_model(unsigned_model).short_digest
    assert row["model_signature"] == "unsigned"
    assert "model file not verified" in row["notice"]  # where a reader of the CSV looks, not only the last column
    assert "model file not verified" in capsys.readouterr().err
