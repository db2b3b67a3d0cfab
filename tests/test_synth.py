"""The synthetic cohort: files match the manifest, truth matches the image, determinism, the CLI."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from octviewer import load_volume
from octviewer.synth import (
    BOUNDARIES,
    MANIFEST_COLUMNS,
    TRUTH_COLUMNS,
    Acquisition,
    EyeAnatomy,
    generate_cohort,
    render_volume,
    synth_scan,
)
from octviewer.synth.cohort import sector_rnfl_um

INTERFACE_TRUTH_COLUMNS = ["severity", "stage", "disc_area_mm2", "cup_to_disc", "bmo_mrw_um", "rnfl_global_um",
                           "rnfl_T_um", "rnfl_TS_um", "rnfl_TI_um", "rnfl_N_um", "rnfl_NS_um", "rnfl_NI_um",
                           "damage", "artefacts"]


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def test_manifest_matches_files(tiny_cohort):
    rows = _rows(tiny_cohort)
    assert len(rows) >= 12
    with open(tiny_cohort, newline="") as f:
        header = next(csv.reader(f))
    assert header[:9] == ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split"]
    assert set(INTERFACE_TRUTH_COLUMNS) <= set(header) and set(TRUTH_COLUMNS) == set(INTERFACE_TRUTH_COLUMNS)
    assert header == MANIFEST_COLUMNS
    for row in rows[:8]:
        v = load_volume(tiny_cohort.parent / row["path"])
        assert v.laterality == row["eye"]
        assert v.acquired.isoformat() == row["visit"]
        assert v.shape == (16, 128, 64)
        assert v.spacing.ascan_mm is not None
        assert any("SYNTHETIC" in n for n in v.notes)
        truth = np.load(tiny_cohort.parent / "truth" / (row["path"].split("/")[-1].rsplit(".", 1)[0] + ".npz"))
        assert truth["boundaries"].shape == (len(BOUNDARIES), 16, 64)
        assert list(truth["boundary_names"]) == list(BOUNDARIES)
        assert truth["bmo"].shape[1] == 3 and truth["rnfl_circle_um"].shape == (360,)
        assert float(row["rnfl_global_um"]) == np.round(truth["rnfl_circle_um"].mean(), 1) or \
            abs(float(row["rnfl_global_um"]) - truth["rnfl_circle_um"].mean()) < 0.2
    assert {r["label"] for r in rows} == {"glaucoma", "normal"}
    # several visits per eye, spread over time
    visits = {}
    for r in rows:
        visits.setdefault((r["patient_id"], r["eye"]), set()).add(r["visit"])
    assert max(len(v) for v in visits.values()) >= 2


def test_truth_boundaries_match_the_image():
    eye = EyeAnatomy(laterality="OD", disc_center_mm=(0.4, 0.0))
    r = render_volume(eye, "small", seed=3, acquisition=Acquisition(window_um=1200.0))
    data = r.data.astype(np.float32)
    ilm, bm = r.boundaries[0], r.boundaries[BOUNDARIES.index("BM")]
    above_ilm, rpe = [], []
    for i in range(0, data.shape[0], 4):
        for j in range(0, data.shape[2], 3):
            if np.isnan(bm[i, j]):
                continue
            zi, zb = int(round(ilm[i, j])), int(round(bm[i, j]))
            above_ilm.append(data[i, max(zi - 12, 0): zi - 3, j].mean())
            rpe.append(data[i, zb - 3: zb, j].mean())
    assert np.mean(rpe) > np.mean(above_ilm) + 60
    # no retinal layers (nor BM) inside the BMO; the ILM is defined everywhere
    assert np.isnan(bm[r.disc_mask]).all() and not np.isnan(ilm).any()
    assert np.isfinite(r.lamina[r.disc_mask]).all() and np.isnan(r.lamina[~r.disc_mask]).all()


@pytest.mark.parametrize("cup_shape", ["steep", "saucer"])
def test_recorded_cup_is_the_drawn_surface_by_cirrus_rule(cup_shape):
    """The truth's cup (mask and cup-to-disc) is where the drawn ILM lies deeper than 200 um in front
    of the plane through the BMO points: the rule applied to the truth's own surfaces. Recording the
    unblurred design surface instead made small steep cups 40 % smaller than the image shows."""
    eye = EyeAnatomy(laterality="OD", disc_center_mm=(0.3, 0.0), disc_radii_mm=(0.8, 0.9), physiological_cdr=0.35,
                     cup_shape=cup_shape, cup_floor=0.4, prelaminar_um=170)
    r = render_volume(eye, "cirrus", seed=2, acquisition=Acquisition(window_um=1200.0))
    dz_um = r.spacing_mm[1] * 1000.0
    bmo = r.bmo.astype(np.float64)
    coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(bmo)), bmo[:, :2]], bmo[:, 2], rcond=None)
    rr, cc = np.mgrid[0:r.disc_mask.shape[0], 0:r.disc_mask.shape[1]]
    plane = coef[0] + coef[1] * rr + coef[2] * cc
    by_rule = r.disc_mask & (r.boundaries[0] > plane - 200.0 / dz_um)
    recorded, drawn = int(r.cup_mask.sum()), int(by_rule.sum())
    assert abs(recorded - drawn) <= 0.06 * drawn + 4, (recorded, drawn)


def test_isnt_and_floor():
    eye = EyeAnatomy()
    s = sector_rnfl_um(eye)
    assert s["TI"] > s["T"] and s["TS"] > s["T"] and s["NI"] > s["N"] * 0.9
    assert 88 < np.mean([eye.rnfl_um(t) for t in range(360)]) < 102
    dead = EyeAnatomy(severity=1.0, diffuse_loss=1.0)
    assert 44 <= min(sector_rnfl_um(dead).values()) <= 56  # never below the non-axonal floor


def test_wedge_damage_is_where_recorded():
    eye = EyeAnatomy(laterality="OD", severity=0.8, wedges=[(285.0, 40.0, 0.9)], damage_type="wedge")
    scan = synth_scan(eye, "small", seed=1, acquisition=Acquisition())
    damage = scan.truth["damage"]
    n_b, n_x = damage.shape
    # inferotemporal for OD: lower half of the cube (later B-scans), left (temporal) side
    lower_left = damage[n_b // 2:, : n_x // 2].mean()
    upper_right = damage[: n_b // 2, n_x // 2:].mean()
    assert lower_left > 3 * upper_right
    rnfl = scan.truth["rnfl_um"]
    assert rnfl[n_b // 2:, : n_x // 2].mean() < rnfl[: n_b // 2, : n_x // 2].mean()
    circle = scan.truth["damage_circle"]
    assert circle[285] > 0.8 and circle[90] < 0.05


def test_determinism_and_workers(tmp_path):
    m1 = generate_cohort(tmp_path / "a", patients=3, preset="tiny", seed=7, fmt="npz")
    m2 = generate_cohort(tmp_path / "b", patients=3, preset="tiny", seed=7, fmt="npz", workers=2)
    rows = _rows(m1)
    assert _rows(m2) == rows
    for k in (0, len(rows) - 1):
        a = load_volume(m1.parent / rows[k]["path"]).data
        b = load_volume(m2.parent / rows[k]["path"]).data
        np.testing.assert_array_equal(a, b)
    m3 = generate_cohort(tmp_path / "c", patients=3, preset="tiny", seed=8, fmt="npz")
    assert _rows(m3) != rows


def test_repeat_scans_differ_in_acquisition():
    eye = EyeAnatomy()
    a = synth_scan(eye, "tiny", seed=1)
    b = synth_scan(eye, "tiny", seed=2)
    # the same eye placed differently: the BMO centre moves in the cube, the truth moves with it
    assert np.abs(a.truth["bmo_center"] - b.truth["bmo_center"]).max() > 0.05
    np.testing.assert_allclose(a.truth["rnfl_circle_um"], b.truth["rnfl_circle_um"])


def test_od_os_mirror():
    eye = EyeAnatomy(laterality="OD", disc_center_mm=(0.4, 0.0))
    od = render_volume(eye, "tiny", seed=1)
    eye.laterality = "OS"
    os_ = render_volume(eye, "tiny", seed=1)
    np.testing.assert_allclose(od.disc_mask[:, ::-1], os_.disc_mask)
    np.testing.assert_allclose(od.rnfl_um[:, ::-1], os_.rnfl_um, rtol=1e-4)


def test_synth_cli(tmp_path):
    out = tmp_path / "c"
    result = subprocess.run([sys.executable, "-m", "octviewer.synth", "--out", str(out), "--patients", "2",
                             "--preset", "tiny", "--seed", "1", "--workers", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC" in result.stdout
    rows = _rows(out / "manifest.csv")
    assert all((out / r["path"]).exists() for r in rows)
