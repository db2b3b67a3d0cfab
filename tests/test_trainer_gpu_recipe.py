"""The one-shot GPU recipe script, at tiny scale on the CPU (the ablation step is left out by a
zero time budget; tests/test_trainer_recipe.py covers the ablation itself)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)  # several fits; slow on a loaded 2-core machine
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_recipe_tiny(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), RECIPE_SCALE="tiny", RECIPE_BUDGET_S="0", PYTHON=sys.executable)
    result = subprocess.run(["bash", str(ROOT / "trainer" / "gpu_recipe.sh")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    timings = (out / "timings.txt").read_text()
    for step in ("cohort", "heldout", "demo_fit", "demo_heldout"):
        assert f"{step} " in timings and "failed" not in timings.split(step)[1].splitlines()[0], timings
    assert "ablation skipped" in timings
    model = out / "demo" / "model.safetensors"
    assert model.stat().st_size < 25e6
    summary = (out / "summary.md").read_text()
    assert "held-out cohort" in summary and "class-mean oracle" in summary and "ECE" in summary
    assert not list(out.rglob("*.pt")) and not (out / "cohort" / "volumes").exists()  # small to bring back
