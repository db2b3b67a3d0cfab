"""The figures of docs/cohort.md: real B-scans beside synthetic ones, and a gallery.

``docs/real_vs_synthetic.png``: the real Cirrus B-scans (``$OCTVIEWER_SAMPLES/real_tracings``)
beside Cirrus-look synthetic ones at Cirrus's sampling and 8-bit scale, and real Spectralis circle
scans (``heidelberg_vol``) beside Spectralis-look synthetic ones at 255 x I^(1/4) and 3.87 um per
pixel; with the intensity histograms and mean depth profiles below the ILM. ``docs/synthetic_bscans.png``: one
B-scan through the disc per stage. Run: ``OCTVIEWER_SAMPLES=../shared/samples python
docs/make_cohort_figures.py``. The real files are read, never copied.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from octviewer import load_volume  # noqa: E402
from octviewer.synth import GENERATOR_VERSION, Acquisition, synth_scan  # noqa: E402
from octviewer.synth.disease import apply_disease, random_anatomy, random_disease, stage_of  # noqa: E402

DOCS = Path(__file__).resolve().parent
DEPTH_UM = 3.87  # Spectralis axial pixel
LATERAL_UM = 17.9  # valid.vol's A-scan spacing


def _first_tissue(img: np.ndarray, level: float = 70.0) -> np.ndarray:
    smooth = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 3.0)
    return np.argmax(smooth > level, axis=0)


def depth_profile(img: np.ndarray, um_per_px: float, cols: np.ndarray, span_um: float = 900.0) -> np.ndarray:
    """Mean display value against depth below the first tissue (ILM), in 7.74 um steps."""
    top = _first_tissue(img)
    grid = np.arange(-60.0, span_um, 2 * DEPTH_UM)
    out = []
    for c in cols:
        z = np.arange(img.shape[0]) * um_per_px - top[c] * um_per_px
        if top[c] * um_per_px < 60 or z[-1] < span_um:
            continue
        out.append(np.interp(grid, z, img[:, c].astype(np.float32)))
    return grid, np.mean(out, axis=0) if out else np.full(grid.shape, np.nan)


def synthetic_bscan(eye, seed: int, acq: Acquisition):
    scan = synth_scan(eye, "demo", seed=seed, acquisition=acq)
    i = int(np.clip(round(float(scan.truth["bmo_center"][0])), 0, scan.volume.n_bscans - 1))
    b = scan.volume.data[i]
    dz_um, dx_um = scan.volume.spacing.depth_mm * 1000, scan.volume.spacing.ascan_mm * 1000
    # to the real sample's pixel grid: 3.87 um deep, 17.9 um across
    h, w = int(round(b.shape[0] * dz_um / DEPTH_UM)), int(round(b.shape[1] * dx_um / LATERAL_UM))
    return cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR), scan


STAGES = ("normal", "early", "moderate", "advanced")


def eyes_by_stage(profiles: tuple[str, ...], seed: int = 4):
    """The first eye drawn at each stage whose cup has the profile given for that stage."""
    rng = np.random.default_rng(seed)
    found = {}
    while len(found) < len(STAGES):
        base = random_anatomy(rng, str(rng.choice(["OD", "OS"])), float(rng.uniform(50, 75)))
        eye = apply_disease(base, random_disease(rng), float(rng.uniform(0.0, 1.1))) if rng.random() < 0.8 else base
        st = stage_of(eye)
        if st in STAGES and st not in found and eye.cup_shape == profiles[STAGES.index(st)]:
            found[st] = eye
    return [(s, found[s]) for s in STAGES]


CIRRUS_DEPTH_UM = 2000.0 / 1024  # Cirrus Optic Disc Cube: 1024 pixels over 2.0 mm
CIRRUS_LATERAL_UM = 30.0  # 200 A-scans over 6 mm


def _profile_below(img, ilm, um_per_px, cols, span_um=600.0):
    grid = np.arange(-40.0, span_um, 8.0)
    rows = []
    for c in cols:
        if not np.isfinite(ilm[c]):
            continue
        z = (np.arange(img.shape[0]) - ilm[c]) * um_per_px
        if z[0] <= grid[0] and z[-1] >= grid[-1]:
            rows.append(np.interp(grid, z, img[:, c].astype(np.float32)))
    return grid, (np.mean(rows, axis=0) if rows else np.full(grid.shape, np.nan))


def cirrus_panels(samples: Path, seed: int = 4):
    """Real Cirrus B-scans (``real_tracings``, with the ILM from their masks) and Cirrus-look
    synthetic ones at Cirrus's own sampling: one away from the disc (as the real ones are) and one
    through the disc, of a normal and an advanced eye."""
    panels = []
    for name in ("OCTseg-Zeiss_train_img_im00001.png", "OCTseg-Zeiss_test_img_im0100.png"):
        img = cv2.imread(str(samples / "real_tracings" / name), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(samples / "real_tracings" / name.replace("_img_", "_mask_")), cv2.IMREAD_GRAYSCALE)
        tissue = (mask != 240).any(axis=0)
        ilm = np.where(tissue, np.argmax(mask != 240, axis=0), np.nan)
        panels.append((f"REAL Cirrus ({name.split('_')[-1][:-4]}), near the disc", img, ilm, np.nonzero(tissue)[0]))
    eyes = dict(eyes_by_stage(("U", "U", "sloping", "U"), seed))
    rng = np.random.default_rng(12)
    for k, (stage, where) in enumerate((("normal", "off"), ("normal", "disc"), ("advanced", "disc"))):
        acq = Acquisition(signal=float(rng.uniform(0.8, 1.2)), window_um=float(rng.uniform(1100, 1300)),
                          noise_floor=float(10 ** rng.uniform(-3.8, -3.2)), tilt=(float(rng.normal(0, 20)), 0.0))
        scan = synth_scan(eyes[stage], "cirrus", seed=60 + k, acquisition=acq)
        cb = float(scan.truth["bmo_center"][0])
        step_mm = float(scan.truth["spacing_mm"][0])
        i = int(np.clip(round(cb - 1.4 / step_mm if where == "off" else cb), 0, scan.volume.n_bscans - 1))
        ilm = scan.truth["boundaries"][0, i].astype(np.float64)
        cols = np.nonzero(np.isfinite(scan.truth["boundaries"][11, i]))[0]
        place = "1.4 mm above the disc" if where == "off" else "through the disc"
        title = f"SYNTHETIC Cirrus-look, {stage}, {place}"
        panels.append((title, scan.volume.data[i], ilm, cols))
    return panels


def spectralis_panels(samples: Path):
    real_disc = load_volume(samples / "heidelberg_vol" / "valid.vol").display()[0]
    circle = load_volume(samples / "heidelberg_vol" / "Willis_B_716_2.vol")
    real_circle = circle.display()[0]
    real_circle = cv2.resize(real_circle, (int(real_circle.shape[1] * circle.spacing.ascan_mm * 1000 / LATERAL_UM),
                                           real_circle.shape[0]), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(11)
    syn = []
    for k, (stage, eye) in enumerate(eyes_by_stage(("U",) * 4)[::3]):  # normal and advanced, the commonest cup
        acq = Acquisition(signal=float(rng.uniform(0.8, 1.2)), window_um=float(rng.uniform(800, 1000)),
                          noise_floor=float(10 ** rng.uniform(-3.8, -3.2)), tilt=(float(rng.normal(0, 20)), 0.0))
        img, _ = synthetic_bscan(eye, 20 + k, acq)
        syn.append((stage, img))
    width = 335
    return [("REAL Spectralis circle, across a disc (valid.vol)", real_disc[:, 200:200 + width]),
            ("REAL Spectralis circle (Willis_B_716_2)", real_circle[:, 60:60 + width]),
            *[(f"SYNTHETIC Spectralis-look, {stage} (U cup)", img[:496, :width]) for stage, img in syn]]


def real_vs_synthetic(samples: Path, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cirrus = cirrus_panels(samples)
    spectralis = spectralis_panels(samples)
    fig = plt.figure(figsize=(20, 15), dpi=90)
    gs = fig.add_gridspec(3, 5, height_ratios=[1.25, 1.0, 0.8])
    for k, (title, img, _, _) in enumerate(cirrus):
        ax = fig.add_subplot(gs[0, k])
        crop = img[150:800]  # 1.27 mm of the 2.0 mm window
        ax.imshow(crop, cmap="gray", vmin=0, vmax=255, aspect=CIRRUS_DEPTH_UM / CIRRUS_LATERAL_UM * 6,
                  interpolation="nearest")
        ax.set_title(title, fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
        if k == 0:
            ax.set_ylabel("Cirrus 8-bit as stored; 2 um/px deep, 30 um/A-scan (depth x6 less than width)", fontsize=8)
    for k, (title, img) in enumerate(spectralis):
        ax = fig.add_subplot(gs[1, k])
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
        if k == 0:
            ax.set_ylabel("Spectralis 255 x I^(1/4); 3.87 um/px, 17.9 um/A-scan", fontsize=8)
    ax = fig.add_subplot(gs[1, 4])
    bins = np.arange(0, 257, 4)
    for (title, img), style in zip(spectralis, ("k-", "k--", "C0-", "C3-")):
        h, _ = np.histogram(img, bins=bins, density=True)
        ax.semilogy(bins[:-1] + 2, np.maximum(h, 1e-6), style, label=title.split(",")[0][:34])
    ax.set_title("Spectralis histograms", fontsize=8.5)
    ax.legend(fontsize=6)
    ax = fig.add_subplot(gs[2, :2])
    styles = ("k-", "k--", "C0-", "C2-", "C3-")
    for (title, img, _, _), style in zip(cirrus, styles):
        h, _ = np.histogram(img, bins=bins, density=True)
        ax.semilogy(bins[:-1] + 2, np.maximum(h, 1e-6), style, label=title)
    ax.set_xlabel("grey level")
    ax.set_ylabel("density")
    ax.set_title("Cirrus: intensity histograms of the panels above (whole B-scan)", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[2, 2:4])
    for (title, img, ilm, cols), style in zip(cirrus, styles):
        if "through the disc" in title:
            continue
        grid, prof = _profile_below(img, ilm, CIRRUS_DEPTH_UM, cols)
        ax.plot(grid, prof, style, label=title)
    ax.set_xlabel("depth below the ILM (um)")
    ax.set_ylabel("mean grey level")
    ax.set_title("Cirrus: depth profiles away from the disc (ILM from the mask / the truth)", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[2, 4])
    for (title, img), style in zip(spectralis[1:], ("k--", "C0-", "C3-")):
        cols = np.arange(0, 80) if "SYNTHETIC" in title else np.arange(120, 220)
        grid, prof = depth_profile(img, DEPTH_UM, cols)
        ax.plot(grid, prof, style, label=title.split(",")[0][:34])
    ax.set_xlabel("depth below the ILM (um)")
    ax.set_title("Spectralis: depth profiles", fontsize=8.5)
    ax.legend(fontsize=6)
    fig.suptitle(f"REAL vs SYNTHETIC (octviewer-synth {GENERATOR_VERSION}): Cirrus above, Spectralis below, each at "
                 "its device's own display and scale", fontsize=12)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def gallery(out: Path):
    rows = []
    # one cup profile per row, the commonest first; V (a tenth of eyes) last
    for k, (stage, eye) in enumerate(eyes_by_stage(("U", "sloping", "saucer", "V"))):
        acq = Acquisition(signal=1.0, window_um=1000.0, noise_floor=3e-4)
        img, scan = synthetic_bscan(eye, 40 + k, acq)
        img = cv2.resize(img, (img.shape[1], img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        label = (f"SYNTHETIC v{GENERATOR_VERSION} {stage}  {eye.laterality}  CDR {eye.vertical_cdr:.2f}  "
                 f"{eye.cup_shape} cup  {eye.damage_type or 'no damage'}")
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
        enface = scan.volume.data.astype(np.float32).mean(axis=1)
        enface = cv2.resize(enface, (img.shape[0], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        enface = np.clip((enface - enface.min()) * 255.0 / max(float(np.ptp(enface)), 1.0), 0, 255).astype(np.uint8)
        rows.append(np.hstack([img, np.full((img.shape[0], 4), 255, np.uint8), enface]))
    cv2.imwrite(str(out), np.vstack([np.vstack([r, np.full((4, r.shape[1]), 255, np.uint8)]) for r in rows]))


def main():
    samples = Path(os.environ.get("OCTVIEWER_SAMPLES", DOCS.parent.parent / "shared" / "samples"))
    gallery(DOCS / "synthetic_bscans.png")
    if (samples / "heidelberg_vol" / "valid.vol").exists():
        real_vs_synthetic(samples, DOCS / "real_vs_synthetic.png")
    else:
        print(f"no real samples under {samples}: skipped real_vs_synthetic.png")


if __name__ == "__main__":
    main()
