"""Attack run 10 (H57), fixed by H60: the study index's VF tables and copies of one scan."""

from __future__ import annotations

import time

import pytest

# ---------------------------------------------------------------- A10-22: a header that held indexing


def test_a_long_header_of_vf_words_is_judged_in_linear_time(tmp_path):
    from octviewer.study.vf import NotAVfTable, VfReadError, read_vf_rows

    table = tmp_path / "notes.csv"
    table.write_text("md " * ((64 << 10) // 3) + "\nx\n", encoding="utf-8")  # 64 KiB: 15 s in the old regex
    start = time.monotonic()
    with pytest.raises(NotAVfTable):
        read_vf_rows(table)
    assert time.monotonic() - start < 2
    spaced = tmp_path / "spaced.csv"  # the check still names a header that no separator splits
    spaced.write_text("patient_id eye date vfi md\nP1 OD 2019-09-24 95 -1\n", encoding="utf-8")
    with pytest.raises(VfReadError, match="not separated"):
        read_vf_rows(spaced)


# ---------------------------------------------------------------- A10-6: column names with blanks around them

def test_a_vf_table_with_comma_space_between_its_names_is_read(tmp_path):
    from octviewer.study import index_folder

    study = tmp_path / "study"
    study.mkdir()
    (study / "visual_fields.csv").write_text("patient_id, eye, date, vfi, md\nP1, OD, 2019-09-24, 95.5, -1.2\n",
                                            encoding="utf-8")
    index = index_folder(study, cache_dir=tmp_path / "cache")  # it was "1 other file", no field
    assert [(m.patient_id, m.eye, m.vfi, m.md_db) for m in index.vf] == [("P1", "OD", 95.5, -1.2)]
    assert not index.skipped


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from octviewer.study.demo import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo") / "study", patients=1, visits=1, preset="tiny", seed=9)


def test_a_manifest_with_comma_space_between_its_names_gives_its_rows_patient_and_field(demo, tmp_path):
    import shutil

    from octviewer.study import index_manifest

    shutil.copy(sorted(demo.rglob("OD_*.dcm"))[0], tmp_path / "OD.dcm")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path, patient_id, eye, visit, vfi\nOD.dcm, P1, OD, 2019-09-24, 95\n", encoding="utf-8")
    index = index_manifest(manifest)  # the row's patient and VFI were ignored without a word
    assert [s.patient_id for s in index.scans] == ["P1"]
    assert [(m.patient_id, m.eye, m.vfi) for m in index.vf] == [("P1", "OD", 95.0)]


# ---------------------------------------------------------------- A10-5: a copy cut short after its header

def test_of_copies_with_one_uid_the_whole_file_is_kept_not_the_first_by_name(demo, tmp_path):
    from octviewer.study import index_folder

    scans = tmp_path / "study" / "scans" / "P1"
    scans.mkdir(parents=True)
    data = sorted(demo.rglob("OD_*.dcm"))[0].read_bytes()
    (scans / "OD.dcm").write_bytes(data)
    (scans / "A_OD_copy.dcm").write_bytes(data[: len(data) // 2])  # the same header UID, its pixels cut short
    index = index_folder(tmp_path / "study", cache_dir=tmp_path / "cache")
    assert [s.path for s in index.scans] == [str(scans / "OD.dcm")]
    visit = index.scans[0].visit  # which copy is cut short, and which file is used, said (H82, W13; H91, W11)
    assert index.warnings == [(str(scans / "OD.dcm"), "copy",
                               "the same scan as scans/P1/A_OD_copy.dcm (the same DICOM UID; listed twice at the visit "
                               f"{visit}): it is used once: this file, not the copy (the largest; "
                               "scans/P1/A_OD_copy.dcm is cut short: it ends inside its pixel data, "
                               f"{len(data) // 2} of {len(data)} bytes)")]


# ---------------------------------------------------------------- A10-17: a copy re-exported with a new UID

def test_a_copy_with_a_new_uid_and_the_same_pixels_is_used_once_and_a_repeat_scan_kept(demo, tmp_path):
    import numpy as np
    import pydicom
    from pydicom.uid import generate_uid

    from octviewer.study import index_folder

    scans = tmp_path / "study" / "scans" / "P1"
    scans.mkdir(parents=True)
    source = sorted(demo.rglob("OD_*.dcm"))[0]
    (scans / "OD.dcm").write_bytes(source.read_bytes())
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = generate_uid()
    ds.save_as(scans / "OD_reexport.dcm")
    pixels = np.frombuffer(ds.PixelData, dtype=np.uint8).copy()
    pixels[-10:] ^= 1  # a repeat scan of the visit: other pixels, its own UID
    ds.PixelData, ds.SOPInstanceUID = pixels.tobytes(), generate_uid()
    ds.save_as(scans / "OD_repeat.dcm")
    index = index_folder(tmp_path / "study", cache_dir=tmp_path / "cache")
    used = sorted(s.path.rsplit("/", 1)[1] for s in index.scans)
    assert len(used) == 2 and "OD_repeat.dcm" in used  # both were used with the re-export: three scans
    [(kept, _, warning)] = [w for w in index.warnings if w.kind == "copy"]
    assert "(the same pixel data; listed twice at the visit" in warning and "it is used once" in warning
    repeats = [w for w in index.warnings if w.kind == "repeat"]  # the repeat is said (walk-through H91, W12)
    assert len(repeats) == 2 and "OD: 2 scans at the visit" in repeats[0].text, repeats


# ---------------------------------------------------------------- A10-7: rows the header's separator does not split

def test_rows_the_headers_separator_does_not_split_are_listed_not_left_out_in_silence(tmp_path):
    from octviewer.study.vf import read_vf_rows

    table = tmp_path / "vf.csv"
    table.write_text("patient_id;eye;date;vfi;md\nP1,OD,2019-09-24,95.5,-1.2\nP1;OS;2019-09-24;;\n", encoding="utf-8")
    assert read_vf_rows(table) == ([], ["row 2 has 1 cell(s), the header 5: its cells are not separated by "
                                        "semicolons, as the header's are; the row is not read"])
    short = tmp_path / "short.csv"  # a short row with nothing of another separator: not measured, as before
    short.write_text("patient_id,eye,date,vfi\nP1,OD,2019-09-24\n", encoding="utf-8")
    assert read_vf_rows(short) == ([], [])


# ---------------------------------------------------------------- A10-8: column names in upper case

@pytest.mark.parametrize("separator", [",", ";"])
def test_a_vf_table_with_upper_case_names_is_read(tmp_path, separator):
    from octviewer.study.vf import VfReadError, read_vf_rows

    table = tmp_path / "vf.csv"
    table.write_text(separator.join(["PATIENT_ID", "Eye", "DATE", "VFI", "MD"]) + "\n"
                     + separator.join(["P1", "OD", "2019-09-24", "95", "-1"]) + "\n", encoding="utf-8")
    rows, problems = read_vf_rows(table)  # it was "not separated by commas, semicolons or tabs"
    assert [(m.patient_id, m.eye, m.vfi, m.md_db) for m in rows] == [("P1", "OD", 95.0, -1.0)] and problems == []
    table.write_text("patient_id,eye,MD,md\nP1,OD,-1,-2\n", encoding="utf-8")
    with pytest.raises(VfReadError, match="given twice"):
        read_vf_rows(table)


# ---------------------------------------------------------------- A10-21: visit labels int() refuses

def test_visit_labels_sort_with_their_numbers_as_numbers_whatever_their_digits():
    from octviewer.study.index import natural_key

    long = "V" + "1" * 5000  # past int()'s 4300 digits; '²' is a digit to str.isdigit(), not to int()
    labels = ["V10", long, "²", "V2", "v1", "baseline"]
    assert sorted(labels, key=lambda label: (natural_key(label), label)) == ["baseline", "v1", "V2", "V10", long, "²"]


# ---------------------------------------------------------------- A10-19: the copies a study uses once are in use

def test_a_copy_the_study_index_uses_once_is_refused_as_an_export_target(demo, tmp_path):
    from types import SimpleNamespace

    from octviewer.gui.export.scan_exports import files_in_use
    from octviewer.gui.export.targets import target_problem
    from octviewer.study import index_folder

    scans = tmp_path / "study" / "scans" / "P1"
    scans.mkdir(parents=True)
    data = sorted(demo.rglob("OD_*.dcm"))[0].read_bytes()
    (scans / "OD.dcm").write_bytes(data)
    (scans / "OD_copy.dcm").write_bytes(data)
    index = index_folder(tmp_path / "study", cache_dir=tmp_path / "cache")
    assert index.copies == [str(scans / "OD_copy.dcm")]
    window = SimpleNamespace(state=SimpleNamespace(volume=None), study=SimpleNamespace(index=index))
    assert "has open" in target_problem(str(scans / "OD_copy.dcm"), files_in_use(window), None, None)
