"""One stage of training, the torchvision-references way: ``train_one_epoch``, ``evaluate`` and
``run_stage`` (epochs with per-epoch atomic checkpoints and model selection).

Epoch ``e`` of a stage draws its order and augmentation from ``seed * 1000 + e`` (fresh
generators), so a run resumed from ``last.pt`` repeats an uninterrupted one. The best epoch is
chosen on validation by a joint criterion when the stage regresses VF:
``AUC - 0.25 * mean_j(MAE_j / sd_j)`` (MAE in clinical units, sd_j the training standard
deviation), so an epoch that classifies well but estimates VF badly does not win; otherwise AUC.
"""

from __future__ import annotations

import csv
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from octviewer.model import Preprocess

from . import distributed as dist
from . import stop
from .cache import bscan_batch
from .checkpoint import atomic_save, load_checkpoint
from .surrogates import norm3_pool

VF_WEIGHT = 0.25  # weight of the normalised VF error in the joint selection criterion


def normalise_on_device(pre: Preprocess, x_u8: torch.Tensor, device, augment: bool, gen: torch.Generator | None):
    """uint8 batch -> normalised float on the device, with flips, small shifts and intensity jitter."""
    x = x_u8.to(device, non_blocking=True).float().div_(255.0)
    if augment:
        b = x.shape[0]
        flip = torch.rand(b, generator=gen) < 0.5
        x[flip.to(device)] = x[flip.to(device)].flip(-1)  # mirror: an OD B-scan becomes an OS-like one
        max_shift = max(1, x.shape[-1] // 28)  # about 8 px at 224
        shift = int(torch.randint(-max_shift, max_shift + 1, (1,), generator=gen))
        x = torch.roll(x, shifts=shift, dims=-1)
        gain = (1.0 + 0.1 * (torch.rand(b, generator=gen) * 2 - 1)).to(device).view(-1, *([1] * (x.ndim - 1)))
        x = (x * gain).clamp_(0, 1)
    return pre.normalise(x)


class Data:
    """Cached arrays of one split with labels and VF targets in clinical units (NaN = not measured)."""

    def __init__(self, records, arrays, vf_names, pre: Preprocess):
        self.records, self.arrays, self.pre = records, arrays, pre
        self.vf_names = tuple(vf_names)
        self.labels = np.array([r.label for r in records], np.float32)
        self.vf = np.array([[np.nan if r.vf[n] is None else float(r.vf[n]) for n in vf_names]
                            for r in records], np.float32).reshape(len(records), len(vf_names))

    def items(self, rng: np.random.Generator | None, per_volume: int | None) -> np.ndarray:
        """(volume, bscan) pairs; for 3D models one item per volume."""
        if self.pre.is_3d:
            return np.stack([np.arange(len(self.arrays)), np.zeros(len(self.arrays), int)], 1)
        pairs = []
        for v, a in enumerate(self.arrays):
            b = np.arange(a.shape[0])
            if per_volume and rng is not None and per_volume < len(b):
                b = np.sort(rng.choice(b, per_volume, replace=False))
            pairs.append(np.stack([np.full(len(b), v), b], 1))
        return np.concatenate(pairs) if pairs else np.zeros((0, 2), int)

    def batch(self, items):
        if self.pre.is_3d:
            x = torch.from_numpy(np.stack([np.asarray(self.arrays[v]) for v, _ in items]))
        else:
            x = bscan_batch(self.arrays, items, self.pre)
        v = items[:, 0]
        return x, torch.from_numpy(self.labels[v]), torch.from_numpy(self.vf[v])


def prefetch(make_batch, chunks, workers: int, depth: int):
    """Assemble the next batches in worker threads while the current one trains (the role of
    DataLoader workers; memmap gathers and NumPy copies release the GIL). Order is kept, so runs
    stay deterministic, and at most ``depth`` batches wait in memory."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        queue = deque()
        for chunk in chunks:
            queue.append(pool.submit(make_batch, chunk))
            if len(queue) > depth:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def loader_workers() -> int:
    """Threads for batch assembly, sized to the machine: leave a core to the training loop."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def predict_volumes(network, data: Data, device, batch_size: int = 64, scaling: dict | None = None):
    """Every B-scan once: per volume the raw mean probability, the B-scan VF estimates in clinical
    units (list of (n_bscans, k) arrays) and the norm-3 pooled features."""
    network.eval()
    probs, vfs, feats = [], [], []
    all_items = data.items(None, None)
    lo = np.array([scaling[n]["lo"] for n in data.vf_names], np.float32) if scaling else 0.0
    span = np.array([scaling[n]["hi"] - scaling[n]["lo"] for n in data.vf_names], np.float32) if scaling else 1.0
    with torch.inference_mode():
        for v in range(len(data.arrays)):
            items = all_items[all_items[:, 0] == v]
            p, f, r = [], [], []
            for i in range(0, len(items), batch_size):
                x, _, _ = data.batch(items[i:i + batch_size])
                out = network(normalise_on_device(data.pre, x, device, False, None))
                p.append(torch.sigmoid(out["logit"].float()).cpu())
                r.append(out["vf"].float().cpu())
                f.append(out["features"].float().cpu())
            probs.append(float(torch.cat(p).mean()))
            vfs.append(lo + span * torch.cat(r).numpy())
            feats.append(norm3_pool(torch.cat(f).numpy()))
    return np.array(probs), vfs, np.array(feats)


def train_one_epoch(model, loss_fn, opt, data: Data, items: np.ndarray, device, batch_size: int,
                    gen: torch.Generator, use_vf: bool, on_step=None) -> float:
    """One pass over ``items`` (already ordered); returns the mean loss. Raises ``stop.Stopped``
    between steps when a stop was requested (the previous epoch's checkpoint stays valid)."""
    use_amp = device.type == "cuda"
    workers = loader_workers()

    def make_batch(chunk):
        x, y, vf = data.batch(chunk)
        return (x.pin_memory(), y, vf) if use_amp else (x, y, vf)  # pinned: async copy to the GPU
    model.train()
    losses = []
    starts = list(range(0, len(items), batch_size)) or [0]
    if len(starts) > 1 and len(items) - starts[-1] == 1:
        # a last batch of one B-scan goes with the one before it: BatchNorm cannot normalise a single value per
        # channel in training, which a 1 x 1 last feature map (images under 64 px) then is; fit ended in a torch
        # traceback after its whole cache stage whenever the B-scans left one over (attack run 13, A13-13)
        starts.pop()
    n_steps = len(starts)
    ends = starts[1:] + [len(items)]
    chunks = (items[a:b] for a, b in zip(starts, ends))
    for step, (x, y, vf) in enumerate(prefetch(make_batch, chunks, workers, depth=2 * workers)):
        if stop.requested():
            raise stop.Stopped("stopped: the last completed epoch is saved; rerun with --resume to continue")
        x = normalise_on_device(data.pre, x, device, True, gen)
        y, vf = y.to(device), vf.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(x)
        loss = loss_fn(out, y, vf if use_vf else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step + 1, n_steps, losses[-1])
    return float(np.mean(losses)) if losses else float("nan")


def evaluate(network, data: Data, device, scaling: dict | None = None, std: dict | None = None) -> dict:
    """Validation metrics of one epoch and the selection score (see the module docstring)."""
    p, vfs, _ = predict_volumes(network, data, device, scaling=scaling)
    metrics = {}
    if len(np.unique(data.labels)) == 2:
        from sklearn.metrics import roc_auc_score
        metrics["val_auc"] = float(roc_auc_score(data.labels, p))
    p_t = torch.tensor(p, dtype=torch.float32).clamp(1e-6, 1 - 1e-6)
    metrics["val_loss"] = float(F.binary_cross_entropy(p_t, torch.tensor(data.labels)))
    score = metrics.get("val_auc", -metrics["val_loss"])
    if scaling and data.vf_names:
        volume_vf = np.array([v.mean(0) for v in vfs])
        errors = []
        for j, name in enumerate(data.vf_names):
            ok = ~np.isnan(data.vf[:, j])
            if ok.any():
                mae = float(np.abs(volume_vf[ok, j] - data.vf[ok, j]).mean())
                metrics[f"val_mae_{name}"] = mae
                errors.append(mae / (std or {}).get(name, 1.0))
        if errors:
            metrics["val_vf_nmae"] = float(np.mean(errors))
            score -= VF_WEIGHT * metrics["val_vf_nmae"]
    metrics["score"] = float(score)
    return metrics


def run_stage(name, network, train: Data, val: Data, loss_fn, cfg, out: Path, epochs: int, use_vf: bool,
              progress, device, scaling=None, std=None) -> torch.nn.Module:
    """Train one stage with per-epoch atomic checkpoints; returns the network with the best weights.

    A finished stage leaves ``done.pt`` (the best weights and their score); a resume loads it and
    skips the stage."""
    stage_dir = out / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    network.to(device)
    loss_fn.to(device)
    if not train.pre.is_3d:
        network.to(memory_format=torch.channels_last)
    if cfg.resume and (stage_dir / "done.pt").exists():
        network.load_state_dict(load_checkpoint(stage_dir / "done.pt", device)["model"])
        return network
    model = dist.wrap(network, device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    start, best = 0, -float("inf")
    summary_path = stage_dir / "summary.csv"
    if not cfg.resume and dist.is_main():  # a fresh run never mixes with an older one in the same folder
        for old in ("done.pt", "last.pt", "best.pt", "summary.csv"):
            (stage_dir / old).unlink(missing_ok=True)
    dist.barrier()
    if cfg.resume and (stage_dir / "last.pt").exists():
        ck = load_checkpoint(stage_dir / "last.pt", device)
        network.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, best = ck["epoch"] + 1, ck["best"]
        progress.log(stage=name, event="resumed", epoch=start)
    for epoch in range(start, epochs):
        seed = cfg.seed * 1000 + epoch
        rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        items = train.items(rng, cfg.bscans_per_volume)
        items = dist.shard(items[rng.permutation(len(items))])
        t0 = time.perf_counter()

        def on_step(step, total, loss, epoch=epoch, t0=t0):
            progress.step(stage=name, epoch=epoch, step=step, total=total, loss=loss, epochs=epochs,
                          elapsed=time.perf_counter() - t0)
        metrics = {"train_loss": train_one_epoch(model, loss_fn, opt, train, items, device, cfg.batch_size, gen,
                                                 use_vf, on_step)}
        sched.step()
        if dist.is_main():
            metrics.update(evaluate(network, val, device, scaling if use_vf else None, std))
            score = metrics["score"]
            if score > best:
                best = score
                atomic_save({"model": network.state_dict(), "epoch": epoch, "score": score}, stage_dir / "best.pt")
            atomic_save({"model": network.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                         "epoch": epoch, "best": best}, stage_dir / "last.pt")
            new = not summary_path.exists()
            with open(summary_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["epoch", "train_loss", "val_loss", "val_auc", "score"],
                                   extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerow({"epoch": epoch, **metrics})
            progress.log(stage=name, event="epoch", epoch=epoch, epochs=epochs, **metrics)
        dist.barrier()
    best_ck = load_checkpoint(stage_dir / "best.pt", device)
    network.load_state_dict(best_ck["model"])
    if dist.is_main():
        atomic_save({"model": best_ck["model"], "score": best_ck.get("score")}, stage_dir / "done.pt")
    dist.barrier()  # every rank may read done.pt next (stage_score)
    return network


def stage_score(out: Path, name: str, device) -> float:
    """The validation score of a finished stage (for choosing among alpha values)."""
    score = load_checkpoint(out / name / "done.pt", device).get("score")
    return float("-inf") if score is None else float(score)
