"""Whole-volume inference on a Cirrus-sized synthetic volume (200 B-scans), with the split of where the time goes.

(a) the Predictor: OctVolume in memory -> Prediction with probabilities, VF and all CAMs on the host;
(c) the floor: the bare network (the Predictor's own copy: channels_last, bf16 on CUDA and on CPUs
    that do bf16 in hardware, ``--precision``; bench_cpu_roofline.py compares the two) on ready,
    normalised tensors already on the device, outputs left there; on CUDA also (c') the same
    through the Predictor's CUDA graphs, and (a') the Predictor with graphs off (same-run baseline);
(b) optional research-code style: eager fp32 torchvision forward, then the ``grad-cam`` library.
Split of (a), each step timed alone with its own synchronisation: host-to-device copy of the raw
uint8 cube (pinned staging and plain pageable), preprocessing on the device (resize + assemble),
network, CAM (classifier weights on the kept maps) and the copy of all outputs back.
Also: time to the first requested B-scan's probability and CAM; peak memory (ru_maxrss).
Imports only torch, numpy and octviewer's Qt-free layers, so it runs on a bare GPU server.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from octviewer.model import LoadedModel, Predictor, build_network, default_metadata
from octviewer.synth import EyeAnatomy, synth_scan


def median_time(fn, repeats, sync):
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--arch", default="semt")
    parser.add_argument("--preset", default="cirrus", help="synthetic volume size (tiny for a quick check)")
    parser.add_argument("--size", type=int, default=224, help="network input size")
    parser.add_argument("--gradcam", action="store_true", help="also time torchvision fp32 + grad-cam (slow)")
    parser.add_argument("--graphs", choices=("on", "off"), default="on",
                        help="CUDA graphs in the Predictor (with --predictor-only: the first analysis of each, "
                             "one fresh process per setting)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="the network's arithmetic (auto: bf16 where the hardware does it)")
    parser.add_argument("--predictor-only", action="store_true",
                        help="run only the Predictor, so that peak RSS is the Predictor's own")
    args = parser.parse_args()
    volume = synth_scan(EyeAnatomy(), args.preset, seed=0).volume
    torch.manual_seed(0)
    from octviewer.model import Preprocess
    meta = default_metadata(args.arch, preprocess=None if args.size == 224 or args.arch in ("cnn3d", "resnet3d")
                            else Preprocess(size=args.size))
    model = LoadedModel(build_network(args.arch, init="random").eval(), meta)
    if args.device != "cpu" and torch.cuda.is_available():
        torch.zeros(1, device=args.device if args.device != "auto" else "cuda")  # CUDA's own start-up, not timed
    t_new = time.perf_counter()
    predictor = Predictor(model, device=args.device, graphs=None if args.graphs == "on" else False,
                          precision=args.precision)
    device = predictor.device
    predictor.predict(volume)  # the first analysis on a new Predictor: cuDNN autotuning, graph capture
    t_new = time.perf_counter() - t_new
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    n = volume.n_bscans
    print(f"device {torch.cuda.get_device_name(device) if cuda else device}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, {args.arch}, batch {predictor.batch_size}, bf16 {predictor.bf16}, "
          f"staging {predictor.staging}, volume {volume.shape} {volume.data.dtype}")

    predictor.predict(volume, first=n // 2, on_batch=lambda b: None)
    t_first = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        first = {}

        def on_batch(b, t0=t0, first=first):
            if "t" not in first:
                first["t"] = time.perf_counter() - t0  # results are on the host when on_batch runs
        predictor.predict(volume, first=n // 2, on_batch=on_batch)
        t_first.append(first["t"])
    if args.predictor_only:
        t_pred = median_time(lambda: predictor.predict(volume), args.repeats, sync)
        print(f"(a) Predictor (graphs {args.graphs}), first analysis after loading {t_new * 1e3:.0f} ms, "
              f"whole volume: median {t_pred * 1e3:9.1f} ms; first B-scan "
              f"{statistics.median(t_first) * 1e3:.1f} ms; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (process total)")
        return

    pre = predictor.model.preprocess
    net = predictor.network
    bs = predictor.batch_size
    if pre.is_3d:
        raise SystemExit("the split below is for the 2D networks; use --predictor-only for 3D")

    # -- the split ---------------------------------------------------------------------------
    def copy_pinned():
        return predictor.to_device(volume)

    staging = predictor.staging
    predictor.staging = "none"
    t_copy_pageable = median_time(lambda: predictor.to_device(volume), args.repeats, sync)
    predictor.staging = staging
    t_copy = median_time(copy_pinned, args.repeats, sync)
    display = copy_pinned()
    sync()
    with torch.inference_mode():
        lo, hi = pre.intensity_range_tensor(display)
        rows = pre.neighbours(torch.arange(n, device=device), n)

        def preprocess():
            resized = torch.empty((n, pre.size, pre.size), dtype=torch.uint8, device=device)
            for i in range(0, n, bs):  # as the Predictor does: each batch's new B-scans
                resized[i:min(n, i + bs + 1)] = pre.resize_bscans(display[i:min(n, i + bs + 1)], lo, hi)
            return [pre.assemble(resized, rows[i:i + bs]) for i in range(0, n, bs)]
        t_pre = median_time(preprocess, args.repeats, sync)
        ready = preprocess()

        def bare():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=predictor.bf16):
                return [net(x) for x in ready]
        outs = bare()
        # (a) and (c) alternate, so drift on a shared machine affects both alike
        pairs = [(median_time(lambda: predictor.predict(volume), 1, sync), median_time(bare, 1, sync))
                 for _ in range(args.repeats)]
        eager = graphed = None
        if cuda:
            t_eager_new = time.perf_counter()
            eager = Predictor(model, device=args.device, graphs=False, precision=args.precision)
            p_eager = eager.predict(volume)
            t_eager_new = time.perf_counter() - t_eager_new
            p_graph = predictor.predict(volume)
            diff_p = float(abs(p_graph.bscan_probability - p_eager.bscan_probability).max())
            diff_cam = float(abs(p_graph.cam - p_eager.cam).max())
            t_eager = median_time(lambda: eager.predict(volume), args.repeats, sync)

            def graphed():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=predictor.bf16):
                    return [predictor._network(x) for x in ready]
            graphed()
            t_graphed = median_time(graphed, args.repeats, sync)


        # CAM: the classifier weights applied to maps the network keeps (part of (c) already)
        from octviewer.model.networks import _cam
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=predictor.bf16):
            joints = []
            for x in ready:
                maps = net.backbone(x)
                if getattr(net, "heads", None) is not None:
                    maps = torch.cat([maps, net.heads(maps)[0]], dim=1)
                joints.append(maps)
        t_cam = median_time(lambda: [_cam(j, net.fc) for j in joints], args.repeats, sync)
        t_back = median_time(lambda: [(o["logit"].float().cpu(), o["vf"].float().cpu(), o["cam"].float().cpu())
                                      for o in outs], args.repeats, sync)
    t_pred = statistics.median(p for p, _ in pairs)
    t_bare = statistics.median(b for _, b in pairs)
    ratio = statistics.median(p / b for p, b in pairs)

    t_naive = None
    if args.gradcam:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        from torchvision.models import resnet18

        tv = resnet18(num_classes=1).eval().to(device)
        x_all = torch.cat(ready).float().contiguous()

        def naive():
            with torch.no_grad():
                probs = [torch.sigmoid(tv(x_all[i:i + bs])).cpu() for i in range(0, n, bs)]
            with GradCAM(model=tv, target_layers=[tv.layer4]) as cam:
                maps = [cam(input_tensor=x_all[i:i + bs], targets=[ClassifierOutputTarget(0)] * len(x_all[i:i + bs]))
                        for i in range(0, n, bs)]
            return probs, maps
        naive()
        t_naive = median_time(naive, max(1, args.repeats - 2), sync)

    ms = 1e3
    print(f"(a) Predictor, whole volume:        median {t_pred * ms:8.2f} ms  ({n / t_pred:7.1f} B-scans/s)")
    print(f"    first requested B-scan + CAM:   median {statistics.median(t_first) * ms:8.2f} ms")
    print(f"(c) bare network, ready tensors:    median {t_bare * ms:8.2f} ms  ({n / t_bare:7.1f} B-scans/s)")
    print(f"    Predictor / bare = {ratio:.3f} (median of paired runs; target <= 1.25 on a GPU)")
    if eager is not None:
        print(f"(c') bare network through the CUDA graphs: median {t_graphed * ms:8.2f} ms -> Predictor / (c') = "
              f"{t_pred / t_graphed:.3f}")
        print(f"(a') Predictor with graphs off:     median {t_eager * ms:8.2f} ms  -> (a')/(c) = "
              f"{t_eager / t_bare:.3f}")
        print(f"    graphs vs eager: max |d probability| {diff_p:.2e}, max |d CAM| {diff_cam:.2e} (logit units)")
        print(f"    first analysis on a new Predictor: {t_new * ms:.0f} ms with graph capture, "
              f"{t_eager_new * ms:.0f} ms eager (cuDNN autotuning in both; the graphed one came first)")
    if t_naive is not None:
        print(f"(b) torchvision fp32 + grad-cam:    median {t_naive * ms:8.2f} ms  -> Predictor is "
              f"{t_naive / t_pred:.1f}x faster")
    print("split of (a), each step alone:")
    print(f"    host->device copy, pinned:      {t_copy * ms:8.2f} ms   (pageable: {t_copy_pageable * ms:.2f} ms)")
    print(f"    preprocess on device:           {t_pre * ms:8.2f} ms   (resize + assemble, {-(-n // bs)} batches)")
    print(f"    network incl. CAM:              {t_bare * ms:8.2f} ms")
    print(f"      of which CAM (einsum):        {t_cam * ms:8.2f} ms   = {100 * t_cam / t_pred:.1f}% of (a)")
    print(f"    outputs device->host:           {t_back * ms:8.2f} ms")
    rest = t_pred - (t_copy + t_pre + t_bare + t_back)
    print(f"    sum of steps {1e3 * (t_copy + t_pre + t_bare + t_back):.2f} ms; (a) - sum = {rest * ms:.2f} ms "
          "(negative: steps overlap in (a))")
    if cuda:
        resize_candidates(pre, display, lo, hi, args.repeats, sync)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def resize_candidates(pre, display, lo, hi, repeats, sync):
    """Where the preprocessing time goes, and one candidate: the antialiased resize is linear and
    separable, so it equals two products with fixed weight matrices (made once by resizing an
    identity); in fp16 with fp32 accumulation it runs on the tensor cores. Printed, not adopted."""
    import torch.nn.functional as F
    n, h, w = display.shape
    s = pre.size
    with torch.inference_mode():
        def weights(length):  # (length, S): one-hot rows resized along their width (the same 1-D filter per axis)
            eye = torch.eye(length, device=display.device)[:, None, None, :]
            return F.interpolate(eye, size=(1, s), mode="bilinear", antialias=True, align_corners=False)[:, 0, 0, :]
        ax16, ayt16 = weights(w).half(), weights(h).t().contiguous().half()  # (W, S), (S, H)

        def by_matmul():
            x = display.half()  # uint8 values are exact in fp16
            y = torch.matmul(ayt16, torch.matmul(x, ax16))  # (S, H) @ (n, H, W) @ (W, S)
            return ((y.float() - lo) * (255.0 / (hi - lo))).clamp_(0, 255).round_().to(torch.uint8)

        def by_interpolate():
            return pre.resize_bscans(display, lo, hi)
        rows = pre.neighbours(torch.arange(n, device=display.device), n)
        resized = by_interpolate()
        t_int = median_time(by_interpolate, repeats, sync)
        t_mm = median_time(by_matmul, repeats, sync)
        t_asm = median_time(lambda: pre.assemble(resized, rows), repeats, sync)
        diff = (by_matmul().int() - resized.int()).abs()
    print("preprocessing, the whole volume in one call:")
    print(f"    resize, F.interpolate (antialias, fp32): {t_int * 1e3:7.2f} ms")
    print(f"    resize, separable matmul (fp16 weights): {t_mm * 1e3:7.2f} ms   max diff {int(diff.max())} grey "
          f"levels, {100 * float((diff > 0).float().mean()):.3f}% of pixels differ")
    print(f"    assemble (gather neighbours, normalise): {t_asm * 1e3:7.2f} ms")


if __name__ == "__main__":
    main()
