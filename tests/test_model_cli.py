"""octviewer-predict: formula-safe CSV, pseudonymous keys, error rows for broken models, --cam-out, FIFOs."""

import csv
import os
import re
import sys

import numpy as np
import pytest
import torch
from corpus import tiny_semt_model

from octviewer.pipeline.predict_cli import main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names and FIFOs")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_semt_model(tmp_path_factory.mktemp("m") / "m.safetensors")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Two readable volumes whose names carry 'identifiers', one broken file. The two are taken
    without simulated artefacts, so that only the broken file fails whatever the generator draws."""
    from octviewer.io.stacks import write_npz
    from octviewer.synth import Acquisition, random_eye, synth_scan

    folder = tmp_path_factory.mktemp("PAT-4711")
    rng = np.random.default_rng(0)
    for i, name in enumerate(["PAT-4711_2024-01-02_OD.npz", "PAT-4711_2024-01-02_OS.npz"]):
        eye = random_eye(rng, "OD" if i == 0 else "OS", bool(i))
        write_npz(synth_scan(eye, "tiny", seed=i, acquisition=Acquisition()).volume, folder / name)
    (folder / "PAT-4711_broken.dcm").write_bytes(b"\x00" * 100)
    return folder


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_pseudonymised_by_default_with_key_file(tmp_path, scans, model_path):
    out, keys = tmp_path / "r.csv", tmp_path / "keys.csv"
    code = main([str(scans), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--key-file", str(keys)])
    assert code == 1  # the broken file failed
    text = out.read_text()
    assert "PAT-4711" not in text and "2024-01-02" not in text
    rows = _rows(out)
    assert all(re.fullmatch(r"vol-[0-9a-f]{16}", r["file"]) for r in rows)
    assert sum(bool(r["error"]) for r in rows) == 1
    mapping = {r["key"]: r["path"] for r in _rows(keys)}
    assert set(mapping) == {r["file"] for r in rows}
    assert all("PAT-4711" in p for p in mapping.values())
    assert oct(os.stat(keys).st_mode & 0o777) == "0o600"
    # stable: a second run gives the same keys
    main([str(scans), "--model", str(model_path), "--out", str(tmp_path / "r2.csv"), "--device", "cpu"])
    assert [r["file"] for r in _rows(tmp_path / "r2.csv")] == [r["file"] for r in rows]


def test_paths_only_when_asked(tmp_path, scans, model_path):
    out = tmp_path / "r.csv"
    main([str(scans), "--model", str(model_path), "--out", str(out), "--device", "cpu", "--no-pseudonymise"])
    assert {os.path.basename(r["file"]) for r in _rows(out)} == {p.name for p in scans.iterdir()}


def test_csv_cells_are_formula_safe_and_numbers_stay_numbers(tmp_path, scans, model_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    evil = ["=HYPERLINK(1).npz", "+1+1.npz", "-2+3.npz", "@SUM(1).npz", "\tx.npz"]
    for name in evil:
        shutil.copy(scans / "PAT-4711_2024-01-02_OD.npz", name)
    (tmp_path / "=broken.dcm").write_bytes(b"\x00" * 100)
    out = tmp_path / "r.csv"
    main(["--model", str(model_path), "--out", str(out), "--device", "cpu", "--no-pseudonymise", "--",
          *evil, "=broken.dcm"])
    rows = _rows(out)
    for r in rows:
        for col, cell in r.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (col, cell)
            if cell.startswith("-"):
                float(cell)  # only numbers may start with "-"
    assert {r["file"] for r in rows} == {"'" + n for n in evil} | {"'=broken.dcm"}
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 1 and bad[0]["error"].startswith("'=broken.dcm")
    good = [r for r in rows if not r["error"]]
    assert all(float(r["md"]) < 0 and not r["md"].startswith("'") for r in good)  # MD is negative and numeric


def test_model_giving_nan_is_an_error_row_not_normal(tmp_path, scans, model_path):
    from safetensors.torch import load_file, save_file

    from octviewer.model import load_model

    state = load_file(str(model_path))
    w = state["backbone.body.0.weight"]
    state["backbone.body.0.weight"] = torch.where(w >= 0, 3e38, -3e38)  # finite, but inf - inf = NaN
    meta = load_model(model_path).meta.to_json()
    bad_model = tmp_path / "overflow.safetensors"
    save_file(state, str(bad_model), metadata={"octviewer": meta})
    out = tmp_path / "r.csv"
    code = main([str(scans), "--model", str(bad_model), "--out", str(out), "--device", "cpu"])
    rows = _rows(out)
    assert code == 1
    assert all(r["error"] and not r["decision"] and not r["probability"] for r in rows)
    assert sum("non-finite" in r["error"] for r in rows) == 2


def test_cam_out_writes_enface_maps(tmp_path, scans, model_path):
    from octviewer import load_volume

    cams = tmp_path / "cams"
    main([str(scans), "--model", str(model_path), "--out", str(tmp_path / "r.csv"), "--device", "cpu",
          "--no-pseudonymise", "--cam-out", str(cams)])
    written = sorted(p.name for p in cams.iterdir())
    assert written == ["PAT-4711_2024-01-02_OD_cam.npy", "PAT-4711_2024-01-02_OS_cam.npy"]
    for name in written:
        volume = load_volume(scans / name.replace("_cam.npy", ".npz"))
        cam = np.load(cams / name)
        assert cam.shape == (volume.n_bscans, volume.shape[2]) and cam.dtype == np.float32
        assert np.isfinite(cam).all()
    keyed = tmp_path / "keyed"
    main([str(scans), "--model", str(model_path), "--out", str(tmp_path / "k.csv"), "--device", "cpu",
          "--cam-out", str(keyed)])
    assert all(re.fullmatch(r"vol-[0-9a-f]{16}_cam\.npy", p.name) for p in keyed.iterdir())


def test_fifo_in_a_folder_is_listed_not_opened(tmp_path, model_path):
    import signal

    signal.alarm(60)  # opening the FIFO would block forever: fail instead
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "pipe.dcm")
    out = tmp_path / "r.csv"
    code = main([str(folder), "--model", str(model_path), "--out", str(out), "--device", "cpu",
                 "--no-pseudonymise"])
    rows = _rows(out)
    signal.alarm(0)
    assert code == 1 and len(rows) == 1 and "not a regular file" in rows[0]["error"]


def test_messages_keep_their_words_and_name_their_file(model_path, samples_dir, tmp_path, capsys):
    """A file called truncated.dcm: the message still says "truncated" (the key replaced the word
    before), and a scan the model does not read is named in its message (walk-through)."""
    from octviewer.resources import DEMO_SAMPLES

    data = (DEMO_SAMPLES / "demo_normal_OD.dcm").read_bytes()
    broken = tmp_path / "truncated.dcm"
    broken.write_bytes(data[: len(data) // 2])
    circle = samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol"
    out = tmp_path / "r.csv"
    assert main([str(broken), str(circle), "--model", str(model_path), "--out", str(out)]) == 1
    rows = list(csv.DictReader(open(out)))
    assert "truncated or damaged" in rows[0]["error"] and rows[0]["error"].startswith(rows[0]["file"] + ":")
    assert rows[1]["error"].startswith(rows[1]["file"] + ":") and "circle scan" in rows[1]["error"]
    err = capsys.readouterr().err
    assert "--key-file" in err and "Willis" not in err
