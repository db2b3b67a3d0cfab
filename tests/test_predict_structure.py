"""octviewer-predict with the structure columns and the quality gate (issue 14.7): a volume that
fails the gate gets no probability, only its structure columns and the reasons."""

import csv

import numpy as np

from octviewer.core import OctVolume, Spacing
from octviewer.io.stacks import write_npz
from octviewer.pipeline.predict_cli import COLUMNS, main
from octviewer.structure import COLUMNS as STRUCTURE_COLUMNS


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _tiny_model(folder):
    import torch

    from octviewer.model import Preprocess, build_network, default_metadata, save_model

    torch.manual_seed(0)
    net = build_network("semt", init="random", reg_channels=8).eval()
    meta = default_metadata("semt", preprocess=Preprocess(size=32))
    meta["network"]["reg_channels"] = 8
    return str(save_model(folder / "m.safetensors", net, meta))


def test_structure_columns_and_quality_refusal(tmp_path):
    from octviewer.study.demo import write_demo_study

    model = _tiny_model(tmp_path)
    study = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=7)
    scans = sorted((study / "scans").rglob("*.dcm"))
    rng = np.random.default_rng(0)  # random pixels on an optic-disc cube's geometry
    noise = OctVolume(data=rng.integers(0, 255, (10, 256, 128), np.uint8), scan_pattern="volume", laterality="OD",
                      spacing=Spacing(bscan_mm=0.6, depth_mm=0.0039, ascan_mm=0.047), source="noise.npz")
    write_npz(noise, tmp_path / "noise.npz")
    out = tmp_path / "r.csv"
    code = main([str(p) for p in scans] + [str(tmp_path / "noise.npz"), "--model", model, "--out", str(out),
                                           "--device", "cpu", "--no-pseudonymise"])
    rows = {r["file"]: r for r in _rows(out)}
    assert set(STRUCTURE_COLUMNS) <= set(COLUMNS) and list(_rows(out)[0]) == COLUMNS
    refused = rows[str(tmp_path / "noise.npz")]
    assert refused["quality"].startswith("refused") and "signal too weak" in refused["quality"]
    assert not refused["probability"] and not refused["decision"] and not refused["md"] and not refused["threshold"]
    assert "not analysed: the scan failed the quality check" in refused["error"]
    assert code == 1  # the refused volume has no result
    analysed = [rows[str(p)] for p in scans if rows[str(p)]["quality"].startswith("measured")]
    assert analysed, "the demo study's cubes pass the gate"
    for row in analysed:
        assert 0 <= float(row["probability"]) <= 1 and not row["error"]
        # the decision can be checked from the row itself: probability against the threshold
        assert row["decision"] == ("glaucoma" if float(row["probability"]) >= float(row["threshold"]) else "normal")
        assert row["notice"].startswith("research use only") and "SYNTHETIC scan" in row["notice"]
        assert 20 < float(row["rnfl_global_um"]) < 200 and row["laterality"] in ("OD", "OS")
        # the overall class is said to be uncertain when the boundary is unsure on more than a quarter of the circle
        word = row["rnfl_class"].removeprefix("uncertain: ")
        assert word in ("normal", "borderline", "outside")
        assert (word != row["rnfl_class"]) == (float(row["rnfl_unsure_pct"]) > 25)
    # --no-quality-gate: analysed anyway, still with its quality figure
    main([str(tmp_path / "noise.npz"), "--model", model, "--out", str(tmp_path / "g.csv"), "--device", "cpu",
          "--no-quality-gate"])
    [row] = _rows(tmp_path / "g.csv")
    assert row["probability"] and row["quality"].startswith("refused")
