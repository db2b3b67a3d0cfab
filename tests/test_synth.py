"""The synthetic cohort: files match the manifest, disease changes structure and function."""

import csv
import subprocess
import sys

import numpy as np

from octviewer import load_volume
from octviewer.synth import EyeAnatomy, generate_cohort, random_eye, visual_field
from octviewer.synth.cohort import sector_rnfl_um


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_matches_files(tiny_cohort):
    rows = _rows(tiny_cohort)
    assert len(rows) >= 12
    for row in rows[:10]:
        v = load_volume(tiny_cohort.parent / row["path"])
        assert v.laterality == row["eye"]
        assert v.acquired.isoformat() == row["visit"]
        assert v.shape == (16, 128, 64)
        assert v.spacing.ascan_mm is not None
        assert any("SYNTHETIC" in n for n in v.notes)
    assert {r["label"] for r in rows} == {"glaucoma", "normal"}


def test_glaucoma_thinner_rnfl_and_lower_md():
    rng = np.random.default_rng(11)
    stats = {True: ([], []), False: ([], [])}
    for i in range(300):
        glaucoma = i % 2 == 0
        eye = random_eye(rng, "OD" if i % 3 else "OS", glaucoma)
        stats[glaucoma][0].append(np.mean(list(sector_rnfl_um(eye).values())))
        stats[glaucoma][1].append(visual_field(eye, rng))
    rnfl_g, rnfl_n = np.mean(stats[True][0]), np.mean(stats[False][0])
    md_g = np.mean([vf["md"] for vf in stats[True][1]])
    md_n = np.mean([vf["md"] for vf in stats[False][1]])
    assert 85 < rnfl_n < 110 and rnfl_g < rnfl_n - 8
    assert md_g < md_n - 2 and abs(md_n) < 1.0
    normal_md = [vf["md"] for vf in stats[False][1]]
    assert 0.8 < np.std(normal_md) < 2.2  # normal MD about 0 +/- 1.5 dB
    vfi_n = np.median([vf["vfi"] for vf in stats[False][1]])
    assert vfi_n >= 97
    # severities overlap: some glaucoma eyes look normal by MD, so no classifier is perfect
    assert np.mean([vf["md"] > -2 for vf in stats[True][1]]) > 0.15


def test_isnt_and_floor():
    eye = EyeAnatomy()
    s = sector_rnfl_um(eye)
    assert s["TI"] > s["T"] and s["TS"] > s["T"] and s["NI"] > s["N"] * 0.9
    dead = EyeAnatomy(severity=1.0, diffuse_loss=1.0)
    assert min(sector_rnfl_um(dead).values()) >= 44  # never below the non-axonal floor


def test_wedge_damage_is_where_recorded(tmp_path):
    from octviewer.synth import synth_scan

    eye = EyeAnatomy(laterality="OD", severity=0.8, wedges=[(285.0, 40.0, 0.9)])
    scan = synth_scan(eye, "small", seed=1)
    damage = scan.truth["damage"]
    n_b, n_x = damage.shape
    # inferotemporal for OD: lower half of the cube (later B-scans), left (temporal) side
    lower_left = damage[n_b // 2:, : n_x // 2].mean()
    upper_right = damage[: n_b // 2, n_x // 2:].mean()
    assert lower_left > 3 * upper_right
    rnfl = scan.truth["rnfl_um"]
    assert rnfl[n_b // 2:, : n_x // 2].mean() < rnfl[: n_b // 2, : n_x // 2].mean()


def test_missing_vf_share_and_determinism(tmp_path):
    m1 = generate_cohort(tmp_path / "a", patients=40, preset="tiny", seed=7, missing_vf=0.5, fmt="npz")
    rows = _rows(m1)
    visits = {(r["patient_id"], r["eye"], r["visit"]): r["md"] == "" for r in rows}
    share = np.mean(list(visits.values()))
    assert 0.35 < share < 0.65
    m2 = generate_cohort(tmp_path / "b", patients=40, preset="tiny", seed=7, missing_vf=0.5, fmt="npz")
    assert _rows(m2) == rows
    a = load_volume(m1.parent / rows[3]["path"]).data
    b = load_volume(m2.parent / rows[3]["path"]).data
    np.testing.assert_array_equal(a, b)


def test_od_os_mirror():
    from octviewer.synth import render_volume

    eye = EyeAnatomy(laterality="OD", disc_center_mm=(0.4, 0.0))
    od = render_volume(eye, "tiny", seed=1)
    eye.laterality = "OS"
    os_ = render_volume(eye, "tiny", seed=1)
    np.testing.assert_allclose(od.disc_mask[:, ::-1], os_.disc_mask)
    np.testing.assert_allclose(od.rnfl_um[:, ::-1], os_.rnfl_um, rtol=1e-4)


def test_synth_cli(tmp_path):
    out = tmp_path / "c"
    result = subprocess.run([sys.executable, "-m", "octviewer.synth", "--out", str(out), "--patients", "2",
                             "--preset", "tiny", "--seed", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stdout
    rows = _rows(out / "manifest.csv")
    assert all((out / r["path"]).exists() for r in rows)
