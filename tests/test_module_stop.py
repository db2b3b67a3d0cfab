"""``python -m`` commands stopped while their imports load: one line and exit 130, not a traceback.

The stop is made deterministic by a ``sitecustomize`` on PYTHONPATH that raises KeyboardInterrupt (as
Ctrl-C does) when the command first imports one of its heavy modules.
"""

import os
import subprocess
import sys

import pytest

HOOK = '''
import importlib.abc, os, sys

class _StopAt(importlib.abc.MetaPathFinder):
    """Ctrl-C at the n-th lookup of one module (``STOP_AT=name:n``)."""
    name, nth = os.environ["STOP_AT"].split(":")
    seen = 0

    def find_spec(self, name, path=None, target=None):
        if name == self.name:
            _StopAt.seen += 1
            if _StopAt.seen == int(self.nth):
                raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, _StopAt())
'''


@pytest.mark.parametrize("module, heavy, hint", [
    ("octviewer.study.demo", "octviewer.synth:1", "run it again to write the study whole"),
    # its package's imports (the generator) come before any line of it; the stop here is in its own import
    # under the package name, the first thing it does (the first lookup is runpy's, to find the file)
    ("octviewer.synth.demo", "octviewer.synth.demo:2", "run it again"),
    ("octviewer.model.sign", "cryptography:1", "run it again"),
])
def test_a_stop_while_the_module_loads_is_one_line(tmp_path, module, heavy, hint):
    """Attack run 10's note: ``python -m octviewer.study.demo`` stopped in its first half second printed a
    KeyboardInterrupt traceback; its imports ran before its ``__main__`` block (``core.stop.run_module``)."""
    (tmp_path / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "STOP_AT": heavy}
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert (out.returncode, out.stderr, out.stdout) == (130, f"python -m {module}: stopped; {hint}\n", "")


def test_the_study_package_loads_without_scipy_stats():
    """The study package is imported before ``python -m octviewer.study.demo`` runs a line of its own, so its
    imports are the window before the handlers: scipy.stats (0.8 s) loads when a trend is first fitted."""
    code = "import sys, octviewer.study; print('scipy.stats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
