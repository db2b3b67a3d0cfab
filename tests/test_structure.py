"""Structure analysis: segmentation against Heidelberg's, the quality gate, RNFL geometry, norms, CLI."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from octviewer.core import OctVolume, Spacing
from octviewer.structure import COLUMNS, assess_quality, gate, measure, normative, rnfl, segment
from octviewer.structure.quality import gate_view

CIRCLES = ("Willis_B_716_2.vol", "Willis_B_716_4.vol")


def _load(samples_dir, name):
    from octviewer.io import load_volume

    path = samples_dir / "heidelberg_vol" / name
    if not path.exists():
        pytest.skip(f"{path} absent")
    return load_volume(path)


@pytest.mark.parametrize("name", CIRCLES)
def test_own_segmentation_global_rnfl_matches_heidelberg(samples_dir, name):
    volume = _load(samples_dir, name)
    vendor = measure(volume, source="vendor")
    own = measure(volume, source="own")
    assert vendor.source == "vendor" and own.source == "own"
    assert vendor.quality.ok and own.quality.ok
    assert abs(own.rnfl_global_um - vendor.rnfl_global_um) <= 5.0
    # boundaries themselves: ILM and Bruch's membrane within 2 px of Heidelberg's on average
    seg = own.segmentation
    assert np.nanmean(np.abs(seg.ilm - volume.layers["ILM"])) < 2.0
    assert np.nanmean(np.abs(seg.bm - volume.layers["BM"])) < 2.0


@pytest.mark.parametrize("name", CIRCLES)
def test_own_segmentation_every_sector_within_10um(samples_dir, name):
    """Including TS, between the superotemporal arcade vessels, where the boundary must run below
    the vessels (inside the RNFL, as Heidelberg draws it) rather than over their lumens."""
    volume = _load(samples_dir, name)
    vendor, own = measure(volume, source="vendor"), measure(volume, source="own")
    errors = {s: own.sectors[s] - vendor.sectors[s] for s in rnfl.SECTORS}
    assert all(abs(e) <= 10.0 for e in errors.values()), errors


def test_quality_refuses_eyepy_noise_volumes(samples_dir):
    from octviewer.io import load_volume

    for rel in ("eyepy_synthetic/test_volume.vol", "eyepy_synthetic/heyex_xml/test_volume/test_dummy.xml"):
        path = samples_dir / rel
        if not path.exists():
            pytest.skip(f"{path} absent")
        q = assess_quality(load_volume(path))
        assert not q.ok and q.reasons and "field of view" in q.reasons[0]


def test_quality_refuses_noise_with_clinical_geometry():
    rng = np.random.default_rng(0)
    cube = OctVolume(rng.integers(0, 256, (32, 256, 96), dtype=np.uint8), Spacing(6 / 32, 2 / 256, 6 / 96), "OD")
    q = assess_quality(cube)
    assert not q.ok and any("signal" in r for r in q.reasons)
    circle = OctVolume(rng.random((1, 496, 768)).astype(np.float32), Spacing(0.0, 0.00387, 0.01472), "OD", "circle",
                       intensity_transform="heidelberg_vol")
    report = measure(circle)
    assert not report.quality.ok and np.isnan(report.rnfl_global_um) and report.rnfl_profile is None


def test_gate_view_thins_a_dense_cube_only():
    rng = np.random.default_rng(1)
    dense = OctVolume(rng.integers(0, 256, (200, 64, 200), dtype=np.uint8), Spacing(0.03, 2 / 64, 0.03), "OD",
                      layers={"ILM": np.full((200, 200), 10.0, np.float32)})
    view = gate_view(dense)
    assert view.shape == (50, 64, 100) and view.spacing.bscan_mm == pytest.approx(0.12)
    assert view.spacing.ascan_mm == pytest.approx(0.06) and view.layers["ILM"].shape == (50, 100)
    assert np.array_equal(view.data, dense.data[::4, :, ::2])
    fine = OctVolume(np.repeat(dense.data, 4, axis=1), Spacing(0.03, 0.5 / 64, 0.03), "OD")  # 7.8 um pixels
    binned = gate_view(fine)
    assert binned.shape == (50, 128, 100) and binned.spacing.depth_mm == pytest.approx(1 / 64)
    assert np.array_equal(binned.data, fine.data[::4, :, ::2].reshape(50, 128, 2, 100).mean(axis=2).astype(np.uint8))
    sparse = OctVolume(dense.data[::3], Spacing(0.094, 2 / 64, 0.047), "OD")  # the small preset's grid
    assert gate_view(sparse) is sparse
    circle = OctVolume(dense.data[:1], Spacing(0.0, 2 / 64, 0.03), "OD", "circle")
    assert gate_view(circle) is circle


def test_gate_refusal_is_confirmed_on_the_whole_cube():
    rng = np.random.default_rng(2)
    noise = OctVolume(rng.integers(0, 256, (200, 128, 200), dtype=np.uint8), Spacing(0.03, 2 / 128, 0.03), "OD")
    quality, judged, seg = gate(noise, "own")
    assert not quality.ok and any("signal" in r for r in quality.reasons)
    assert judged is noise and seg.ilm.shape == (200, 200)  # the whole scan refused it, not the thinned copy
    report = measure(noise, verdict=quality)
    assert not report.quality.ok and report.quality is quality and np.isnan(report.rnfl_global_um)


def test_gate_passes_a_cirrus_cube_on_its_thinned_copy_and_measure_agrees():
    from octviewer.synth import Acquisition, EyeAnatomy, synth_scan

    volume = synth_scan(EyeAnatomy(laterality="OD"), "cirrus", seed=3, acquisition=Acquisition()).volume
    quality, judged, _ = gate(volume, "own")
    assert quality.ok and judged.shape == (50, 170, 100)  # every 4th B-scan, 2nd A-scan, 6 px in depth
    with_verdict = measure(volume, source="own", verdict=quality)
    without = measure(volume, source="own")
    assert with_verdict.quality.ok and without.quality == with_verdict.quality
    assert with_verdict.rnfl_global_um == without.rnfl_global_um and with_verdict.disc_area_mm2 > 0


def test_quality_refuses_line_scan_and_flags_bad_circle(samples_dir):
    line = _load(samples_dir, "Willis_B_716_0.vol")
    q = assess_quality(line)
    assert not q.ok and "line scan" in q.reasons[0]
    bad = _load(samples_dir, "valid.vol")  # retina leaves the frame, 4.4 mm circle
    report = measure(bad, source="own")
    assert not report.quality.ok
    assert any("top of the frame" in r for r in report.quality.reasons)
    assert any("circle diameter" in r for r in report.quality.reasons)


def test_quality_refuses_cube_without_disc():
    from octviewer.synth import EyeAnatomy

    volume = _clean_scan(EyeAnatomy(laterality="OD", disc_center_mm=(6.0, 0.0), vessel_seed=3), 2).volume
    q = assess_quality(volume)
    assert not q.ok and any("no optic disc" in r for r in q.reasons)


def _clean_scan(eye, seed):
    """A synthetic scan without simulated artefacts (the v2 generator draws them at random)."""
    import inspect

    from octviewer.synth import synth_scan

    if "acquisition" in inspect.signature(synth_scan).parameters:
        from octviewer.synth import Acquisition

        return synth_scan(eye, "small", seed=seed, acquisition=Acquisition())
    return synth_scan(eye, "small", seed=seed)


@pytest.fixture(scope="module")
def synthetic_reports():
    from octviewer.synth import random_eye

    rng = np.random.default_rng(5)
    eyes = [random_eye(rng, "OS", True), random_eye(rng, "OD", True), random_eye(rng, "OS", False)]
    return [(eye, measure(_clean_scan(eye, 11 + k).volume, source="own")) for k, eye in enumerate(eyes)]


def test_synthetic_cubes_measured_near_truth(synthetic_reports):
    """Found and measured, within generous bounds on every generator version; the issue's accuracy
    targets are pinned against the v2 generator's recorded truth below."""
    for eye, report in synthetic_reports:
        assert report.quality.ok, report.quality.reasons
        assert report.synthetic and report.thickness_map_um is not None and report.disc_centre_px is not None
        truth = float(np.mean(eye.rnfl_um(np.linspace(0, 360, 360, endpoint=False))))
        assert abs(report.rnfl_global_um - truth) <= 25.0
        disc = np.pi * eye.disc_radii_mm[0] * eye.disc_radii_mm[1]
        assert 0.6 * disc < report.disc_area_mm2 < 1.5 * disc
        assert 0.0 <= report.cup_to_disc <= 1.0 and report.rim_area_mm2 >= 0.0
        assert np.isfinite(report.bmo_mrw_um)


