"""Ctrl-C or SIGTERM in the viewer's terminal: one line and exit 130, never a traceback (attack run 11, A11-11).

While Qt, torch and the model load, the entry point's ``core.stop.stoppable`` ends the program; once the window
exists, ``gui.app.closed_by_stop_signals`` closes it as its close button does.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _viewer(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("OCTVIEWER_DATA", None)
    code = "import sys; from octviewer.cli import viewer_main; sys.exit(viewer_main([]))"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_once_the_window_is_up_closes_it(tmp_path, sig):
    proc = _viewer(tmp_path)
    store = tmp_path / "data" / "octviewer" / "results.sqlite"  # opened just before the window is made
    deadline = time.monotonic() + 120
    while not store.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the window shown, the event loop running
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "octviewer: stopped; the window closes", err


def test_a_stop_while_it_loads_is_one_line(monkeypatch, capsys):
    """While Qt, pyqtgraph, torch and the model load (seconds), Ctrl-C ends the program in one line, exit 130."""
    import types

    from octviewer import cli

    class Loading(types.ModuleType):
        def __getattr__(self, attr):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "octviewer.gui.app", Loading("octviewer.gui.app"))
    assert cli.viewer_main([]) == 130
    assert capsys.readouterr().err == "octviewer: stopped; run it again\n"
