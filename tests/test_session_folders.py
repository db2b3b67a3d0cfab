"""The test session's own settings and results folders (tests/conftest.py) are removed when the run ends."""
import os
import subprocess
import sys
from pathlib import Path

import conftest


def test_the_session_folders_exist_while_the_run_lasts():
    assert Path(os.environ["OCTVIEWER_DATA"]) == Path(conftest.SESSION_DATA)
    assert Path(conftest.SESSION_CONFIG).is_dir() and Path(conftest.SESSION_DATA).is_dir()


def test_a_run_leaves_no_session_folders_behind(tmp_path):
    """A pytest run (the test above, in its own process with its own temp folder) removes the two folders it made;
    1,484 pairs were once left in /tmp."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"{__file__}::test_the_session_folders_exist_while_the_run_lasts"],
        cwd=Path(__file__).parents[1], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert sorted(p.name for p in tmp_path.glob("octviewer-test-*")) == []
