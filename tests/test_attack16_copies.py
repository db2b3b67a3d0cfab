"""Attack run 16, A16-15, A16-16 and A16-12: which files the study's checks are about, read by the views from the
index (one rule), not by kind alone. Each test goes through the window: File > Open study folder or Open study
manifest, the Study tree, Trend and OU view as a user clicks them, reading what the user sees."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_attack16_trend import _trend  # noqa: E402
from test_study_headers import _header_date, _scans  # noqa: E402


@pytest.fixture(scope="module")
def progressing(tmp_path_factory) -> Path:
    """The demo's progressing patient (DEMO00-000, 'demo' preset, seed 0) at four yearly visits: its OD's global
    RNFL falls about 5 µm/yr, significant (p < 0.05) over the four visits, not over the first three."""
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("prog") / "study", patients=1, visits=4, preset="demo", seed=0)


def _redated_copy(scan: Path, day: dt.date) -> Path:
    """``scan`` saved again with its header dated ``day`` (a date-shifting export: same UID and pixels)."""
    import pydicom

    ds = pydicom.dcmread(scan)
    stamp = day.strftime("%Y%m%d")
    for key in ("StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate"):
        if key in ds:
            setattr(ds, key, stamp)
    if "AcquisitionDateTime" in ds:
        ds.AcquisitionDateTime = stamp + "101010"
    out = scan.with_name(f"OD_{stamp}.dcm")
    ds.save_as(out)
    return out


def _text(html: str) -> str:
    return " ".join(re.sub("<[^>]+>", " ", html).split())


# ---------------------------------------------------------------- A16-15: the copy leaves its later visit only


@pytest.mark.gui
def test_a16_15_a_redated_copy_beside_the_visits_own_scan_leaves_the_visit_its_scan(
        qtbot, window, monkeypatch, progressing, tmp_path):
    """The second visit's OD scan re-dated a day before the last visit's OD scan (one visit, A15-17's shape): the
    Trend left the whole last visit out of its slopes (the genuine scan with the copy: a significant loss read
    "not significant") and drew the mean of the two; the OU view of that visit showed the copy's RNFL (the older
    image). Now the copy is left out of that visit only: the Trend is the one of the study without the copy, the
    OU view shows the visit's own scan, and both say the check."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    from octviewer.gui.study.trend_view import check_note

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)  # the study as it was: the reference
    before = _trend(qtbot, w, panel).history
    assert before.flagged("rnfl"), before.trends["rnfl"]
    od = _scans(root, "OD")
    copy = _redated_copy(od[1], _header_date(od[-1]) - dt.timedelta(days=1))
    w.study.trend_dialog.close()
    panel = _open_folder(qtbot, w, monkeypatch, root)
    kinds = {c.kind for c in w.study.index.warnings}
    assert kinds == {"two visits"}, w.study.index.warnings  # not 'repeat': the visit has one scan of its own
    assert w.study.index.later_copies() == {str(copy)}
    view = _trend(qtbot, w, panel)
    history = view.history
    rnfl = [v for _, v in history.series["rnfl"]]
    assert np.allclose(rnfl, [v for _, v in before.series["rnfl"]]), (rnfl, before.series["rnfl"])
    assert len(history.fitted("rnfl")) == 4 and not history.twice and not history.disputed
    assert history.trends["rnfl"].n == 4 and history.flagged("rnfl")
    summary = _text(view.summary.text())
    assert "significant change" in summary and "not in the slope" not in summary, summary
    assert history.check_note("two visits") in view.notes  # named by its visits' places (H112, X4)
    assert "another visit with another scan of the eye is plotted and fitted without it" in check_note("two visits", 2)
    w.study.trend_dialog.close()

    # the OU view of the last visit: the visit's own OD scan, not the copy, and the check above the eyes
    last = panel.tree.topLevelItem(0).child(panel.tree.topLevelItem(0).childCount() - 1)
    _click_item(qtbot, panel.tree, last)
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=300000)
    eye = w.study.ou_view.summary.eyes["OD"]
    assert eye.structure_path == str(od[-1]) and eye.paths == [str(od[-1])] and eye.n_predictions == 1, eye.paths
    shown = w.study.ou_view.checks.text()
    assert "a trend would count it twice" in shown and f"it is counted at {_header_date(od[1])} only" in shown, shown


# ---------------------------------------------------------------- A16-16: a field's name check is the field's


