"""The synthetic population (no rendering): stage mix, RNFL overlap, the visual field, label noise,
VF missing not at random, progression. These pin the disease model documented in docs/cohort.md."""

import numpy as np
import pytest

from octviewer.synth.cohort import GLAUCOMA_SHARE, _plan, random_eye
from octviewer.synth.disease import visual_field


@pytest.fixture(scope="module")
def visits():
    """One row per eye-visit of a 300-patient cohort plan (seconds, nothing rendered)."""
    tasks = _plan(300, seed=5, missing_vf=1 / 3, glaucoma_share=GLAUCOMA_SHARE)
    rows = list({id(t.row): t.row for t in tasks}.values())
    return rows


def _f(rows, key):
    return np.array([float(r[key]) for r in rows])


def test_stage_mix_among_glaucoma(visits):
    glaucoma = [r for r in visits if r["label_rule"] == "glaucoma"]
    stages = np.array([r["stage"] for r in glaucoma])
    assert set(stages) <= {"early", "moderate", "advanced"}
    share = {s: float(np.mean(stages == s)) for s in ("early", "moderate", "advanced")}
    assert 0.40 <= share["early"] <= 0.62, share
    assert 0.18 <= share["moderate"] <= 0.40, share
    assert 0.10 <= share["advanced"] <= 0.30, share
    # preperimetric eyes exist and are "normal" by the reference standard
    pre = [r for r in visits if r["stage"] == "preperimetric"]
    assert len(pre) > 0.05 * len(visits)
    assert all(r["label_rule"] == "normal" for r in pre)


def test_rnfl_overlap(visits):
    normal = _f([r for r in visits if r["stage"] == "normal"], "rnfl_global_um")
    early = _f([r for r in visits if r["stage"] == "early"], "rnfl_global_um")
    assert 90 < normal.mean() < 100 and 7 < normal.std() < 13  # ~95 +/- 10 um
    assert 70 < early.mean() < 86 and 6 < early.std() < 14  # ~80 +/- 10 um
    lo, hi = np.percentile(normal, [5, 95])
    inside = np.mean((early > lo) & (early < hi))
    assert 0.2 < inside < 0.5, inside  # ~30 % of early eyes inside the normal 5-95 % band
    advanced = _f([r for r in visits if r["stage"] == "advanced"], "rnfl_global_um")
    assert 40 < advanced.mean() < 65  # the floor: advanced damage shows in the field and the cup


def test_visual_field_of_normal_eyes(visits):
    rows = [r for r in visits if r["stage"] == "normal" and r["md"] != "" and float(r["cataract_db"]) == 0]
    vfi, psd, md = _f(rows, "vfi"), _f(rows, "psd"), _f(rows, "md")
    assert 97.8 < vfi.mean() < 99.2 and 0.8 < vfi.std() < 2.2  # 98.5 +/- 1.5
    assert 1.3 < psd.mean() < 1.8 and 0.2 < psd.std() < 0.55  # 1.5 +/- 0.35
    assert abs(md.mean()) < 0.6 and 0.6 < md.std() < 1.6


def test_normal_fields_with_cataract_stay_near_real_ones(visits):
    """Every eye of stage "normal" with a field, cataract included (generator 2.4): real normal
    fields sit at MD >= -2.5 dB in about 9 of 10 tests; the 2.3 generator's cataract (1-7 dB of
    field loss) gave 82 %, and only 75 % of label-normal eyes, which issue 13's target reads."""
    normal = _f([r for r in visits if r["stage"] == "normal" and r["md"] != ""], "md")
    label_normal = _f([r for r in visits if r["label"] == "normal" and r["md"] != ""], "md")
    assert -1.0 < normal.mean() < -0.2 and normal.std() < 2.1, (normal.mean(), normal.std())
    assert np.mean(normal >= -2.5) >= 0.83  # 0.85 on this plan; 2.3: 0.76
    assert np.mean(label_normal >= -2.5) >= 0.78  # 0.80; 2.3: 0.71
    cataract = _f([r for r in visits if float(r["cataract_db"]) > 0], "cataract_db")
    assert 0.15 < cataract.size / len(visits) < 0.4 and 0.5 <= cataract.min() and cataract.max() <= 3.5


def test_cataract_lowers_md_not_psd():
    rng = np.random.default_rng(0)
    eye = random_eye(rng, "OD", glaucoma=False)
    pattern = np.zeros(52)
    clear = [visual_field(eye, np.random.default_rng(k), 0.0, pattern) for k in range(200)]
    cloudy = [visual_field(eye, np.random.default_rng(k), 4.0, pattern) for k in range(200)]
    md_drop = np.mean([c["md"] for c in clear]) - np.mean([c["md"] for c in cloudy])
    psd_change = np.mean([c["psd"] for c in cloudy]) - np.mean([c["psd"] for c in clear])
    assert 3.5 < md_drop < 4.5 and abs(psd_change) < 0.2


def test_retest_noise_grows_with_damage():
    rng = np.random.default_rng(1)
    eye = random_eye(rng, "OD", glaucoma=True)
    from dataclasses import replace
    healthy = replace(eye, severity=0.0, diffuse_loss=0.0, wedges=[])
    damaged = replace(eye, severity=0.8, diffuse_loss=0.9, wedges=[], function_gamma=1.0)
    pattern = np.zeros(52)
    sd_h = np.std([visual_field(healthy, np.random.default_rng(k), 0.0, pattern)["md"] for k in range(300)])
    sd_d = np.std([visual_field(damaged, np.random.default_rng(k), 0.0, pattern)["md"] for k in range(300)])
    assert sd_d > sd_h


