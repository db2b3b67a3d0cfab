"""benchmarks/measure_cohort.py, the script behind docs/cohort.md's difficulty table, run end to end
at a toy scale: every AUC comes with a patient-cluster interval that holds its point estimate."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "measure_cohort.py"


@pytest.mark.slow
def test_measure_cohort_reports_every_auc_with_a_patient_interval(tmp_path):
    out = tmp_path / "difficulty"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--train-patients", "16", "--test-patients", "16", "--preset", "tiny",
         "--workers", "1", "--cnn", "--image-size", "32", "--epochs", "1", "--centres", "2", "--init", "random",
         "--device", "cpu", "--out", str(out)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SYNTHETIC" in result.stdout
    data = json.loads((out / "difficulty.json").read_text())
    assert data["synthetic"] is True and data["test_patients"] == 16
    aucs = {k: v for k, v in data.items() if k.startswith(("oracle_", "truth_", "cue_"))}
    aucs["cnn_resnet2d"] = data["cnn_resnet2d"]["case_auc"]
    assert set(aucs) == set(data["ci95"]), "an AUC without its interval"
    for key, value in aucs.items():
        lo, hi = data["ci95"][key]
        assert 0.0 <= lo < hi <= 1.0, (key, lo, hi)
        if key != "cnn_resnet2d":  # oriented (max(AUC, 1 - AUC)), from deterministic features
            assert value >= 0.5 and lo <= value <= hi, (key, value, lo, hi)
    assert data["cnn_resnet2d"]["init"] == "random" and data["cnn_resnet2d"]["device"] == "cpu"
