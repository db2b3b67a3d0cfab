"""Archive screening throughput: each stage alone, the single-process command, and the pipelined one.

``python benchmarks/bench_batch_pipeline.py --volumes 8 --workers 2 --repeats 2``

On a synthetic archive (JPEG 2000 DICOM, ``--preset``), all at the machine's full width:
- decoding alone: ``load_volume`` of every scan in ``--workers`` processes;
- the network alone: the command's Predictor on every (already decoded) volume, in this process;
- the measurement alone: the quality gate and the whole structure measurement
  (``analyse_scan`` with ``network=False``) of every decoded volume in ``--workers`` processes;
- ``octviewer-predict`` as one process, and with ``--workers`` (scan processes + one model).
Each repeat times all five in turn (medians over ``--repeats``), so drift hits them alike.
Throughput is scans per second. The issue's bar is the pipelined run at >= 90 % of the slowest stage
alone; where the stages share the same cores (a CPU-only machine) the stages cannot overlap for
free, so the sum of the stage times is printed as the CPU's own bound beside it.

``--engines`` instead times what a distributed engine itself costs: starting a local cluster of
two worker processes and a round trip of 200 trivial tasks and of 8 tasks each returning a
Cirrus-sized cube (41 MB), for whichever of Dask distributed and Ray is installed. It imports no
octviewer code, so it runs in a bare environment with only the engine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def _decode(path) -> tuple:
    from octviewer import load_volume

    return load_volume(path).shape


def _measure(volume) -> bool:
    from octviewer.pipeline import ScanOptions, analyse_scan

    return analyse_scan(volume, None, ScanOptions(network=False)).structure is not None


def archive(folder: Path, volumes: int, preset: str) -> list[Path]:
    from octviewer.synth import generate_cohort

    manifest = generate_cohort(folder, patients=max(1, (volumes + 3) // 4), preset=preset, seed=3131,
                               compression="jpeg2000", workers=2)
    paths = sorted((manifest.parent / "volumes").glob("*.dcm"))
    return paths[:volumes]


def stages(args) -> None:
    from octviewer import load_volume
    from octviewer.model import Predictor
    from octviewer.pipeline.predict_cli import main as predict

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = archive(tmp / "archive", args.volumes, args.preset)
        n = len(paths)
        print(f"{uptime()}\n{n} {args.preset} scans (JPEG 2000), {args.workers} workers, {os.cpu_count()} CPUs")
        ctx = get_context("spawn")
        volumes = [load_volume(p) for p in paths]
        predictor = Predictor(str(args.model) if args.model else _demo(), device=args.device)
        predictor.predict(volumes[0])
        common = [*map(str, paths), "--out", str(tmp / "r.csv"), "--device", args.device,
                  "--no-store"] + (["--model", str(args.model)] if args.model else [])
        workers = f"--workers {args.workers}"
        times = {k: [] for k in ("decode", "network", "measure", "one process", workers)}
        # every measurement once per repeat, in turn, so a shared machine's drift falls on all alike
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            list(pool.map(_decode, paths[:args.workers]))  # processes started and imports done, untimed
            list(pool.map(_measure, volumes[:args.workers]))
            for _ in range(args.repeats):
                t = time.perf_counter()
                list(pool.map(_decode, paths))
                times["decode"].append(time.perf_counter() - t)
                t = time.perf_counter()
                for v in volumes:
                    predictor.predict(v)
                times["network"].append(time.perf_counter() - t)
                t = time.perf_counter()
                list(pool.map(_measure, volumes))
                times["measure"].append(time.perf_counter() - t)
                for label, extra in (("one process", []), (workers, ["--workers", str(args.workers)])):
                    t = time.perf_counter()
                    predict(common + extra)
                    times[label].append(time.perf_counter() - t)
        del volumes
        t_decode, t_network, t_measure = (statistics.median(times[k]) for k in ("decode", "network", "measure"))
        runs = {k: times[k] for k in ("one process", workers)}
        print(f"{uptime()}\nscans per second (time for all {n}):")
        for label, secs in (("decoding alone", t_decode), (f"network alone ({predictor.label})", t_network),
                            ("gate + measurement alone", t_measure)):
            print(f"  {label:38s} {n / secs:6.2f}/s  ({secs:6.1f} s)")
        slowest = max(t_decode, t_network, t_measure)
        total = t_decode + t_network + t_measure
        print(f"  {'slowest stage alone':38s} {n / slowest:6.2f}/s;  all stages one after another (the CPU's "
              f"bound when they share the cores) {n / total:6.2f}/s")
        for label, secs in runs.items():
            med = statistics.median(secs)
            print(f"  octviewer-predict, {label:19s} {n / med:6.2f}/s  ({med:6.1f} s; runs "
                  f"{', '.join(f'{s:.1f}' for s in secs)}) = {100 * slowest / med:4.0f}% of the slowest stage, "
                  f"{100 * total / med:4.0f}% of the stages' sum")


def _demo() -> str:
    from octviewer.resources import DEMO_MODEL

    return str(DEMO_MODEL)


def _trivial(i):
    return i


def _cube(i):
    import numpy as np

    return np.full((200, 1024, 200), i % 251, np.uint8)


def engines() -> None:
    print(uptime())
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("Dask distributed: not installed")
    else:
        t = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.wait_for_workers(2)
            t_start = time.perf_counter() - t
            client.gather(client.map(_trivial, range(20), pure=False))
            t = time.perf_counter()
            client.gather(client.map(_trivial, range(200), pure=False))
            t_tasks = time.perf_counter() - t
            t = time.perf_counter()
            client.gather(client.map(_cube, range(8), pure=False))
            t_cubes = time.perf_counter() - t
        print(f"Dask distributed: 2-worker local cluster up in {t_start:.2f} s; 200 trivial tasks "
              f"{t_tasks * 1e3:.0f} ms ({t_tasks / 200 * 1e3:.2f} ms each); 8 x 41 MB results {t_cubes:.2f} s")
    try:
        import ray
    except ImportError:
        print("Ray: not installed")
    else:
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        trivial, cube = ray.remote(_trivial), ray.remote(_cube)
        ray.get([trivial.remote(i) for i in range(20)])  # its two worker processes are up
        t_start = time.perf_counter() - t
        t = time.perf_counter()
        ray.get([trivial.remote(i) for i in range(200)])
        t_tasks = time.perf_counter() - t
        t = time.perf_counter()
        ray.get([cube.remote(i) for i in range(8)])
        t_cubes = time.perf_counter() - t
        ray.shutdown()
        print(f"Ray: local runtime with 2 CPUs up in {t_start:.2f} s; 200 trivial tasks {t_tasks * 1e3:.0f} ms "
              f"({t_tasks / 200 * 1e3:.2f} ms each); 8 x 41 MB results {t_cubes:.2f} s")
    print(uptime())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volumes", type=int, default=8)
    parser.add_argument("--preset", default="demo", help="synthetic scan size: tiny, small, demo, cirrus")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled demo model)")
    parser.add_argument("--engines", action="store_true", help="time the distributed engines themselves")
    args = parser.parse_args()
    if args.engines:
        engines()
    else:
        stages(args)


if __name__ == "__main__":
    sys.exit(main())
