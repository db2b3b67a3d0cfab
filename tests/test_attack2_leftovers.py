"""Issue 27, attack run 2, the last findings: readers' own words in messages (L2), a model file whose
digest was stripped (L6), the outputs' line ends, date-like visits and formula-safe patient IDs in the
files written back out (L8). The --cam-out findings (M1) are in test_batch_journal_attacks."""

import csv

import numpy as np
import pytest

from octviewer import VolumeReadError, load_volume
from octviewer.io import describe_failure


# -- L2: a reader's internals never reach a message; the file by its name only ---------------------------
def _refused(path) -> str:
    with pytest.raises(VolumeReadError) as info:
        load_volume(path)
    return str(info.value)


def test_a_truncated_e2e_is_called_truncated_not_a_construct_path(tmp_path):
    path = tmp_path / "one.e2e"
    path.write_bytes(b"\x00")
    message = _refused(path)
    assert message.startswith("one.e2e: ") and "truncated" in message
    assert "Error in path" not in message and "stream read" not in message and str(tmp_path) not in message


def test_a_cirrus_img_of_the_wrong_size_is_said_in_words(tmp_path):
    pytest.importorskip("oct_converter")
    path = tmp_path / "one.img"
    path.write_bytes(b"\x00")
    message = _refused(path)
    assert message.startswith("one.img: ") and "1024 x 512" in message and "reshape" not in message


def test_an_optovue_oct_without_its_txt_names_that_file_not_the_folder(tmp_path):
    pytest.importorskip("oct_converter")
    path = tmp_path / "one.oct"
    path.write_bytes(b"\x00" * 64)
    message = _refused(path)
    assert message.startswith("one.oct: ") and "one.txt" in message
    assert str(tmp_path) not in message and "filespec" not in message


def test_describe_failure_keeps_folders_and_parser_paths_out():
    import construct

    with pytest.raises(construct.StreamError) as info:
        construct.Struct("size_x" / construct.Int32ul).parse(b"\x00")
    assert describe_failure(info.value).startswith("the file is truncated")
    text = describe_failure(FileNotFoundError("Could not find filespec /clinic/Doe John/one.txt"))
    assert "/clinic" not in text and "Doe" not in text
    text = describe_failure(ValueError("bad block at /clinic/Doe_John/scan.raw, offset 1/2"))
    assert "/clinic" not in text and "Doe_John" not in text and "scan.raw" in text and "1/2" in text


