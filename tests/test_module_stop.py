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
    ("octviewer.study.vf", "pydicom:1", "run it again"),  # attack run 11, A11-7
    # attack run 12, A12-5: the other documented ``python -m`` commands
    ("trainer.label_scarce", "trainer.label_scarce:2", "run it again"),
    ("trainer.rnfl_boundary", "trainer.rnfl_boundary:2", "run it again"),
    ("octviewer.synth", "octviewer.synth.cli:1", "run it again"),
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


def test_python_m_trainer_stopped_while_it_loads_is_one_line(tmp_path):
    """A11-7: ``python -m trainer`` (as torchrun runs it) imported trainer.cli, the readers and torch before
    any handler: a stop in its first half second was a KeyboardInterrupt traceback."""
    (tmp_path / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "STOP_AT": "trainer.cli:1"}
    out = subprocess.run([sys.executable, "-m", "trainer", "--help"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert (out.returncode, out.stderr, out.stdout) == (130, "python -m trainer: stopped; run it again\n", "")


def test_octviewer_train_stopped_while_it_loads_is_one_line(monkeypatch, capsys):
    """A11-7: the ``octviewer-train`` entry point was trainer.cli:main, whose imports ran before its handlers
    (Ctrl-C at 0.1-0.4 s a traceback, SIGTERM a silent exit 143); it is ``octviewer.cli.train_main`` now."""
    import types

    from octviewer import cli

    class Loading(types.ModuleType):
        def __getattr__(self, attr):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "trainer.cli", Loading("trainer.cli"))
    assert cli.train_main([]) == 130
    assert capsys.readouterr().err == "octviewer-train: stopped; run it again\n"


def test_the_entry_points_reach_their_handlers_before_numpy():
    """A11-7 (low): ``import octviewer.cli`` ran the package's ``__init__`` (numpy, the readers: ~0.1 s) before
    ``core.stop``; the package and ``octviewer.core`` now import their names when first used."""
    code = ("import sys, octviewer.cli, octviewer.core.stop, octviewer.core.files; "
            "print(sorted(m for m in ('numpy', 'pydicom', 'octviewer.io') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
    code = "from octviewer import OctVolume, load_volume; from octviewer.core import Prediction; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout == "ok\n"


@pytest.mark.parametrize("module, heavy, prog", [
    ("octviewer.pipeline.measure_cli", "octviewer.pipeline.measure_cli:2", "octviewer-measure"),
    ("octviewer.pipeline.predict_cli", "octviewer.pipeline.predict_cli:2", "octviewer-predict"),
    ("octviewer", "octviewer.cli:1", "python -m octviewer"),
])
def test_the_batch_commands_and_the_viewer_run_as_modules_stop_in_one_line(tmp_path, module, heavy, prog):
    """A12-5: ``python -m octviewer.pipeline.measure_cli`` (docs/structure.md) stopped in its first 0.4 s printed a
    KeyboardInterrupt traceback (its relative imports ran before its ``__main__`` block); ``python -m octviewer``
    too."""
    (tmp_path / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "STOP_AT": heavy}
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 130 and out.stdout == "", out.stderr
    assert out.stderr.startswith(f"{prog}: stopped; ") and out.stderr.count("\n") == 1, out.stderr
