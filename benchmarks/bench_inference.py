"""Whole-volume inference on a Cirrus-sized synthetic volume (200 B-scans), three ways, one run.

(a) the Predictor: OctVolume in memory -> Prediction with probabilities, VF and all CAMs on the host;
(b) research-code style: batched eager fp32 torchvision forward for the probabilities, then the
    ``grad-cam`` library's GradCAM for the maps (needs ``pip install grad-cam``);
(c) the floor: the bare network on ready, normalised tensors (channels_last).
Also: time to the first requested B-scan's probability and CAM, and peak memory (ru_maxrss).
Imports only torch, numpy and octviewer's Qt-free layers, so it runs on a bare GPU server.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from octviewer.model import LoadedModel, Predictor, Preprocess, build_network, default_metadata
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
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--arch", default="semt")
    parser.add_argument("--skip-gradcam", action="store_true")
    parser.add_argument("--predictor-only", action="store_true",
                        help="run only the Predictor, so that peak RSS is the Predictor's own")
    args = parser.parse_args()
    volume = synth_scan(EyeAnatomy(), "cirrus", seed=0).volume
    torch.manual_seed(0)
    model = LoadedModel(build_network(args.arch, init="random").eval(), default_metadata(args.arch))
    predictor = Predictor(model, device=args.device)
    device = predictor.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch "
          f"{predictor.batch_size}, bf16 {predictor.bf16}, volume {volume.shape}")

    predictor.predict(volume)  # warm-up
    t_first = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        first = {}

        def on_batch(b, t0=t0, first=first):
            if "t" not in first:
                sync()
                first["t"] = time.perf_counter() - t0
        predictor.predict(volume, first=100, on_batch=on_batch)
        t_first.append(first["t"])
    if args.predictor_only:
        t_pred = median_time(lambda: predictor.predict(volume), args.repeats, sync)
        print(f"(a) Predictor, whole volume: median {t_pred * 1e3:9.1f} ms; first B-scan "
              f"{statistics.median(t_first) * 1e3:.1f} ms; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (process total)")
        return

    # (c) the bare network on ready tensors
    pre = Preprocess()
    display = pre.display_tensor(volume, device)
    lo, hi = pre.intensity_range(display)
    ready = pre.bscan_inputs(display, torch.arange(volume.n_bscans, device=device), lo, hi)
    net = model.network

    def bare():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=predictor.bf16):
            for i in range(0, len(ready), predictor.batch_size):
                net(ready[i:i + predictor.batch_size])["logit"].float().cpu()
    bare()
    # (a) and (c) alternate, so drift on a shared machine affects both alike
    pairs = [(median_time(lambda: predictor.predict(volume), 1, sync), median_time(bare, 1, sync))
             for _ in range(args.repeats)]
    t_pred = statistics.median(p for p, _ in pairs)
    t_bare = statistics.median(b for _, b in pairs)
    ratio = statistics.median(p / b for p, b in pairs)

    # CAM cost: the classifier weights applied to the maps the network already pooled
    from octviewer.model.networks import _cam
    net_mt = model.network
    with torch.inference_mode():
        joints = []
        for i in range(0, len(ready), predictor.batch_size):
            maps = net_mt.backbone(ready[i:i + predictor.batch_size])
            if hasattr(net_mt, "regressors"):
                maps = torch.cat([maps] + [r(maps)[0] for r in net_mt.regressors], dim=1)
            joints.append(maps)

        def cam_only():
            for j in joints:
                _cam(j, net_mt.fc.weight[0]).cpu()
        cam_only()
        t_cam = median_time(cam_only, args.repeats, sync)

    # (b) research-code style: plain fp32 torchvision ResNet18 + grad-cam's GradCAM
    t_naive = None
    if not args.skip_gradcam:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        from torchvision.models import resnet18

        tv = resnet18(num_classes=1).eval().to(device)
        cpu_volume = torch.from_numpy(np.ascontiguousarray(volume.display()))

        def naive():
            x = pre.bscan_inputs(cpu_volume, torch.arange(volume.n_bscans), lo, hi).contiguous().to(device)
            with torch.no_grad():
                probs = [torch.sigmoid(tv(x[i:i + predictor.batch_size])).cpu()
                         for i in range(0, len(x), predictor.batch_size)]
            with GradCAM(model=tv, target_layers=[tv.layer4]) as cam:
                maps = [cam(input_tensor=x[i:i + predictor.batch_size],
                            targets=[ClassifierOutputTarget(0)] * len(x[i:i + predictor.batch_size]))
                        for i in range(0, len(x), predictor.batch_size)]
            return probs, maps
        naive()
        t_naive = median_time(naive, max(1, args.repeats - 1), sync)

    n = volume.n_bscans
    print(f"(a) Predictor, whole volume:        median {t_pred * 1e3:9.1f} ms  ({n / t_pred:6.1f} B-scans/s)")
    print(f"    first requested B-scan + CAM:   median {statistics.median(t_first) * 1e3:9.1f} ms")
    if t_naive is not None:
        print(f"(b) torchvision fp32 + grad-cam:    median {t_naive * 1e3:9.1f} ms  ({n / t_naive:6.1f} B-scans/s)"
              f"  -> Predictor is {t_naive / t_pred:.2f}x faster")
    print(f"(c) bare network, ready tensors:    median {t_bare * 1e3:9.1f} ms  ({n / t_bare:6.1f} B-scans/s)"
          f"  -> Predictor / bare = {ratio:.3f} (median of paired runs)")
    print(f"CAM from kept feature maps:         median {t_cam * 1e3:9.2f} ms  = {100 * t_cam / t_pred:.2f}% of (a)"
          " (target < 10%)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
