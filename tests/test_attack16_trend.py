"""Attack run 16, A16-3: the Trend names the study's checks of the scans it plots that bear on a trend, in the Study
panel's words (``gui.study.checks.KINDS``). Two people's scans under one ID ("people") made one slope flagged
"significant change" in red; one scan filed at two visits ("two visits") was counted twice. Each test goes through
the window: File > Open study folder, the eye clicked in the Study tree, Trend, then OU view and File > Export OU
report (anonymised). Screenshots go to $A16_GRABS when set."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from conftest import open_study_folder as _open_folder  # noqa: E402
from test_study_headers import _header_date, _scans  # noqa: E402


def _grab(widget, name: str) -> None:
    folder = os.environ.get("A16_GRABS")
    if folder:
        widget.grab().save(os.path.join(folder, f"{name}.png"))


def _child(item, prefix: str):
    return next(item.child(k) for k in range(item.childCount()) if item.child(k).text(0).startswith(prefix))


def _trend(qtbot, w, panel, eye: str = "OD"):
    """The first visit's ``eye`` clicked in the Study tree, then Trend, as a user does; the view once drawn."""
    from PySide6.QtCore import Qt
    from test_gui_walkthrough_h2 import _click_item

    _click_item(qtbot, panel.tree, _child(panel.tree.topLevelItem(0).child(0), eye))
    qtbot.mouseClick(panel.trend_button, Qt.LeftButton)
    view = w.study.trend_view
    qtbot.waitUntil(lambda: view.history is not None, timeout=300000)
    return view