@pytest.fixture(scope="module")
def v2_cohort(tmp_path_factory):
    """A small cohort from the generator; its manifest carries the truth columns from v2 on, and
    truth/<volume>.npz the truth arrays (docs/cohort.md)."""
    from octviewer.io import load_volume
    from octviewer.synth import generate_cohort

    manifest = generate_cohort(tmp_path_factory.mktemp("v2"), patients=1, preset="small", seed=4)
    rows = list(csv.DictReader(open(manifest)))
    if "rnfl_global_um" not in rows[0]:
        pytest.skip("this synthetic generator does not record the circle RNFL truth (v2 does)")
    out = []
    for row in rows:
        truth_path = manifest.parent / "truth" / f"{Path(row['path']).stem}.npz"
        truth = dict(np.load(truth_path)) if truth_path.exists() else None
        out.append((row, measure(load_volume(manifest.parent / row["path"]), source="own"), truth))
    return out


@pytest.mark.slow
def test_v2_cohort_global_rnfl_within_8um_of_truth(v2_cohort):
    """Every measured eye, not only the mean: the path search's errors on these speckled 7.8 um cubes
    ran from -6.6 to +18.2 um and averaged +4.0 (it passed a mean-only check while reading GCL/IPL as
    RNFL); the learned boundary read +4.0 to +7.3 with the ILM half a pixel (~5 um) high on this grid, and
    reads -1.7 to +1.1 with boundaries placed between pixels and the B-scans continued past their ends
    (docs/structure.md, "Fourth session")."""
    errors = [r.rnfl_global_um - float(row["rnfl_global_um"]) for row, r, _ in v2_cohort if r.quality.ok]
    assert len(errors) >= len(v2_cohort) // 2
    assert max(abs(e) for e in errors) <= 8.0, errors
    assert float(np.mean(np.abs(errors))) <= 7.0, errors


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="the renderer tapers the RPE to nothing at the opening and the segmentation "
                   "smooths over fixed pixels (70 x 94 um on the small preset's grid against 45 x 30 um on cirrus), "
                   "which lifts the ramp's foot: the disc reads ~12 % small here, +2 % on the cirrus grid "
                   "(docs/structure.md; open work, issue 14)")
