"""Training throughput (B-scans/s): the full pipeline from the uint8 cache vs the model alone.

Pipeline: batch gather from the on-disk uint8 cache (memmaps, as ``octviewer-train`` reads it),
host-to-device copy, normalisation and augmentation on the device, forward, loss, backward, step.
Model alone: the same network and optimiser on random tensors already on the device.
Both use channels_last, and bf16 autocast on CUDA. Prints medians over timed windows.
Needs torch and numpy plus octviewer's Qt-free modules; builds its own cache with --volumes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from octviewer.model import Preprocess, build_network, select_device
from trainer.cache import bscan_batch
from trainer.train import _normalise_on_device, loader_workers, prefetch


def make_cache(folder: Path, volumes: int, bscans: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = []
    for v in range(volumes):
        path = folder / f"v{v}.npy"
        np.save(path, rng.integers(0, 255, (bscans, size, size), dtype=np.uint8))
        arrays.append(np.load(path, mmap_mode="r"))
    return arrays


def throughput(step, batch_size, seconds, sync):
    step()
    sync()
    rates, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        t = time.perf_counter()
        for _ in range(3):
            step()
        sync()
        rates.append(3 * batch_size / (time.perf_counter() - t))
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--volumes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--arch", default="semt")
    args = parser.parse_args()
    device = select_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch_size or (128 if cuda else 16)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    pre = Preprocess(size=args.size)
    net = build_network(args.arch, init="random").to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    n_vf = len(getattr(net, "vf_names", ()))

    def train_step(x, y, vf):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = net(x)
        loss = F.binary_cross_entropy_with_logits(out["logit"].float(), y)
        if n_vf:
            loss = loss + F.mse_loss(out["vf"].float(), vf)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    x0 = torch.randn(batch, 3, args.size, args.size, device=device).contiguous(memory_format=torch.channels_last)
    y0 = torch.randint(0, 2, (batch,), device=device).float()
    vf0 = torch.rand(batch, n_vf, device=device)
    alone = throughput(lambda: train_step(x0, y0, vf0), batch, args.seconds, sync)

    with tempfile.TemporaryDirectory() as tmp:
        arrays = make_cache(Path(tmp), args.volumes, 200, args.size)
        rng = np.random.default_rng(0)
        gen = torch.Generator().manual_seed(0)
        labels = rng.integers(0, 2, args.volumes).astype(np.float32)

        def chunks():  # random (volume, B-scan) items, as an epoch's shuffled order
            while True:
                yield np.stack([rng.integers(0, args.volumes, batch), rng.integers(0, 200, batch)], 1)

        def make_batch(items):  # what the trainer's worker threads do
            x = bscan_batch(arrays, items, pre)
            return (x.pin_memory() if cuda else x), torch.from_numpy(labels[items[:, 0]])
        workers = loader_workers()
        batches = prefetch(make_batch, chunks(), workers, 2 * workers)

        def pipeline_step():
            x, y = next(batches)
            x = _normalise_on_device(pre, x, device, True, gen)
            train_step(x, y.to(device, non_blocking=True), vf0)
        piped = throughput(pipeline_step, batch, args.seconds, sync)
    print(f"device {device}, torch {torch.__version__}, {args.arch}, batch {batch}, {args.size}x{args.size}, "
          f"bf16 {cuda}, channels_last")
    print(f"model alone on ready tensors: median {alone:8.1f} B-scans/s")
    share = 100 * piped / alone
    print(f"full pipeline from the cache: median {piped:8.1f} B-scans/s  = {share:.0f}% of the model alone"
          " (target >= 80% on a GPU)")


if __name__ == "__main__":
    main()
