"""``octviewer``: start the viewer, optionally on a file, the demo, or headless for a screenshot."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def dark_palette(app):
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    p = QPalette()
    for role, colour in [(QPalette.Window, "#202124"), (QPalette.WindowText, "#e8eaed"), (QPalette.Base, "#17181a"),
                         (QPalette.AlternateBase, "#2a2b2e"), (QPalette.Text, "#e8eaed"), (QPalette.Button, "#2d2e31"),
                         (QPalette.ButtonText, "#e8eaed"), (QPalette.Highlight, "#1a73e8"),
                         (QPalette.HighlightedText, "#ffffff"), (QPalette.ToolTipBase, "#2d2e31"),
                         (QPalette.ToolTipText, "#e8eaed"),
                         # a field's hint (patient ID, YYYY-MM-DD): Qt's default is black, unreadable here
                         (QPalette.PlaceholderText, "#8a8f98")]:
        p.setColor(role, QColor(colour))
    # disabled controls must look disabled: with one text colour for every state, Start, Resume and
    # Load would look as live as Stop while a training runs
    for role, colour in [(QPalette.ButtonText, "#6f7378"), (QPalette.WindowText, "#7c8086"), (QPalette.Text, "#7c8086"),
                         (QPalette.Button, "#25262a")]:
        p.setColor(QPalette.Disabled, role, QColor(colour))
    app.setPalette(p)


def collect_garbage_on_gui_thread(interval_s: float = 1.0):
    """Cyclic garbage is collected on the GUI thread only (``background.collect_garbage_on_gui_thread``)."""
    from .background import collect_garbage_on_gui_thread as install

    return install(interval_s)


@contextlib.contextmanager
def closed_by_stop_signals(window):
    """Ctrl-C or SIGTERM in the viewer's terminal close the window as its close button does: it asks
    where work would be lost and lets running work end cleanly. Ctrl-C was a KeyboardInterrupt
    traceback from whichever Python callback ran next, and the window stayed open (attack run 11,
    A11-11). Python sees a signal only when it runs: the garbage collector's timer (every second) is
    enough. Yields ``{"stopped": bool}`` for main's exit status; the earlier handlers come back after."""
    import signal

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    seen = {"stopped": False}

    def stop(signum, frame):
        if QApplication.activeModalWidget() is not None:  # the close question (or another) is open
            return
        if not seen["stopped"]:
            print("octviewer: stopped; the window closes", file=sys.stderr)
        seen["stopped"] = True
        QTimer.singleShot(0, window.close)
    earlier = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, handler in earlier.items():
            signal.signal(sig, handler)


def open_store():
    """The user's results store, or None (with a warning) when there is no writable data folder."""
    from octviewer.pipeline.store import ResultsStore, StoreError

    try:
        return ResultsStore()
    except (StoreError, OSError) as exc:
        print(f"warning: results are not remembered: {exc}", file=sys.stderr)
        return None


def screenshot_problem(path: Path, inputs=(), model: Path | None = None) -> str:
    """Why ``--screenshot PATH`` cannot be written, or "", looked at before the analysis: a folder,
    a path under a file or in a missing folder, a link, a FIFO. Each ran the analysis (13-23 s) and
    exited 0 with no file and no word (attack run 3 F24); CI and the screenshot script trust it.
    Nor a file the viewer reads or keeps (``inputs``, the model, the store, octviewer's secrets: the
    exports' rule, ``export.targets.target_problem``), a file of a B-scan folder opened, or any existing
    file that is not a PNG: the scan opened, the model and the pseudonym salt were each replaced by the
    PNG, exit 0 (attack run 7, A7-20)."""
    from .export.targets import target_problem

    if not path.name:
        return "give a file name"
    if not path.parent.is_dir():
        return f"{path.parent} is a file, not a folder" if path.parent.exists() else f"no folder {path.parent}"
    if path.exists() and any(os.path.isdir(given) and os.path.samefile(path.parent, given) for given in inputs):
        return "is a file of the folder being opened (a B-scan image); refusing to overwrite it: give another name"
    if problem := target_problem(path, inputs, model, "png"):
        return problem
    return ""


def save_png(pixmap, path: Path) -> str:
    """Write ``pixmap`` as PNG to ``path`` (never through a link); the problem in words, or ""."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from octviewer.core.files import FileRefused, open_for_writing

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buffer, "PNG"):
        return "the window could not be rendered as PNG"
    try:
        with os.fdopen(open_for_writing(path, 0o644), "wb") as f:
            f.write(bytes(data))
    except FileRefused as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot be written ({exc.strerror or type(exc).__name__})"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="octviewer", description="OCT glaucoma viewer (research use only).")
    parser.add_argument("file", nargs="?", help="OCT file or folder to open")
    parser.add_argument("--demo", action="store_true", help="open a bundled synthetic sample with the demo model")
    parser.add_argument("--model", type=Path, help="model file (default: the bundled demo model)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, mps (default: the last one chosen)")
    parser.add_argument("--screenshot", type=Path, help="render the window after the analysis, save PNG, exit")
    args = parser.parse_args(argv)
    inputs = [args.file] if args.file else []
    if args.screenshot is not None and (problem := screenshot_problem(args.screenshot, inputs, args.model)):
        print(f"octviewer: --screenshot {args.screenshot}: {problem}", file=sys.stderr)
        return 3

    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from octviewer.model import ModelFileError, Predictor
    from octviewer.resources import DEMO_MODEL, DEMO_SCAN

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    collector = collect_garbage_on_gui_thread()  # noqa: F841 (its timer lives as long as main)
    dark_palette(app)
    from octviewer.core.files import home_problem

    if problem := home_problem():  # the settings, salt, keys and store have no place (attack run 10, A10-18)
        print(f"octviewer: {problem}", file=sys.stderr)
        if not args.screenshot:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.critical(None, "OCT viewer cannot start", problem[0].upper() + problem[1:] + ".")
        return 2
    pg.setConfigOptions(background="#111214", foreground="#e8eaed", imageAxisOrder="row-major")
    from .settings import qsettings

    device = args.device or qsettings().value("device", "auto", type=str)
    predictor, model_error = None, None
    model_path = args.model or DEMO_MODEL
    try:
        predictor = Predictor(str(model_path), device=device)
    except (ModelFileError, RuntimeError, ValueError, OSError) as exc:  # the viewer opens without a model
        model_error = str(exc)
        print(f"warning: {exc}", file=sys.stderr)
    store = open_store()
    window = MainWindow(predictor, model_error, store=store)
    with closed_by_stop_signals(window) as stop:
        if store is not None and store.notice:  # a damaged or newer store was moved aside
            window.statusBar().showMessage(store.notice, 20000)
        window.headless = bool(args.screenshot)
        window.show()
        target = args.file
        if args.demo and not target:
            if not DEMO_SCAN.exists():
                print(f"error: the bundled demo scan is missing ({DEMO_SCAN})", file=sys.stderr)
                return 2
            target = str(DEMO_SCAN)
        if target:
            window.open_path(target)
        if args.screenshot:
            def shoot():
                problem = save_png(window.grab(), args.screenshot)
                if problem:
                    print(f"octviewer: --screenshot {args.screenshot}: {problem}", file=sys.stderr)
                app.exit(3 if problem else 1 if window.failures else 0)  # a file that could not be opened fails the run

            window.settled.connect(lambda: QTimer.singleShot(300, shoot))  # analysed and measured
            QTimer.singleShot(300_000 if target else 500, shoot)  # never hang a headless run
        status = app.exec()
        return 130 if stop["stopped"] and not window.isVisible() else status  # core.stop.EXIT_STOPPED