def test_v2_cohort_disc_area_within_10_percent(v2_cohort):
    ratios = [r.disc_area_mm2 / float(row["disc_area_mm2"]) - 1 for row, r, _ in v2_cohort if r.quality.ok]
    assert len(ratios) >= len(v2_cohort) // 2
    assert abs(float(np.mean(ratios))) <= 0.10, ratios


def _polar(points, truth):
    """Angle and radius (mm) of en-face points (bscan, ascan, ...) around the truth's BMO centre."""
    bscan_mm, _, ascan_mm = truth["spacing_mm"]
    dy = (points[:, 0] - truth["bmo_center"][0]) * bscan_mm
    dx = (points[:, 1] - truth["bmo_center"][1]) * ascan_mm
    return np.arctan2(dy, dx), np.hypot(dy, dx)


def _truth_or_skip(truth):
    if truth is None or "bmo" not in truth:
        pytest.skip("this synthetic generator writes no truth arrays")
    return truth


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="generator 3.0: on a cube the BMO points read 18 um shallow (the test asks "
                   "15); the segmentation from before the unsure flags reads exactly the same, so it is the new "
                   "rendering of the opening (open)")
def test_v2_cohort_bmo_depth_and_mrw_near_truth(v2_cohort):
    """BMO points at the truth's depth (within 15 um on average, at the truth's angles); BMO-MRW
    within 25 um of the truth."""
    for row, r, truth in v2_cohort:
        truth = _truth_or_skip(truth)
        if not r.quality.ok:
            continue
        depth_mm = truth["spacing_mm"][1]
        own = r.segmentation.bmo.astype(np.float64)
        angle, _ = _polar(own, truth)
        t_angle, _ = _polar(truth["bmo"].astype(np.float64), truth)
        order = np.argsort(angle)
        depth = np.interp(t_angle, angle[order], own[order, 2], period=2 * np.pi) - truth["bmo"][:, 2]
        assert abs(depth.mean()) * depth_mm * 1000 < 15.0
        assert abs(r.bmo_mrw_um - float(row["bmo_mrw_um"])) < 25.0


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="generator 2.1: the opening reads 0.05 mm small on average, up to 0.16 mm "
                   "on some cubes (same cause as the disc area; open work, issue 14)")