@pytest.mark.gui
def test_a16_16_a_fields_name_check_does_not_withhold_the_flag_of_the_scans_slope(
        qtbot, window, monkeypatch, progressing, tmp_path):
    """Every scan names ALPHA^ANN born 1950; the OD field of the first visit ALPHA^ANNE, same birth date: the field
    is kept with a check. It was a 'people' check, and the Trend withheld the red flag from the RNFL loss measured
    on the scans, saying "this patient's scans name different people". Now it is a 'field' check: the RNFL slope
    is flagged, the words say the field differs from the scans, and only the measured VF series is not flagged."""
    from test_attack16_person import _rename

    from octviewer.gui.study.checks import KINDS
    from octviewer.gui.study.trend_view import MIXED

    root = Path(shutil.copytree(progressing, tmp_path / "study"))
    for scan in (root / "scans").rglob("*.dcm"):
        _rename(scan, "ALPHA^ANN", "", "19500101")
    fields = sorted((root / "perimetry").rglob("*OD*.dcm")) or sorted((root / "perimetry").rglob("*.dcm"))
    for f in (root / "perimetry").rglob("*.dcm"):
        _rename(f, "ALPHA^ANN", "", "19500101")
    _rename(fields[0], "ALPHA^ANNE", "", "19500101")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    checks = w.study.index.warnings
    assert {c.kind for c in checks} == {"field"}, checks
    assert {Path(c.path).name[:2] for c in checks} == {"OD"}  # on the scans of the field's eye
    view = _trend(qtbot, w, panel)
    history = view.history
    summary = _text(view.summary.text())
    assert history.flagged("rnfl") and not history.mixed(), summary
    assert KINDS["people"][1] not in summary and MIXED not in summary, summary
    note = history.check_note("field")
    assert note in view.notes and "names the patient otherwise in its header than the scans do" in note
    assert not any(history.flagged(n) for n in ("md_measured", "vfi_measured"))


# ---------------------------------------------------------------- A16-12: headerless exports compared by content


def _export(scan: Path, kind: str, out: Path) -> Path:
    """``scan``'s volume exported as ``kind``: a .npy, a folder of 8-bit PNG B-scans, or a TIFF stack."""
    from PIL import Image

    from octviewer.io import load_volume

    data = load_volume(scan).data
    if kind == "npy":
        np.save(out.with_suffix(".npy"), data)
        return out.with_suffix(".npy")
    if kind == "png":
        out.mkdir()
        for i, b in enumerate(data):
            Image.fromarray(b).save(out / f"B{i + 1:03d}.png")
        return out
    import tifffile

    tifffile.imwrite(out.with_suffix(".tif"), data)
    return out.with_suffix(".tif")


@pytest.mark.gui
@pytest.mark.parametrize("kind", ["npy", "png", "tiff"])
def test_a16_12_a_headerless_export_of_another_patients_scan_is_listed_by_open_study_manifest(
        qtbot, window, monkeypatch, progressing, tmp_path, kind):
    """H100's npy.csv / png.csv: the rows file DEMO00-000's OD under its patient and a NumPy (B-scan images, TIFF)
    export of it under DEMO00-001, whose other OD row is an export of another scan (same B-scan count). The export
    was used as DEMO00-001's scan, nothing said (the trainer refuses the rows by content). Now both files of the one
    scan are listed and neither used, as for a DICOM copy; the export of another scan is used."""
    from PySide6.QtWidgets import QFileDialog

    od = _scans(progressing, "OD")
    os_ = _scans(progressing, "OS")
    copy = _export(od[1], kind, tmp_path / "copy")
    other = _export(od[2], kind, tmp_path / "other")
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["path", "patient_id", "eye", "visit"])
        first, second = _header_date(od[1]).isoformat(), _header_date(od[2]).isoformat()
        rows.writerows([[od[1], "DEMO00-000", "OD", first], [copy, "DEMO00-001", "OD", first],
                        [other, "DEMO00-001", "OD", second], [os_[1], "DEMO00-001", "OS", first]])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(manifest), ""))
    with qtbot.waitSignal(window.study.panel.index_ready, timeout=60000):
        window.menu_actions["open_study_manifest"].trigger()
    panel = window.study.panel
    used = {s.path for s in panel.index.scans}
    assert str(copy) not in used and str(od[1]) not in used and str(other) in used, used
    problems = " ".join(panel.problems.text().replace("\u200b", "").split())
    assert (f"{copy.name} are one scan (the same pixel data under other header fields) filed under the patients "
            "DEMO00-000 and DEMO00-001: whose scan it is cannot be told; neither is used") in problems, problems
    patient = next(panel.tree.topLevelItem(k) for k in range(panel.tree.topLevelItemCount())
                   if panel.tree.topLevelItem(k).text(0).startswith("DEMO00-001"))
    assert patient.childCount() == 2  # its visits: the other export's and the OS scan's