def test_label_noise_near_the_boundary(visits):
    flipped = np.mean([r["label"] != r["label_rule"] for r in visits])
    assert 0.03 < flipped < 0.09, flipped
    # flips happen near the rule's boundary: not in clearly normal or advanced eyes
    far = [r for r in visits if r["stage"] == "advanced" or float(r["severity"]) == 0]
    assert np.mean([r["label"] != r["label_rule"] for r in far]) < 0.02


def test_vf_missing_not_at_random(visits):
    missing = np.array([r["md"] == "" for r in visits])
    assert 0.25 < missing.mean() < 0.42
    stage = np.array([r["stage"] for r in visits])
    glaucoma = np.isin(stage, ["early", "moderate", "advanced"])
    assert missing[stage == "normal"].mean() > missing[glaucoma].mean() + 0.1


def test_progression_and_age(visits):
    by_eye = {}
    for r in visits:
        by_eye.setdefault((r["patient_id"], r["eye"]), []).append(r)
    slopes_g, slopes_n = [], []
    for rows in by_eye.values():
        rows = sorted(rows, key=lambda r: r["visit"])
        if len(rows) < 3:
            continue
        dates = np.array([np.datetime64(r["visit"]) for r in rows])
        years = (dates - dates[0]).astype(float) / 365.25
        if years[-1] < 1:
            continue
        severity = _f(rows, "severity")
        rnfl = _f(rows, "rnfl_global_um")
        assert np.all(np.diff(severity) >= 0)
        slope = np.polyfit(years, rnfl, 1)[0]
        (slopes_g if severity[0] > 0 else slopes_n).append(slope)
    assert len(slopes_n) > 10 and len(slopes_g) > 10
    assert -0.8 < np.median(slopes_n) < -0.2  # ageing: about -0.5 um per year
    assert np.median(slopes_g) < np.median(slopes_n) - 0.25  # glaucoma progresses


def test_structure_function_map_is_the_eyes_own():
    """Generator 2.5: each eye maps its 24-2 points to its own disc angles (Denniss et al. 2012):
    stable across visits of the eye, different between eyes, centred on the Garway-Heath map."""
    from dataclasses import replace

    from octviewer.synth.disease import POINT_ANGLES, point_angles

    rng = np.random.default_rng(0)
    eyes = [random_eye(rng, "OD", True) for _ in range(200)]
    first = point_angles(eyes[0])
    assert np.array_equal(first, point_angles(replace(eyes[0], age=eyes[0].age + 3.0, severity=0.9)))
    offsets = np.array([(point_angles(e) - POINT_ANGLES + 180.0) % 360.0 - 180.0 for e in eyes])
    turns = offsets.mean(axis=1)
    assert abs(turns.mean()) < 2.5 and 7.0 < turns.std() < 13.0  # N(0, 10 deg) per eye
    assert 6.0 < (offsets - turns[:, None]).std() < 10.0  # N(0, 8 deg) per point


def test_rnfl_md_correlation_in_the_aimed_band(visits):
    """Issue 12 aims r(global RNFL, MD) at 0.5-0.6; under generator 2.5, 16 cohorts of 300
    patients average ~0.62 (2.4: ~0.65), one cohort scattering by SD ~0.03: a guard against the
    link drifting back up, not a measurement (docs/cohort.md has that)."""
    rows = [r for r in visits if r["md"] != ""]
    r = np.corrcoef(_f(rows, "rnfl_global_um"), _f(rows, "md"))[0, 1]
    assert 0.5 < r < 0.66, r


def test_cup_to_disc_by_stage_as_on_cirrus(visits):
    """Vertical C/D as a Cirrus reading gives it: normal eyes ~0.3-0.6 (mean ~0.45), early glaucoma
    mostly 0.6-0.8 and never 1.00 (generator 2.5: 0.82 on average, 1.00 in a third of early eyes),
    rising with the stage; BMO-MRW falls with it (the rim and the cup come from the same surface)."""
    stage = np.array([r["stage"] for r in visits])
    cdr, mrw = _f(visits, "cup_to_disc"), _f(visits, "bmo_mrw_um")
    normal, early = cdr[stage == "normal"], cdr[stage == "early"]
    assert 0.38 < normal.mean() < 0.50 and np.percentile(normal, 5) > 0.12 and np.percentile(normal, 95) < 0.72
    assert 0.62 < early.mean() < 0.80, early.mean()
    assert np.mean((early >= 0.6) & (early <= 0.8)) > 0.35
    assert np.mean(early >= 0.995) < 0.03
    means = [cdr[stage == s].mean() for s in ("normal", "preperimetric", "early", "moderate", "advanced")]
    assert all(a < b for a, b in zip(means, means[1:])), means
    assert means[-1] < 0.97 and cdr.max() < 1.0
    mrw_means = [mrw[stage == s].mean() for s in ("normal", "early", "advanced")]
    assert 300 < mrw_means[0] < 380 and mrw_means[0] > mrw_means[1] > mrw_means[2], mrw_means
