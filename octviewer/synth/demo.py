"""The bundled demo scans: four synthetic eyes, made reproducibly by ``python -m octviewer.synth.demo``.

A normal right eye, a normal left eye, early glaucoma (left eye, inferotemporal wedge) and
advanced glaucoma (right eye, diffuse loss with wedges above and below), on a Cirrus-like
6 x 6 x 2 mm field at reduced sampling (64 x 320 x 160), JPEG 2000 lossless, so the repository
stays small. All are SYNTHETIC.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np

from ..io import save_volume
from .anatomy import EyeAnatomy
from .cohort import synth_scan, visual_field

DEMO_EYES = {
    "demo_normal_OD": EyeAnatomy(laterality="OD", disc_center_mm=(0.3, 0.05), cup_to_disc=0.35, cup_depth_um=220,
                                 vessel_seed=11),
    "demo_normal_OS": EyeAnatomy(laterality="OS", disc_center_mm=(0.25, -0.05), cup_to_disc=0.42, cup_depth_um=260,
                                 rnfl_scale=0.95, vessel_seed=12),
    "demo_early_glaucoma_OS": EyeAnatomy(laterality="OS", disc_center_mm=(0.2, 0.0), cup_to_disc=0.68,
                                         cup_depth_um=420, severity=0.5, diffuse_loss=0.3,
                                         wedges=[(285.0, 55.0, 0.75)], vessel_seed=13),
    "demo_advanced_glaucoma_OD": EyeAnatomy(laterality="OD", disc_center_mm=(0.3, 0.1), cup_to_disc=0.88,
                                            cup_depth_um=620, severity=0.9, diffuse_loss=0.65,
                                            wedges=[(285.0, 70.0, 1.0), (75.0, 60.0, 0.9)], vessel_seed=14),
}


def make_demo(out: Path, seed: int = 7) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written, truth = [], {}
    for k, (name, eye) in enumerate(DEMO_EYES.items()):
        scan = synth_scan(eye, "demo", seed=seed + k, acquired=dt.date(2024, 3, 4 + k), patient_id=f"DEMO-{k + 1}")
        path = save_volume(scan.volume, out / f"{name}.dcm", compression="jpeg2000")
        vf = visual_field(eye, np.random.default_rng(seed + k))
        truth[name] = {"label": "glaucoma" if eye.severity > 0 else "normal", "severity": eye.severity,
                       "cup_to_disc": eye.cup_to_disc, **{k2: round(v, 2) for k2, v in vf.items()}}
        written.append(path)
    (out / "demo_truth.json").write_text(json.dumps(truth, indent=2))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the bundled SYNTHETIC demo scans")
    parser.add_argument("--out", type=Path, default=Path("resources/samples"))
    args = parser.parse_args(argv)
    for p in make_demo(args.out):
        print(p, f"{p.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
