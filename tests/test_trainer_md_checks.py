"""The demo model's MD acceptance checks (issue 13): the normal-label share, the same among eyes of
stage "normal" (label "normal" also holds preperimetric eyes), and MD by stage."""

from types import SimpleNamespace

import numpy as np
import pytest

from trainer.evaluate import md_checks, vf_metrics


def _record(label, stage, true_md, patient="p"):
    return SimpleNamespace(label=label, extra={"stage": stage}, vf={"md": true_md}, patient_id=patient)


def test_md_checks_separate_preperimetric_from_healthy_eyes():
    records = [_record(0, "normal", -0.5, "a"), _record(0, "normal", -1.0, "b"), _record(0, "preperimetric", -2.0, "c"),
               _record(0, "preperimetric", -1.5, "d"), _record(1, "early", -4.0, "e"),
               _record(1, "advanced", -20.0, "f")]
    predicted = [-1.0, -3.0, -4.0, -3.5, -5.0, -12.0]
    out = md_checks(records, predicted)
    assert out["normal_md_ge_-2.5_share"] == pytest.approx(1 / 4)  # label normal: 1 of 4 at >= -2.5 dB
    assert out["stage_normal_md_ge_-2.5_share"] == pytest.approx(1 / 2)  # stage normal: 1 of 2
    lo, hi = out["normal_md_ge_-2.5_share_ci95"]
    assert 0 <= lo <= 0.25 <= hi <= 1 and hi > lo
    by_stage = out["md_by_stage"]
    assert by_stage["preperimetric"]["n"] == 2 and by_stage["preperimetric"]["predicted_mean"] == pytest.approx(-3.75)
    assert by_stage["advanced"]["true_mean"] == pytest.approx(-20.0)


def test_vf_mae_has_patient_cluster_intervals_and_the_difference_to_the_oracle():
    """A model better than the class-mean oracle on every patient: the difference's interval sits below 0.
    Two volumes per patient, so the bootstrap draws patients, not volumes."""
    rng = np.random.default_rng(0)
    records, predicted = [], []
    for i in range(30):
        label = i % 2
        true_md = (-8.0 if label else -0.5) + rng.normal(0, 3)
        for _ in range(2):
            records.append(_record(label, "early" if label else "normal", true_md, f"p{i}"))
            predicted.append(true_md + rng.normal(0, 0.5))
    out = vf_metrics(records, {"md": np.array(predicted)}, {"md": {"0": -0.5, "1": -8.0}})["md"]
    assert out["mae"] < out["class_mean_mae"]
    assert out["mae_minus_class_mean"] == pytest.approx(out["mae"] - out["class_mean_mae"])
    ci = out["ci95"]
    assert ci["mae"][0] <= out["mae"] <= ci["mae"][1]
    assert ci["class_mean_mae"][0] <= out["class_mean_mae"] <= ci["class_mean_mae"][1]
    assert ci["mae_minus_class_mean"][1] < 0


def test_ece_floor_tells_test_set_noise_from_miscalibration():
    """A perfectly calibrated model still reads an ECE above 0 on a small test set; the floor says how
    much, and it falls as the set grows. Volumes of one eye share their label, so eyes set the noise."""
    from trainer.evaluate import ece_floor, expected_calibration_error

    rng = np.random.default_rng(3)
    eyes = np.repeat(np.arange(90), 4)                # 90 eyes, 4 volumes each
    eye_p = rng.uniform(0.02, 0.98, 90)
    probs = np.clip(eye_p[eyes] + rng.normal(0, 0.03, len(eyes)), 0.001, 0.999)
    median, p95 = ece_floor(probs, eyes)
    assert 0.03 < median < p95 < 0.15
    calibrated = (rng.random(90) < eye_p)[eyes]       # labels drawn as the model says
    assert expected_calibration_error(calibrated, probs)[0] < p95
    overconfident = (rng.random(90) < 0.5)[eyes]      # the same probabilities, labels a coin
    assert expected_calibration_error(overconfident, probs)[0] > p95
    big_eyes = np.repeat(np.arange(900), 4)
    big_p = np.clip(rng.uniform(0.02, 0.98, 900)[big_eyes], 0.001, 0.999)
    assert ece_floor(big_p, big_eyes)[0] < median / 2  # ten times the eyes: about a third of the noise


def test_model_card_gives_ece_and_its_floor_without_a_glaucoma_count():
    """The card's accuracy/ECE/Brier line came only with sensitivity and specificity, so an evaluation
    without a glaucoma count showed no calibration at all."""
    from octviewer.gui.model.card import _metric_lines

    lines = "\n".join(_metric_lines({"image_level": {"auc": 0.9, "accuracy": 0.8, "ece": 0.066, "brier": 0.13,
                                                     "ece_floor": [0.06, 0.10]}}))
    assert "calibration error (ECE) 0.066" in lines and "Brier score 0.130" in lines
    assert "perfectly calibrated model would read ECE 0.060" in lines and "0.100" in lines
