"""Console entry points: ``octviewer``, ``octviewer-synth``, ``octviewer-predict``, ``octviewer-measure``,
``octviewer-pacs``, ``octviewer-train``.

Imports stay inside the functions so that each command loads only its own layer (the synth and
predict commands never import Qt).
"""

from __future__ import annotations

import sys


def synth_main(argv: list[str] | None = None) -> int:
    from .core.stop import stoppable

    @stoppable("octviewer-synth", "run it again")  # as predict_main (attack run 10, A10-16's note)
    def run():
        from .synth.cli import main

        return main(argv)
    return run()


def train_main(argv: list[str] | None = None) -> int:
    from .core.stop import stoppable

    @stoppable("octviewer-train", "run it again")  # as predict_main: trainer.cli's imports (the readers, torch)
    def run():  # took ~0.5 s before its own handlers; a stop then was a traceback (attack run 11, A11-7)
        from trainer.cli import main

        return main(argv)
    return run()


def viewer_main(argv: list[str] | None = None) -> int:
    from .core.stop import stoppable

    @stoppable("octviewer", "run it again")  # while Qt, torch and the model load (seconds): a stop was a traceback;
    def run():  # once the window exists, gui.app.close_on_stop_signals closes it instead (attack run 11, A11-11)
        try:
            from .gui.app import main
        except ImportError as exc:
            print(f"The viewer cannot start: {exc}", file=sys.stderr)
            return 2
        return main(argv)
    return run()


def predict_main(argv: list[str] | None = None) -> int:
    from .core.stop import stoppable

    @stoppable("octviewer-predict")  # before the pipeline and the network load: a stop then was a traceback
    def run():  # or a silent kill, exit 143 (attack run 10, A10-1)
        from .core.files import no_home

        if no_home("octviewer-predict"):
            return 3  # an output (the salt, the results store) cannot be written: outputs.EXIT_OUTPUT
        from .pipeline.predict_cli import main

        return main(argv)
    return run()


def measure_main(argv: list[str] | None = None) -> int:
    from .core.stop import stoppable

    @stoppable("octviewer-measure")  # as predict_main
    def run():
        from .core.files import no_home

        if no_home("octviewer-measure"):
            return 3  # as predict_main
        from .pipeline.measure_cli import main

        return main(argv)
    return run()


def pacs_main(argv: list[str] | None = None) -> int:
    from .core.stop import stoppable

    @stoppable("octviewer-pacs", "run it again")  # its network stack loads for a second (A10-16)
    def run():
        from .core.files import no_home

        if no_home("octviewer-pacs"):
            return 2  # its settings, salt and store have no place
        from .pacs.cli import main

        return main(argv)
    return run()