def test_v2_cohort_bmo_radius_near_truth(v2_cohort):
    """BMO points on the truth's opening: radius (from the truth's BMO centre, at the truth's angles)
    within 0.1 mm on average for every cube."""
    for _, r, truth in v2_cohort:
        truth = _truth_or_skip(truth)
        if not r.quality.ok:
            continue
        angle, radius = _polar(r.segmentation.bmo.astype(np.float64), truth)
        t_angle, t_radius = _polar(truth["bmo"].astype(np.float64), truth)
        order = np.argsort(angle)
        radial = np.interp(t_angle, angle[order], radius[order], period=2 * np.pi) - t_radius
        assert abs(radial.mean()) < 0.1 and np.abs(radial).mean() < 0.15, radial


@pytest.mark.slow
def test_v2_cohort_ilm_follows_the_cup(v2_cohort):
    """Inside the disc the ILM follows the tissue surface down into the cup: mean absolute error
    against the truth ILM under 50 um (an ILM drawn flat across the cup read 85-160 um here)."""
    for _, r, truth in v2_cohort:
        truth = _truth_or_skip(truth)
        if not r.quality.ok:
            continue
        inside = truth["disc_mask"]
        error_um = np.abs(r.segmentation.ilm - truth["boundaries"][0])[inside] * truth["spacing_mm"][1] * 1000
        assert np.nanmean(error_um) < 50.0


def test_profile_orientation_follows_laterality():
    theta = rnfl.profile_angles()
    bump = 60.0 + 80.0 * np.exp(-0.5 * (((theta - 90.0 + 180) % 360 - 180) / 15.0) ** 2)  # superior peak
    for eye, temporal_hour in (("OD", 9), ("OS", 3)):
        s = rnfl.summarise(bump, eye)
        assert s["quadrants"]["S"] == max(s["quadrants"].values())
        assert s["clock_hours"][12] == max(s["clock_hours"].values())
        assert rnfl.clock_hour_centre_deg(temporal_hour, eye) == 0.0  # temporal
    # a cube map thick on its first B-scans (superior) gives a superior peak for either eye
    tmap = np.tile(np.linspace(150, 50, 100)[:, None], (1, 100))
    for eye in ("OD", "OS"):
        profile = rnfl.cube_profile(tmap, (50, 50), (0.06, 0.06), eye)
        s = rnfl.summarise(profile, eye)
        assert s["quadrants"]["S"] > s["quadrants"]["N"] > s["quadrants"]["I"]


def test_cube_profile_reads_temporal_side_by_laterality():
    tmap = np.full((100, 100), 100.0)
    tmap[:, :50] = 50.0  # left half of the image thin
    od = rnfl.summarise(rnfl.cube_profile(tmap, (50, 50), (0.06, 0.06), "OD"), "OD")
    os_ = rnfl.summarise(rnfl.cube_profile(tmap, (50, 50), (0.06, 0.06), "OS"), "OS")
    assert od["quadrants"]["T"] == pytest.approx(50.0, abs=1) and od["quadrants"]["N"] == pytest.approx(100, abs=1)
    assert os_["quadrants"]["N"] == pytest.approx(50.0, abs=1) and os_["quadrants"]["T"] == pytest.approx(100, abs=1)


