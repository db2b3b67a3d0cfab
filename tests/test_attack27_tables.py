"""A VF table or manifest saved as UTF-16 with its BOM (Excel's and PowerShell's "Unicode text") is read as the
settings files are, not refused whole as "not UTF-8 text" (attack run 27, A27-7)."""

import pytest


@pytest.mark.gui
@pytest.mark.parametrize("encoding, name", [("utf-16", "vf.csv"), ("utf-8-sig", "vf.csv"), ("utf-16", "vf.txt")])
def test_a_vf_table_saved_as_utf16_is_read_through_open_study_folder(qtbot, window, monkeypatch, tmp_path, encoding,
                                                                     name):
    """Excel's "Unicode Text" writes UTF-16 with a BOM, tab-separated, named .txt: skipped as an "other file", the
    fields simply absent (walk-through H135, W7)."""
    from conftest import open_study_folder

    from octviewer.study.demo import write_demo_study

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    for field in (root / "perimetry").glob("*.dcm"):
        field.unlink()  # the table's fields only
    (root / name).write_text("patient_id\teye\tdate\tvfi\tmd\tpsd\r\nDEMO02-000\tOD\t2018-09-22\t91\t-4.5\t3.2\r\n",
                             encoding=encoding, newline="")
    panel = open_study_folder(qtbot, window, monkeypatch, root)
    assert [(m.eye, m.as_dict()["md"]) for m in panel.index.vf] == [("OD", -4.5)], panel.index.problems
    assert not any("UTF-8" in str(p) for p in panel.index.problems), panel.index.problems


def test_a_manifest_saved_as_utf16_is_read(tmp_path):
    from octviewer.study.index import index_manifest

    path = tmp_path / "manifest.csv"
    path.write_text("path,patient_id,eye,visit\na.dcm,P1,OD,2018-09-18\n", encoding="utf-16")
    index = index_manifest(path)  # was VfReadError "not UTF-8 text (save it as CSV UTF-8)"
    assert [why for _, why in index.problems] == ["row 2: the file is missing; it is not used"]  # its row was read


def test_a_vf_row_with_more_cells_than_the_header_is_not_read_shifted(tmp_path):
    """Attack run 28, A28-5: MD -4,05 and PSD 3,10 written with decimal commas in a comma-separated table were read
    as MD -4.0 and PSD 5.0, no problem said. The row is named and not used; the others are read."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_text("patient_id,eye,date,vfi,md,psd\nP1,OD,2020-01-02,91,-4,05,3,10\nP1,OS,2020-01-02,95,-1.5,2.0\n",
                    encoding="utf-8")
    fields, problems = read_vf_rows(path)
    assert [(m.eye, m.as_dict()["md"]) for m in fields] == [("OS", -1.5)]
    assert len(problems) == 1 and problems[0].startswith("row 2: more cells than the header has columns"), problems


def test_a_delimiter_closing_every_row_is_no_extra_cell(tmp_path):
    """Attack run 29, A29-8: A28-5's fix refused every row of a table whose rows end with a delimiter (an empty last
    cell, as some exports write), "more cells than the header"; they are read."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_text("patient_id,eye,date,vfi,md,psd,\nP1,OD,2020-01-02,91,-4.05,3.1,\nP1,OS,2020-01-02,95,-1.5,2.0,\n",
                    encoding="utf-8")
    fields, problems = read_vf_rows(path)
    assert [(m.eye, m.as_dict()["md"]) for m in fields] == [("OD", -4.05), ("OS", -1.5)] and not problems, problems


def test_a_note_that_is_no_table_stays_an_other_file(tmp_path):
    """Attack run 29, A29-11: since .txt files are read as tables, a Latin-1 note in a study folder was listed as a
    problem ("not UTF-8 text; the table is not read"); it is another file again, as before."""
    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_folder

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    (root / "notes.txt").write_bytes("Patientin M\xfcller: R\xfcckruf".encode("latin-1"))
    index = index_folder(root, cache_dir=tmp_path / "cache")
    assert not [p for p, _ in index.problems if str(p).endswith("notes.txt")], index.problems
    assert index.skipped["other files"] == 1


@pytest.mark.parametrize("body", ["P1,OD,2020-01-02,91,-4,05,\nP1,OS,2020-01-02,95,-1.5,2.0\n",
                                  "P1,OS,2020-01-02,95,-1.5,2.0\nP1,OD,2020-01-02,91,-4,05,\n"])
