"""A synthetic glaucoma cohort shaped like the SEMT paper's data, written as a clinic would have it.

Patients have one or both eyes, several visits, one or more volumes per visit; about 60 % of
patients have glaucoma and about a third of visits have no visual field (VF). Visual-field
indices follow from the simulated RNFL through Hood and Kardon's linear structure-function model
(Prog Retin Eye Res 2007): relative sensitivity (T - floor) / (T_normal - floor), loss in dB =
10 log10 of it, mapped from disc sectors to the Humphrey 24-2 field through the Garway-Heath map
(Ophthalmology 2000; inferior disc -> superior field and vice versa). MD is the mean of the
52 total deviations, PSD their spread, VFI the mean percentage of age-normal sensitivity (Bengtsson
& Heijl, AJO 2008), with test-retest noise (normal MD 0 +/- 1.5 dB, PSD 1-2.5 dB, VFI 97-100 %).

Everything here is synthetic and for engineering only; the DICOM files say so in their
Manufacturer and ImageComments tags and the manifest in its ``synthetic`` column.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import OctVolume, Spacing
from .anatomy import PRESETS, R_REF_MM, RNFL_FLOOR_UM, EyeAnatomy, render_volume

# Garway-Heath sectors (clinical degrees, 0 = temporal) and the number of 24-2 points each serves.
SECTORS = {"T": (310, 40, 8), "TS": (40, 80, 12), "NS": (80, 120, 6), "N": (120, 230, 6),
           "NI": (230, 270, 6), "TI": (270, 310, 14)}
MANIFEST_COLUMNS = ["path", "patient_id", "eye", "visit", "label", "vfi", "md", "psd", "split",
                    "synthetic", "severity", "cup_to_disc", "rnfl_mean_um", "damage_location"]


def sector_rnfl_um(anatomy: EyeAnatomy, damaged: bool = True) -> dict[str, float]:
    """Mean RNFL per Garway-Heath sector on the 3.46 mm circle."""
    out = {}
    for name, (lo, hi, _) in SECTORS.items():
        span = (hi - lo) % 360
        theta = (lo + np.linspace(0, span, 64)) % 360
        f = anatomy.rnfl_um if damaged else anatomy.rnfl_normal_um
        out[name] = float(np.mean(f(theta, R_REF_MM)))
    return out


def visual_field(anatomy: EyeAnatomy, rng: np.random.Generator) -> dict[str, float]:
    """VFI (%), MD (dB) and PSD (dB) of a 24-2 test, from the eye's RNFL with test noise."""
    damaged, normal = sector_rnfl_um(anatomy, True), sector_rnfl_um(anatomy, False)
    td = []
    for name, (_, _, n_points) in SECTORS.items():
        floor = min(RNFL_FLOOR_UM, 0.9 * normal[name])
        relative = np.clip((damaged[name] - floor) / (normal[name] - floor), 10 ** -3.2, 1.0)
        loss_db = 10.0 * np.log10(relative)
        td.extend(loss_db + rng.normal(0.0, 1.0 + 0.15 * abs(loss_db), n_points))
    td = np.asarray(td) + rng.normal(0.0, 1.0)  # global shift: test-retest variability
    md = float(np.mean(td))
    psd = float(np.sqrt(np.var(td - np.median(td)) + 0.6**2))
    vfi_points = np.where(td > -4.0, 100.0, np.clip(100.0 * (1.0 + td / 33.0), 0.0, 100.0))
    return {"vfi": float(np.clip(np.mean(vfi_points), 0, 100)), "md": float(np.clip(md, -35, 5)),
            "psd": float(np.clip(psd, 0, 20))}


def random_eye(rng: np.random.Generator, laterality: str, glaucoma: bool) -> EyeAnatomy:
    """An eye drawn from the population; glaucoma severities overlap normal variation on purpose."""
    severity = float(rng.beta(2.0, 1.5)) if glaucoma else 0.0
    wedges = []
    if glaucoma:
        for _ in range(rng.choice([1, 1, 2])):
            centre = rng.choice([285.0, 75.0], p=[0.65, 0.35]) + rng.normal(0, 12)
            depth = float(np.clip(severity * rng.uniform(1.0, 1.8), 0, 1))
            wedges.append((float(centre), float(rng.uniform(35, 80)), depth))
    cdr_normal = float(np.clip(rng.normal(0.38, 0.09), 0.1, 0.65))
    return EyeAnatomy(
        laterality=laterality,
        disc_center_mm=(float(rng.normal(0.2, 0.25)), float(rng.normal(0.0, 0.25))),
        disc_radii_mm=(float(rng.normal(0.85, 0.08)), float(rng.normal(0.9, 0.08))),
        cup_to_disc=float(np.clip(cdr_normal + severity * 0.5, 0.1, 0.92)),
        cup_depth_um=float(rng.uniform(150, 350) + severity * 300),
        rnfl_scale=float(np.clip(rng.normal(1.0, 0.1), 0.75, 1.3)),
        severity=severity,
        diffuse_loss=float(severity * rng.uniform(0.5, 0.9)),
        wedges=wedges,
        vessel_seed=int(rng.integers(1 << 31)),
        choroid_um=float(rng.uniform(160, 300)),
    )


