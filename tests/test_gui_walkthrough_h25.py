"""Findings of the fifth clinician walk-through (2026-12-06) in the viewer, driven as a user drives the
window: menu entries through QAction.trigger()."""

import os

import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")



pytestmark = pytest.mark.gui


def _heyex_xml_dummy() -> str:
    """eyepy's HEYEX XML test volume (random noise with 11 layers of its own); skipped without the samples."""
    samples = os.environ.get("OCTVIEWER_SAMPLES")
    path = os.path.join(samples or "", "eyepy_synthetic", "heyex_xml", "test_volume", "test_dummy.xml")
    if not samples or not os.path.exists(path):
        pytest.skip("OCTVIEWER_SAMPLES not set")
    return path


def test_no_line_is_drawn_on_a_scan_the_quality_check_refused(qtbot, window, monkeypatch):
    """The refused HEYEX XML dummy showed its 11 file lines and their legend over the noise: only the
    structure overlay asked for the verdict, the B-scan view drew the file's lines regardless."""
    from test_gui_walkthrough import _open_by_menu

    from octviewer.gui.viewer import render

    w = window
    _open_by_menu(qtbot, w, _heyex_xml_dummy(), monkeypatch)
    assert w.state.volume.layers and w.state.refused
    assert w.state.settings.show_layers
    view = w.bscan
    assert not any(curve.isVisible() for curve in view.layer_curves)
    assert not view.layer_legend.isVisible()
    assert render.bscan_lines(w.state) == []  # the report's B-scan draws none either
    view.grab().save("/tmp/h25/refused_xml.png") if os.path.isdir("/tmp/h25") else None


def test_the_bscan_label_says_its_probability_is_the_bscans(qtbot, window, monkeypatch):
    """'P=0.02' on the B-scan beside 'P(glaucoma) = 0.18' in the panel read as the eye's probability."""
    from test_gui_walkthrough import _open_by_menu

    from octviewer.resources import DEMO_SAMPLES

    w = window
    w.resize(1024, 700)
    _open_by_menu(qtbot, w, DEMO_SAMPLES / "demo_normal_OD.dcm", monkeypatch)
    label = w.bscan.label.toPlainText()
    assert f"this B-scan: P={w.state.probs[w.state.index]:.2f}" in label, label
    qtbot.wait(50)
    rect = w.bscan.label.sceneBoundingRect()
    assert w.bscan.view.sceneBoundingRect().contains(rect)  # still on the image at 1024 px
    w.bscan.grab().save("/tmp/h25/label.png") if os.path.isdir("/tmp/h25") else None


def test_the_cam_legend_says_white_is_the_decision_threshold(qtbot, window, monkeypatch, tmp_path):
    """The PDF's caption said white (0) is the decision threshold; the bar and its tooltip did not. The
    words fit a 1024 x 700 window with the Study panel open (the legend asks no more than it has)."""
    import shutil

    from PySide6.QtWidgets import QFileDialog, QLabel
    from test_gui_walkthrough import _open_by_menu

    from octviewer.gui.main_window import FRAME_ROOM_PX
    from octviewer.resources import DEMO_SAMPLES

    w = window
    w.resize(1024, 700 - FRAME_ROOM_PX)
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(DEMO_SAMPLES / "demo_normal_OD.dcm", study)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(study))
    w.menu_actions["open_study_folder"].trigger()
    qtbot.waitUntil(lambda: w.study.dock.isVisible() and w.study.index is not None, timeout=30000)
    _open_by_menu(qtbot, w, study / "demo_normal_OD.dcm", monkeypatch)
    w.menu_actions["toggle_cam"].trigger()  # the CAM is off until turned on
    qtbot.wait(50)
    legend = w.cam_legend
    labels = legend.findChildren(QLabel)
    assert legend.isVisible() and labels
    assert all("0 (white) is the decision threshold" in label.toolTip() for label in labels)
    assert any(label.text() == "white: threshold" and label.isVisible() for label in labels)
    assert w.width() == 1024 and legend.minimumSizeHint().width() <= legend.width()
    legend.grab().save("/tmp/h25/cam_legend.png") if os.path.isdir("/tmp/h25") else None
    w.menu_actions["toggle_cam"].trigger()  # off again: the setting is saved for the next test's window


