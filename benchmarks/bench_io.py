"""Reading a Cirrus-sized (200 x 1024 x 200) DICOM OPT: ``load_volume`` against bare pydicom.

Baseline: ``pydicom.dcmread(path).pixel_array``. Prints medians of repeats and the peak memory
traced during each read, as a multiple of the pixel data size. Run: ``python benchmarks/bench_io.py``.
"""

from __future__ import annotations

import argparse
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
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
            t_bare, t_ours = timed(bare, args.repeats), timed(ours, args.repeats)
            m_bare, m_ours = peak_bytes(bare), peak_bytes(ours)
            label = compression or "uncompressed"
            print(f"{label:>12}: file {path.stat().st_size / 1e6:.1f} MB, pixels {nbytes / 1e6:.1f} MB")
            print(f"{'':>12}  pydicom pixel_array  median {t_bare * 1e3:8.1f} ms  peak {m_bare / nbytes:.2f}x pixels")
            print(f"{'':>12}  load_volume          median {t_ours * 1e3:8.1f} ms  peak {m_ours / nbytes:.2f}x pixels"
                  f"  ratio {t_ours / t_bare:.2f}x (target <= 1.5x, peak < 3x)")


if __name__ == "__main__":
    main()
