"""Do the structure measurement and the network compete for the CPU? (the quality gate, issue 16)

The viewer runs the network beside the scan's structure measurement (``GatedPredictor``); before,
it waited for the measurement. On a Cirrus-sized synthetic cube (200 x 1024 x 200) this times
``measure`` then ``Predictor.predict`` (random SEMT, CPU; the old order) against both at once
(the measurement on a thread of its own, as in the viewer), and both at once with torch held to
one thread (does the network's second thread only fight the measurement for the second core?),
in rotation, with the 1-min load average before each trial and the CPU time the process used (on a shared machine
the wall time swings with the other jobs; CPU time shows work added by the two competing, e.g.
torch's threads spinning while one of them waits for a core).
Run: ``python benchmarks/bench_gate.py [--trials N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8, help="trials, a third of each kind")
    args = parser.parse_args()
    import torch

    from octviewer.model import LoadedModel, Predictor, build_network, default_metadata
    from octviewer.structure import measure
    from octviewer.synth import EyeAnatomy, synth_scan

    torch.manual_seed(0)
    predictor = Predictor(LoadedModel(build_network("semt", init="random").eval(), default_metadata("semt")),
                          device="cpu")
    volume = synth_scan(EyeAnatomy(), "cirrus", seed=0).volume
    measure(volume)
    predictor.predict(volume)  # first-call costs
    print(f"machine: {os.cpu_count()} cores (usable {len(os.sched_getaffinity(0))}), torch threads "
          f"{torch.get_num_threads()}")

    def one_after_the_other():
        start = time.perf_counter()
        measure(volume)
        measured = time.perf_counter() - start
        predictor.predict(volume)
        return time.perf_counter() - start, measured

    def side_by_side():
        start, measured = time.perf_counter(), []
        thread = threading.Thread(target=lambda: (measure(volume), measured.append(time.perf_counter() - start)))
        thread.start()
        predictor.predict(volume)
        thread.join()
        return time.perf_counter() - start, measured[0]

    def side_by_side_one_thread():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return side_by_side()
        finally:
            torch.set_num_threads(threads)

    kinds = {"measure, then predict": one_after_the_other, "both at once": side_by_side,
             "both, torch 1 thread": side_by_side_one_thread}
    walls, cpus = {name: [] for name in kinds}, {name: [] for name in kinds}
    for trial in range(args.trials):
        name = list(kinds)[trial % len(kinds)]  # in rotation: drift of the shared machine hits all alike
        load, cpu = os.getloadavg()[0], time.process_time()
        wall, measured = kinds[name]()
        cpu = time.process_time() - cpu
        walls[name].append(wall)
        cpus[name].append(cpu)
        print(f"  {name:<22} {wall:6.2f} s, CPU {cpu:6.2f} s (measurement done at {measured:5.2f} s)  "
              f"load {load:.1f}", flush=True)
    for name in kinds:
        print(f"{name:<22} median {statistics.median(walls[name]):.2f} s, CPU {statistics.median(cpus[name]):.2f} s "
              f"of {len(walls[name])}")


if __name__ == "__main__":
    main()
