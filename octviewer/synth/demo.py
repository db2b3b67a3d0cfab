"""The bundled demo scans: four synthetic eyes, made reproducibly by ``python -m octviewer.synth.demo``.

A normal right eye, a normal left eye, early glaucoma (left eye, inferotemporal wedge) and
advanced glaucoma (right eye, diffuse loss with defects above and below), on a Cirrus-sized
6 x 6 x 2 mm field at reduced sampling (64 x 320 x 160) with the Spectralis look (the `demo`
preset's, ``render.PRESET_DEVICE``), JPEG 2000 lossless, so the repository stays small. All are
SYNTHETIC.
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (core.stop.run_module)
    from octviewer.core.stop import run_module

    run_module("octviewer.synth.demo", "run it again")

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np

from ..io import save_volume
from .anatomy import EyeAnatomy
from .cohort import GENERATOR_VERSION, synth_scan
from .disease import Disease, apply_disease, normal_pattern, stage_of, truth_columns, visual_field
from .render import Acquisition

_NORMAL_OD = EyeAnatomy(laterality="OD", age=55, disc_center_mm=(0.3, 0.05), disc_radii_mm=(0.80, 0.90),
                        physiological_cdr=0.35, cup_shape="U", prelaminar_um=210, vessel_seed=11)
_NORMAL_OS = EyeAnatomy(laterality="OS", age=62, disc_center_mm=(0.25, -0.05), disc_radii_mm=(0.85, 0.95),
                        physiological_cdr=0.42, cup_shape="saucer", cup_floor=0.65, prelaminar_um=180, rnfl_scale=0.95,
                        ppa=(0.0, 50.0, 0.15), vessel_seed=12)
_EARLY_OS = EyeAnatomy(laterality="OS", age=64, disc_center_mm=(0.2, 0.0), disc_radii_mm=(0.82, 0.92),
                       physiological_cdr=0.45, cup_shape="sloping", cup_floor=0.35, prelaminar_um=170, vessel_seed=13)
_ADVANCED_OD = EyeAnatomy(laterality="OD", age=71, disc_center_mm=(0.3, 0.1), disc_radii_mm=(0.86, 0.95),
                          physiological_cdr=0.45, cup_shape="U", cup_floor=0.5, prelaminar_um=190, vessel_seed=14,
                          ppa=(350.0, 70.0, 0.3))

DEMO_EYES = {
    "demo_normal_OD": _NORMAL_OD,
    "demo_normal_OS": _NORMAL_OS,
    "demo_early_glaucoma_OS": apply_disease(_EARLY_OS, Disease("wedge", [(285.0, 35.0, 1.6)], 0.3), 0.55),
    "demo_advanced_glaucoma_OD": apply_disease(
        _ADVANCED_OD, Disease("mixed", [(285.0, 70.0, 1.4), (75.0, 60.0, 1.1)], 0.6), 0.95),
}


def make_demo(out: Path, seed: int = 7) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written, truth = [], {}
    for k, (name, eye) in enumerate(DEMO_EYES.items()):
        acq = Acquisition(signal=1.0 - 0.1 * k, offset_mm=(0.05 * k, -0.03 * k), tilt=(10.0 * (k - 1.5), 5.0),
                          window_um=950.0)
        scan = synth_scan(eye, "demo", seed=seed + k, acquired=dt.date(2024, 3, 4 + k), patient_id=f"DEMO-{k + 1}",
                          acquisition=acq)
        path = save_volume(scan.volume, out / f"{name}.dcm", compression="jpeg2000")
        rng = np.random.default_rng(seed + k)
        vf = visual_field(eye, rng, fixed_pattern=normal_pattern(rng))
        cols = truth_columns(eye)
        truth[name] = {"label": "glaucoma" if stage_of(eye) in ("early", "moderate", "advanced") else "normal",
                       "stage": cols["stage"], "severity": round(eye.severity, 3),
                       "cup_to_disc": round(cols["cup_to_disc"], 3), "rnfl_global_um": round(cols["rnfl_global_um"], 1),
                       "damage": eye.damage_type, **{k2: round(v, 2) for k2, v in vf.items()},
                       "generator": GENERATOR_VERSION}
        written.append(path)
    (out / "demo_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the bundled SYNTHETIC demo scans")
    parser.add_argument("--out", type=Path, default=Path("resources/samples"))
    args = parser.parse_args(argv)
    for p in make_demo(args.out):
        print(p, f"{p.stat().st_size / 1e6:.1f} MB")

