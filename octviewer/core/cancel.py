"""The one cancellation signal of every layer.

Why in core: reading, the quality gate, the network, the measurement, study indexing and the
trainer's checks can all be stopped by the user, and each caller above them (the viewer, the batch
commands) must recognise a stop the same way, whichever layer raised it.
"""


class Cancelled(Exception):
    """The user (or a newer request) stopped this work; not an error and never shown as one."""
