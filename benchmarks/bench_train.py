"""Training throughput (B-scans/s): SEMT against a plain ResNet18, and the full pipeline against the model alone.

Model alone: network + loss + backward + AdamW step on random tensors already on the device, at
the same batch, precision (bf16 autocast on CUDA) and memory format (channels_last) for:
  - SEMT / MT with the fused VF heads (``networks.RegressionHeads``, what the trainer uses),
  - the same network with three separate heads as first written (for the profile),
  - a plain ResNet18 classifier (``resnet2d``): the SEMT step should reach >= 85% of its rate.
Pipeline: batch gather from the on-disk uint8 cache (memmaps, as ``octviewer-train`` reads it),
host-to-device copy, normalisation and augmentation on the device, then the same step; it should
reach >= 80% of the model alone. Prints medians over timed windows.
Needs torch and numpy plus octviewer's Qt-free modules; builds its own cache with --volumes.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from octviewer.model import Preprocess, build_network, select_device


class SeparateHeads(nn.Module):
    """The three regression modules as separate convolutions (the layout before fusion), same math."""

    def __init__(self, fused):
        super().__init__()
        k, c = fused.k, fused.channels
        self.k, self.c = k, c
        self.heads = nn.ModuleList()
        for i in range(k):
            s = slice(i * c, (i + 1) * c)
            conv1 = nn.Conv2d(fused.conv1.in_channels, c, 3, padding=1, bias=False)
            conv1.weight.data.copy_(fused.conv1.weight.data[s])
            conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            conv2.weight.data.copy_(fused.conv2.weight.data[s])
            self.heads.append(nn.Sequential(conv1, nn.BatchNorm2d(c), nn.ReLU(inplace=True), conv2, nn.BatchNorm2d(c),
                                            nn.ReLU(inplace=True)))
        self.fcs = nn.ModuleList(nn.Linear(c, 1) for _ in range(k))

    def forward(self, maps):
        outs = [h(maps) for h in self.heads]
        vf = torch.stack([torch.sigmoid(fc(m.mean(dim=(2, 3))))[:, 0] for fc, m in zip(self.fcs, outs)], dim=1)
        return torch.cat(outs, dim=1), vf


def throughput(step, batch_size, seconds, sync):
    for _ in range(3):
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


def make_step(net, device, cuda, n_vf):
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def train_step(x, y, vf):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = net(x)
        loss = F.binary_cross_entropy_with_logits(out["logit"].float(), y)
        if n_vf:
            loss = loss + F.mse_loss(out["vf"].float(), vf)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return train_step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--volumes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed window per measurement")
    parser.add_argument("--arch", default="semt")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    device = select_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch_size or (128 if cuda else 16)
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    if cuda:
        torch.backends.cudnn.benchmark = True
    pre = Preprocess(size=args.size)
    torch.manual_seed(0)
    net = build_network(args.arch, init="random").to(device).to(memory_format=torch.channels_last).train()
    n_vf = len(getattr(net, "vf_names", ()))
    x0 = torch.randn(batch, 3, args.size, args.size, device=device).contiguous(memory_format=torch.channels_last)
    y0 = torch.randint(0, 2, (batch,), device=device).float()
    vf0 = torch.rand(batch, n_vf, device=device)
    print(f"device {torch.cuda.get_device_name(device) if cuda else device}, torch {torch.__version__}, {args.arch}, "
          f"batch {batch}, {args.size}x{args.size}, bf16 {cuda}, channels_last")

    step = make_step(net, device, cuda, n_vf)
    alone = throughput(lambda: step(x0, y0, vf0), batch, args.seconds, sync)
    print(f"{args.arch} (fused heads) alone:      median {alone:8.1f} B-scans/s")
    if getattr(net, "heads", None) is not None:
        separate = copy.deepcopy(net)
        separate.heads = SeparateHeads(net.heads).to(device).to(memory_format=torch.channels_last)
        s_step = make_step(separate, device, cuda, n_vf)
        sep = throughput(lambda: s_step(x0, y0, vf0), batch, args.seconds, sync)
        print(f"{args.arch} (separate heads) alone:   median {sep:8.1f} B-scans/s  (fused is {alone / sep:.2f}x)")
    plain = build_network("resnet2d", init="random").to(device).to(memory_format=torch.channels_last).train()
    p_step = make_step(plain, device, cuda, 0)
    base = throughput(lambda: p_step(x0, y0, vf0), batch, args.seconds, sync)
    print(f"plain ResNet18 alone:             median {base:8.1f} B-scans/s")
    print(f"  {args.arch} / ResNet18 = {100 * alone / base:.0f}% (target >= 85% on a GPU)")

    if args.skip_pipeline:
        return
    try:  # the trainer's own loader pieces; skipped if the trainer renamed them
        from trainer.cache import bscan_batch
        from trainer.engine import loader_workers, prefetch
        from trainer.engine import normalise_on_device as _normalise_on_device
    except ImportError as exc:
        print(f"pipeline skipped: trainer loader not importable ({exc})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        arrays = []
        for v in range(args.volumes):
            path = Path(tmp) / f"v{v}.npy"
            np.save(path, rng.integers(0, 255, (200, args.size, args.size), dtype=np.uint8))
            arrays.append(np.load(path, mmap_mode="r"))
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
            step(x, y.to(device, non_blocking=True), vf0)
        piped = throughput(pipeline_step, batch, args.seconds, sync)
    print(f"full pipeline from the cache:     median {piped:8.1f} B-scans/s  = {100 * piped / alone:.0f}% of "
          f"{args.arch} alone (target >= 80% on a GPU)")


if __name__ == "__main__":
    main()
