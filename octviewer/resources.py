"""Where the bundled demo scans and demo model live.

In an installed wheel they are package data of ``octviewer.demo_data`` (setup.py maps the
checkout's top-level ``resources/`` folder to it), read through importlib.resources; in a source
checkout (or an editable install that does not map it) the ``resources/`` folder itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _root() -> Path:
    try:
        root = resources.files("octviewer.demo_data")  # a namespace package (no __init__.py)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "resources"
    # a wheel is installed unpacked, so the package data are ordinary files; joinpath turns the
    # namespace package's MultiplexedPath into a plain Path
    return Path(str(root.joinpath("models"))).parent


RESOURCES = _root()
DEMO_MODEL = RESOURCES / "models" / "demo_semt.safetensors"
DEMO_SAMPLES = RESOURCES / "samples"
DEMO_SCAN = DEMO_SAMPLES / "demo_advanced_glaucoma_OD.dcm"  # what ``octviewer --demo`` opens
