"""Structure analysis against references: the figures of docs/structure.md "Measured".

- Real Spectralis circle scans (``$OCTVIEWER_SAMPLES/heidelberg_vol``): our own segmentation's
  global and Garway-Heath sector RNFL minus Heidelberg's segmentation in the same file.
- SYNTHETIC v2 cubes, rendered in memory from the cohort plan of each seed (the same volumes
  ``octviewer-synth --seed S --patients P`` writes), measured with ``source="own"`` against their
  truth: global and sector RNFL on the 3.46 mm circle, disc (BMO) area, BMO points (radius at the
  truth's angles, depth), BMO-MRW, vertical C/D and cup area (Cirrus's cup, 200 um anterior to the
  BMO plane, and the generator's own, the ILM behind the BMO plane), ILM inside the disc.
- Segmentation time of a Cirrus-sized cube (200 x 1024 x 200 uint8), median of 5 runs; with
  ``--baseline DIR`` (an older copy of the package, e.g. ``git archive <rev> octviewer | tar -x -C DIR``)
  both are timed in alternation on the same cube.

    python benchmarks/bench_structure.py --seeds 1 2 3 4 5 --patients 3 --workers 2
    python benchmarks/bench_structure.py --timing-only --baseline /tmp/old

Results on synthetic data are for engineering only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# --code DIR (used by the timing's subprocesses): import that copy of the package instead of this one
_ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv[:-1] else _ROOT)

from octviewer.structure import measure, rnfl  # noqa: E402
from octviewer.structure.onh import disc_measures  # noqa: E402

CIRCLES = ("Willis_B_716_2.vol", "Willis_B_716_4.vol")


def circles(samples: Path) -> None:
    from octviewer.io import load_volume

    for name in CIRCLES:
        path = samples / "heidelberg_vol" / name
        if not path.exists():
            print(f"{name}: absent")
            continue
        volume = load_volume(path)
        vendor, own = measure(volume, source="vendor"), measure(volume, source="own")
        cells = [f"global {own.rnfl_global_um - vendor.rnfl_global_um:+.1f}"]
        cells += [f"{s} {own.sectors[s] - vendor.sectors[s]:+.1f}" for s in rnfl.SECTORS]
        print(f"{name}: own - Heidelberg (um): " + ", ".join(cells))


def _polar(points: np.ndarray, centre: np.ndarray, spacing: np.ndarray):
    dy, dx = (points[:, 0] - centre[0]) * spacing[0], (points[:, 1] - centre[1]) * spacing[2]
    return np.arctan2(dy, dx), np.hypot(dy, dx)


def _measure_task(task) -> dict | None:
    from octviewer.synth.cohort import synth_scan

    task, preset = task
    scan = synth_scan(task.eye, preset, seed=task.seed, acquisition=task.acquisition)
    report = measure(scan.volume, source="own")
    if not report.quality.ok or report.disc_centre_px is None or np.isnan(report.disc_area_mm2):
        return None
    row, truth, seg = task.row, scan.truth, report.segmentation
    spacing = truth["spacing_mm"]
    out = {"global": report.rnfl_global_um - float(row["rnfl_global_um"]),
           **{s: report.sectors[s] - float(row[f"rnfl_{s}_um"]) for s in rnfl.SECTORS},
           "disc": report.disc_area_mm2 / float(row["disc_area_mm2"]) - 1.0,
           "mrw": report.bmo_mrw_um - float(row["bmo_mrw_um"]),
           "cd": report.cup_to_disc - float(row["cup_to_disc"])}
    true_cup = truth["cup_mask"].sum() * spacing[0] * spacing[2]
    out["cup"] = report.cup_area_mm2 - true_cup
    out["cup_rel"] = report.cup_area_mm2 / true_cup - 1.0 if true_cup > 0.05 else float("nan")
    own_cup = disc_measures(scan.volume, seg, cup_offset_um=0.0)
    out["cup_plane"] = own_cup.cup_area_mm2 - true_cup
    out["cd_plane"] = own_cup.cup_to_disc_vertical - float(row["cup_to_disc"])
    angle, radius = _polar(seg.bmo.astype(np.float64), truth["bmo_center"], spacing)
    t_angle, t_radius = _polar(truth["bmo"].astype(np.float64), truth["bmo_center"], spacing)
    order = np.argsort(angle)
    out["bmo_radius_mm"] = float(np.mean(np.interp(t_angle, angle[order], radius[order], period=2 * np.pi)
                                         - t_radius))
    depth = np.interp(t_angle, angle[order], seg.bmo[order, 2], period=2 * np.pi)
    out["bmo_depth_um"] = float(np.mean(depth - truth["bmo"][:, 2]) * spacing[1] * 1000.0)
    inside = truth["disc_mask"]
    out["ilm_disc_um"] = float(np.nanmean(np.abs(seg.ilm - truth["boundaries"][0])[inside]) * spacing[1] * 1000.0)
    out["seed"] = task.row["patient_id"][3:6]
    return out


def synthetic(seeds: list[int], patients: int, workers: int, preset: str = "small") -> None:
    from octviewer.synth.cohort import _plan

    tasks = [(t, preset) for s in seeds for t in _plan(patients, s, missing_vf=1 / 3, glaucoma_share=0.72)]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(_measure_task, tasks, chunksize=2))
    done = [r for r in results if r is not None]
    print(f"SYNTHETIC {preset} cubes, seeds {seeds}, {patients} patients each: {len(done)} of {len(tasks)} measured")

    def line(key, unit="", scale=1.0):
        v = np.array([r[key] for r in done]) * scale
        print(f"  {key:14s} mean {v.mean():+7.3f}{unit}  MAE {np.abs(v).mean():6.3f}{unit}  "
              f"max |e| {np.abs(v).max():6.3f}{unit}")

    for key in ("global", *rnfl.SECTORS):
        line(key, " um")
    line("disc", " %", 100.0)
    for seed in sorted({r["seed"] for r in done}):
        v = [r["disc"] for r in done if r["seed"] == seed]
        print(f"    disc area, seed {int(seed)}: mean {100 * np.mean(v):+.1f} % over {len(v)} cubes")
    v = np.array([r["cup_rel"] for r in done])
    v = v[np.isfinite(v)]
    print(f"  cup area     mean {100 * v.mean():+7.3f} %  median {100 * np.median(v):+7.3f} %  "
          f"MAE {100 * np.abs(v).mean():6.3f} %"
          f"  ({v.size} cubes with a true cup over 0.05 mm2)")
    for key, unit in (("bmo_radius_mm", " mm"), ("bmo_depth_um", " um"), ("mrw", " um"), ("cd", ""),
                      ("cup", " mm2"), ("cd_plane", ""), ("cup_plane", " mm2"), ("ilm_disc_um", " um")):
        line(key, unit)


def timing(baseline: Path | None = None, rounds: int = 3) -> None:
    """Segmentation time of one Cirrus-sized cube, median of 5 runs, wall and CPU; with ``baseline`` (the
    folder of an older copy of the package) the two are timed in alternation on the same cube, each in its
    own process, so that a shared machine's load falls on both alike."""
    import subprocess
    import tempfile

    from octviewer.synth import Acquisition, random_eye, synth_scan

    volume = synth_scan(random_eye(np.random.default_rng(3), "OD", True), "cirrus", seed=1,
                        acquisition=Acquisition()).volume
    with tempfile.TemporaryDirectory() as tmp:
        cube = Path(tmp) / "cube.npz"
        s = volume.spacing
        np.savez(cube, data=volume.data, spacing=np.array([s.bscan_mm, s.depth_mm, s.ascan_mm]))
        codes = [("this code", Path(__file__).resolve().parents[1])] + ([("baseline", baseline)] if baseline else [])
        for _ in range(rounds if baseline else 1):
            for name, code in codes:
                out = subprocess.run([sys.executable, __file__, "--time-cube", str(cube), "--code", str(code)],
                                     capture_output=True, text=True, check=True).stdout.strip()
                print(f"{name}: {out}")


