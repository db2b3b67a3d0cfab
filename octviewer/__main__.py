"""``python -m octviewer``: the viewer, as ``octviewer``; the stop handlers come before the window's imports (Qt,
torch: a stop while they loaded was a KeyboardInterrupt traceback, attack run 12, A12-5)."""

from octviewer.core.stop import run_module

run_module("octviewer.cli", prog="python -m octviewer", entry="viewer_main")
