"""Closing the window while a study folder is being indexed: never an abort, never a wait.

Run in a child process: the failure this guards against ("QThread: Destroyed while thread is still
running", exit 134) takes the whole interpreter down, which would end the test run with it.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys, time
    from PySide6.QtWidgets import QApplication
    from octviewer.gui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(None)
    window.show()
    window.study.open_folder(sys.argv[1])
    app.processEvents()  # indexing is under way (the FIFO comes first)
    busy = window.study.panel.is_busy()
    closing = time.monotonic()
    window.close()
    app.processEvents()
    print(f"busy={busy} close_s={time.monotonic() - closing:.2f}", flush=True)
""")


def test_closing_the_window_mid_index_is_clean(tmp_path):
    # Old: a FIFO named *.dcm blocked indexing for good; closing froze 5 s, then exit 134.
    folder = tmp_path / "study"
    folder.mkdir()
    os.mkfifo(folder / "a_pipe.dcm")
    for i in range(4000):  # enough files that indexing is still running at the close
        (folder / f"note{i:05d}.txt").write_text("not a scan")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Destroyed while thread" not in done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("busy="))
    close_s = float(line.split("close_s=")[1])
    assert line.startswith("busy=True") and close_s < 2.0, line
    assert time.monotonic() - start < 110
