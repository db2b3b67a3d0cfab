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
