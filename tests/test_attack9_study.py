"""Attack run 9 (H50), fixed by H55: the study index's VF tables and copies of one scan."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------- A9-6: a VF table saved with ';' or tabs

GERMAN = "patient_id;eye;date;vfi;md;psd\nP1;OD;2018-06-01;99,6;-0,49;1,11\nP1;OS;2018-06-08;98;-1,5;2.5\n"
TABS = "patient_id\teye\tdate\tvfi\tmd\tpsd\nP1\tOD\t2018-06-01\t99.6\t-0.49\t1.11\n"


@pytest.mark.parametrize("text", [GERMAN, TABS], ids=["semicolon", "tab"])
def test_a_study_folders_vf_table_separated_by_semicolons_or_tabs_is_read(tmp_path, text):
    from octviewer.study import index_folder

    study = tmp_path / "study"
    study.mkdir()
    (study / "visual_fields.csv").write_text(text, encoding="utf-8")
    index = index_folder(study, cache_dir=tmp_path / "cache")
    first = next(m for m in index.vf if m.eye == "OD")
    assert (first.vfi, first.md_db, first.psd_db) == (99.6, -0.49, 1.11)
    assert not index.problems and "other file" not in index.skipped_text()


def test_decimal_commas_are_read_only_where_the_comma_is_no_separator(tmp_path):
    from octviewer.study.vf import read_vf_rows

    german = tmp_path / "de.csv"
    german.write_text(GERMAN.replace("-0,49", "1.000,5"), encoding="utf-8")  # no thousands separators
    rows, problems = read_vf_rows(german)
    assert [m.md_db for m in rows] == [-1.5] and problems == ["row 2: MD is '1.000,5', not a number"]
    quoted = tmp_path / "en.csv"
    quoted.write_text('patient_id,eye,date,md\nP1,OD,2018-06-01,"-0,49"\n', encoding="utf-8")
    assert read_vf_rows(quoted) == ([], ["row 2: MD is '-0,49', not a number"])


def test_a_vf_table_whose_columns_cannot_be_told_apart_is_named_with_the_reason(tmp_path):
    from octviewer.study import index_folder

    study = tmp_path / "study"
    study.mkdir()
    (study / "visual_fields.csv").write_text(GERMAN.replace(";", "|"), encoding="utf-8")
    index = index_folder(study, cache_dir=tmp_path / "cache")
    assert not index.vf and "other file" not in index.skipped_text()
    assert "visual_fields.csv: the header names VF columns, but they are not separated by commas" \
        in index.problems_text()


def test_a_manifest_separated_by_semicolons_is_read_as_a_manifest(tmp_path):
    from octviewer.study import index_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_text("path;patient_id;eye;visit;md\nmissing.dcm;P1;OD;2018-06-01;-0,49\n", encoding="utf-8")
    index = index_manifest(manifest)  # it was "not a manifest: it has no 'path' column"
    assert index.skipped["listed files missing"] == 1