def test_a_decimal_comma_beside_a_blank_last_column_is_not_read_shifted(tmp_path, body):
    """Attack run 30, A30-5: A29-8's fix took an empty cell past the header as a closing delimiter in any row, so
    MD -4,05 beside a blank PSD (``91,-4,05,``) was read MD -4 and PSD 5, no word. Only a delimiter closing every
    row is one; here the row is named and not used."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_text("patient_id,eye,date,vfi,md,psd\n" + body, encoding="utf-8")
    fields, problems = read_vf_rows(path)
    assert [(m.eye, m.as_dict()["md"]) for m in fields] == [("OS", -1.5)], fields
    assert len(problems) == 1 and "more cells than the header has columns" in problems[0], problems


def test_rows_closed_by_a_delimiter_the_header_lacks_are_read(tmp_path):
    """The other half of A30-5: every row closed by a delimiter the header does not have is still read (A29-8)."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_text("patient_id,eye,date,vfi,md,psd\nP1,OD,2020-01-02,91,-4.05,,\nP1,OS,2020-01-02,95,-1.5,2.0,\n",
                    encoding="utf-8")
    fields, problems = read_vf_rows(path)
    assert [(m.eye, m.as_dict()["md"], m.as_dict().get("psd")) for m in fields] == [("OD", -4.05, None),
                                                                                ("OS", -1.5, 2.0)], problems
    assert not problems, problems


def test_a_windows_1252_txt_table_is_read_not_an_other_file(tmp_path):
    """Attack run 30, A30-10: since A29-11 a .txt that is not UTF-8 is "another file"; Excel's "Text (Tab
    delimited)" on Windows writes Windows-1252, and such a VF table (a ü in a column) was counted as 1 other file,
    its fields lost without a word. It was then named as unreadable; since A31-24 a table that is not UTF-8 is read as
    Windows-1252."""
    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_folder

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    for field in (root / "perimetry").glob("*.dcm"):
        field.unlink()  # the table's fields only
    (root / "vf.txt").write_bytes("patient_id\teye\tdate\tvfi\tmd\tpsd\tBemerkung\r\n"
                                  "DEMO02-000\tOD\t2018-09-22\t91\t-4,5\t3,2\tzuverl\xe4ssig\r\n".encode("cp1252"))
    index = index_folder(root, cache_dir=tmp_path / "cache")
    assert not [why for p, why in index.problems if str(p).endswith("vf.txt")], index.problems
    assert [(m.eye, m.md_db) for m in index.vf] == [("OD", -4.5)], index.vf
    assert index.skipped["other files"] == 0, index.skipped


@pytest.mark.parametrize("encoding", ["utf-32", "utf-16-le", "utf-16-be"])
def test_a_vf_table_in_utf32_or_utf16_without_a_bom_is_read(tmp_path, encoding):
    """Attack run 28, A28-10: UTF-32 (whose BOM starts with UTF-16's) and UTF-16 without its BOM were refused whole as
    "not UTF-8 text"; read, as UTF-16 with a BOM is."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_bytes("patient_id,eye,date,vfi,md,psd\nP1,OD,2020-01-02,91,-4.05,3.1\n".encode(encoding))
    fields, problems = read_vf_rows(path)
    assert [(m.eye, m.as_dict()["md"]) for m in fields] == [("OD", -4.05)] and not problems, problems


@pytest.mark.parametrize("table, expected, problem", [
    # A31-19: a header closed by a delimiter; the decimal comma's second half fills the named columns
    ("patient_id,eye,date,vfi,md,psd,\nP1,OD,2019-03-04,91,-4,05,3\n", [], "more cells than the header"),
    ("patient_id,eye,date,vfi,md,psd,\nP1,OD,2019-03-04,91,-4,05,\n", [], "leading zero"),
    # A31-20: rows closed by a delimiter, one with a cell more, or a decimal comma beside a blank PSD
    ("patient_id,eye,date,vfi,md,psd\nP1,OD,2019-03-04,91,-4.05,3.1,\nP2,OD,2019-03-04,91,-4.05,3.1,\n"
     "P1,OS,2019-03-04,95,-4,05,,\n", [("P1", -4.05), ("P2", -4.05)], "row 4: more cells than the header"),
    ("patient_id,eye,date,vfi,md,psd\nP1,OD,2019-03-04,91,-4.05,3.1,\nP1,OS,2019-03-04,,-4,05,\n", [("P1", -4.05)],
     "row 3: a value with a leading zero"),
    # A31-22: the blank last cell left out
    ("patient_id,eye,date,md,psd,vfi\nP1,OD,2019-03-04,-4,05,3\n", [], "leading zero"),
    # A31-21: Excel's separator line, column names with units or blanks
    ("sep=;\npatient_id;eye;date;vfi;md;psd\nP1;OD;2019-03-04;91;-4,05;3,1\nP1;OS;2019-03-04;91;x;3,1\n",
     [("P1", -4.05)], "row 4: MD is 'x'"),
    ("Patient ID,Eye,Date,VFI (%),MD (dB),PSD (dB)\nP1,OD,2019-03-04,91,-4.05,3.1\n", [("P1", -4.05)], None),
])
def test_attack31_tables_are_read_as_written_or_their_rows_named(tmp_path, table, expected, problem):
    """Attack run 31: MD -4,05 was read MD -4, PSD 5 under a header closed by a delimiter (A31-19), beside rows closed
    by one (A31-20) or with a blank last cell left out (A31-22), no word; a `sep=;` line or headers "Patient ID",
    "MD (dB)" made the table "1 other file" (A31-21)."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_text(table, encoding="utf-8")
    fields, problems = read_vf_rows(path)
    assert [(m.patient_id, m.md_db) for m in fields] == expected, (fields, problems)
    assert (problem is None and not problems) or (len(problems) == 1 and problem in problems[0]), problems