# -- L6: a stripped digest reads differently from an ordinary unsigned file ------------------------------
def test_a_model_file_whose_digest_was_removed_says_so(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    from test_pipeline import tiny_model

    from octviewer.model import load_model

    path = tiny_model(tmp_path)
    plain = load_model(path).trust
    assert plain.status == "unsigned" and not plain.digest_missing and "digest" not in plain.warning
    with safe_open(path, framework="pt") as f:
        header, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    stripped = tmp_path / "stripped.safetensors"
    save_file(state, str(stripped), metadata={k: v for k, v in header.items() if k != "octviewer_digest"})
    trust = load_model(stripped).trust
    assert trust.status == "unsigned" and trust.digest_missing
    assert "digest is missing" in trust.warning and trust.text() == "unsigned, digest missing"
    assert trust.warning != plain.warning


# -- L8 (a): one line-end convention for the outputs of one run -----------------------------------------
@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    from octviewer.study.demo import write_demo_study

    study = write_demo_study(tmp_path_factory.mktemp("study"), patients=1, visits=1, preset="tiny", seed=3)
    return sorted((study / "scans").rglob("*.dcm"))[0]


def test_results_csv_and_key_file_of_one_run_both_end_lines_with_crlf(scan, tmp_path):
    from octviewer.pipeline import measure_cli

    out, keys = tmp_path / "r.csv", tmp_path / "keys.csv"
    assert measure_cli.main(["--no-store", "--out", str(out), "--key-file", str(keys), str(scan)]) in (0, 1)
    for written in (out, keys):
        data = written.read_bytes()
        assert data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n") >= 2, written.name


# -- L8 (b): a date that is no date is refused, naming the file, the row and the field -------------------
@pytest.mark.parametrize("column, value", [("date", "31/31/2020"), ("date", "04/03/2019"), ("date", "soon"),
                                           ("visit", "2020-13-45"), ("visit", "31.31.2020")])
def test_a_vf_table_date_that_is_no_date_is_refused(column, value, tmp_path):
    from octviewer.study.vf import VfReadError, read_vf_table

    table = tmp_path / "vf.csv"
    table.write_text(f"patient_id,eye,{column},vfi,md,psd\nP1,OD,2020-01-02,95,-1,2\nP1,OS,{value},95,-1,2\n")
    with pytest.raises(VfReadError) as info:
        read_vf_table(table)
    message = str(info.value)
    assert "vf.csv: row 3: " in message and f"{column} is '{value}'" in message


@pytest.mark.parametrize("visit", ["1", "v2", "baseline", "20200102", "2020-01-02"])
def test_a_visit_label_or_a_real_date_is_still_read(visit, tmp_path):
    from octviewer.study.vf import read_vf_table

    table = tmp_path / "vf.csv"
    table.write_text(f"patient_id,eye,visit,vfi,md,psd\nP1,OD,{visit},95,-1,2\n")
    [m] = read_vf_table(table)
    assert m.visit == visit


# -- L8 (c): a patient ID that is a formula is never written back out as one -----------------------------
FORMULA = '=HYPERLINK("x")'


def _cells(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_label_scarce_split_writes_a_formula_patient_id_as_text(tmp_path):
    from trainer.label_scarce import prepare

    cohort = tmp_path / "cohort.csv"
    lines = ["path,patient_id,eye,visit,label,vfi,md,psd"]
    for i in range(6):
        pid = FORMULA if i == 0 else f"P{i}"
        np.save(tmp_path / f"v{i}.npy", np.full((4, 16, 16), i, dtype=np.uint8))  # prepare opens them (A14-13)
        lines.append(f"v{i}.npy,\"{pid.replace(chr(34), chr(34) * 2)}\",OD,1,{'glaucoma' if i % 2 else 'normal'},,,")
    cohort.write_text("\n".join(lines) + "\n")
    prepare(cohort, tmp_path / "split.csv", test_patients=2, val_patients=2, seed=0)
    rows = _cells(tmp_path / "split.csv")
    assert "'" + FORMULA in [r["patient_id"] for r in rows]
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values())
    assert [r["path"] for r in rows] == [f"v{i}.npy" for i in range(6)]  # paths as they were


def test_a_public_dataset_manifest_writes_a_formula_patient_id_as_text(tmp_path):
    from trainer.public import write_manifest

    (tmp_path / "a.npy").write_bytes(b"")
    rows = [{"path": "a.npy", "patient_id": FORMULA, "eye": "OD", "visit": "2020-01-02", "label": "normal",
             "vfi": "", "md": "-3.50", "psd": "", "split": ""}]
    out = write_manifest(rows, tmp_path / "m.csv", tmp_path)
    [row] = _cells(out)
    assert row["patient_id"] == "'" + FORMULA and row["md"] == "-3.50" and row["path"] == "a.npy"



# -- L7: a manifest is read row by row, not held as a 4-bytes-a-character copy ---------------------------
def test_reading_a_manifest_takes_a_small_multiple_of_its_size(tmp_path):
    """A 183 MB manifest took 2.0 GB to validate (attack run 2 L7): its whole text was put in a StringIO,
    which keeps 4 bytes a character, beside the bytes and the decoded text. Now the rows are decoded as
    they are read."""
    import tracemalloc

    from trainer.manifest import read_manifest

    manifest = tmp_path / "m.csv"
    notes = "x" * 4000  # a long extra cell on every row, kept in the records
    rows = [f"v{i}.npz,P{i},OD,1,normal,,,,{notes}" for i in range(2000)]
    manifest.write_text("path,patient_id,eye,visit,label,vfi,md,psd,notes\n" + "\n".join(rows) + "\n")
    size = manifest.stat().st_size
    tracemalloc.start()
    try:
        records, _ = read_manifest(manifest, check_files=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(records) == 2000
    assert peak < 4 * size, f"peak {peak / size:.1f} x the file's size"
