"""CAM cell mapping pinned against a receptive-field probe, en-face CAM, and the fixed colour scale."""

import subprocess
import sys

import numpy as np
import pytest

from octviewer.model.cam import (
    CAM_LIMIT,
    CAM_LUT,
    cam_rgb,
    cam_to_bscan,
    cell_centres,
    cell_weights,
    enface_cam,
)


def _probe_peaks(arch: str, size: int, axis: int, seed: int = 0, k: int = 4) -> np.ndarray:
    """Receptive-field probe: for each feature cell along ``axis`` (0 rows, 1 columns) of the middle
    row/column, the input pixel where the squared gradient of that one cell's CAM value (summed
    over k random inputs and the other axis, smoothed over 15 px) peaks."""
    import torch

    from octviewer.model import build_network

    torch.manual_seed(seed)
    net = build_network(arch, init="random").eval()
    n = -(-size // 32)
    x = torch.randn(n * k, 3, size, size, requires_grad=True)
    cam = net(x)["cam"]
    cell = torch.arange(n).repeat_interleave(k)
    pick = cam[torch.arange(len(x)), cell, n // 2] if axis == 0 else cam[torch.arange(len(x)), n // 2, cell]
    pick.sum().backward()
    g = (x.grad ** 2).sum(dim=(1, 3 if axis == 0 else 2)).view(n, k, size).sum(1).numpy()
    return np.array([np.argmax(np.convolve(p, np.ones(15) / 15, mode="same")) for p in g])


def _disagreements(peaks, centres, size) -> list[int]:
    """Cells whose probe peak contradicts the mapped centre: cells well inside the image must peak
    within 6 px of it; cells whose field the border cuts may peak inward of it, by less than a cell."""
    bad = []
    for j, (peak, centre) in enumerate(zip(peaks, centres)):
        if min(centre, size - 1 - centre) >= 48:
            ok = abs(peak - centre) <= 6
        else:
            ok = -6 <= (peak - centre) * np.sign((size - 1) / 2 - centre) <= 32
        if not ok:
            bad.append(j)
    return bad


@pytest.mark.parametrize("arch, size, axis", [("resnet2d", 224, 1), ("semt", 224, 0), ("resnet2d", 112, 0),
                                              ("semt", 112, 1)])
def test_cell_centres_match_receptive_field_probe(arch, size, axis):
    peaks = _probe_peaks(arch, size, axis)
    n = len(peaks)
    assert n == (7 if size == 224 else 4)
    # mapped onto an axis of exactly the input size (the identity resize)
    assert _disagreements(peaks, cell_centres(n, size, size), size) == []
    # the old image-resize convention ((j + 0.5) * size / n) fails the same probe
    resize_convention = (np.arange(n) + 0.5) * size / n - 0.5
    assert _disagreements(peaks, resize_convention, size) != []


def test_cam_to_bscan_puts_each_cell_at_its_centre():
    # a single hot cell appears at its receptive-field centre scaled to the B-scan, not half a cell on
    depth, width, size = 496, 512, 224
    for i, j in [(0, 0), (3, 2), (6, 6)]:
        cells = np.zeros((7, 7), np.float32)
        cells[i, j] = 1.0
        m = cam_to_bscan(cells, (depth, width), size)
        assert m.shape == (depth, width) and m.dtype == np.float32
        r, c = np.unravel_index(np.argmax(m), m.shape)
        assert abs(r - (32 * i + 0.5) * depth / size + 0.5) <= 1.5
        assert abs(c - (32 * j + 0.5) * width / size + 0.5) <= 1.5
    # constant cells stay constant (weights sum to one), values never leave the cells' range
    assert np.allclose(cam_to_bscan(np.full((4, 4), 2.5), (100, 300), 112), 2.5)
    rng = np.random.default_rng(0)
    cells = rng.normal(size=(4, 4)).astype(np.float32)
    m = cam_to_bscan(cells, (64, 80), 112)
    assert cells.min() - 1e-6 <= m.min() and m.max() <= cells.max() + 1e-6


def test_cell_weights_rows_sum_to_one_and_clamp():
    w = cell_weights(7, 1000, 224)
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-6)
    last = cell_centres(7, 1000, 224)[-1]
    assert np.all(w[int(np.ceil(last)) + 1:, -1] == 1.0)  # beyond the last centre: held, not extrapolated


def test_enface_cam_is_depth_mean_of_mapped_cams(small_volume):
    import torch

    from octviewer.model import LoadedModel, Predictor, Preprocess, build_network, default_metadata

    torch.manual_seed(0)
    meta = default_metadata("resnet2d", preprocess=Preprocess(size=64))
    pred = Predictor(LoadedModel(build_network("resnet2d", init="random").eval(), meta), device="cpu") \
        .predict(small_volume)
    assert pred.cam_input_size == (64, 64) and pred.cam_stride == (32.0, 32.0)
    en = enface_cam(pred, small_volume)
    n, depth, width = small_volume.shape
    assert en.shape == (n, width) and en.dtype == np.float32
    for b in (0, n // 2, n - 1):
        full = cam_to_bscan(pred.cam[b], (depth, width), 64)
        np.testing.assert_allclose(en[b], full.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_enface_cam_3d_on_volume_grid(small_volume):
    import torch

    from octviewer.model import LoadedModel, Predictor, Preprocess, build_network, default_metadata

    torch.manual_seed(0)
    meta = default_metadata("cnn3d", preprocess=Preprocess(name="volume_area_v1", volume_shape=(8, 16, 8)))
    pred = Predictor(LoadedModel(build_network("cnn3d").eval(), meta), device="cpu").predict(small_volume)
    en = enface_cam(pred, small_volume)
    assert en.shape == (small_volume.n_bscans, small_volume.shape[2]) and np.isfinite(en).all()
    assert pred.cam_input_size == (16, 8) and pred.cam_stride == (2.0, 2.0)


def test_colour_scale_is_fixed_diverging_and_centred():
    assert CAM_LUT.shape == (256, 3) and CAM_LUT.dtype == np.uint8
    rgb = cam_rgb(np.array([-CAM_LIMIT, 0.0, CAM_LIMIT, 100.0, np.nan]))
    blue, white, red = rgb[0].astype(int), rgb[1].astype(int), rgb[2].astype(int)
    assert blue[2] > blue[0] + 100 and red[0] > red[2] + 100  # blue for negative, red for positive
    assert white.min() > 200  # near white at zero: "undecided"
    assert (rgb[3] == rgb[2]).all() and (rgb[4] == rgb[1]).all()  # saturates; NaN shown as zero
    # the scale does not depend on the data: the same value gets the same colour in any volume
    assert (cam_rgb(np.array([1.0, -3.0]))[0] == cam_rgb(np.array([1.0, 0.2]))[0]).all()


def test_cam_module_needs_no_torch():
    code = "import sys, octviewer.model.cam as c; c.cam_to_bscan(c.np.ones((7, 7)), (10, 10), 224); " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_pointing_game_uses_physical_distance():
    from octviewer.model.cam import pointing_game

    enface = np.zeros((50, 200), np.float32)
    enface[10, 100] = 3.0  # the peak
    region = np.zeros_like(enface, bool)
    region[20, 100] = True  # 10 B-scans away: 0.3 mm at 0.03 mm spacing
    assert pointing_game(enface, region, (0.03, 0.006))
    assert not pointing_game(enface, region, (0.06, 0.006))  # 0.6 mm away
    region[:] = False
    region[10, 180] = True  # 80 A-scans: 0.48 mm at 0.006, 0.96 mm at 0.012
    assert pointing_game(enface, region, (0.03, 0.006)) and not pointing_game(enface, region, (0.03, 0.012))
    assert not pointing_game(enface, np.zeros_like(region), (0.03, 0.006))


def test_pointing_game_entry_against_truth_with_its_baselines(tmp_path, monkeypatch):
    """The evaluation's pointing game reads the damage region from a synthetic truth file, scores the
    CAM's peak against it and reports the two baselines (random position, BMO centre)."""
    import trainer.evaluate_model as em

    damage = np.zeros((40, 80), np.float32)
    damage[5:10, 10:20] = 0.6  # the wedge: 0.5 mm x 0.5 mm
    damage[30:35, 60:70] = 0.2  # mild loss elsewhere: below half the maximum, not the region
    truth = tmp_path / "v.npz"
    np.savez(truth, damage=damage, spacing_mm=np.array([0.1, 0.004, 0.05], np.float32),
             bmo_center=np.array([20.0, 40.0], np.float32))
    peak = {}

    def fake_enface(prediction, volume):
        cam = np.zeros((40, 80), np.float32)
        cam[peak["at"]] = 1.0
        return cam

    monkeypatch.setattr(em, "enface_cam", fake_enface)
    peak["at"] = (7, 15)  # inside the wedge
    inside = em.pointing_entry(None, None, truth)
    peak["at"] = (7, 28)  # 8 A-scans = 0.4 mm beside it: within the 0.5 mm tolerance
    beside = em.pointing_entry(None, None, truth)
    peak["at"] = (32, 65)  # on the mild loss, 2.3 mm away
    mild = em.pointing_entry(None, None, truth)
    assert inside["hit"] and beside["hit"] and not mild["hit"]
    assert not inside["centre_hit"]  # the BMO centre is 1 mm below the wedge
    # chance: the region dilated by 0.5 mm, as a share of the 2 x 4 mm grid
    assert 0.05 < inside["chance"] < 0.25
    report = em.pointing_game_report([inside, beside, mild], ["P1", "P1", "P2"], n_boot=200)
    assert report["n"] == 3 and report["hit_rate"] == pytest.approx(2 / 3)
    assert 0.0 <= report["ci95"][0] <= report["hit_rate"] <= report["ci95"][1] <= 1.0
    assert report["bmo_centre_hit_rate"] == 0.0 and report["chance_rate"] == pytest.approx(inside["chance"])
