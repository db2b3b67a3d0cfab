"""Attack run 13's findings in the study views and the OU report (H81), each through the window's own actions:
File > Open study folder, the Study tree, OU view, Trend, File > Export OU report… (dialogs patched)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_study_headers import _scans  # noqa: E402


@pytest.fixture
def window(qtbot, monkeypatch):
    from conftest import open_window

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.exists():
        pytest.skip("demo model not built")
    yield from open_window(qtbot, monkeypatch, DEMO_MODEL)


def _open_folder(qtbot, w, monkeypatch, root: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(root))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=60000):
        w.menu_actions["open_study_folder"].trigger()
    return w.study.panel


def _visit_item(panel, label: str):
    top = panel.tree.topLevelItem(0)
    return next(top.child(k) for k in range(top.childCount()) if top.child(k).text(0).startswith(label))


def _export_ou(qtbot, w, monkeypatch, out: Path, identified: bool) -> Path:
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes if identified else QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    return out


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _truncate(path: Path, new_name: str, cut: int = 40000) -> Path:
    data = path.read_bytes()
    path.unlink()
    bad = path.with_name(new_name)
    bad.write_bytes(data[: len(data) - cut])
    return bad


# ---------------------------------------------------------------- A13-3: the picture of the eyes

@pytest.mark.gui
@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfimages") is None, reason="poppler-utils")
def test_the_ou_reports_picture_never_prints_an_unreadable_scans_error(qtbot, window, monkeypatch, demo, tmp_path):
    """A13-3: the OD scan of a visit, named as clinics name files (patient name, birth date), is cut short. The
    anonymised OU report's picture of the eyes printed "scan unreadable: SMITH_JOHN_1950-01-01_OD_... : the pixel
    data is truncated ..." in the en-face's place (its text withheld it, A10-3). The picture now says the scan is
    unreadable and withholds why (anonymised) or points to the report's text (identified); the screen keeps it."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")[1]
    stamp = od.stem[3:]
    bad = _truncate(od, f"SMITH_JOHN_1950-01-01_OD_{stamp}.dcm")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    visit = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}"
    _click_item(qtbot, panel.tree, _visit_item(panel, visit))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    view = w.study.ou_view
    qtbot.waitUntil(lambda: view.summary is not None, timeout=180000)
    on_screen = view.columns["OD"].image.text()
    assert bad.name in on_screen  # the screen may keep the error
    grabbed: list[str] = []
    real_grab = view.eye_pair.grab

    def grab(*args):  # the labels' text at the moment the page's picture is taken
        grabbed.append(view.columns["OD"].image.text())
        return real_grab(*args)
    monkeypatch.setattr(view.eye_pair, "grab", grab)
    anonymised = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou_anon.pdf", identified=False)
    identified = _export_ou(qtbot, w, monkeypatch, tmp_path / "ou_id.pdf", identified=True)
    assert grabbed == ["scan unreadable (details withheld: anonymised report)",
                       "scan unreadable (reason in the report's text)"], grabbed
    assert view.columns["OD"].image.text() == on_screen  # put back on screen
    text = _pdf_text(anonymised)
    assert "SMITH" not in text and "1950" not in text and "truncated" not in text
    assert "truncated" in _pdf_text(identified)  # the identified report gives the reason in its text
    images = tmp_path / "images"
    images.mkdir()
    subprocess.run(["pdfimages", "-png", str(anonymised), str(images / "ou")], check=True)
    assert sorted(images.iterdir()), "the report's picture of the eyes"