def _anonymised_ou_report(qtbot, w, panel, monkeypatch, out: Path) -> str:
    """OU view of the first visit, then File > Export OU report… answered No (anonymised): the page's text."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    from test_gui_walkthrough_h2 import _click_item

    from octviewer.gui.export import ou_pdf

    _click_item(qtbot, panel.tree, panel.tree.topLevelItem(0).child(0))
    qtbot.mouseClick(panel.ou_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: w.study.ou_view.summary is not None, timeout=300000)
    captured = {}
    real = ou_pdf.write_pdf

    def spy(doc: QTextDocument, path, *args, **kwargs):
        captured["text"] = doc.toPlainText()
        return real(doc, path, *args, **kwargs)
    monkeypatch.setattr(ou_pdf, "write_pdf", spy)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.No)
    w.menu_actions["export_ou"].trigger()
    assert out.read_bytes()[:5] == b"%PDF-"
    return captured["text"]


def _no_identifier(page: str, root: Path, days, words=()) -> None:
    trend = page.split("Trend")[-1]
    for day in days:
        assert day.isoformat() not in page and str(day.year) not in trend, day
    for name in (*(p.name for p in (root / "scans").rglob("*.dcm")), *words):
        assert name not in page, name


# ---------------------------------------------------------------- 'people': two people under one ID

@pytest.fixture(scope="module")
def two_people(tmp_path_factory) -> Path:
    """One PatientID, two people (the tester's study's shape): the demo patient DEMO00-000's first OD scan, named
    ALPHA^ANN born 1950, and DEMO00-001's last three, re-saved under DEMO00-000 as ZULU^ZED born 1940 with another
    issuer. The index keeps them, with a 'people' check on each scan; the RNFL slope over the four is significant
    (-5.7 µm/yr, p=0.01), the one the Trend flagged in red."""
    import pydicom

    from octviewer.study.demo import write_demo_study

    demo = write_demo_study(tmp_path_factory.mktemp("demo4") / "study", patients=3, visits=4, preset="tiny", seed=0)
    root = tmp_path_factory.mktemp("people") / "study"
    (root / "scans" / "P").mkdir(parents=True)
    first = sorted((demo / "scans" / "DEMO00-000").glob("OD_*.dcm"))[:1]
    last = sorted((demo / "scans" / "DEMO00-001").glob("OD_*.dcm"))[1:]
    for path in first + last:
        ds = pydicom.dcmread(path)
        if path in first:
            ds.PatientName, ds.PatientBirthDate = "ALPHA^ANN", "19500101"
        else:
            ds.PatientID, ds.PatientName, ds.PatientBirthDate = "DEMO00-000", "ZULU^ZED", "19400101"
            ds.IssuerOfPatientID = "HOSP_B"
        ds.save_as(root / "scans" / "P" / path.name)
    assert len(list((root / "scans" / "P").glob("*.dcm"))) == 4
    return root


@pytest.mark.gui
def test_a16_3_two_peoples_scans_under_one_id_give_no_significant_change_without_saying_so(
        qtbot, window, monkeypatch, two_people, tmp_path):
    """A 'people' patient: the Trend fitted one slope over both people's scans and flagged it "significant change"
    in red, nothing said. Now no slope is flagged, a significant one's line says it may mix two people's scans,
    and the summary and the anonymised OU report's trend notes name the check in the Study panel's words."""
    from octviewer.gui.study.checks import KINDS
    from octviewer.gui.study.trend_view import FLAG, MIXED

    root = Path(shutil.copytree(two_people, tmp_path / "study"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert {w_.kind for w_ in w.study.index.warnings} == {"people"}
    view = _trend(qtbot, w, panel)
    history = view.history
    summary = view.summary.text()
    note = history.check_note("people")
    assert KINDS["people"][1] in note and note in view.notes and note in summary, summary
    significant = [name for name, t in history.trends.items() if t.significant]
    assert "rnfl" in significant, history.series["rnfl"]  # the slope the old code flagged in red
    assert not history.significant() and FLAG not in summary and "Red line" not in summary
    for line, flagged in history.lines():
        assert not flagged
        assert "significant change" not in line, line  # "not judged" (walk-through H104, X3)
        if "not judged" in line:
            assert line.endswith(f"- not judged ({MIXED})"), line
        if "measured" not in line:  # every slope over the scans says it, significant or not (walk-through H135, W1)
            assert line.endswith(f"- not judged ({MIXED})"), line
    # the chart (walk-through H129, V3): no line fitted through both people's points, the other person's hollow
    assert history.other_people() == set(history.visits[1:]), (history.people, history.visits)
    rnfl_items = view.plots["rnfl"].listDataItems()
    assert len(rnfl_items) == 1 and rnfl_items[0].opts["pen"] is None, rnfl_items  # the points, no fitted line
    brushes = [b.color().alpha() for b in rnfl_items[0].opts["symbolBrush"]]
    assert brushes[0] > 0 and brushes[1:] == [0, 0, 0], brushes  # ALPHA^ANN filled; ZULU^ZED's three hollow
    assert "no line is fitted through the scans' values" in note and "first visit's are hollow" in note
    assert "hollow: another person's scans" in view.key.text()
    # which visits are whose, dated, at the top of the identified screen only (walk-through H131, W1)
    (line,) = history.identified
    assert line.startswith("Check (study): which visits name which person: "), line
    assert summary.index("which visits name which person") < summary.index("global RNFL (structure):")
    assert "which visits name which person" not in " ".join(view.notes)  # the anonymised OU report prints these
    qtbot.wait(300)  # laid out before the screenshot
    _grab(w.study.trend_dialog, "a16_3_people_trend")

    page = " ".join(_anonymised_ou_report(qtbot, w, panel, monkeypatch, tmp_path / "ou.pdf").split())
    assert note in page and MIXED in page
    assert "not judged (the slope may mix two people's scans" in page and "significant change" not in page
    _no_identifier(page, root, sorted({_header_date(p) for p in (root / "scans").rglob("*.dcm")}),
                   ("ALPHA", "ZULU", history.patient_id))


@pytest.mark.gui
def test_a_people_trend_fits_no_line_through_measured_fields_that_name_only_the_id(
        qtbot, window, monkeypatch, two_people, tmp_path):
    """Walk-through H137, W5: under a 'people' check the Trend drew no line through the scans' values but fitted and
    judged the measured VF series, whose table rows name only the patient ID: either person's fields. Now no line
    through them either, and their slopes say why, not flagged."""
    from octviewer.gui.study.trend_view import MIXED_MEASURED

    root = Path(shutil.copytree(two_people, tmp_path / "study"))
    (root / "visual_fields.csv").write_text(
        "patient_id,eye,date,vfi,md,psd\n" + "".join(
            f"DEMO00-000,OD,{2016 + k}-03-01,{96 - 6 * k},{md},{2 + k}\n"
            for k, md in enumerate((-1, -3.2, -6.1, -8.4))),
        encoding="utf-8")
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert "people" in {w_.kind for w_ in w.study.index.warnings}
    view = _trend(qtbot, w, panel)
    history = view.history
    assert len(history.series["md_measured"]) == 4 and history.trends["md_measured"].significant
    measured = [(line, flagged) for line, flagged in history.lines() if "measured" in line]
    assert measured and all(not f and line.endswith(f"- not judged ({MIXED_MEASURED})") for line, f in measured), \
        measured
    for key in ("md", "vfi"):  # points only: no item with a pen (a fitted line)
        assert all(item.opts["pen"] is None for item in view.plots[key].listDataItems()), key
    assert "or the measured fields" in history.chart_note() and history.chart_note() in view.summary.text()


# ---------------------------------------------------------------- 'two visits': one scan re-dated

@pytest.mark.gui
def test_a16_3_a_scan_filed_at_two_visits_is_counted_once_and_its_later_visit_ringed(
        qtbot, window, monkeypatch, demo, tmp_path):
    """The demo's second OD scan copied with its header re-dated a year after the last visit (a date-shifting
    export: same UID and pixels): the index says 'two visits' ("a trend would count it twice") and the Trend
    counted it at both. Now the later visit is drawn, ringed, and left out of the slopes as a disputed date is;
    the summary's headline and the anonymised OU report say so, with no date."""
    import numpy as np
    import pydicom

    from octviewer.gui.study.trend_view import DISPUTED_COLOUR, DISPUTED_NOTE

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")
    later = _header_date(od[-1]) + dt.timedelta(days=365)
    ds = pydicom.dcmread(od[1])
    stamp = later.strftime("%Y%m%d")
    for key in ("StudyDate", "SeriesDate", "ContentDate", "AcquisitionDate"):
        if key in ds:
            setattr(ds, key, stamp)
    if "AcquisitionDateTime" in ds:
        ds.AcquisitionDateTime = stamp + "101010"
    ds.save_as(od[1].with_name(f"OD_{stamp}.dcm"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert {w_.kind for w_ in w.study.index.warnings} == {"two visits"}
    view = _trend(qtbot, w, panel)
    history = view.history
    assert [d for d, _ in history.series["rnfl"]][-1] == later  # still drawn
    assert later not in [d for d, _ in history.fitted("rnfl")] and history.trends["rnfl"].n == 3
    assert history.twice == {later} and history.disputed == {later}
    assert all(t.n == 3 for name, t in history.trends.items() if not name.endswith("measured"))
    headline = ("1 visit holding a scan already plotted at an earlier visit is not in the slope (ringed: the same scan "
                "at two visits: a trend would count it twice).")
    assert headline in view.summary.text().split("<br>")[1]  # under the SYNTHETIC banner, above the slopes
    note = history.check_note("two visits")  # named by its visits' places (H112, X4)
    assert view.notes[0] == headline and note in view.notes and DISPUTED_NOTE not in view.notes
    assert "ringed and left out of the fitted line" in note
    rings = [item for item in view.plots["rnfl"].listDataItems()
             if item.opts.get("symbolPen") is not None and item.opts["symbolSize"] == 21]
    assert len(rings) == 1 and rings[0].opts["symbolPen"].color().name() == DISPUTED_COLOUR
    assert np.allclose(rings[0].getData()[0], [dt.datetime(later.year, later.month, later.day,
                                                           tzinfo=dt.timezone.utc).timestamp()])
    qtbot.wait(300)  # laid out before the screenshot
    _grab(w.study.trend_dialog, "a16_3_two_visits_trend")

    page = " ".join(_anonymised_ou_report(qtbot, w, panel, monkeypatch, tmp_path / "ou.pdf").split())
    assert headline in page and note in page
    _no_identifier(page, root, [later, *map(_header_date, od)], (history.patient_id,))


# ---------------------------------------------------------------- 'repeat', 'uid', 'copy': named, in the panel's words

@pytest.mark.gui
def test_a16_3_the_trend_names_a_copy_a_shared_uid_and_a_repeat_scan_of_its_visits(
        qtbot, window, monkeypatch, demo, tmp_path):
    """A byte copy of the first OD scan beside it ('copy', used once) and, at the second visit, another OD image
    under the second scan's DICOM UID ('uid' and 'repeat': both used, averaged): the Study panel says each, the
    Trend said none. Its notes (and the anonymised OU report's) now name each in the panel's words."""
    import numpy as np
    import pydicom

    from octviewer.gui.study.checks import KINDS

    root = Path(shutil.copytree(demo, tmp_path / "study"))
    od = _scans(root, "OD")
    shutil.copy(od[0], od[0].with_name("copy_of_first.dcm"))
    ds = pydicom.dcmread(od[1])
    pixels = ds.pixel_array
    ds.PixelData = np.roll(pixels, 3, axis=-1).astype(pixels.dtype).tobytes()
    ds.save_as(od[1].with_name("other_image_same_uid.dcm"))
    w = window
    panel = _open_folder(qtbot, w, monkeypatch, root)
    assert {w_.kind for w_ in w.study.index.warnings} == {"copy", "uid", "repeat"}
    view = _trend(qtbot, w, panel)
    notes = [view.history.check_note(kind) for kind in ("repeat", "uid", "copy")]  # H112, X4
    assert [n for n in view.notes if n.startswith("Check (")] == notes
    # the visit named by its place, not "this visit" (H112, X4)
    assert all(KINDS[kind][1].split("this visit")[-1] in n and "this visit" not in n
               for kind, n in zip(("repeat", "uid", "copy"), notes))
    assert all(n in view.summary.text() for n in notes)
    assert not view.history.disputed  # none of them moves a visit out of the slope

    page = " ".join(_anonymised_ou_report(qtbot, w, panel, monkeypatch, tmp_path / "ou.pdf").split())
    assert all(n in page for n in notes)
    _no_identifier(page, root, list(map(_header_date, od)), (view.history.patient_id, "copy_of_first",
                                                             "other_image_same_uid"))


@pytest.mark.gui
def test_a28_8_twins_scanned_on_the_same_days_get_no_line_and_the_note_says_why(qtbot):
    """Attack run 28, A28-8: twins under one ID scanned on the same days: every point the mean of both, nothing
    hollow, and lines were fitted while the note said "no line is fitted". No line is fitted over a 'people'
    patient's scans, and the note says which points are both people's."""
    import datetime as dt

    from octviewer.gui.study.trend_view import EyeHistory, TrendView
    from octviewer.study.trend import trend

    days = [dt.date(2019, 1, 1), dt.date(2020, 1, 1), dt.date(2021, 1, 1)]
    history = EyeHistory("P1", "OD", {"rnfl": [(d, v) for d, v in zip(days, (100.0, 95.0, 90.0))]})
    history.checks, history.visits, history.people = {"people": set(days)}, days, [set(days), set(days)]
    history.trends = {"rnfl": trend(history.series["rnfl"], measure="rnfl")}
    assert history.other_people() == set() and history.both_people() == set(days)
    note = history.check_note("people")
    assert "no line is fitted" in note and "visits 1, 2 and 3 of 3 is the mean of both people's scans" in note
    view = TrendView()
    qtbot.addWidget(view)
    view.show_history(history)
    assert [item.opts["pen"] for item in view.plots["rnfl"].listDataItems()] == [None]  # the points only
    assert note in view.notes
