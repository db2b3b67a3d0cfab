"""The figures of docs/cohort.md: real Spectralis B-scans beside synthetic ones, and a gallery.

``docs/real_vs_synthetic.png``: real samples (``$OCTVIEWER_SAMPLES/heidelberg_vol``: a B-scan
across a disc and a line scan through the macula) next to synthetic optic-disc B-scans, all at the
same display transform (255 x I^(1/4), the viewer's transform for raw Spectralis data; the
synthetic volumes are stored that way) and the same depth scale (3.87 um per pixel); with the
intensity histograms and mean depth profiles below the ILM. ``docs/synthetic_bscans.png``: one
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


def real_vs_synthetic(samples: Path, out: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real_disc = load_volume(samples / "heidelberg_vol" / "valid.vol").display()[0]
    real_line_vol = load_volume(samples / "heidelberg_vol" / "Willis_B_716_0.vol")
    real_line = real_line_vol.display()[0]
    line_lateral_um = real_line_vol.spacing.ascan_mm * 1000
    real_line = cv2.resize(real_line, (int(real_line.shape[1] * line_lateral_um / LATERAL_UM), real_line.shape[0]),
                           interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(11)
    syn = []
    for k, (stage, eye) in enumerate(eyes_by_stage(("U",) * 4)[::3]):  # normal and advanced, the commonest cup
        acq = Acquisition(signal=float(rng.uniform(0.8, 1.2)), window_um=float(rng.uniform(800, 1000)),
                          noise_floor=3e-4, tilt=(float(rng.normal(0, 20)), 0.0))
        img, _ = synthetic_bscan(eye, 20 + k, acq)
        syn.append((stage, img))
    width = 335
    panels = [("REAL Spectralis, across a disc (valid.vol)", real_disc[:, 200:200 + width]),
              ("REAL Spectralis, line scan (Willis_B_716_0)", real_line[:, 60:60 + width]),
              *[(f"SYNTHETIC, {stage} (U-shaped cup)", img[:496, :width]) for stage, img in syn]]
    fig = plt.figure(figsize=(16, 9.5), dpi=100)
    gs = fig.add_gridspec(2, 4, height_ratios=[1.6, 1.0])
    for k, (title, img) in enumerate(panels):
        ax = fig.add_subplot(gs[0, k])
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks(np.arange(0, img.shape[0], 129))
        ax.set_yticklabels([f"{int(t * DEPTH_UM)}" for t in np.arange(0, img.shape[0], 129)], fontsize=7)
        if k == 0:
            ax.set_ylabel("depth (um); 255 x I^(1/4) display, 3.87 um/px, 17.9 um/A-scan", fontsize=8)
    ax = fig.add_subplot(gs[1, :2])
    bins = np.arange(0, 257, 4)
    for (title, img), style in zip(panels, ("k-", "k--", "C0-", "C3-")):
        h, _ = np.histogram(img, bins=bins, density=True)
        name = title.split(",")[0] + "," + title.split(",")[1][:22]
        ax.semilogy(bins[:-1] + 2, np.maximum(h, 1e-6), style, label=name)
    ax.set_xlabel("display value")
    ax.set_ylabel("density")
    ax.set_title("Intensity histograms of the panels above", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(gs[1, 2:])
    for (title, img), style in zip(panels[1:], ("k--", "C0-", "C3-")):
        cols = np.arange(0, 80) if "SYNTHETIC" in title else np.arange(120, 220)  # retina away from disc/fovea
        grid, prof = depth_profile(img, DEPTH_UM, cols)
        ax.plot(grid, prof, style, label=title.split(",")[0] + ", retina")
    vit = [real_disc[30:200, 330:480].mean(), *[img[40:120, 100:250].mean() for _, img in syn]]
    ax.axhline(vit[0], color="k", lw=0.6, ls=":", label=f"vitreous floor, real {vit[0]:.0f}, synthetic "
               + ", ".join(f"{v:.0f}" for v in vit[1:]))
    ax.set_xlabel("depth below the ILM (um)")
    ax.set_ylabel("mean display value")
    ax.set_title("Depth profiles (A-scans away from the disc)", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"Real Spectralis vs SYNTHETIC (octviewer-synth {GENERATOR_VERSION}) at the same display transform "
                 "and scale", fontsize=11)
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