def test_normative_classes_at_the_percentiles():
    norm = normative.norm_for("global")
    assert norm.mean_um == pytest.approx(93.42)
    assert normative.classify(norm.p5_um + 0.01, norm) == "normal"
    assert normative.classify(norm.p5_um - 0.01, norm) == "borderline"
    assert normative.classify(norm.p1_um - 0.01, norm) == "outside"
    assert normative.classify(200.0, norm) == "normal"
    assert normative.norm_for("TS", 65.0) is normative.CIRRUS_NORMS["S"]
    assert normative.worst(["normal", "outside", "borderline"]) == "outside"


def test_measure_cli_writes_columns_lists_unreadable_and_defuses_formulas(samples_dir, tmp_path, capsys):
    from octviewer.pipeline.measure_cli import main

    good = samples_dir / "heidelberg_vol" / "Willis_B_716_2.vol"
    evil = tmp_path / "=HYPERLINK(1).vol"
    evil.write_bytes(b"not an oct file")
    out = tmp_path / "rnfl.csv"
    keys = tmp_path / "keys.csv"
    # an unreadable file makes the exit status non-zero (as octviewer-predict); files named by keys
    assert main([str(good), str(evil), "--out", str(out), "--segmentation", "own", "--key-file", str(keys)]) == 1
    rows = list(csv.reader(open(out)))
    assert all(row[0].startswith("vol-") for row in rows[1:]) and "Willis" not in out.read_text()
    assert {r["path"] for r in csv.DictReader(open(keys))} == {os.path.abspath(good), os.path.abspath(evil)}
    assert main([str(good), str(evil), "--out", str(out), "--segmentation", "own", "--no-pseudonymise"]) == 1
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["file", *COLUMNS, "notice", "settings"]
    assert rows[0][1:-2] == ["laterality", "scan_pattern", "quality", "rnfl_global_um", "rnfl_T_um", "rnfl_TS_um",
                           "rnfl_TI_um", "rnfl_N_um", "rnfl_NS_um", "rnfl_NI_um", "rnfl_class", "cup_to_disc",
                           "rim_area_mm2", "cup_to_disc_average", "disc_area_mm2", "cup_area_mm2", "bmo_mrw_um",
                           "rnfl_unsure_pct", "rnfl_uncertain_sectors", "segmentation_used",
                           # the four quadrants and the 12 clock hours the window shows (walk-through H82, W17)
                           *[f"rnfl_quadrant_{q}_um" for q in "TSNI"], *[f"rnfl_clock{h:02d}_um" for h in range(1, 13)],
                           # the quadrants and clock hours printed "~" (walk-through H91, W1)
                           "rnfl_uncertain_quadrants", "rnfl_uncertain_clock_hours"]
    measured = dict(zip(rows[0], rows[1]))
    # a good averaged Spectralis circle: a few percent unsure outside the vessel shadows, no sector approximate
    assert 0 <= float(measured["rnfl_unsure_pct"]) < 20 and measured["rnfl_uncertain_sectors"] == ""
    assert measured["scan_pattern"] == "circle" and 80 < float(measured["rnfl_global_um"]) < 140
    assert measured["cup_to_disc"] == "" and measured["rim_area_mm2"] == "" and measured["bmo_mrw_um"] == ""
    assert measured["rnfl_class"] in normative.CLASSES
    bad = dict(zip(rows[0], rows[2]))
    assert bad["quality"].startswith("unreadable") and bad["rnfl_global_um"] == ""
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)
    assert measured["notice"] == "research use only, not a medical device"  # a real scan: no SYNTHETIC note
    assert measured["settings"].startswith("own segmentation, measurement ")  # what --resume must match
    assert measured["segmentation_used"] == "own"
    assert "could not read" in capsys.readouterr().err