def damage_location(anatomy: EyeAnatomy) -> str:
    if not anatomy.wedges:
        return "diffuse" if anatomy.diffuse_loss > 0 else ""
    names = []
    for centre, _, _ in anatomy.wedges:
        c = centre % 360
        names.append("inferotemporal" if 240 <= c < 330 else "superotemporal" if 30 <= c < 120 else "other")
    return ";".join(sorted(set(names)))


@dataclass
class SyntheticScan:
    volume: OctVolume
    anatomy: EyeAnatomy
    truth: dict  # en-face maps: rnfl_um, damage, disc_mask, vessels


def synth_scan(anatomy: EyeAnatomy, preset: str = "small", seed: int = 0, acquired: dt.date | None = None,
               patient_id: str | None = None, rng: np.random.Generator | None = None) -> SyntheticScan:
    rng = rng or np.random.default_rng(seed)
    rendered = render_volume(anatomy, preset, seed=seed, signal=float(rng.uniform(0.6, 1.2)),
                             offset_mm=(float(rng.normal(0, 0.1)), float(rng.normal(0, 0.1))),
                             tilt=(float(rng.normal(0, 1)), float(rng.normal(0, 1))))
    volume = OctVolume(
        data=rendered.data, spacing=Spacing(*rendered.spacing_mm), laterality=anatomy.laterality,
        scan_pattern="volume", device=f"octviewer-synth SYNTHETIC {preset}", acquired=acquired,
        patient_id=patient_id, notes=("SYNTHETIC volume from octviewer-synth: not patient data",))
    truth = {"rnfl_um": rendered.rnfl_um, "damage": rendered.damage, "disc_mask": rendered.disc_mask,
             "vessels": rendered.vessels}
    return SyntheticScan(volume, anatomy, truth)


def generate_cohort(out: Path, patients: int = 20, preset: str = "small", seed: int = 0,
                    missing_vf: float = 1 / 3, glaucoma_share: float = 0.6, fmt: str = "dcm",
                    compression: str | None = None, progress=None) -> Path:
    """Write volumes, their ground truth and ``manifest.csv`` under ``out``; returns the manifest path."""
    from ..io import save_volume

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    out = Path(out)
    (out / "volumes").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    plan = []
    for p in range(patients):
        pid = f"SYN{seed:03d}-{p:04d}"
        glaucoma_patient = rng.random() < glaucoma_share
        eyes = ["OD", "OS"] if rng.random() < 0.7 else [str(rng.choice(["OD", "OS"]))]
        for eye in eyes:
            glaucoma = glaucoma_patient and (len(eyes) == 1 or rng.random() < 0.85)
            anatomy = random_eye(rng, eye, glaucoma)
            start = dt.date(2015, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1500)))
            for v in range(int(rng.integers(1, 4))):
                visit = start + dt.timedelta(days=180 * v)
                vf = visual_field(anatomy, rng) if rng.random() >= missing_vf else None
                for k in range(int(rng.choice([1, 1, 2]))):
                    plan.append((pid, eye, visit, glaucoma, anatomy, vf, k, int(rng.integers(1 << 31))))
    rows = []
    for n, (pid, eye, visit, glaucoma, anatomy, vf, k, vol_seed) in enumerate(plan):
        scan = synth_scan(anatomy, preset, seed=vol_seed, acquired=visit, patient_id=pid)
        name = f"{pid}_{eye}_{visit:%Y%m%d}_{k}"
        rel = Path("volumes") / f"{name}.{fmt}"
        if fmt == "dcm":
            save_volume(scan.volume, out / rel, compression=compression)
        else:
            save_volume(scan.volume, out / rel)
        np.savez_compressed(out / "truth" / f"{name}.npz", **scan.truth)
        theta = np.linspace(0, 360, 360, endpoint=False)
        rows.append({
            "path": rel.as_posix(), "patient_id": pid, "eye": eye, "visit": visit.isoformat(),
            "label": "glaucoma" if glaucoma else "normal",
            "vfi": f"{vf['vfi']:.1f}" if vf else "", "md": f"{vf['md']:.2f}" if vf else "",
            "psd": f"{vf['psd']:.2f}" if vf else "", "split": "", "synthetic": 1,
            "severity": f"{anatomy.severity:.3f}", "cup_to_disc": f"{anatomy.cup_to_disc:.3f}",
            "rnfl_mean_um": f"{float(np.mean(anatomy.rnfl_um(theta))):.1f}",
            "damage_location": damage_location(anatomy),
        })
        if progress is not None:
            progress(n + 1, len(plan))
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest
