"""``python -m octviewer.synth``: ``octviewer-synth``; the stop handlers come before the generator's imports (a
stop while they loaded was a KeyboardInterrupt traceback, attack run 12, A12-5)."""

from octviewer.core.stop import run_module

run_module("octviewer.synth.cli", prog="python -m octviewer.synth")