def test_segment_vendor_falls_back_to_own_without_layers():
    from octviewer.synth import EyeAnatomy, synth_scan

    volume = synth_scan(EyeAnatomy(laterality="OD", vessel_seed=1), "tiny", seed=1).volume
    seg = segment(volume, "vendor")
    assert seg.source == "own" and seg.ilm.shape == (volume.n_bscans, volume.shape[2])
    # inside the disc opening Bruch's membrane is the line across it, and a cup lies behind that line
    outside = np.ones(seg.ilm.shape, bool) if seg.disc_mask is None else ~seg.disc_mask
    assert np.all(seg.ilm <= seg.rnfl) and np.all((seg.rnfl <= seg.bm)[outside])


def test_vendor_layers_in_a_cube_still_get_the_disc(synthetic_reports):
    """A cube carrying its device's layers (as Spectralis ONH volumes do) is measured on them, with
    the disc found by our own pass."""
    eye, own_report = synthetic_reports[0]
    volume = _clean_scan(eye, 11).volume
    own = own_report.segmentation
    vendor_volume = volume.replace(layers={"ILM": own.ilm + 1.0, "RNFL": own.rnfl + 1.0, "BM": own.bm})
    seg = segment(vendor_volume, "vendor")
    assert seg.source == "vendor" and seg.disc_mask is not None
    assert np.array_equal(seg.ilm, own.ilm + 1.0)
    report = measure(vendor_volume)
    assert report.quality.ok and report.source == "vendor"
    assert abs(report.rnfl_global_um - own_report.rnfl_global_um) < 1.0


def test_vendor_layers_in_a_cube_do_not_run_the_own_segmentation(synthetic_reports, monkeypatch):
    """Choosing the file's own lines must not cost the own path search: the disc search reads
    Bruch's membrane around the file's BM line instead, and finds the same opening."""
    from octviewer.structure import segmentation

    eye, own_report = synthetic_reports[0]
    volume = _clean_scan(eye, 11).volume
    own = own_report.segmentation
    vendor_volume = volume.replace(layers={"ILM": own.ilm, "RNFL": own.rnfl, "BM": own.bm})

    def refuse(_volume):
        raise AssertionError("the own segmentation ran although the file's lines suffice")

    monkeypatch.setattr(segmentation, "_segment_own", refuse)
    seg = segment(vendor_volume, "vendor")
    assert seg.source == "vendor" and seg.bmo is not None
    own_area = own_report.disc_area_mm2
    report = measure(vendor_volume, segmentation=seg)
    assert abs(report.disc_area_mm2 - own_area) < 0.1 * own_area
    assert np.abs(seg.bmo[:, :2] - own.bmo[:, :2]).mean() < 1.5  # px