@pytest.mark.parametrize("name, data", [
    ("vf.csv", b"Visual fields, exported 2019\npatient_id,eye,date,vfi,md,psd\nDEMO02-000,OD,2018-09-22,91,-4.5,3\n"
),
    ("vf.txt", 'patient_id\teye\tdate\tvfi\tmd\tpsd\tnote\r\nDEMO02-000\tOD\t2018-09-22\t91\t-4,5\t3\t"open\r\n'
     .encode("utf-16")),
])
def test_a_table_below_a_title_or_a_damaged_utf16_txt_is_named_not_an_other_file(tmp_path, name, data):
    """A31-21: a title line above the column names, and A31-29: a UTF-16 .txt (Excel's "Unicode Text") that is refused
    (a quote left open) were counted as 1 other file, every row lost without a word; both are named."""
    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_folder

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    (root / name).write_bytes(data)
    index = index_folder(root, cache_dir=tmp_path / "cache")
    assert len([p for p, _ in index.problems if str(p).endswith(name)]) == 1, index.problems
    assert index.skipped["other files"] == 0, index.skipped


def test_what_tables_write_for_an_eye_a_date_and_a_value_not_measured_is_read(tmp_path):
    """Attack run 31, A31-23: eye R / L, a year-first date with slashes (2019/03/04, Japanese, Chinese and Korean
    Excel's default), NA, #N/A and a dash for a value not measured (R's write.csv, with its row-name column) refused
    the row, its other values lost with it."""
    from octviewer.study.vf import read_vf_rows

    path = tmp_path / "vf.csv"
    path.write_text('"","patient_id","eye","date","vfi","md","psd"\n"1","P1","R","2019/03/04",NA,-4.05,3.1\n'
                    '"2","P1","LEFT","2019-03-04",95,#N/A,-\n', encoding="utf-8")
    fields, problems = read_vf_rows(path)
    assert not problems, problems
    assert [(m.eye, str(m.date), m.vfi, m.md_db, m.psd_db) for m in fields] == [
        ("OD", "2019-03-04", None, -4.05, 3.1), ("OS", "2019-03-04", 95.0, None, None)]


def test_an_excel_workbook_named_csv_is_named_not_an_other_file(tmp_path):
    """Walk-through H141, W10: visual_fields.csv that is an .xlsx (a zip) was read as Windows-1252 text, found no VF
    header and counted as "1 other file", unnamed."""
    from octviewer.study.demo import write_demo_study
    from octviewer.study.index import index_folder

    root = write_demo_study(tmp_path / "study", patients=1, visits=1, preset="tiny", seed=2)
    (root / "visual_fields.csv").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    index = index_folder(root, cache_dir=tmp_path / "cache")
    named = [why for p, why in index.problems if str(p).endswith("visual_fields.csv")]
    assert len(named) == 1 and "Excel workbook" in named[0], index.problems
    assert index.skipped["other files"] == 0, index.skipped
