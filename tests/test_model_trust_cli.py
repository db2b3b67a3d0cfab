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


def test_the_signing_command_names_an_existing_key_file_and_a_key_with_a_password(tmp_path, unsigned_model,
                                                                                   capsys):
    """``new-key`` over an existing file (or folder) ended in a raw FileExistsError traceback, and
    ``sign --key`` with a password-protected key in a raw TypeError."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from octviewer.model.sign import main

    key = tmp_path / "k.pem"
    assert main(["new-key", str(key)]) == 0
    before = key.read_bytes()
    assert main(["new-key", str(key)]) == 2
    assert "k.pem exists" in capsys.readouterr().out and key.read_bytes() == before
    locked = tmp_path / "locked.pem"
    locked.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    assert main(["sign", str(unsigned_model), "--key", str(locked)]) == 2
    assert "encrypted" in capsys.readouterr().out
    assert load_model(unsigned_model).trust.status == "unsigned"
