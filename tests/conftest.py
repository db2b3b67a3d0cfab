import gc
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The viewer keeps QSettings under $XDG_CONFIG_HOME: give the tests (and the processes they start)
# their own, so a test run never changes the user's recent files, CAM opacity or device.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="octviewer-test-config-")
# The results store (octviewer.pipeline.store) likewise: a test run never reads or fills the user's.
os.environ["OCTVIEWER_DATA"] = tempfile.mkdtemp(prefix="octviewer-test-data-")


@pytest.fixture(autouse=True)
def _qt_garbage_dies_on_the_main_thread():
    """A finished test's Qt objects are collected here, on the GUI thread. Left to a later garbage
    collection, they can die on a worker thread (a manifest check still reading volumes), where a
    QObject destructor deadlocked with the GUI thread: Qt's connection lock against the GIL (a CI
    run hung in tests/test_gui_retrain.py that way)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The shared real/third-party sample files; tests that need them skip when unset."""
    root = os.environ.get("OCTVIEWER_SAMPLES")
    if not root or not Path(root).is_dir():
        pytest.skip("OCTVIEWER_SAMPLES is not set to the shared samples folder")
    return Path(root)


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A small synthetic cohort (tiny preset) written once per test session; returns its manifest."""
    from octviewer.synth import generate_cohort

    return generate_cohort(tmp_path_factory.mktemp("cohort"), patients=12, preset="tiny", seed=3)


@pytest.fixture
def small_volume():
    from octviewer.synth import random_eye, synth_scan

    rng = np.random.default_rng(0)
    return synth_scan(random_eye(rng, "OS", True), "tiny", seed=5, patient_id="PAT-SECRET").volume


def open_window(qtbot, monkeypatch, model_path):
    """The main window on a model for GUI tests, as a generator for a fixture to yield from: message
    boxes recorded (``window.warnings``, ``window.infos``; questions answered No) and the quality
    gate switched off through its menu entry, as a user would, because these tests open tiny or
    made-up cubes the gate refuses (tests/test_wiring.py tests the gate itself)."""
    from PySide6.QtWidgets import QMessageBox

    from octviewer.gui.main_window import MainWindow
    from octviewer.model import Predictor

    warnings, infos = [], []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warnings.append(a[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: infos.append(a[2]))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w = MainWindow(Predictor(str(model_path), device="cpu"))
    w.warnings, w.infos = warnings, infos
    qtbot.addWidget(w)
    w.show()
    w.menu_actions["quality_gate"].trigger()
    assert not w.state.options.gate
    yield w
    w.tasks.shutdown()


# ---------------------------------------------------------------- test tiers
# Markers (registered in pyproject.toml): ``gui`` for tests that use qtbot (the window or a widget),
# ``samples`` for tests that need the real files under OCTVIEWER_SAMPLES, ``slow`` for tests that take
# more than a few seconds alone on 2 cores (a training run, a cohort, a whole-window walk-through, a
# kill-and-resume run). ``python -m pytest -m "not slow"`` is the fast tier for development; CI runs
# everything. The slow list is by measurement: OCTVIEWER_TEST_TIMES=times.csv writes each test's wall
# and CPU seconds (set-up included), which is what decides (CPU time, because the wall time of a shared
# machine says more about the neighbours than about the test).

#: test (file::name, parameters dropped) or whole file -> slow; measured as above, > ~4 s of CPU
SLOW = {
    "test_pipeline_batch.py::test_resume_after_sigkill_gives_the_same_csv",
}


def _slow(nodeid: str) -> bool:
    path, _, name = nodeid.partition("::")
    file = path.rsplit("/", 1)[-1]
    return file in SLOW or f"{file}::{name.split('[', 1)[0]}" in SLOW


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "qtbot" in fixtures or "qapp" in fixtures:
            item.add_marker(pytest.mark.gui)
        if "samples_dir" in fixtures:
            item.add_marker(pytest.mark.samples)
        if _slow(item.nodeid):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    target = os.environ.get("OCTVIEWER_TEST_TIMES")
    if not target:
        yield
        return
    import time

    wall, cpu = time.perf_counter(), time.process_time()
    yield
    with open(target, "a") as f:
        f.write(f"{item.nodeid},{time.perf_counter() - wall:.2f},{time.process_time() - cpu:.2f}\n")