def _time_cube(cube: Path) -> None:
    from octviewer.core import OctVolume, Spacing
    from octviewer.structure import segment

    z = np.load(cube)
    volume = OctVolume(data=z["data"], spacing=Spacing(*[float(x) for x in z["spacing"]]), laterality="OD",
                       scan_pattern="volume", device="octviewer-synth SYNTHETIC cirrus")
    segment(volume, "own")
    walls, cpus = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        segment(volume, "own")
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    print(f"Cirrus-sized cube {volume.shape}: segment() wall {np.median(walls):.2f} s, CPU {np.median(cpus):.2f} s "
          f"(median of 5; load average {os.getloadavg()[0]:.1f})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--patients", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--preset", default="small",
                        help="synthetic cube size (small: 47 um per A-scan; cirrus: 30 um)")
    parser.add_argument("--samples", type=Path, default=Path(os.environ.get("OCTVIEWER_SAMPLES", "samples")))
    parser.add_argument("--timing-only", action="store_true", help="only the segmentation time")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="folder holding an older copy of the octviewer package, timed in alternation")
    parser.add_argument("--time-cube", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.time_cube is not None:
        _time_cube(args.time_cube)
        return
    if not args.timing_only:
        circles(args.samples)
        synthetic(args.seeds, args.patients, args.workers, args.preset)
    timing(args.baseline)


if __name__ == "__main__":
    main()
