"""The demo model's MD acceptance checks (issue 13): the normal-label share, the same among eyes of
stage "normal" (label "normal" also holds preperimetric eyes), and MD by stage."""

from types import SimpleNamespace

import pytest

from trainer.evaluate import md_checks


def _record(label, stage, true_md):
    return SimpleNamespace(label=label, extra={"stage": stage}, vf={"md": true_md})


def test_md_checks_separate_preperimetric_from_healthy_eyes():
    records = [_record(0, "normal", -0.5), _record(0, "normal", -1.0), _record(0, "preperimetric", -2.0),
               _record(0, "preperimetric", -1.5), _record(1, "early", -4.0), _record(1, "advanced", -20.0)]
    predicted = [-1.0, -3.0, -4.0, -3.5, -5.0, -12.0]
    out = md_checks(records, predicted)
    assert out["normal_md_ge_-2.5_share"] == pytest.approx(1 / 4)  # label normal: 1 of 4 at >= -2.5 dB
    assert out["stage_normal_md_ge_-2.5_share"] == pytest.approx(1 / 2)  # stage normal: 1 of 2
    by_stage = out["md_by_stage"]
    assert by_stage["preperimetric"]["n"] == 2 and by_stage["preperimetric"]["predicted_mean"] == pytest.approx(-3.75)
    assert by_stage["advanced"]["true_mean"] == pytest.approx(-20.0)
