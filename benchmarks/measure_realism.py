"""Do synthetic B-scans look like real ones? The realism table of docs/cohort.md, measured.

Real side (read from ``$OCTVIEWER_SAMPLES``, never copied):

- Cirrus: the two ``real_tracings`` B-scans from Optic Disc Cube 200x200 scans (2.0/1024 mm per
  pixel, 30 um per A-scan, not averaged), each with its layer label mask;
- Spectralis: the ``heidelberg_vol`` B-scans (averaged, 3.87 um per pixel) with the vendor's own
  ILM, RNFL and BM lines, shown at the viewer's 255 x I^(1/4).

Synthetic side: volumes of the generator's device presets (``cirrus`` at Cirrus's sampling and
look; ``small`` Spectralis-like), measured inside the truth's own layer boundaries, on A-scans
away from the disc (as the real B-scans are), with the same functions.

Measures (each on the stored/display grey levels, as a reader sees them): per-layer mean grey
level ratios (RNFL / GCL+IPL, GCL+IPL / INL, RPE / vitreous), the histogram and depth profile
below the ILM, the speckle's autocorrelation length along depth and across A-scans, the per-A-scan
roughness of the ILM and of the RNFL's outer boundary, and, from truth only, the cup depth and the
vertical cup-to-disc ratio by stage. Run:

    OCTVIEWER_SAMPLES=../shared/samples python benchmarks/measure_realism.py --out runs/realism

Results are on SYNTHETIC data beside two real samples per device: engineering figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from octviewer import load_volume  # noqa: E402
from octviewer.synth.cohort import _plan, synth_scan  # noqa: E402

CIRRUS_LABELS = {"rnfl": 0, "gclipl": 30, "inl": 60, "opl": 90, "onl": 120, "rpe": 210, "background": 240}
CIRRUS_DEPTH_UM = 2000.0 / 1024
CIRRUS_LATERAL_UM = 30.0
PROFILE_STEP_UM = 8.0
PROFILE_SPAN_UM = (-40.0, 600.0)


# -- measures on one B-scan with its layer masks -------------------------------------------------

def layer_means(img: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(img[m].mean()) for k, m in masks.items() if m.any()}


def ratios(means: dict[str, float]) -> dict[str, float]:
    out = {}
    for name, (a, b) in {"rnfl_over_gclipl": ("rnfl", "gclipl"), "gclipl_over_inl": ("gclipl", "inl"),
                         "rpe_over_vitreous": ("rpe", "vitreous"), "rnfl_over_onl": ("rnfl", "onl")}.items():
        if a in means and b in means and means[b] > 0:
            out[name] = means[a] / means[b]
    return out


def depth_profile(img: np.ndarray, ilm: np.ndarray, um_per_px: float, cols) -> np.ndarray:
    """Mean grey level against depth below the ILM (PROFILE_STEP_UM steps over PROFILE_SPAN_UM)."""
    grid = np.arange(*PROFILE_SPAN_UM, PROFILE_STEP_UM)
    rows = []
    for c in cols:
        if not np.isfinite(ilm[c]):
            continue
        z = (np.arange(img.shape[0]) - ilm[c]) * um_per_px
        if z[0] > grid[0] or z[-1] < grid[-1]:
            continue
        rows.append(np.interp(grid, z, img[:, c].astype(np.float32)))
    return np.mean(rows, axis=0) if rows else np.full(grid.shape, np.nan)


def speckle_length_um(img: np.ndarray, mask: np.ndarray, um_per_px: float, axis: int) -> float:
    """Where the autocorrelation of the speckle (grey level minus its local mean, inside ``mask``)
    falls to 1/e along ``axis`` (0 depth, 1 across A-scans), linearly interpolated between lags."""
    f = img.astype(np.float32)
    local = cv2.blur(f, (9, 9) if axis == 0 else (9, 9))
    resid = np.where(mask, f - local, 0.0)
    valid = mask.astype(np.float32)
    ac = [1.0]
    for lag in range(1, 12):
        if axis == 0:
            a, b, va, vb = resid[:-lag], resid[lag:], valid[:-lag], valid[lag:]
        else:
            a, b, va, vb = resid[:, :-lag], resid[:, lag:], valid[:, :-lag], valid[:, lag:]
        both = (va * vb) > 0
        if both.sum() < 100:
            break
        ac.append(float(np.corrcoef(a[both], b[both])[0, 1]))
    ac = np.array(ac)
    below = np.nonzero(ac < np.exp(-1))[0]
    if len(below) == 0:
        return float((len(ac) - 1) * um_per_px)
    k = int(below[0])
    frac = (ac[k - 1] - np.exp(-1)) / max(ac[k - 1] - ac[k], 1e-6)
    return float((k - 1 + frac) * um_per_px)


def roughness_um(boundary_px: np.ndarray, um_per_px: float, smooth_ascans: float = 3.0) -> float:
    """A-scan-to-A-scan irregularity of a boundary: SD (um) of its departure from a Gaussian-smoothed
    copy of itself (sigma ``smooth_ascans`` A-scans); the boundary's slow course is removed."""
    b = np.asarray(boundary_px, np.float64)
    ok = np.isfinite(b)
    if ok.sum() < 20:
        return float("nan")
    from scipy.ndimage import gaussian_filter1d

    x = np.interp(np.arange(len(b)), np.nonzero(ok)[0], b[ok])
    resid = (x - gaussian_filter1d(x, smooth_ascans, mode="nearest"))[ok]
    return float(np.std(resid) * um_per_px)


