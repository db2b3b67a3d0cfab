"""Own segmentation against references, per A-scan: the table of docs/structure.md "Segmentation accuracy".

References:
- real Zeiss Cirrus Optic Disc Cube B-scans traced by a person (``$OCTVIEWER_SAMPLES/real_tracings``:
  ILM = top of label 0, RNFL outer boundary = top of label 30, Bruch's membrane = bottom of label 210);
- Heidelberg's own ILM / RNFL / BM lines in the Spectralis ``.vol`` samples (``heidelberg_vol``);
- the test-retest floor: the repeat circle pair ``Willis_B_716_2`` / ``_4`` (same eye, 3 s apart),
  Heidelberg against Heidelberg and ours against ours;
- SYNTHETIC cubes rendered in memory with their true boundaries (engineering only).

Per scan and boundary: mean absolute and mean signed error per A-scan in um (ours minus reference;
positive = ours deeper); RNFL thickness likewise; for circle scans the Garway-Heath sectors and
the global mean. ``deep`` counts A-scans whose RNFL boundary lies more than 16 um (twice the 8 um
target) below the reference's: the boundary running into the GCL/IPL. ``unsure`` counts the
A-scans the segmentation itself flags (low signal, vessel shadow, RNFL/GCL edge, disc margin); the errors
are over all A-scans with a reference, and again over the sure ones and the unsure ones (a flag worth
having marks a minority whose errors are larger).

    python benchmarks/eval_segmentation.py [--overlays docs/segmentation] [--synthetic 6] [--code DIR]

``--code DIR`` imports ``octviewer`` from DIR instead (to compare with an older copy in the same run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRACINGS = ("OCTseg-Zeiss_train_img_im00001.png", "OCTseg-Zeiss_test_img_im0100.png")
VOLS = ("Willis_B_716_2.vol", "Willis_B_716_4.vol", "valid.vol", "Willis_B_716_0.vol")
BOUNDARIES = ("ILM", "RNFL", "BM")
DEEP_UM = 16.0
# Cirrus Optic Disc Cube 200x200: 6 mm wide, 2.0 mm deep, 1024 pixels
CIRRUS_ASCAN_MM, CIRRUS_DEPTH_MM = 0.030, 2.0 / 1024


def tracing_volume(img_path: Path):
    """A traced Cirrus B-scan as a one-B-scan volume, and its reference boundaries (px, NaN = none)."""
    from PIL import Image

    from octviewer.core import OctVolume, Spacing

    img = np.asarray(Image.open(img_path).convert("L"))
    mask = np.asarray(Image.open(str(img_path).replace("_img_", "_mask_")).convert("L"))
    volume = OctVolume(data=img[None].copy(), spacing=Spacing(bscan_mm=0.0, depth_mm=CIRRUS_DEPTH_MM,
                                                                 ascan_mm=CIRRUS_ASCAN_MM),
                       scan_pattern="line", device="Zeiss Cirrus (traced B-scan)", source=img_path.name)
    z = np.arange(mask.shape[0])[:, None]

    def top(label):
        hit = mask == label
        return np.where(hit.any(axis=0), np.argmax(hit, axis=0) - 0.5, np.nan)

    def bottom(label):
        hit = mask == label
        last = mask.shape[0] - 1 - np.argmax(hit[::-1], axis=0)
        return np.where(hit.any(axis=0), last + 0.5, np.nan)

    ref = {"ILM": top(0), "RNFL": top(30), "BM": bottom(210)}
    # the GCL+IPL's bottom, to tell how far into it a boundary ran
    ref["IPL"] = np.where((mask == 30).any(axis=0), (mask.shape[0] - 1 - np.argmax((mask == 30)[::-1], 0)) + 0.5,
                          np.nan)
    del z
    return volume, {k: v[None].astype(np.float64) for k, v in ref.items()}


def vendor_reference(volume) -> dict:
    return {name: np.asarray(volume.layers[name], np.float64) for name in BOUNDARIES if name in volume.layers}


def _stats(err: np.ndarray) -> tuple[float, float, int]:
    e = err[np.isfinite(err)]
    return (float(np.abs(e).mean()), float(e.mean()), int(e.size)) if e.size else (np.nan, np.nan, 0)


def compare(seg, ref: dict, um: float, unsure: np.ndarray | None = None) -> dict:
    """Per-A-scan errors (um) of each boundary and of the RNFL thickness; all A-scans and the sure ones."""
    own = {"ILM": seg.ilm, "RNFL": seg.rnfl, "BM": seg.bm}
    rows = {}
    for name in BOUNDARIES:
        if name in ref and np.isfinite(ref[name]).any():
            rows[name] = (own[name] - ref[name]) * um
    if "ILM" in ref and "RNFL" in ref and np.isfinite(ref["RNFL"]).any():
        rows["thickness"] = ((seg.rnfl - seg.ilm) - (ref["RNFL"] - ref["ILM"])) * um
    out = {}
    for name, err in rows.items():
        out[name] = _stats(err)
        if unsure is not None:
            out[name + "_sure"] = _stats(np.where(unsure, np.nan, err))
            out[name + "_unsure"] = _stats(np.where(unsure, err, np.nan))
    if "RNFL" in rows:
        r = rows["RNFL"]
        out["deep"] = int(np.sum(r[np.isfinite(r)] > DEEP_UM))
    return out


def circle_summary(thickness_um: np.ndarray, laterality) -> dict:
    from octviewer.structure import rnfl

    summary = rnfl.summarise(rnfl.circle_profile(thickness_um), laterality)
    return {"global": summary["global"], **summary["sectors"]}


def unsure_of(seg) -> np.ndarray | None:
    flags = getattr(seg, "unsure", None)
    return None if flags is None else flags > 0


def fmt(stats) -> str:
    mae, bias, _ = stats
    return "n/a" if not np.isfinite(mae) else f"{mae:5.1f} / {bias:+5.1f}"


def real_scans(samples: Path, overlays: Path | None) -> list[str]:
    from octviewer.io import load_volume
    from octviewer.structure import rnfl, segment

    lines = ["| scan | reference | A-scans (unsure) | ILM | RNFL boundary | BM | RNFL thickness | "
             "thickness, sure A-scans | thickness, unsure | deep | time |", "|---" * 11 + "|"]
    sectors_lines = []
    circles = {}
    scans = []
    for name in TRACINGS:
        path = samples / "real_tracings" / name
        if path.exists():
            volume, ref = tracing_volume(path)
            scans.append((name.replace("OCTseg-Zeiss_", "Cirrus ").replace("_img_", " ").replace(".png", ""),
                          volume, ref, "tracing"))
    for name in VOLS:
        path = samples / "heidelberg_vol" / name
        if path.exists():
            volume = load_volume(path)
            scans.append((f"Spectralis {name}", volume, vendor_reference(volume), "Heidelberg"))
    for label, volume, ref, ref_name in scans:
        um = volume.spacing.depth_mm * 1000.0
        t0 = time.perf_counter()
        seg = segment(volume, "own")
        elapsed = time.perf_counter() - t0
        unsure = unsure_of(seg)
        c = compare(seg, ref, um, unsure)
        n = int(np.isfinite(ref.get("ILM", np.full(1, np.nan))).sum())
        n_unsure = int(unsure[np.isfinite(ref["ILM"])].sum()) if unsure is not None else 0
        lines.append(f"| {label} | {ref_name} | {n} ({n_unsure}) | {fmt(c['ILM'])} | "
                     f"{fmt(c.get('RNFL', (np.nan,) * 3))} | {fmt(c.get('BM', (np.nan,) * 3))} | "
                     f"{fmt(c.get('thickness', (np.nan,) * 3))} | {fmt(c.get('thickness_sure', (np.nan,) * 3))} | "
                     f"{fmt(c.get('thickness_unsure', (np.nan,) * 3))} | "
                     f"{c.get('deep', '')} | {elapsed:.2f} s |")
        if volume.scan_pattern == "circle" and "RNFL" in ref:
            own_t = (seg.rnfl[0] - seg.ilm[0]) * um
            ref_t = (ref["RNFL"][0] - ref["ILM"][0]) * um
            own_s, ref_s = circle_summary(own_t, volume.laterality), circle_summary(ref_t, volume.laterality)
            circles[label] = (own_t, ref_t, seg)
            cells = " | ".join(f"{own_s[k]:.1f} ({own_s[k] - ref_s[k]:+.1f})" for k in ("global", *rnfl.SECTORS))
            sectors_lines.append(f"| {label} | {cells} |")
        if overlays is not None:
            overlay(volume, seg, ref, ref_name, overlays / f"segmentation_{_slug(label)}.png", label)
    out = ["Per A-scan error, ours minus reference, um: mean absolute / mean signed (positive: ours deeper "
           "or thicker).", "", *lines, ""]
    if sectors_lines:
        out += ["Circle scans, own RNFL (own minus Heidelberg), um:", "",
                "| scan | global | " + " | ".join(rnfl.SECTORS) + " |", "|---" * (len(rnfl.SECTORS) + 2) + "|",
                *sectors_lines, ""]
    pair = [circles.get(f"Spectralis {n}") for n in ("Willis_B_716_2.vol", "Willis_B_716_4.vol")]
    if all(p is not None for p in pair):
        out += retest(pair)
    return out


def retest(pair) -> list[str]:
    """Test-retest floor: the same eye scanned twice 3 s apart. Per A-scan (Spectralis's tracker
    puts the A-scans at the same places), Heidelberg against Heidelberg and ours against ours."""
    from octviewer.structure import rnfl

    (own2, ref2, _), (own4, ref4, _) = pair
    out = ["Test-retest floor, Willis_B_716_2 against _4 (same eye, 3 s apart), RNFL thickness per A-scan, um "
           "(MAE / mean difference), and the sectors' largest difference:", ""]
    for who, a, b in (("Heidelberg", ref2, ref4), ("ours", own2, own4)):
        d = a - b
        sa, sb = circle_summary(a, "OD"), circle_summary(b, "OD")
        worst = max(abs(sa[k] - sb[k]) for k in rnfl.SECTORS)
        out.append(f"- {who}: per A-scan {np.nanmean(np.abs(d)):.1f} / {np.nanmean(d):+.1f}; global "
                   f"{sa['global'] - sb['global']:+.1f}; largest sector difference {worst:.1f}")
    out.append(f"- ours against Heidelberg, per A-scan, same scan: {np.nanmean(np.abs(own2 - ref2)):.1f} (_2), "
               f"{np.nanmean(np.abs(own4 - ref4)):.1f} (_4)")
    return out + [""]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_").replace("__", "_")


def overlay(volume, seg, ref: dict, ref_name: str, path: Path, title: str) -> None:
    """The B-scan with our boundaries (solid) and the reference's (dotted, same colour) in one picture,
    cropped to the retina, at the physical aspect ratio with depth stretched 3x (as viewers show it)."""
    import cv2

    img = volume.display()[0].astype(np.float32)
    depth, width = img.shape
    um_z, um_x = volume.spacing.depth_mm * 1000.0, volume.spacing.ascan_mm * 1000.0
    lines = [np.asarray(x)[0] for x in (seg.ilm, seg.rnfl, seg.bm)] + [ref.get(k, np.full((1, width), np.nan))[0]
                                                                       for k in BOUNDARIES]
    finite = np.concatenate([v[np.isfinite(v)] for v in lines])
    z0 = int(max(0, finite.min() - 150.0 / um_z))
    z1 = int(min(depth, finite.max() + 150.0 / um_z))
    out_w = 1400
    sx = out_w / width
    sz = 3.0 * sx * um_z / um_x
    out_h = int(round((z1 - z0) * sz))
    crop = cv2.resize(img[z0:z1], (out_w, out_h), interpolation=cv2.INTER_AREA if sz < 1 else cv2.INTER_LINEAR)
    crop = np.clip((crop - np.percentile(crop, 1)) / max(np.percentile(crop, 99.7) - np.percentile(crop, 1), 1), 0, 1)
    rgb = cv2.cvtColor((crop * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    colours = {"ILM": (60, 220, 60), "RNFL": (40, 200, 255), "BM": (255, 120, 60)}  # BGR
    unsure = unsure_of(seg)
    for i, name in enumerate(BOUNDARIES):
        for kind, values in (("own", lines[i]), ("ref", lines[3 + i])):
            x = (np.arange(width) + 0.5) * sx
            y = (values - z0 + 0.5) * sz
            ok = np.isfinite(y)
            pts = np.stack([x, y], axis=1)
            for j in range(width - 1):
                if not (ok[j] and ok[j + 1]):
                    continue
                if kind == "ref" and (x[j] // 6) % 2:
                    continue  # dashed
                colour = colours[name] if kind == "own" else (255, 0, 255)
                if kind == "own" and name == "RNFL" and unsure is not None and unsure[0, j]:
                    colour = (0, 0, 255)
                cv2.line(rgb, tuple(np.round(pts[j]).astype(int)), tuple(np.round(pts[j + 1]).astype(int)), colour,
                         2, cv2.LINE_AA)
    header = np.full((48, out_w, 3), 255, np.uint8)
    cv2.putText(header, f"{title}: ours solid (ILM green, RNFL outer boundary yellow, red where unsure; BM blue), "
                        f"{ref_name} dashed magenta; depth x3", (8, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    picture = Image.fromarray(cv2.cvtColor(np.vstack([header, rgb]), cv2.COLOR_BGR2RGB))
    picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)  # a third of the bytes


def synthetic(count: int, preset: str) -> list[str]:
    """SYNTHETIC cubes with their true boundaries: per-A-scan errors outside the disc, and the global
    RNFL on the 3.46 mm circle against the truth."""
    from octviewer.structure import measure, rnfl
    from octviewer.synth import Acquisition, random_eye, synth_scan

    rows = []
    for k in range(count):
        rng = np.random.default_rng(100 + k)
        eye = random_eye(rng, "OD" if k % 2 else "OS", glaucoma=bool(k % 3))
        scan = synth_scan(eye, preset, seed=100 + k, acquisition=Acquisition())
        report = measure(scan.volume, source="own")
        seg = report.segmentation
        truth = scan.truth
        b = truth["boundaries"]
        names = list(truth["boundary_names"])
        ref = {"ILM": b[names.index("ILM")], "RNFL": b[names.index("RNFL_GCL")], "BM": b[names.index("BM")]}
        outside = ~truth["disc_mask"]
        ref = {k2: np.where(outside, v, np.nan) for k2, v in ref.items()}
        um = scan.volume.spacing.depth_mm * 1000.0
        c = compare(seg, ref, um, unsure_of(seg))
        c["global"] = report.rnfl_global_um - float(np.mean(truth["rnfl_circle_um"])) if report.quality.ok else np.nan
        c["sure_sectors"], c["approx_sectors"] = [], []
        if report.quality.ok:
            true_sectors = circle_summary(truth["rnfl_circle_um"], scan.volume.laterality)
            for s in rnfl.SECTORS:
                key = "approx_sectors" if s in getattr(report, "uncertain_sectors", ()) else "sure_sectors"
                c[key].append(report.sectors[s] - true_sectors[s])
            c["unsure_fraction"] = getattr(report, "unsure_fraction", np.nan)
        rows.append(c)
    gen = getattr(__import__("octviewer.synth.cohort", fromlist=["GENERATOR_VERSION"]), "GENERATOR_VERSION", "?")
    out = [f"SYNTHETIC `{preset}` cubes (generator {gen}), {count} eyes, outside the disc, um (MAE / bias):", "",
           "| boundary | MAE / bias |", "|---|---|"]
    for key in ("ILM", "RNFL", "BM", "thickness"):
        mae = np.nanmean([r[key][0] for r in rows])
        bias = np.nanmean([r[key][1] for r in rows])
        out.append(f"| {key} | {mae:.1f} / {bias:+.1f} |")
    # the unsure flags' worth: the A-scans flagged (any flag) against the sure ones, pooled over the eyes
    pooled = {}
    for key in ("thickness_sure", "thickness_unsure"):
        n = np.array([r[key][2] for r in rows], float)
        mae = np.array([r[key][0] for r in rows], float)
        bias = np.array([r[key][1] for r in rows], float)
        ok = n > 0
        pooled[key] = (np.sum((mae * n)[ok]) / max(n[ok].sum(), 1), np.sum((bias * n)[ok]) / max(n[ok].sum(), 1),
                       n[ok].sum())
    total = pooled["thickness_sure"][2] + pooled["thickness_unsure"][2]
    for key, label in (("thickness_sure", "thickness, sure A-scans"),
                       ("thickness_unsure", "thickness, unsure A-scans")):
        mae, bias, n = pooled[key]
        out.append(f"| {label} | {mae:.1f} / {bias:+.1f} ({100 * n / max(total, 1):.0f} % of A-scans) |")
    g = np.array([r["global"] for r in rows], float)
    out.append(f"| global RNFL on the 3.46 mm circle | {np.nanmean(np.abs(g)):.1f} / {np.nanmean(g):+.1f} "
               f"({int(np.isfinite(g).sum())} measured) |")
    for key, label in (("sure_sectors", "sectors, sure"), ("approx_sectors", "sectors printed approximate (~)")):
        v = np.array([e for r in rows for e in r[key]], float)
        if v.size:
            out.append(f"| {label} | {np.abs(v).mean():.1f} / {v.mean():+.1f} ({v.size} sectors) |")
    u = np.array([r.get("unsure_fraction", np.nan) for r in rows], float)
    if np.isfinite(u).any():
        out.append(f"| circle unsure (not vessel shadow) | {100 * np.nanmean(u):.0f} % of A-scans |")
    return out + [""]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=Path(os.environ.get("OCTVIEWER_SAMPLES", "samples")))
    parser.add_argument("--overlays", type=Path, default=None, help="folder for the overlay PNGs")
    parser.add_argument("--synthetic", type=int, default=6, help="how many SYNTHETIC cubes (0: none)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--code", type=Path, default=None, help="import octviewer from this folder")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.code.resolve() if args.code else ROOT))
    import octviewer

    print(f"octviewer from {Path(octviewer.__file__).parent}; load average {os.getloadavg()[0]:.1f}\n")
    print("\n".join(real_scans(args.samples, args.overlays)))
    if args.synthetic:
        print("\n".join(synthetic(args.synthetic, args.preset)))


if __name__ == "__main__":
    main()
