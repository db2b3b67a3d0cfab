"""Reading a Cirrus-sized (200 x 1024 x 200) DICOM OPT: ``load_volume`` against bare pydicom,
and progressive reading (first B-scan, then the whole volume) sequential against parallel.

Baseline: ``pydicom.dcmread(path).pixel_array`` (``load_volume`` decodes JPEG 2000 in parallel).
Prints medians of repeats and the peak memory traced during each read, as a multiple of the
pixel data size. Then, for each file, the time to the first decoded B-scan (the middle one, what
the viewer shows) and to the whole volume: sequential = ``open_dicom`` + one frame / ``decode_all``
in one thread; parallel = ``open_volume_progressive`` (return / ``wait()``) with its decoding
processes already started (the viewer keeps them between volumes; the cold first call is printed
too). Sequential and parallel runs alternate, so a busy machine slows both alike. The CPU
critical path (parent CPU + the busiest decoding process's CPU) is what the wall time would be
on idle cores. Run: ``python benchmarks/bench_io.py [--repeats N] [--workers K]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import pydicom

from octviewer import load_volume, save_volume
from octviewer.synth import EyeAnatomy, synth_scan


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_bytes(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def progressive_figures(path, repeats, workers):
    """Medians of (first frame, whole volume) for sequential and parallel reading, alternating runs."""
    from octviewer.io import open_volume_progressive
    from octviewer.io.decoders import POOL
    from octviewer.io.dicom import open_dicom

    def pool_cpu():
        """CPU seconds used so far by each decoding process (Linux /proc; empty elsewhere)."""
        out = []
        for pid in POOL.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
            except (OSError, IndexError, ValueError):
                pass
        return out

    def sequential():
        c = time.process_time()
        t = time.perf_counter()
        frames = open_dicom(Path(path))
        if frames.frames is not None and frames.jpeg2000:
            frames.decode_frame(frames.n // 2)
        else:
            frames.uncompressed()[frames.n // 2].copy()
        first = time.perf_counter() - t
        t = time.perf_counter()
        frames = open_dicom(Path(path))
        frames.volume(frames.decode_all())  # every frame in this thread
        return first, time.perf_counter() - t, time.process_time() - c

    def parallel():
        c, before = time.process_time(), pool_cpu()
        t = time.perf_counter()
        progressive = open_volume_progressive(path, workers=workers)
        first = time.perf_counter() - t
        progressive.wait()
        wall = time.perf_counter() - t
        after = pool_cpu()
        spent = [b - a for a, b in zip(before, after)] if len(before) == len(after) else []
        # the decoding is split across processes: on free cores the wall time would be the
        # busiest process's CPU time plus the parent's
        return first, wall, time.process_time() - c + (max(spent) if spent else 0.0)

    POOL.shutdown()
    cold = parallel()
    POOL.warm(workers)
    seq, par = [], []
    for _ in range(repeats):
        seq.append(sequential())
        par.append(parallel())
    med = [statistics.median(x) for x in zip(*seq)], [statistics.median(x) for x in zip(*par)]
    peak = peak_bytes(lambda: open_volume_progressive(path, workers=workers).wait())
    return med[0], med[1], cold, peak


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core)")
    parser.add_argument("--skip-baseline", action="store_true", help="only the progressive figures")
    args = parser.parse_args()
    from octviewer.io.decoders import default_workers

    workers = args.workers or default_workers()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; decoding processes: {workers}")
    with tempfile.TemporaryDirectory() as tmp:
        for compression in (None, "jpeg2000"):
            path = Path(tmp) / f"cirrus_{compression}.dcm"
            volume = synth_scan(EyeAnatomy(), "cirrus", seed=0).volume
            save_volume(volume, path, compression=compression)
            nbytes = volume.data.nbytes

            def bare(path=path):
                return pydicom.dcmread(path).pixel_array

            def ours(path=path):
                return load_volume(path).data

            bare(), ours()  # warm the page cache and imports
            label = compression or "uncompressed"
            print(f"{label:>12}: file {path.stat().st_size / 1e6:.1f} MB, pixels {nbytes / 1e6:.1f} MB")
            if not args.skip_baseline:
                t_bare, t_ours = timed(bare, args.repeats), timed(ours, args.repeats)
                m_bare, m_ours = peak_bytes(bare), peak_bytes(ours)
                print(f"{'':>12}  pydicom pixel_array  median {t_bare * 1e3:8.1f} ms  peak {m_bare / nbytes:.2f}x")
                print(f"{'':>12}  load_volume          median {t_ours * 1e3:8.1f} ms  peak {m_ours / nbytes:.2f}x"
                      f"  ratio {t_ours / t_bare:.2f}x (target <= 1.5x, peak < 3x)")
            (s_first, s_all, s_cpu), (p_first, p_all, p_cpu), cold, peak = progressive_figures(
                path, args.repeats, workers)
            print(f"{'':>12}  sequential  first B-scan {s_first * 1e3:8.1f} ms  whole volume {s_all * 1e3:8.1f} ms"
                  f"  (CPU {s_cpu * 1e3:.0f} ms)")
            print(f"{'':>12}  parallel    first B-scan {p_first * 1e3:8.1f} ms  whole volume {p_all * 1e3:8.1f} ms"
                  f"  (critical-path CPU {p_cpu * 1e3:.0f} ms, peak {peak / nbytes:.2f}x pixels in this process)")
            print(f"{'':>12}  speed-up whole volume: wall {s_all / p_all:.2f}x, CPU critical path "
                  f"{s_cpu / max(p_cpu, 1e-9):.2f}x (target >= 1.8x on 2 cores for JPEG 2000; the wall figure "
                  "needs idle cores)")
            print(f"{'':>12}  parallel, cold decoding processes: first {cold[0] * 1e3:.1f} ms, "
                  f"whole {cold[1] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