def bscan_measures(img, masks, ilm, rnfl_out, um_per_px, um_per_ascan, cols) -> dict:
    """Every measure of one B-scan: ``masks`` name its layers, ``ilm``/``rnfl_out`` are per-A-scan px."""
    means = layer_means(img, masks)
    tissue = masks["onl"] | masks["gclipl"]
    profile = depth_profile(img, ilm, um_per_px, cols)
    grid = np.arange(*PROFILE_SPAN_UM, PROFILE_STEP_UM)
    rows = np.arange(img.shape[0])[:, None]
    # the histogram's percentiles over the retina and the 300 um of vitreous above it (the real
    # B-scans' windows differ in how much empty vitreous and sclera they hold)
    band = (rows >= np.nan_to_num(ilm, nan=1e9)[None, :] - 300.0 / um_per_px) & \
        (rows < np.nan_to_num(ilm, nan=-1e9)[None, :] + 500.0 / um_per_px)
    band[:, [c for c in range(img.shape[1]) if c not in set(cols.tolist())]] = False
    grey = img[band].astype(np.float32)
    return {"means": means, "ratios": ratios(means),
            "grey_p50": float(np.percentile(grey, 50)), "grey_p90": float(np.percentile(grey, 90)),
            "grey_p99": float(np.percentile(grey, 99)),
            **{f"profile_{lo}_{hi}_um": float(np.nanmean(profile[(grid >= lo) & (grid < hi)]))
               for lo, hi in ((0, 80), (150, 250), (350, 450), (500, 600))},
            "profile": profile.tolist(),
            "histogram": np.histogram(img, bins=np.arange(0, 257, 4), density=True)[0].tolist(),
            "speckle_axial_um": speckle_length_um(img, tissue, um_per_px, 0),
            "speckle_lateral_um": speckle_length_um(img, tissue, um_per_ascan, 1),
            "roughness_ilm_um": roughness_um(ilm[cols], um_per_px),
            "roughness_rnfl_um": roughness_um(rnfl_out[cols], um_per_px)}


# -- real B-scans --------------------------------------------------------------------------------