def test_structure_package_imports_no_qt_and_no_torch():
    """It runs in workers, the CLI and on a GPU server without Qt (fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys, octviewer.structure, octviewer.pipeline.measure_cli\n"
            "print(','.join(m for m in ('PySide6', 'pyqtgraph', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_quality_flags_blinks_and_motion(synthetic_reports):
    eye, _ = synthetic_reports[2]
    volume = _clean_scan(eye, 13).volume
    data = volume.data.copy()
    data[5:7] = 0  # a blink: two black B-scans
    q = assess_quality(volume.replace(data=data))
    assert q.ok and any("blink" in r for r in q.reasons)
    data[10:20] = 0  # a dozen black B-scans: too many
    assert not assess_quality(volume.replace(data=data)).ok
    moved = volume.data.copy()
    moved[40:] = np.roll(moved[40:], 30, axis=1)  # the eye moved ~230 um between B-scans 39 and 40
    assert any("eye motion" in r for r in assess_quality(volume.replace(data=moved)).reasons)


def test_sparse_cube_reports_no_disc_measures_and_says_why():
    """16 B-scans over 6 mm (0.375 mm apart) cannot resolve a cup: the OU view showed C/D 0.00 against
    a true 0.41 and flagged the eyes as asymmetric (fresh-install walk-through). Not reported, with the reason."""
    import math

    from octviewer.synth import EyeAnatomy, synth_scan

    report = measure(synth_scan(EyeAnatomy(), "tiny", seed=0).volume, source="own")
    assert report.quality.ok and math.isnan(report.cup_to_disc) and math.isnan(report.rim_area_mm2)
    assert any("too sparse to measure the disc and cup" in r for r in report.quality.reasons)
    assert math.isfinite(report.rnfl_global_um)


def test_a_cup_filling_the_disc_beside_a_wide_rim_is_flagged_uncertain(synthetic_reports, monkeypatch):
    """The demo study's progressing eye (generator 2.x, seed 0, last visit) read C/D 1.00 and rim area 0
    beside a minimum rim width of ~156 um: Cirrus's 200 um rule leaves no rim, and the outline rests on
    a few um of the BMO plane's depth (docs/structure.md). The value stays, with a caveat in the quality
    line (second walk-through: the OU view flagged it as asymmetry without one). Generator 3 draws the
    rim taller than that, so the disc's measures are set to that eye's here."""
    import dataclasses

    from octviewer.structure import analysis

    real = analysis.disc_measures

    def cup_fills_disc(volume, seg, *args, **kwargs):
        disc = real(volume, seg, *args, **kwargs)
        return dataclasses.replace(disc, cup_area_mm2=disc.disc_area_mm2, rim_area_mm2=0.0, bmo_mrw_um=156.0,
                                   cup_to_disc_vertical=1.0, cup_to_disc_average=1.0)

    monkeypatch.setattr(analysis, "disc_measures", cup_fills_disc)
    eye, _ = synthetic_reports[1]
    report = measure(_clean_scan(eye, 12).volume, source="own")
    assert report.rim_area_mm2 <= 0.01 and report.bmo_mrw_um >= 100
    assert any("cup outline is uncertain" in r for r in report.quality.reasons) and report.quality.ok


@pytest.mark.parametrize("name", ("demo_normal_OD", "demo_normal_OS", "demo_early_glaucoma_OS",
                                  "demo_advanced_glaucoma_OD"))
def test_bruchs_membrane_crosses_the_disc_opening_as_a_line(name):
    """Walk-through: on the demo's normal OD, B-scan 33, our Bruch's membrane dipped into the cup as a V
    (~300 um deep): inside the opening the RPE search found it cheaper to follow dark tissue deep under
    the disc than to cross at the membrane's level. Inside the opening there is no membrane; ours is
    drawn across it as the line between the membrane on either side: on every B-scan through the disc
    it stays within 10 um of the line between its depths just outside the opening."""
    from octviewer.io import load_volume
    from octviewer.resources import RESOURCES

    volume = load_volume(RESOURCES / "samples" / f"{name}.dcm")
    seg = segment(volume, "own")
    assert seg.disc_mask is not None
    um = volume.spacing.depth_mm * 1000.0
    worst = 0.0
    for b in np.nonzero(seg.disc_mask.any(axis=1))[0]:
        cols = np.nonzero(seg.disc_mask[b])[0]
        a0, a1 = cols[0] - 1, cols[-1] + 1
        line = np.interp(cols, [a0, a1], seg.bm[b, [a0, a1]])
        worst = max(worst, float(np.max(np.abs(seg.bm[b, cols] - line))) * um)
    assert worst <= 10.0, worst


@pytest.mark.parametrize("name", ("demo_normal_OD", "demo_normal_OS", "demo_early_glaucoma_OS",
                                  "demo_advanced_glaucoma_OD"))
def test_demo_eyes_global_rnfl_near_their_truth(name):
    """Walk-through: the demo's advanced eye (true global RNFL 54 um) was measured at a 'normal' 101 um,
    thicker than the normal eyes: on these speckled 6.25 um cubes the path search followed the GCL/IPL.
    The learned boundary now serves every speckled scan with depth pixels up to its 8 um sample."""
    import json

    from octviewer.io import load_volume
    from octviewer.resources import RESOURCES

    truth = json.loads((RESOURCES / "samples" / "demo_truth.json").read_text())[name]["rnfl_global_um"]
    report = measure(load_volume(RESOURCES / "samples" / f"{name}.dcm"), source="own")
    assert abs(report.rnfl_global_um - truth) <= 8.0, (report.rnfl_global_um, truth)


def test_measure_cli_says_per_row_whose_segmentation_was_used(tmp_path):
    """With --segmentation vendor (the default) a file without layer lines is measured on our own
    segmentation, yet the settings cell said "vendor segmentation" as if the row used the file's lines
    (fourth walk-through): the row says which it used, the settings cell that vendor was a preference."""
    from octviewer.pipeline.measure_cli import main
    from octviewer.resources import DEMO_SAMPLES

    out = tmp_path / "rnfl.csv"
    assert main([str(DEMO_SAMPLES / "demo_normal_OD.dcm"), "--out", str(out), "--no-store"]) == 0
    [row] = list(csv.DictReader(open(out)))
    assert row["segmentation_used"] == "own"  # the demo DICOM carries no layer lines
    assert row["settings"].startswith("vendor segmentation where the file has it (else own), measurement ")


def test_the_normal_figures_are_the_cited_abstracts():
    """Rechecked against the cited source (IOVS ARVO E-Abstract, article 2380014), which gives the global
    mean and the four quadrants only (mean, SD): there is no clock-hour table to check (fourth walk-through,
    M1; normative.CIRRUS_NORMS says why the middle nasal clock hour is flagged early)."""
    cited = {"global": (93.42, 9.30), "S": (117.52, 15.53), "I": (122.76, 15.69), "N": (69.03, 11.90),
             "T": (64.35, 11.22)}
    assert {k: (n.mean_um, n.sd_um) for k, n in normative.CIRRUS_NORMS.items()} == cited
    assert "2380014" in normative.SOURCE
    # a sector is classed against the quadrant holding its centre: NS against the nasal quadrant's range
    assert normative.norm_for("NS", 105.0) is normative.CIRRUS_NORMS["S"]
    assert normative.norm_for("N", 180.0) is normative.CIRRUS_NORMS["N"]


def test_clock_hours_are_not_classed_against_a_quadrants_range():
    """The middle nasal clock hour of a normal eye reads thinner than its quadrant's mean: against the
    nasal quadrant's range it turned yellow more often than the 5 % a normal range promises, and the
    "worst of" overall class carried it (fourth walk-through, M1). With no published clock-hour figures,
    clock hours keep their thickness and get no class: a thin 3 o'clock alone no longer makes a normal
    eye borderline."""
    from octviewer.structure.analysis import _classes

    normal_n = normative.CIRRUS_NORMS["N"]
    summary = {"global": 95.0, "quadrants": {"T": 66.0, "S": 118.0, "N": 70.0, "I": 123.0},
               "sectors": {"T": 66.0, "TS": 130.0, "TI": 135.0, "N": 70.0, "NS": 100.0, "NI": 100.0},
               "clock_hours": {h: 90.0 for h in range(1, 13)} | {3: normal_n.p5_um - 3.0}}
    classes = _classes(summary)
    assert not [k for k in classes if k.startswith("clock_")]
    assert normative.worst(classes.values()) == "normal"


def test_ns_and_ni_sectors_are_not_classed_against_their_quadrants_range():
    """NS and NI are normally thinner than the superior and inferior quadrants whose ranges classed them:
    a normal NI of 100 um (published Spectralis means are about 110) read borderline against the inferior
    5th percentile (97 um) in about a quarter of normal eyes, and the "worst of" overall class carried it
    (seventh walk-through). They keep their thickness and get no class; TS and TI keep theirs (flagged late)."""
    from octviewer.structure.analysis import _classes

    inferior = normative.CIRRUS_NORMS["I"]
    summary = {"global": 95.0, "quadrants": {"T": 66.0, "S": 118.0, "N": 70.0, "I": 123.0},
               "sectors": {"T": 66.0, "TS": 130.0, "TI": inferior.p1_um - 5.0, "N": 70.0, "NS": 60.0,
                           "NI": inferior.p5_um - 3.0},
               "clock_hours": {}}
    classes = _classes(summary)
    assert "sector_NS" not in classes and "sector_NI" not in classes
    assert classes["sector_TI"] == "outside" and classes["sector_TS"] == "normal"
    summary["sectors"]["TI"] = 135.0
    assert normative.worst(_classes(summary).values()) == "normal"
