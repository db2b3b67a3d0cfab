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
