"""Attack run 9 findings outside the trainer and the study index (PACS exit codes, the drop message)."""

import pytest


@pytest.mark.parametrize("argv, words", [
    (["retrieve", "../../etc"], "not a DICOM UID: '../../etc'"),
    (["retrieve", "1.2.3", "1." + "2" * 300], "not a DICOM UID"),
    (["screen", "--out", "r.csv"], "give a patient ID, a name or a date range"),
    (["screen", "--patient-id", "P1", "--from", "2024-01-01", "--to", "2020-01-01", "--out", "r.csv"],
     "the first date 2024-01-01 is after the last 2020-01-01"),
    (["find", "--from", "2024-01-01", "--to", "2020-01-01"], "is after the last"),
])
def test_pacs_input_that_is_wrong_exits_2_before_the_archive_is_asked(argv, words, tmp_path, monkeypatch, capsys):
    """A bad UID or search exited 1, the help's code for "the archive could not be reached", and `screen`
    loaded the model and checked its outputs first; a --from after --to asked the archive (A9-7)."""
    from octviewer.pacs import cli, net

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_settings", lambda args: None)
    monkeypatch.setattr(net, "_associate", lambda *a, **k: pytest.fail("the archive was asked"), raising=False)
    monkeypatch.setattr(cli, "_screen_problem", lambda *a, **k: pytest.fail("model and outputs checked first"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err


@pytest.mark.gui
def test_dropping_files_named_with_markup_shows_the_name_as_written(qtbot, monkeypatch, tmp_path):
    """The "2 items dropped" box rendered a file named `<h1><font color=red>NORMAL - no glaucoma.dcm` as a
    big red NORMAL (A9-10): it goes through as_literal like every message with file text."""
    from conftest import open_window
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    from octviewer.resources import DEMO_MODEL

    if not DEMO_MODEL.is_file():
        pytest.skip("demo model not built")
    w = next(open_window(qtbot, monkeypatch, DEMO_MODEL))
    monkeypatch.setattr(w, "open_path", lambda path: 0)
    name = "<h1><font color=red>NORMAL - no glaucoma.dcm"
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(tmp_path / name)), QUrl.fromLocalFile(str(tmp_path / "b.dcm"))])
    w.dropEvent(QDropEvent(QPointF(5, 5), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier))
    [text] = w.infos
    assert "&lt;h1&gt;&lt;font color=red&gt;NORMAL - no glaucoma.dcm" in text and "<h1>" not in text
    w.tasks.shutdown()


def _far_field_summary(days: int):
    import datetime as dt

    from octviewer.study.ou import EyeSummary, VisitSummary
    from octviewer.study.vf_values import VfMeasurement

    scan = dt.date(2024, 6, 1)
    eye = EyeSummary("OD", ["od.dcm"], probability=0.2, threshold=0.32, vf_predicted={"vfi": 97.0, "md": -1.0,
                     "psd": 2.0}, vf_measured=VfMeasurement("P", "OD", scan - dt.timedelta(days=days), vfi=90.0,
                                                            md_db=-4.0, psd_db=3.0), scan_date=scan)
    return eye, VisitSummary("P", "2024-06-01", {"OD": eye})


@pytest.mark.gui
@pytest.mark.parametrize("days, compared", [(366, False), (30, True)])
def test_the_ou_view_and_report_do_not_compare_a_field_far_from_the_scan(qtbot, days, compared):
    """Results and the scan PDF said "not compared" for a field more than 180 days from the scan, while the OU
    view and the OU PDF still gave "pred - meas" for it (found by the study walk-through's fixer, H52)."""
    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.gui.study.ou_view import EyeColumn

    eye, visit = _far_field_summary(days)
    assert eye.vf_compared() is compared
    column = EyeColumn("OD")
    qtbot.addWidget(column)
    column.show_summary(eye)
    assert (column.cell("md", 2) == "not compared") is not compared
    assert column.cell("md", 1) == "-4.0" or column.cell("md", 1).startswith("-4.0")  # the field is still shown
    assert ("not compared" in ou_report_html(visit)) is not compared


def test_the_anonymised_ou_report_withholds_a_damaged_scans_file_name():
    """A reader's error names the file, and clinic file names carry names and dates: the anonymised OU report
    printed "SMITH_JOHN_OD_20190924.dcm: the pixel data is truncated" under its asymmetry table (A10-3)."""
    from octviewer.gui.export.ou_pdf import ou_report_html
    from octviewer.study.ou import EyeSummary, VisitSummary

    broken = EyeSummary("OD", ["SMITH_JOHN_OD_20190924.dcm"],
                        error="SMITH_JOHN_OD_20190924.dcm: the pixel data is truncated")
    visit = VisitSummary("P", "2019-09-24", {"OD": broken, "OS": EyeSummary("OS", ["os.dcm"], probability=0.2,
                                                                             threshold=0.32)})
    anonymised = ou_report_html(visit, None, patient_id=None)
    assert "SMITH" not in anonymised and "details withheld: anonymised report" in anonymised
    assert "SMITH_JOHN_OD_20190924.dcm: the pixel data is truncated" in ou_report_html(visit, None, patient_id="P")
