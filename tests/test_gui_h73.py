"""H73: H70's study items relanded with their breakage fixed, and W18 (a scan cut short, in a manifest study and
in the DICOM reader), through the window's own actions. Each GUI test saves what it checked as a screenshot under
$H73_GRABS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_study_headers import _header_date, _scans, _write  # noqa: E402


def _grab(widget, name: str) -> None:
    folder = os.environ.get("H73_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


# ---------------------------------------------------------------- W8's splitter: the dock's width

@pytest.mark.gui
def test_the_study_dock_opens_as_wide_as_its_panel_with_the_problems_splitter(qtbot, window, monkeypatch, demo,
                                                                               tmp_path):
    """W8 put the tree on a splitter with the problems list. A splitter of Preferred width gave the panel a size
    hint of 174 px (not 264): the Study dock opened at its 180 px minimum in a 1400 px window, under a panel
    189 px wide that scrolled sideways, and a click at a scan's middle in the squeezed tree fell outside it."""
    from PySide6.QtWidgets import QScrollArea

    w = window
    w.resize(1400, 850)
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    panel = _open_folder(qtbot, w, monkeypatch, root)
    qtbot.wait(50)
    scroll = next(p for p in _parents(panel) if isinstance(p, QScrollArea))
    _grab(w, "w8_study_dock_width")
    assert w.study.dock.width() >= panel.sizeHint().width() > 250, (w.study.dock.width(), panel.sizeHint())
    assert not scroll.horizontalScrollBar().isVisible()
    assert panel.splitter.sizes()[1] > 0 and panel.tree.viewport().width() > 200


def _open_manifest(qtbot, w, monkeypatch, manifest: Path):
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(w.study.panel.index_ready, timeout=30000):
        w.menu_actions["open_study_manifest"].trigger()
    return w.study.panel


def _parents(widget):
    while widget is not None:
        yield widget
        widget = widget.parentWidget()


# ---------------------------------------------------------------- W18: a scan cut short

def test_a_dicom_file_cut_short_is_called_truncated_with_its_bytes(tmp_path):
    """The first 6 kB of a scan (its header cut) and half of one (its compressed frames cut) were refused as
    having "no pixel data" or a vague "truncated or damaged"; now the reader says truncated, where and how much."""
    from octviewer import VolumeReadError, load_volume
    from octviewer.io.dicom import cut_short
    from octviewer.resources import DEMO_SCAN

    data = Path(DEMO_SCAN).read_bytes()
    head = tmp_path / "head.dcm"
    head.write_bytes(data[:6000])
    with pytest.raises(VolumeReadError) as err:
        load_volume(head)
    message = str(err.value)
    assert "truncated: it ends inside its header, 6000 of at least" in message and "no pixel data" not in message
    assert "head.dcm" in message
    frames = tmp_path / "frames.dcm"
    frames.write_bytes(data[:-100])
    assert cut_short(frames) == (f"it ends inside its compressed pixel data after {len(data) - 100} bytes "
                                 "(their end mark is missing)")
    assert cut_short(DEMO_SCAN) is None


def test_a_native_dicom_cut_inside_its_pixel_data_gives_n_of_m_bytes(tmp_path, small_volume):
    from octviewer import VolumeReadError, load_volume
    from octviewer.io import save_volume
    from octviewer.io.dicom import cut_short

    path = tmp_path / "native.dcm"
    save_volume(small_volume, path)
    data = path.read_bytes()
    assert cut_short(path) is None
    path.write_bytes(data[:-500])
    assert cut_short(path) == f"it ends inside its pixel data, {len(data) - 500} of {len(data)} bytes"
    with pytest.raises(VolumeReadError) as err:
        load_volume(path)
    assert "truncated" in str(err.value) and "no pixel data" not in str(err.value)


@pytest.mark.gui
def test_a_manifest_scan_cut_short_is_listed_among_the_problems_when_the_study_opens(qtbot, window, monkeypatch,
                                                                                  demo, tmp_path):
    """A manifest row listing the first 6 kB of a scan: it was indexed as a visit, listed only for its date, and
    opening it said "no pixel data" (W18). It is now left out, with why, when the study opens."""
    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od, os_scan = _scans(root, "OD")[0], _scans(root, "OS")[0]
    patient = od.parent.name
    size = os_scan.stat().st_size
    os_scan.write_bytes(os_scan.read_bytes()[:6000])
    manifest = _write(tmp_path / "m.csv", [[str(od), patient, "OD", _header_date(od).isoformat()],
                                           [str(os_scan), patient, "OS", _header_date(os_scan).isoformat()]])
    w = window
    panel = _open_manifest(qtbot, w, monkeypatch, manifest)
    listed = panel.problems.text().replace("\u200b", "")
    qtbot.wait(50)  # laid out before the grab
    _grab(panel, "w18_cut_short_listed")
    assert f"row 3: cut short: it ends inside its pixel data, 6000 of {size} bytes" in listed, listed
    assert "it is not used" in listed
    status = panel.status.text().replace("\u200b", "")
    assert "1 scan cut short" in status and "m.csv: 1 scan of 1 patient, " in status, status  # not "1 scans"
    scans = [s.path for s in panel.index.scans]
    assert scans == [str(od)]


# ---------------------------------------------------------------- W2's rule on the identified OU report

@pytest.mark.gui
def test_the_identified_ou_report_names_the_row_id_with_the_header_id_beside_it(qtbot, window, monkeypatch, demo,
                                                                              tmp_path):
    """A manifest files a visit's scans under OTHER-7; their headers say the demo patient. The window title and
    the scan PDF said "OTHER-7 (the scan's header: ...)" (W2), the identified OU report "OTHER-7" alone."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_gui_walkthrough_h2 import _click_item

    from octviewer.gui.export import ou_pdf

    od, os_scan = _scans(demo, "OD")[0], _scans(demo, "OS")[0]
    patient = od.parent.name
    manifest = _write(tmp_path / "m.csv", [[str(od), "OTHER-7", "OD", _header_date(od).isoformat()],
                                           [str(os_scan), "OTHER-7", "OS", _header_date(os_scan).isoformat()]])
    w = window
    panel = _open_manifest(qtbot, w, monkeypatch, manifest)
    _click_item(qtbot, panel.tree, panel.tree.topLevelItem(0).child(0))  # OTHER-7's visit
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=120000)
    captured = {}
    real = ou_pdf.write_pdf

    def spy(doc: QTextDocument, path, *args, **kwargs):
        captured.setdefault("text", []).append(doc.toPlainText())
        return real(doc, path, *args, **kwargs)
    monkeypatch.setattr(ou_pdf, "write_pdf", spy)
    both = f"OTHER-7 (the scan's header: {patient})"
    for answer, out in ((QMessageBox.Yes, tmp_path / "ou_id.pdf"), (QMessageBox.No, tmp_path / "ou_anon.pdf")):
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, _out=out, **k: (str(_out), ""))
        monkeypatch.setattr(QMessageBox, "question", lambda *a, _answer=answer, **k: _answer)
        w.menu_actions["export_ou"].trigger()
        assert out.read_bytes()[:5] == b"%PDF-"
    identified, anonymised = captured["text"]
    assert both in identified, identified
    assert "OTHER-7" not in anonymised and patient not in anonymised
    if os.environ.get("H73_GRABS"):
        shutil.copy(tmp_path / "ou_id.pdf", os.path.join(os.environ["H73_GRABS"], "w2_ou_identified.pdf"))
