"""The quality gate's cost to the first result, and whether its quick verdict agrees (issues 14, 16).

The viewer runs the network once the gate's verdict (``octviewer.structure.gate``: the quality
check on a cube thinned to 0.12 mm between B-scans and 0.06 mm between A-scans) has passed, and
measures the whole scan after the network. Before, the result waited for the whole measurement,
which ran beside the network and on 2 cores fought it for the CPU (torch's two threads stall
whenever another thread takes a core). On a Cirrus-sized synthetic cube (200 x 1024 x 200),
random SEMT on the CPU, in rotation (drift of a shared machine hits all alike), with the 1-min
load average and the process's CPU time per trial:

- network alone (no gate: the baseline, as before issue 14);
- beside the whole measurement (the viewer before this change): result = the later of the two;
- gate, then network, then the whole measurement (the viewer now);
- the gate beside the network, then the whole measurement (the alternative, not taken).

The first result counts when the network and the gate are done; the structure report when the
whole measurement is.

``--agreement SEED ...`` instead renders the cohort plan of each seed (3 patients, ``cirrus``
preset unless ``--preset``, artefacts as drawn) and compares the gate's verdict with ``assess_quality`` on the whole
scan's segmentation, with the CPU time of each.

Run: ``python benchmarks/bench_gate.py [--trials N]`` or ``python benchmarks/bench_gate.py --agreement 1 2 3 4 5``.
Results on synthetic data are for engineering only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timings(trials: int) -> None:
    import torch

    from octviewer.model import LoadedModel, Predictor, build_network, default_metadata
    from octviewer.structure import gate, measure
    from octviewer.synth import EyeAnatomy, synth_scan

    torch.manual_seed(0)
    predictor = Predictor(LoadedModel(build_network("semt", init="random").eval(), default_metadata("semt")),
                          device="cpu")
    volume = synth_scan(EyeAnatomy(), "cirrus", seed=0).volume
    measure(volume)
    predictor.predict(volume)  # first-call costs
    print(f"machine: {os.cpu_count()} cores (usable {len(os.sched_getaffinity(0))}), torch threads "
          f"{torch.get_num_threads()}")

    def alone():
        start = time.perf_counter()
        predictor.predict(volume)
        return time.perf_counter() - start, float("nan")

    def beside_measurement():
        start, done = time.perf_counter(), []
        thread = threading.Thread(target=lambda: (measure(volume), done.append(time.perf_counter() - start)))
        thread.start()
        predictor.predict(volume)
        thread.join()
        return time.perf_counter() - start, done[0]

    def gate_first():
        start = time.perf_counter()
        verdict = gate(volume)[0]
        predictor.predict(volume)
        first = time.perf_counter() - start
        measure(volume, verdict=verdict)
        return first, time.perf_counter() - start

    def gate_beside():
        start, verdict = time.perf_counter(), []
        judge = threading.Thread(target=lambda: verdict.append(gate(volume)[0]))
        judge.start()
        predictor.predict(volume)
        judge.join()
        first = time.perf_counter() - start
        measure(volume, verdict=verdict[0])
        return first, time.perf_counter() - start

    kinds = {"network alone": alone, "beside the measurement": beside_measurement,
             "gate, then network": gate_first, "gate beside network": gate_beside}
    walls, reports, cpus = ({name: [] for name in kinds} for _ in range(3))
    for trial in range(trials):
        name = list(kinds)[trial % len(kinds)]
        load, cpu = os.getloadavg()[0], time.process_time()
        first, report = kinds[name]()
        cpu = time.process_time() - cpu
        walls[name].append(first)
        reports[name].append(report)
        cpus[name].append(cpu)
        print(f"  {name:<24} first result {first:6.2f} s, structure report {report:5.2f} s, CPU {cpu:6.2f} s  "
              f"load {load:.1f}", flush=True)
    for name in kinds:
        print(f"{name:<24} median first result {statistics.median(walls[name]):.2f} s, structure report "
              f"{statistics.median(reports[name]):.2f} s, CPU {statistics.median(cpus[name]):.2f} s "
              f"of {len(walls[name])}")


def _verdicts(job):
    from octviewer.structure import assess_quality, gate, segment
    from octviewer.synth.cohort import synth_scan

    task, preset = job
    volume = synth_scan(task.eye, preset, seed=task.seed, acquisition=task.acquisition).volume
    cpu = time.process_time()
    quick = gate(volume, "own")[0]
    cpu_gate = time.process_time() - cpu
    cpu = time.process_time()
    whole = assess_quality(volume, segment(volume, "own"))
    return quick, whole, cpu_gate, time.process_time() - cpu


def agreement(seeds: list[int], workers: int, preset: str) -> None:
    from octviewer.synth.cohort import _plan

    tasks = [(t, preset) for s in seeds for t in _plan(3, s, missing_vf=1 / 3, glaucoma_share=0.72)]
    with ProcessPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(_verdicts, tasks))
    same = sum(q.ok == w.ok for q, w, *_ in results)
    print(f"SYNTHETIC {preset} cubes, seeds {seeds}: {len(results)}; verdicts agree on {same}; refused by the gate "
          f"{sum(not q.ok for q, *_ in results)}, on the whole scan {sum(not w.ok for _, w, *_ in results)}")
    print(f"CPU per cube, median: gate {statistics.median(r[2] for r in results):.2f} s, whole-scan segmentation "
          f"and check {statistics.median(r[3] for r in results):.2f} s")
    for quick, whole, *_ in results:
        if quick.ok != whole.ok:
            print(f"  differ: gate {quick.summary()} | whole {whole.summary()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=9, help="trials, a quarter of each kind")
    parser.add_argument("--agreement", type=int, nargs="+", metavar="SEED",
                        help="compare the gate's verdict with the whole scan's on these seeds' cohorts instead")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--preset", default="cirrus", help="synthetic cube size for --agreement")
    args = parser.parse_args()
    if args.agreement:
        agreement(args.agreement, args.workers, args.preset)
    else:
        timings(args.trials)


if __name__ == "__main__":
    main()
