"""Manifest duplicates found by content: hard links and copies of one scan are one scan."""

import csv
import os
import shutil
import time

import pytest

from trainer.manifest import ManifestError, read_manifest

HEADER = ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split"]


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def _scan(path, seed):
    path.write_bytes(bytes([seed]) * 200_000 + os.urandom(100_000))  # same size, different content
    return path


def test_hard_links_of_one_scan_do_not_pass_as_many_patients(tmp_path):
    # Old: 50,000 hard links of one scan passed validate as 10,000 patients in all three splits.
    scan = _scan(tmp_path / "scan.dcm", 1)
    rows = []
    for i in range(3000):
        link = tmp_path / f"p{i}.dcm"
        os.link(scan, link)
        rows.append([link.name, f"P{i // 5}", "OD", "", "normal", "", "", "", ""])
    start = time.monotonic()
    with pytest.raises(ManifestError) as err:
        read_manifest(_write(tmp_path / "m.csv", rows))
    assert time.monotonic() - start < 20
    problems = err.value.problems
    assert len(problems) == 2999
    assert problems[0] == "row 3: duplicate scan: the same content as row 2 (a hard link to the same file)"


def test_copies_are_found_by_content_and_distinct_scans_of_one_size_pass(tmp_path):
    a = _scan(tmp_path / "a.dcm", 1)
    _scan(tmp_path / "b.dcm", 2)
    shutil.copyfile(a, tmp_path / "a_copy.dcm")
    rows = [[name, f"P{i}", "OD", "", "normal", "", "", "", ""]
            for i, name in enumerate(["a.dcm", "b.dcm", "a_copy.dcm"])]
    with pytest.raises(ManifestError) as err:
        read_manifest(_write(tmp_path / "m.csv", rows))
    assert err.value.problems == ["row 4: duplicate scan: the same content as row 2 (a byte-for-byte copy)"]
    records, _ = read_manifest(_write(tmp_path / "ok.csv", rows[:2]))
    assert len(records) == 2
