"""Attack run 4's findings in the commands, their outputs, the trainer, the results store and the PACS
outbox (issue 27; LOG in the attack run's notes). Each test failed on the code before its fix; none fits a
network."""

from __future__ import annotations

import csv

import numpy as np
import pytest


# -- F15: a pseudonymised row and stderr name no companion file --------------------------------------------
def test_pseudonymised_measure_names_no_companion_file(tmp_path, capsys):
    """An Optovue .oct without its .txt and a B-scan folder with one cut PNG: the file names carry the
    patient's name; the row's error cell and stderr give the key and "a companion file", never them."""
    from PIL import Image

    from octviewer.pipeline.measure_cli import main

    (tmp_path / "Doe_John_1950.oct").write_bytes(b"\0\0\0\0")
    scans = tmp_path / "Scan_0001"
    scans.mkdir()
    for i in range(12):
        Image.fromarray(np.full((64, 48), i * 9, np.uint8)).save(scans / f"Doe_John_1950_b{i:02d}.png")
    cut = scans / "Doe_John_1950_b10.png"
    cut.write_bytes(cut.read_bytes()[:60])
    out = tmp_path / "m.csv"
    assert main([str(tmp_path / "Doe_John_1950.oct"), str(scans), "--out", str(out), "--no-store"]) == 1
    err = capsys.readouterr().err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 2 and all(r["quality"].startswith("unreadable") for r in rows)
    for text in [err, *(r["quality"] for r in rows)]:
        assert "Doe" not in text and "1950" not in text, text
    assert all("a companion file" in r["quality"] for r in rows)


# -- F16: evaluate's --out is none of the manifest's scans, and owner-only ----------------------------------
def _manifest(tmp_path, *paths):
    text = "path,patient_id,eye,visit,label\n" + "".join(
        f"{p},P{i},OD,2020-01-01,{'glaucoma' if i % 2 else 'normal'}\n" for i, p in enumerate(paths))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(text)
    return manifest


@pytest.mark.parametrize("how", ["same", "hard link", "relative"])
def test_evaluate_refuses_an_out_naming_a_scan_of_the_manifest(tmp_path, capsys, monkeypatch, how):
    from trainer.cli import main

    scan = tmp_path / "volumes" / "SYN003.dcm"
    scan.parent.mkdir()
    scan.write_bytes(b"scan bytes")
    out = scan
    if how == "hard link":
        out = tmp_path / "report.json"
        out.hardlink_to(scan)
    elif how == "relative":
        monkeypatch.chdir(tmp_path)
        out = scan.relative_to(tmp_path)
    manifest = _manifest(tmp_path, "volumes/SYN003.dcm")
    rc = main(["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(manifest), "--split", "all",
               "--out", str(out)])
    assert rc == 3
    assert scan.read_bytes() == b"scan bytes"
    assert "input" in capsys.readouterr().err


def test_evaluate_refuses_an_out_inside_a_volume_folder(tmp_path):
    from trainer.cli import main

    folder = tmp_path / "Scan_0001"
    folder.mkdir()
    manifest = _manifest(tmp_path, "Scan_0001")
    assert main(["evaluate", "--model", str(tmp_path / "m.safetensors"), "--data", str(manifest),
                 "--out", str(folder / "report.json")]) == 3
    assert list(folder.iterdir()) == []


def test_evaluate_report_is_owner_only_over_an_existing_file(tmp_path):
    import os

    from trainer.cli import _write_out

    out = tmp_path / "report.json"
    out.write_text("old")
    out.chmod(0o644)
    _write_out(out, "{}")
    assert out.read_text() == "{}" and (os.stat(out).st_mode & 0o777) == 0o600
