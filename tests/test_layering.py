"""The layers import only downwards: no Qt below the GUI, no torch in core/io/synth.

Run in fresh interpreters, since a module imported by another test would hide a violation.
"""

import subprocess
import sys

import pytest

RULES = [
    ("octviewer.core", ("PySide6", "pyqtgraph", "torch")),
    ("octviewer.io", ("PySide6", "pyqtgraph", "torch")),
    ("octviewer.synth", ("PySide6", "pyqtgraph", "torch")),
    ("octviewer.structure", ("PySide6", "pyqtgraph", "torch")),
    ("octviewer.study", ("PySide6", "pyqtgraph", "torch")),
    ("octviewer.model", ("PySide6", "pyqtgraph")),
    ("trainer", ("PySide6", "pyqtgraph")),
]


@pytest.mark.parametrize("package, forbidden", RULES)
def test_layer_does_not_import(package, forbidden):
    import importlib.util
    import pkgutil

    spec = importlib.util.find_spec(package)
    if spec is None:
        pytest.skip(f"{package} not present yet")
    modules = [package] + [f"{package}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations)
                           if m.name != "__main__"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [f for f in {forbidden!r} if f in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{package} imports {out.stdout.strip()}"