def test_the_model_card_shows_the_independent_evaluation_first(qtbot, window):
    """Model > About listed the training run's own test split (AUC 0.901) first; the pre-declared independent
    evaluation (0.858), what a clinic should read, came only after scrolling."""
    from PySide6.QtGui import QTextCursor
    from PySide6.QtWidgets import QPlainTextEdit

    w = window
    w.menu_actions["about_model"].trigger()
    editor = w.dialog.findChild(QPlainTextEdit, "text")
    text = editor.toPlainText()
    independent, own = text.find("On independent data"), text.find("From the training run, on its own test split")
    assert 0 <= independent < own, (independent, own)
    assert "On its test split" not in text
    qtbot.wait(50)
    cursor = QTextCursor(editor.document())
    cursor.setPosition(text.index("AUC", independent))
    assert editor.cursorRect(cursor).bottom() < editor.viewport().height()  # in sight when the card opens
    w.dialog.grab().save("/tmp/h25/model_card.png") if os.path.isdir("/tmp/h25") else None


def test_the_trend_flag_is_not_a_point_marker_and_the_band_note_states_the_rule(qtbot):
    """▼ marked both RNFL/predicted points and the significant-change flag; the note said 'no band for MD
    measured (4 visits)' while VFI measured from 4 visits had one: the rule is the band's width against the
    plot (the same for every index), and the note now says so."""
    import datetime as dt

    import pyqtgraph as pg

    from octviewer.gui.study.trend_view import FLAG, KEY, WIDE_BAND_SHARE, EyeHistory, TrendView
    from octviewer.study import trend

    days = [dt.date(2020, 1, 1) + dt.timedelta(days=365 * k) for k in range(4)]
    series = {"md_measured": list(zip(days, [-1.0, -4.0, 0.5, -3.5])),  # scattered: a wide band
              "vfi_measured": list(zip(days, [99.0, 98.0, 97.2, 96.0])),  # on a line: a narrow one
              "rnfl": list(zip(days, [95.0, 90.2, 85.0, 80.0]))}  # -5 µm/yr: flagged (not exactly on a line: A8-11)
    trends = {name: trend(points, measure={"rnfl": "rnfl"}.get(name, name.split("_")[0]))
              for name, points in series.items()}
    view = TrendView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show_history(EyeHistory("P", "OS", series=series, trends=trends))
    assert trends["rnfl"].significant and FLAG not in {symbol for symbol, _, _ in KEY}
    text = view.summary.text()
    assert f"{FLAG} global RNFL" in text and "▼ global RNFL" not in text
    banded = {key: any(isinstance(item, pg.FillBetweenItem) for item in plot.items) for key, plot in view.plots.items()}
    assert banded["vfi"] and not banded["md"], banded
    note = " ".join(view.notes)
    assert "Band not drawn for MD measured (4 visits): even at its narrowest it would span more than half" in note
    assert "for every index" in note and WIDE_BAND_SHARE == 0.5
    view.grab().save("/tmp/h25/trend.png") if os.path.isdir("/tmp/h25") else None


def test_the_grey_wheel_of_a_missing_eye_has_that_eyes_layout(qtbot):
    """With no scan of the left eye, its grey sector wheel was drawn in the right eye's layout (temporal on
    the left) under labels reading 'N ... T'."""
    from octviewer.gui.study.ou_view import EyeColumn

    for eye in ("OD", "OS"):
        column = EyeColumn(eye)
        qtbot.addWidget(column)
        column.resize(420, 420)
        column.show_summary(None)
        temporal_on_the_left = column.wheel.screen_angle(0) == 180  # clinical 0 = temporal; Qt 180 = left
        assert temporal_on_the_left == (column.orientation[0] == "T"), (eye, column.orientation)
        column.grab().save(f"/tmp/h25/missing_{eye}.png") if os.path.isdir("/tmp/h25") else None
