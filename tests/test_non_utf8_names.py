"""A file name that is not UTF-8 (a Latin-1 name on Linux, ``Doe\\xffJohn.dcm``; Python gives it as a
str with surrogate escapes) through the study index and the batch commands (attack run H2): the
header cache refused the whole study with UnicodeEncodeError, and the CSV and key-file writers ended
in a traceback with no CSV or a key file cut short. The rule (docs/bad_input.md): such a name is
written back as its own bytes, and the store keeps it as bytes."""

import csv
import os
import shutil
import sys

import pytest

from octviewer.pipeline.outputs import EXIT_SCANS_FAILED

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes only on Linux")

RAW_NAME = b"Doe\xffJohn.dcm"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder holding one tiny synthetic scan under a name that is not UTF-8."""
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=3)
    scan = sorted((study / "scans").rglob("*.dcm"))[0]
    folder = tmp_path_factory.mktemp("names")
    shutil.copy(scan, folder / os.fsdecode(RAW_NAME))
    return folder


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from test_pipeline import tiny_model

    return tiny_model(tmp_path_factory.mktemp("model"))


def _raw_rows(path) -> list[list[bytes]]:
    """The CSV's rows as bytes: the file name's own bytes must be there."""
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return [[os.fsencode(cell) for cell in row] for row in csv.reader(text.splitlines())]


def test_the_study_index_keeps_a_file_whose_name_is_not_utf8(folder, tmp_path):
    from octviewer.study import index_folder

    for _ in range(2):  # the second reads the header records back from the store
        index = index_folder(folder, cache_dir=tmp_path)
        assert [os.fsencode(os.path.basename(s.path)) for s in index.scans] == [RAW_NAME]
        assert index.scans[0].patient_id and index.scans[0].eye in ("OD", "OS")
    from octviewer.pipeline.store import ResultsStore

    store = ResultsStore(tmp_path / "results.sqlite")
    assert [os.fsencode(rel) for rel in store.study_headers(str(folder.resolve()))] == [RAW_NAME]


def _commands(model_path):
    from octviewer.pipeline import measure_cli, predict_cli

    return [(predict_cli.main, ["--model", str(model_path), "--device", "cpu"]), (measure_cli.main, [])]


@pytest.mark.parametrize("which", [0, 1])
def test_batch_commands_write_the_name_back_as_its_bytes(which, folder, model_path, tmp_path, capsys):
    main, options = _commands(model_path)[which]
    out = tmp_path / "r.csv"
    argv = [str(folder), "--out", str(out), "--no-pseudonymise", *options]
    assert main(argv) in (0, EXIT_SCANS_FAILED)
    assert "Traceback" not in capsys.readouterr().err
    rows = _raw_rows(out)
    assert len(rows) == 2 and rows[1][0] == os.fsencode(str(folder / os.fsdecode(RAW_NAME)))
    assert not out.with_name(out.name + ".partial").exists()
    first = out.read_bytes()
    assert main([*argv, "--resume"]) in (0, EXIT_SCANS_FAILED)  # the journal is read back the same way
    assert "resuming: 1 scans already" in capsys.readouterr().err
    assert out.read_bytes() == first


@pytest.mark.parametrize("which", [0, 1])
def test_the_key_file_holds_the_whole_name(which, folder, model_path, tmp_path, capsys):
    main, options = _commands(model_path)[which]
    out, keys = tmp_path / "r.csv", tmp_path / "keys.csv"
    assert main([str(folder), "--out", str(out), "--key-file", str(keys), *options]) in (0, EXIT_SCANS_FAILED)
    assert "Traceback" not in capsys.readouterr().err
    key_rows = _raw_rows(keys)
    assert key_rows[0] == [b"key", b"path"] and len(key_rows) == 2
    assert key_rows[1][1] == os.fsencode(os.path.abspath(folder / os.fsdecode(RAW_NAME)))
    rows = _raw_rows(out)
    assert rows[1][0] == key_rows[1][0] and RAW_NAME not in out.read_bytes()
