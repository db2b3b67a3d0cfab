"""Attack run 11, the trainer's findings: fit's reports owner-only (A11-2), fit --init checked before any work
(A11-10), the Harvard import's VF range (A11-9), evaluate/recalibrate --attach by the volumes' content (A11-3) and
the split by the DICOM header's patient (A11-4)."""

import os
import stat

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

FIT = ["--epochs", "1", "--image-size", "32", "--init", "random", "--device", "cpu"]


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a11_2_fit_report_paths_writes_its_reports_owner_only(tiny_cohort, tmp_path, monkeypatch, umask022, capsys):
    """semt with --report-paths: report.json and surrogates.csv name volumes by path; both (and report.md) are
    written as evaluate's --out is, 0600, even over an earlier 0644 file. Training itself is skipped (minutes)."""
    from trainer.cli import main

    monkeypatch.setattr("trainer.train.run_stage", lambda name, network, *a, **k: network)
    monkeypatch.setattr("trainer.train.stage_score", lambda *a: 0.0)
    run = tmp_path / "run"
    assert main(["fit", "--data", str(tiny_cohort), "--out", str(run), "--variant", "semt", *FIT,
                 "--report-paths", "--synthetic"]) == 0, capsys.readouterr().err
    volumes = str(tiny_cohort.parent / "volumes")
    assert volumes in (run / "report.json").read_text() and volumes in (run / "surrogates.csv").read_text()
    for name in ("report.json", "report.md", "surrogates.csv"):
        assert _mode(run / name) == 0o600, name


def test_a11_2_ablation_tables_are_owner_only(tiny_cohort, tmp_path, monkeypatch, umask022, capsys):
    from trainer.cli import main

    report = {"image_level": {"auc": 0.7}, "test_volumes": [{"volume": "a", "label": 1, "probability": 0.6,
                                                             "patient": "p"}]}
    monkeypatch.setattr("trainer.ablation.fit", lambda cfg: report)
    monkeypatch.setattr("trainer.ablation.markdown_table", lambda first, synthetic: "| table |\n")
    out = tmp_path / "abl"
    assert main(["ablation", "--data", str(tiny_cohort), "--out", str(out), "--variants", "resnet2d",
                 "--seeds", "0", *FIT]) == 0, capsys.readouterr().err
    for name in ("ablation.json", "ablation.md"):
        assert _mode(out / name) == 0o600, name
