"""CPU roofline for one Cirrus-sized cube, fp32 against bf16, and whether bf16 can be trusted.

Default run (``python benchmarks/bench_cpu_roofline.py``):
- the network's FLOPs per cube, counted exactly (``torch.utils.flop_counter`` on one B-scan input,
  times the cube's B-scans; one multiply-add = 2 FLOPs);
- this CPU's peak per precision: a large matrix product in fp32, bf16 (oneDNN) and int8
  (``torch._int_mm``, VNNI), best of several runs, at the process's thread count;
- the bare network on ready inputs for the whole cube, and the Predictor on the Cirrus-sized
  synthetic volume, fp32 and bf16 **alternating** (paired runs; medians), so a shared machine's
  drift hits both alike; the share of the roofline each reaches.

``--agreement MANIFEST`` (a held-out synthetic cohort, ``octviewer-synth``): the same model file in
exact fp32 and in bf16 on every volume of the cohort: decisions identical, |delta P|, AUC and ECE
with their patient-cluster bootstrap intervals, and the correlation of the CAMs.

Prints ``uptime`` before and after: timings on a shared machine mean little without the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from octviewer.model import LoadedModel, Predictor, build_network, default_metadata, load_model


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n product in ``dtype``: best of ``repeats`` (the peak, not the typical)."""
    if dtype == torch.int8:
        a = torch.randint(-64, 64, (n, n), dtype=torch.int8)
        b = torch.randint(-64, 64, (n, n), dtype=torch.int8)

        def product():
            return torch._int_mm(a, b)
    else:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)

        def product():
            return a @ b
    product()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def conv_peak(dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of a 1 x 1 convolution (512 -> 512 channels, 16 x 56 x 56, channels_last) through
    oneDNN, the library the network's convolutions use. On AMD CPUs torch's fp32 matrix product goes
    through MKL, which may not use AVX-512 there, so the product alone can understate fp32's peak."""
    x = torch.randn(16, 512, 56, 56).to(dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(512, 512, 1, 1).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.nn.functional.conv2d(x, w)
        best = min(timed(lambda: torch.nn.functional.conv2d(x, w)) for _ in range(repeats))
    return 2 * 16 * 56 * 56 * 512 * 512 / best / 1e9


def flops_per_bscan(network, size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network(torch.randn(1, 3, size, size))
    return counter.get_total_flops()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def roofline(args) -> None:
    from octviewer.synth import EyeAnatomy, synth_scan

    if args.model:
        model = load_model(args.model, "cpu")
    else:
        torch.manual_seed(0)
        from octviewer.model import Preprocess
        meta = default_metadata("semt", preprocess=None if args.size == 224 else Preprocess(size=args.size))
        model = LoadedModel(build_network("semt", init="random").eval(), meta)
    size = model.preprocess.size
    volume = synth_scan(EyeAnatomy(), "cirrus", seed=0).volume
    n = volume.n_bscans
    flops = flops_per_bscan(model.network.eval(), size) * n
    print(f"{uptime()}\ntorch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; model {model.name} at {size} px; cube {volume.shape}")
    print(f"network per cube: {flops / 1e9:.1f} GFLOP ({flops / 2e9:.1f} GMAC, {n} B-scans)")
    peaks = {name: matmul_peak(dtype, args.matmul) for name, dtype in
             (("fp32", torch.float32), ("bf16", torch.bfloat16), ("int8", torch.int8))}
    for name, peak in peaks.items():
        print(f"peak {name:4s} (matmul {args.matmul}^3, best of 5): {peak:7.0f} GFLOP/s -> roofline "
              f"{flops / peak / 1e9:6.2f} s per cube")
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peak = conv_peak(dtype)
        print(f"peak {name:4s} (1x1 convolution, oneDNN, best of 5): {peak:7.0f} GFLOP/s")
        peaks[name] = max(peaks[name], peak)  # the roofline uses the higher of the two probes

    predictors = {p: Predictor(model, device="cpu", precision=p, batch_size=args.batch) for p in ("fp32", "bf16")}
    pre = model.preprocess
    with torch.inference_mode():
        display = torch.from_numpy(np.ascontiguousarray(volume.display()))
        lo, hi = pre.intensity_range(display)
        resized = pre.resize_bscans(display, lo, hi)
        rows = pre.neighbours(torch.arange(n), n)
        ready = [pre.assemble(resized, rows[i:i + args.batch]) for i in range(0, n, args.batch)]

    def bare(p):
        return lambda: [predictors[p]._forward(x) for x in ready]
    for p in predictors:  # warm-up: oneDNN picks and caches its kernels and the bf16 weights
        bare(p)()
        predictors[p].predict(volume)
    times = {(what, p): [] for what in ("bare", "predictor") for p in predictors}
    for _ in range(args.repeats):
        for p in predictors:
            times[("bare", p)].append(timed(bare(p)))
            times[("predictor", p)].append(timed(lambda p=p: predictors[p].predict(volume)))
    print(f"batch {args.batch}, {args.repeats} alternating repeats, medians:")
    for what in ("bare", "predictor"):
        f32, b16 = times[(what, "fp32")], times[(what, "bf16")]
        ratio = statistics.median(a / b for a, b in zip(f32, b16))
        label = "bare network, ready inputs" if what == "bare" else "Predictor, volume -> Prediction"
        print(f"  {label:34s} fp32 {statistics.median(f32):6.2f} s ({flops / statistics.median(f32) / 1e9:5.0f} "
              f"GFLOP/s, {100 * flops / statistics.median(f32) / 1e9 / peaks['fp32']:3.0f}% of fp32 peak) | bf16 "
              f"{statistics.median(b16):6.2f} s ({flops / statistics.median(b16) / 1e9:5.0f} GFLOP/s, "
              f"{100 * flops / statistics.median(b16) / 1e9 / peaks['bf16']:3.0f}% of bf16 peak) | fp32/bf16 "
              f"{ratio:.2f}x (median of pairs)")
    print(uptime())


def agreement(args) -> None:
    """fp32 against bf16 on a held-out cohort: what the issue asks of a faster path before it is the default."""
    from octviewer.io import load_volume
    from trainer.evaluate import cluster_resamples, expected_calibration_error, percentile_ci, roc_auc
    from trainer.manifest import read_manifest

    records, _skipped = read_manifest(args.agreement)
    if args.limit:
        records = records[:args.limit]
    model = load_model(args.model, "cpu")
    predictors = {p: Predictor(model, device="cpu", precision=p) for p in ("fp32", "bf16")}
    threshold = float(model.meta.threshold)
    probs = {p: [] for p in predictors}
    cam_r, cam_diff, seconds = [], [], {p: 0.0 for p in predictors}
    print(f"{uptime()}\nmodel {model.name}, {len(records)} volumes of {args.agreement}")
    for k, rec in enumerate(records, 1):
        volume = load_volume(rec.path)
        out = {}
        for p, predictor in predictors.items():
            t = time.perf_counter()
            out[p] = predictor.predict(volume)
            seconds[p] += time.perf_counter() - t
            probs[p].append(out[p].probability)
        a, b = out["fp32"].cam.ravel().astype(np.float64), out["bf16"].cam.ravel().astype(np.float64)
        cam_r.append(float(np.corrcoef(a, b)[0, 1]))
        cam_diff.append(float(np.abs(a - b).max()))
        if k % 20 == 0:  # a running tally, so a run stopped part way still says something
            q32, q16 = np.array(probs["fp32"]), np.array(probs["bf16"])
            print(f"  {k} volumes: {int(np.sum((q32 >= threshold) != (q16 >= threshold)))} decisions differ, "
                  f"median |delta P| {np.median(np.abs(q32 - q16)):.5f}, min CAM r {min(cam_r):.5f}", flush=True)
    labels = np.array([r.label for r in records])
    groups = np.array([r.patient_id for r in records])
    p32, p16 = np.array(probs["fp32"]), np.array(probs["bf16"])
    same = np.mean((p32 >= threshold) == (p16 >= threshold))
    delta = np.abs(p32 - p16)
    print(f"decisions identical: {100 * same:.2f}% of {len(records)} volumes (target >= 99.5%); "
          f"{int(np.sum((p32 >= threshold) != (p16 >= threshold)))} differ")
    print(f"|delta P|: median {np.median(delta):.5f}, 95th percentile {np.percentile(delta, 95):.5f}, "
          f"max {delta.max():.5f} (target median <= 0.01)")
    print(f"CAM correlation per volume: min {min(cam_r):.5f}, median {np.median(cam_r):.5f} (target >= 0.99); "
          f"largest cell difference {max(cam_diff):.4f} logit")
    boots = list(cluster_resamples(groups, args.boot, seed=0))
    for name, fn in (("AUC", roc_auc), ("ECE", lambda y, q: expected_calibration_error(y, q)[0])):
        v32, v16 = fn(labels, p32), fn(labels, p16)
        ci = percentile_ci([fn(labels[i], p32[i]) for i in boots if len(np.unique(labels[i])) == 2])
        inside = ci[0] <= v16 <= ci[1]
        print(f"{name}: fp32 {v32:.4f} [95% CI {ci[0]:.4f}, {ci[1]:.4f}], bf16 {v16:.4f} -> "
              f"{'within' if inside else 'OUTSIDE'} the fp32 interval")
    print(f"network time over the cohort: fp32 {seconds['fp32']:.1f} s, bf16 {seconds['bf16']:.1f} s "
          f"(interleaved per volume; {seconds['fp32'] / seconds['bf16']:.2f}x)\n{uptime()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8, help="B-scans per network call (the Predictor's CPU default)")
    parser.add_argument("--size", type=int, default=224, help="input size of the random SEMT (without --model)")
    parser.add_argument("--model", type=Path, default=None, help="a model file instead of a random SEMT")
    parser.add_argument("--matmul", type=int, default=2048, help="matrix size of the peak microbenchmark")
    parser.add_argument("--agreement", type=Path, default=None, metavar="MANIFEST",
                        help="check fp32 against bf16 on this cohort's volumes (needs --model)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N volumes of the cohort")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples for the intervals")
    args = parser.parse_args()
    if args.agreement:
        if args.model is None:
            from octviewer.resources import DEMO_MODEL
            args.model = DEMO_MODEL
        agreement(args)
    else:
        roofline(args)


if __name__ == "__main__":
    main()
