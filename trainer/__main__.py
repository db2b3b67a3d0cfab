"""``python -m trainer`` (as torchrun runs it): ``octviewer-train``."""

from octviewer.core.stop import run_module

# the handlers before trainer.cli's imports (torch, the octviewer readers): a stop then was a traceback (A11-7)
run_module("trainer.cli", prog="python -m trainer")