def real_cirrus(samples: Path) -> list[dict]:
    """The Cirrus B-scans with their traced layers (label mask: 0 RNFL ... 240 background)."""
    out = []
    folder = samples / "real_tracings"
    for img_path in sorted(folder.glob("OCTseg-Zeiss_*_img_*.png")):
        img = cv2.imread(str(img_path), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(img_path).replace("_img_", "_mask_"), cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None:
            continue
        masks = {k: mask == v for k, v in CIRRUS_LABELS.items() if k != "background"}
        tissue_cols = (mask != 240).any(axis=0)
        ilm = np.where(tissue_cols, np.argmax(mask != 240, axis=0), np.nan).astype(np.float64)
        rows = np.arange(mask.shape[0])[:, None]
        below_rnfl = (rows > np.nan_to_num(ilm)[None, :]) & (mask != 0)
        rnfl_out = np.where(tissue_cols, np.argmax(below_rnfl, axis=0), np.nan).astype(np.float64)
        masks["vitreous"] = (mask == 240) & (rows < ilm[None, :] - 10) & (rows > ilm[None, :] - 160)
        cols = np.nonzero(tissue_cols)[0]
        m = bscan_measures(img, masks, ilm, rnfl_out, CIRRUS_DEPTH_UM, CIRRUS_LATERAL_UM, cols)
        m["name"] = img_path.stem
        out.append(m)
    return out


def real_spectralis(samples: Path) -> list[dict]:
    """The Spectralis B-scans with the vendor's ILM, RNFL and BM lines. GCL+IPL: the 40 um below the
    RNFL line; RPE: the 24 um above BM; vitreous: 40-300 um above the ILM; ONL: 70-110 um above BM
    (no INL line: the GCL+IPL / INL ratio is measured on Cirrus only)."""
    out = []
    for name in ("valid.vol", "Willis_B_716_2.vol", "Willis_B_716_4.vol"):  # circle scans around the disc
        path = samples / "heidelberg_vol" / name
        if not path.exists():
            continue
        vol = load_volume(path)
        img = vol.display()[0]
        um = vol.spacing.depth_mm * 1000.0
        lat = vol.spacing.ascan_mm * 1000.0
        ilm, rnfl_out, bm = (np.asarray(vol.layers[k][0], np.float64) for k in ("ILM", "RNFL", "BM"))
        ok = np.isfinite(ilm) & np.isfinite(rnfl_out) & np.isfinite(bm) & (bm - ilm > 150 / um) & (ilm > 300 / um)
        rows = np.arange(img.shape[0])[:, None]
        okc = ok[None, :]
        masks = {"rnfl": okc & (rows >= ilm) & (rows < rnfl_out),
                 "gclipl": okc & (rows >= rnfl_out + 4 / um) & (rows < rnfl_out + 44 / um),
                 "onl": okc & (rows >= bm - 110 / um) & (rows < bm - 70 / um),
                 "rpe": okc & (rows >= bm - 24 / um) & (rows < bm),
                 "vitreous": okc & (rows >= ilm - 300 / um) & (rows < ilm - 40 / um)}
        cols = np.nonzero(ok)[0]
        m = bscan_measures(img, masks, np.where(ok, ilm, np.nan), np.where(ok, rnfl_out, np.nan), um, lat, cols)
        m["name"] = name
        out.append(m)
    return out


# -- synthetic B-scans ---------------------------------------------------------------------------

def synthetic(preset: str, device: str | None, patients: int, seed: int, bscans_per_volume: int = 4,
              max_volumes: int = 8) -> list[dict]:
    """The first ``max_volumes`` volumes of a cohort plan rendered with ``preset`` (and ``device``),
    measured on ``bscans_per_volume`` B-scans each, on A-scans at least 1.3 mm from the BMO centre."""
    out = []
    for task in _plan(patients, seed, 1 / 3, 0.66)[:max_volumes]:
        kw = {} if device is None else {"device": device}
        scan = synth_scan(task.eye, preset, seed=task.seed, acquisition=task.acquisition, **kw)
        if set(scan.artefacts) & {"blink", "clipping", "mirror", "media_opacity", "low_signal"}:
            continue
        data, t = scan.volume.data, scan.truth
        sy, sz, sx = (float(v) * 1000.0 for v in t["spacing_mm"])
        b = t["boundaries"]
        names = list(t["boundary_names"])
        n_b, _, n_x = data.shape
        cb, ca = (float(v) for v in t["bmo_center"])
        picks = np.linspace(0.1 * n_b, 0.9 * n_b, bscans_per_volume).astype(int)
        for i in picks:
            dist = np.hypot((np.arange(n_x) - ca) * sx, (i - cb) * sy) / 1000.0
            ok = (dist > 1.3) & np.isfinite(b[:, i]).all(axis=0)
            if ok.sum() < 20:
                continue
            rows = np.arange(data.shape[1])[:, None].astype(np.float32)
            bi = {n: b[names.index(n), i][None, :] for n in names}

            def between(top, bottom, _bi=bi, _ok=ok, _rows=rows):
                return _ok[None, :] & (_rows >= _bi[top]) & (_rows < _bi[bottom])

            masks = {"rnfl": between("ILM", "RNFL_GCL"), "gclipl": between("RNFL_GCL", "IPL_INL"),
                     "inl": between("IPL_INL", "INL_OPL"), "onl": between("OPL_ONL", "ONL_ELM"),
                     "rpe": between("OS_RPE", "BM"),
                     "vitreous": ok[None, :] & (rows < bi["ILM"] - 20.0 / sz) & (rows >= bi["ILM"] - 310.0 / sz)}
            ilm = np.where(ok, b[names.index("ILM"), i], np.nan)
            rnfl_out = np.where(ok, b[names.index("RNFL_GCL"), i], np.nan)
            # roughness over runs of A-scans away from the disc: the longest run
            cols = np.nonzero(ok)[0]
            m = bscan_measures(data[i], masks, ilm, rnfl_out, sz, sx, cols)
            m["name"] = f"{task.name}[{i}]"
            out.append(m)
    return out


def summarize(items: list[dict]) -> dict:
    """Median, 10th and 90th percentile over B-scans of every scalar measure and ratio (the median:
    a B-scan that grazes a vessel or the rim's slope should not move the figure), the mean
    histogram and depth profile."""
    if not items:
        return {}
    values = {}
    for it in items:
        for k, v in it.items():
            if isinstance(v, float):
                values.setdefault(k, []).append(v)
        for k, v in it["ratios"].items():
            values.setdefault(k, []).append(v)
    out = {k: [float(np.nanmedian(v)), float(np.nanpercentile(v, 10)), float(np.nanpercentile(v, 90))]
           for k, v in values.items()}
    out["profile"] = np.nanmean([it["profile"] for it in items], axis=0).tolist()
    out["histogram"] = np.mean([it["histogram"] for it in items], axis=0).tolist()
    out["n_bscans"] = len(items)
    return out


def disc_by_stage(patients: int = 300, seed: int = 300) -> dict:
    """Vertical C/D (Cirrus's rule on the drawn ILM), cup depth (ILM at the cup centre behind the
    BMO plane) and BMO-MRW by stage, over the eye-visits of a cohort plan (truth only)."""
    rows = {}
    for task in _plan(patients, seed, 1 / 3, 0.66):
        rows[(task.row["patient_id"], task.row["eye"], task.row["visit"])] = (task.row, task.eye)
    out = {}
    for stage in ("normal", "preperimetric", "early", "moderate", "advanced"):
        sel = [(r, e) for r, e in rows.values() if r["stage"] == stage]
        if not sel:
            continue
        cdr = np.array([float(r["cup_to_disc"]) for r, _ in sel])
        depth = np.array([e.cup_depth_now_um for _, e in sel])
        mrw = np.array([float(r["bmo_mrw_um"]) for r, _ in sel])
        out[stage] = {"n": len(sel), "cdr_mean": float(cdr.mean()), "cdr_sd": float(cdr.std()),
                      "cdr_p5": float(np.percentile(cdr, 5)), "cdr_p95": float(np.percentile(cdr, 95)),
                      "cdr_share_1": float(np.mean(cdr >= 0.995)),
                      "cdr_share_0.6_0.8": float(np.mean((cdr >= 0.6) & (cdr <= 0.8))),
                      "cup_depth_mean_um": float(depth.mean()), "cup_depth_p5_um": float(np.percentile(depth, 5)),
                      "cup_depth_p95_um": float(np.percentile(depth, 95)), "mrw_mean_um": float(mrw.mean()),
                      "mrw_sd_um": float(mrw.std())}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--volumes", type=int, default=8, help="synthetic volumes per device look")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--stage-patients", type=int, default=300)
    p.add_argument("--out", type=Path, default=Path("runs/realism"))
    args = p.parse_args(argv)
    samples = Path(os.environ.get("OCTVIEWER_SAMPLES", Path(__file__).resolve().parents[2] / "shared" / "samples"))
    if not (samples / "real_tracings").exists():
        raise SystemExit(f"no real samples under {samples} (set OCTVIEWER_SAMPLES)")
    result = {"synthetic": True,
              "real_cirrus": summarize(real_cirrus(samples)), "real_spectralis": summarize(real_spectralis(samples)),
              "synthetic_cirrus": summarize(synthetic("cirrus", "cirrus", 30, args.seed, max_volumes=args.volumes)),
              "synthetic_spectralis": summarize(synthetic("small", "spectralis", 30, args.seed,
                                                          max_volumes=args.volumes)),
              "disc_by_stage": disc_by_stage(args.stage_patients)}
    from octviewer.synth import GENERATOR_VERSION

    result["generator_version"] = GENERATOR_VERSION
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "realism.json").write_text(json.dumps(result, indent=1))
    fmt = "{:.2f} [{:.2f}, {:.2f}]".format
    print(f"SYNTHETIC generator {GENERATOR_VERSION} vs real B-scans (median [10th, 90th percentile] over B-scans)")
    for key in ("rnfl_over_gclipl", "gclipl_over_inl", "rpe_over_vitreous", "rnfl_over_onl", "grey_p50", "grey_p90",
                "grey_p99", "profile_0_80_um", "profile_150_250_um", "profile_350_450_um", "profile_500_600_um",
                "speckle_axial_um", "speckle_lateral_um", "roughness_ilm_um", "roughness_rnfl_um"):
        cells = [fmt(*result[s][key]) if key in result[s] else "-" for s in
                 ("real_cirrus", "synthetic_cirrus", "real_spectralis", "synthetic_spectralis")]
        print(f"| {key} | " + " | ".join(cells) + " |")
    for stage, d in result["disc_by_stage"].items():
        print(f"| {stage} (n={d['n']}) | C/D {d['cdr_mean']:.2f} +/- {d['cdr_sd']:.2f} [{d['cdr_p5']:.2f}, "
              f"{d['cdr_p95']:.2f}], 1.00: {100 * d['cdr_share_1']:.0f} %, "
              f"0.6-0.8: {100 * d['cdr_share_0.6_0.8']:.0f} % "
              f"| cup depth {d['cup_depth_mean_um']:.0f} [{d['cup_depth_p5_um']:.0f}, {d['cup_depth_p95_um']:.0f}] um "
              f"| MRW {d['mrw_mean_um']:.0f} +/- {d['mrw_sd_um']:.0f} um |")
    print(f"wrote {args.out / 'realism.json'}")


if __name__ == "__main__":
    main()
