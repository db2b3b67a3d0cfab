"""Attack run 15 (H94), four low findings fixed by H97: a B-scan folder's note on the count and the files' numbers
(A15-9), screen's "two people under one ID" refusal naming the options that pick one (A15-10), retrieve's person
rule with and without --patient-id (A15-18), and the trainer's "two people under one patient_id" warning (A15-14)."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------- A15-9: a folder numbered from 0, with a gap


@pytest.mark.gui
@pytest.mark.parametrize("first, expected", [
    (0, "on screen they are counted 1 to 16 in order, while the files are numbered otherwise: B-scan 1 is number "
        "000; past the gap, B-scan 9 is number 009"),
    (1, "on screen they are counted 1 to 16 in order, so from B-scan 8 on the count is not the file's number "
        "(B-scan 8 is number 009)")])
def test_a_folder_with_a_gap_says_the_files_numbers_as_written_for_0_and_1_based_names(
        qtbot, window, monkeypatch, tmp_path, first, expected):
    """A15-9: B000 .. B016 without B008 said "from B-scan 9 on the count is not the file's number (B-scan 9 is
    number 9)": the count was never the number (B-scan 1 is B000), and B-scan 9 is B009."""
    from corpus import oct_like
    from test_folder_h74 import _open_bscan_folder, _write_pngs

    w = window
    names = [f"B{n:03d}.png" for n in range(first, first + 17) if n != 8]
    _open_bscan_folder(qtbot, w, monkeypatch, _write_pngs(tmp_path / "gap", oct_like((16, 64, 48)), names))
    assert not w.warnings and w.state.volume.n_bscans == 16
    text = w.results.caveats.text()
    assert "1 B-scan number is missing from the series (the first between 7 and 9)" in text
    assert expected in text
    assert "is number 9)" not in text
