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
