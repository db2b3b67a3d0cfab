"""Attack run 13's trainer finding (A13-8): the run folder and its decode cache (every training scan's pixels, as the
network sees them) and checkpoints were made 0755 / 0644 under the usual umask, beside reports made owner-only."""

from __future__ import annotations

import os
import stat

FIT = ["--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a13_8_the_run_and_its_cache_folders_are_made_owner_only(tiny_cohort, tmp_path, monkeypatch, capsys):
    from trainer.cli import main

    monkeypatch.setattr("trainer.train.run_stage", lambda name, network, *a, **k: network)  # training: minutes
    monkeypatch.setattr("trainer.train.stage_score", lambda *a: 0.0)
    run, cache = tmp_path / "runs" / "run", tmp_path / "caches" / "c"
    old = os.umask(0o022)
    try:
        assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), "--cache-dir", str(cache),
                     "--variant", "resnet2d", *FIT]) == 0, capsys.readouterr().err
    finally:
        os.umask(old)
    for folder in (run.parent, run, cache.parent, cache):
        assert _mode(folder) == 0o700, folder
    assert any(cache.iterdir())
    # a folder the user made beforehand is left as it is
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(mine), "--variant", "resnet2d", *FIT]) == 0
    assert _mode(mine) == 0o755


def test_a13_13_a_last_batch_of_one_bscan_goes_with_the_one_before(tiny_cohort, tmp_path, capsys):
    """fit at an image size under 64 (the last feature map 1 x 1) ended in a torch traceback ("Expected more than 1
    value per channel when training") after its cache stage whenever the training B-scans left a last batch of one."""
    from trainer.cli import main
    from trainer.manifest import assign_splits, read_manifest

    records, _ = read_manifest(tiny_cohort)
    n_train = sum(r.split == "train" for r in assign_splits(records, seed=0))
    assert n_train > 2
    run = tmp_path / "run"
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), "--variant", "resnet2d", *FIT,
                 "--bscans-per-volume", "1", "--batch-size", str(n_train - 1)]) == 0, capsys.readouterr().err
    assert (run / "model.safetensors").exists()


def test_a13_14_a_circle_or_line_scan_row_is_refused_as_the_predictor_refuses_it(tiny_cohort, samples_dir, tmp_path,
                                                                                   capsys):
    """A manifest row naming a peripapillary circle scan or a line scan was accepted by validate and fit and cached
    and trained on as a volume, while the window and octviewer-predict refuse such scans for the model."""
    import pytest

    from trainer.cli import main

    vol = samples_dir.resolve() / "heidelberg_vol"  # absolute: the manifest is written elsewhere
    if not (vol / "Willis_B_716_0.vol").exists():
        pytest.skip("Heidelberg samples not present")
    import csv

    with open(tiny_cohort, newline="") as f:
        table = list(csv.DictReader(f))
    header = list(table[0])
    for row in table:  # absolute paths: the manifest is written elsewhere
        row["path"] = str(tiny_cohort.parent / row["path"])
    rows = [",".join(header), *(",".join(row[c] for c in header) for row in table)]
    extra = []
    for k, name in enumerate(("Willis_B_716_2.vol", "Willis_B_716_0.vol")):
        cells = dict.fromkeys(header, "")
        cells.update(path=str(vol / name), patient_id=f"CIRC{k}", eye="OD", label="normal")
        extra.append(",".join(cells[c] for c in header))
    manifest = tmp_path / "with_circles.csv"
    manifest.write_text("\n".join([*rows, *extra]) + "\n")
    assert main(["validate", "--data", str(manifest)]) == 2
    err = capsys.readouterr().err
    n = len(rows)
    assert f"row {n + 1}: a circle scan (1 B-scan): the model reads volume scans" in err
    assert f"row {n + 2}: a line scan (1 B-scan)" in err
