"""``fit``: the SEMT recipe and its Table 1 variants, from a validated manifest to a model file.

Stages: validate + split -> cache -> stage 1 (2D classifier; the ``resnet2d`` system) -> norm-3
volume features + nearest-neighbour surrogate VF (``semt`` only) -> stage 2 multi-task training
(``mt``/``semt``) -> threshold on validation -> test metrics -> model file. 3D variants train one
stage on resampled cubes. Each stage checkpoints atomically after every epoch (``last.pt``,
``best.pt``) and a rerun with ``--resume`` continues where it stopped. Epoch ``e`` draws its order
and augmentation from ``seed + e``, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from octviewer.model import Preprocess, build_network, default_metadata, is_3d, save_model, scale_vf, unscale_vf

from . import distributed as dist
from .cache import bscan_batch, build_cache
from .evaluate import evaluate_split, markdown_table, pick_threshold, reliability_png
from .manifest import assign_splits, read_manifest, summary, vf_names_present
from .progress import Progress
from .surrogates import assign_surrogates, norm3_pool


@dataclass
class Config:
    data: str = ""
    out: str = "runs/run"
    variant: str = "semt"
    epochs: int = 10
    stage1_epochs: int | None = None
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    alpha: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # per VF index, paper's alpha_j
    image_size: int = 224
    reg_channels: int = 128  # channels of each VF regression module (mt/semt)
    volume_shape: list[int] = field(default_factory=lambda: [64, 128, 64])  # 3D models: B-scans, depth, width
    init: str = "imagenet"  # imagenet | random | path to a ResNet18 state dict
    seed: int = 0
    device: str = "auto"
    bscans_per_volume: int | None = None  # subsample B-scans per volume per epoch (None = all)
    skip_bad: bool = False
    allow_pickle: bool = False  # only for trusted .npz files with Python-object fields
    resume: bool = False
    cache_dir: str | None = None
    half: bool = False
    progress_json: str | None = None
    synthetic: bool | None = None  # None: detect from the manifest's ``synthetic`` column


class RunMismatch(ValueError):
    """--resume into a folder that holds a run with another configuration."""


RESUME_KEYS = ("data", "variant", "image_size", "volume_shape", "seed", "init", "bscans_per_volume", "batch_size")


class Stopped(Exception):
    """SIGINT/SIGTERM asked the run to stop; the last checkpoint is resumable."""


_STOP = {"flag": False}


def _on_signal(signum, frame):
    _STOP["flag"] = True


def atomic_save(obj, path: Path):
    tmp = path.with_name(path.name + ".part")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _device(cfg: Config) -> torch.device:
    from octviewer.model import select_device

    if dist.is_distributed() and torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank())
    return select_device(cfg.device)


def _normalise_on_device(pre: Preprocess, x_u8: torch.Tensor, device, augment: bool, gen: torch.Generator | None):
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
    """Cached arrays of one split with labels and scaled VF targets (NaN where missing)."""

    def __init__(self, records, arrays, vf_names, pre: Preprocess):
        self.records, self.arrays, self.pre = records, arrays, pre
        self.labels = np.array([r.label for r in records], np.float32)
        self.vf = np.array([[np.nan if r.vf[n] is None else float(scale_vf(n, r.vf[n])) for n in vf_names]
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
        return np.concatenate(pairs)

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


def predict_volumes(network, data: Data, device, batch_size=64):
    """Per-volume mean probability, VF (scaled) and norm-3 pooled features, all samples once."""
    network.eval()
    probs, vfs, feats = [], [], []
    all_items = data.items(None, None)
    with torch.inference_mode():
        for v in range(len(data.arrays)):
            items = all_items[all_items[:, 0] == v]
            p, f, r = [], [], []
            for i in range(0, len(items), batch_size):
                x, _, _ = data.batch(items[i:i + batch_size])
                out = network(_normalise_on_device(data.pre, x, device, False, None))
                p.append(torch.sigmoid(out["logit"].float()).cpu())
                r.append(out["vf"].float().cpu())
                f.append(out["features"].float().cpu())
            probs.append(float(torch.cat(p).mean()))
            vfs.append(torch.cat(r).mean(0).numpy())
            feats.append(norm3_pool(torch.cat(f).numpy()))
    return np.array(probs), np.array(vfs), np.array(feats)


def run_stage(name, network, train: Data, val: Data, cfg: Config, out: Path, epochs: int, use_vf: bool,
              vf_mask_only: bool, progress: Progress, device) -> torch.nn.Module:
    """Train one stage with per-epoch atomic checkpoints; returns the network with the best weights."""
    stage_dir = out / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    network.to(device)
    if not train.pre.is_3d:
        network.to(memory_format=torch.channels_last)
    model = dist.wrap(network, device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    alpha = torch.tensor(cfg.alpha[:train.vf.shape[1]] or [0.0], device=device)
    start, best = 0, -float("inf")
    summary_path = stage_dir / "summary.csv"
    if cfg.resume and (stage_dir / "done.pt").exists():
        network.load_state_dict(torch.load(stage_dir / "done.pt", map_location=device, weights_only=True)["model"])
        return network
    if not cfg.resume and dist.is_main():  # a fresh run never mixes with an older one in the same folder
        for old in ("done.pt", "last.pt", "best.pt", "summary.csv"):
            (stage_dir / old).unlink(missing_ok=True)
    dist.barrier()
    if cfg.resume and (stage_dir / "last.pt").exists():
        ck = torch.load(stage_dir / "last.pt", map_location=device, weights_only=True)
        network.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start, best = ck["epoch"] + 1, ck["best"]
        progress.log(stage=name, event="resumed", epoch=start)
    use_amp = device.type == "cuda"
    workers = loader_workers()

    def make_batch(chunk):
        x, y, vf = train.batch(chunk)
        return (x.pin_memory(), y, vf) if use_amp else (x, y, vf)  # pinned: async copy to the GPU
    for epoch in range(start, epochs):
        rng = np.random.default_rng(cfg.seed * 1000 + epoch)
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)
        items = train.items(rng, cfg.bscans_per_volume)
        items = items[rng.permutation(len(items))]
        items = dist.shard(items)
        model.train()
        losses, t0 = [], time.perf_counter()
        n_steps = max(1, (len(items) + cfg.batch_size - 1) // cfg.batch_size)
        chunks = (items[s * cfg.batch_size:(s + 1) * cfg.batch_size] for s in range(n_steps))
        for step, (x, y, vf) in enumerate(prefetch(make_batch, chunks, workers, depth=2 * workers)):
            if _STOP["flag"]:
                raise Stopped()
            x = _normalise_on_device(train.pre, x, device, True, gen)
            y, vf = y.to(device), vf.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                out = model(x)
            loss = F.binary_cross_entropy_with_logits(out["logit"].float(), y)
            if use_vf and vf.shape[1]:
                mask = ~torch.isnan(vf)
                err = (out["vf"].float() - torch.nan_to_num(vf)) ** 2 * mask
                mse = err.sum(0) / mask.sum(0).clamp(min=1)
                loss = loss + (alpha * mse).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            progress.step(stage=name, epoch=epoch, step=step + 1, total=n_steps, loss=losses[-1],
                          epochs=epochs, elapsed=time.perf_counter() - t0)
        sched.step()
        metrics = {"train_loss": float(np.mean(losses))}
        if dist.is_main():
            p, _, _ = predict_volumes(network, val, device)
            if len(np.unique(val.labels)) == 2:
                from sklearn.metrics import roc_auc_score
                metrics["val_auc"] = float(roc_auc_score(val.labels, p))
            p_val = torch.tensor(p, dtype=torch.float32).clamp(1e-6, 1 - 1e-6)
            metrics["val_loss"] = float(F.binary_cross_entropy(p_val, torch.tensor(val.labels)))
            score = metrics.get("val_auc", -metrics["val_loss"])
            state = {"model": network.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "epoch": epoch, "best": max(best, score)}
            if score > best:
                best = score
                atomic_save({"model": network.state_dict(), "epoch": epoch, "score": score}, stage_dir / "best.pt")
            atomic_save(state, stage_dir / "last.pt")
            new = not summary_path.exists()
            with open(summary_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["epoch", "train_loss", "val_loss", "val_auc"])
                if new:
                    w.writeheader()
                w.writerow({"epoch": epoch, **metrics})
            progress.log(stage=name, event="epoch", epoch=epoch, epochs=epochs, **metrics)
        dist.barrier()
    best_state = torch.load(stage_dir / "best.pt", map_location=device, weights_only=True)["model"]
    network.load_state_dict(best_state)
    if dist.is_main():
        atomic_save({"model": best_state}, stage_dir / "done.pt")
    return network


def fit(cfg: Config) -> dict:
    """Run the whole recipe; returns the test report. Raises ManifestError before any training."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    dist.init()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    progress = Progress(cfg.progress_json, enabled=dist.is_main())
    previous = out / "config.json"
    if cfg.resume and previous.exists():
        old = json.loads(previous.read_text())
        changed = [k for k in RESUME_KEYS if old.get(k) != asdict(cfg).get(k)]
        if changed:
            raise RunMismatch(f"{out} holds a run with different {', '.join(changed)}; "
                              "choose another output folder or start without --resume")
    if dist.is_main():
        previous.write_text(json.dumps(asdict(cfg), indent=2))
    records, skipped = read_manifest(cfg.data, skip_bad=cfg.skip_bad)
    for s in skipped:
        progress.log(stage="validate", event="skipped", message=s)
    records = assign_splits(records, seed=cfg.seed)
    counts = summary(records)
    progress.log(stage="validate", event="summary", splits=counts)
    synthetic = cfg.synthetic if cfg.synthetic is not None else all(r.extra.get("synthetic") == "1" for r in records)
    variant = cfg.variant
    vf_names = vf_names_present(records) if variant in ("mt", "semt") else ()
    if variant in ("mt", "semt") and not vf_names:
        progress.log(stage="validate", event="warning",
                     message=f"no VF values in the training split: {variant} falls back to resnet2d")
        variant = "resnet2d"
    pre = Preprocess(name="volume_area_v1", volume_shape=tuple(cfg.volume_shape)) if is_3d(variant) \
        else Preprocess(size=cfg.image_size)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    arrays = build_cache(records, pre, cache_dir, skip_bad=cfg.skip_bad, allow_pickle=cfg.allow_pickle,
                         progress=lambda d, t: progress.step(stage="cache", step=d, total=t))
    keep = [i for i, a in enumerate(arrays) if a is not None]
    records, arrays = [records[i] for i in keep], [arrays[i] for i in keep]
    device = _device(cfg)
    split = {s: [i for i, r in enumerate(records) if r.split == s] for s in ("train", "val", "test")}

    def data(s, names):
        return Data([records[i] for i in split[s]], [arrays[i] for i in split[s]], names, pre)

    torch.manual_seed(cfg.seed)
    s1_epochs = cfg.stage1_epochs or cfg.epochs
    if variant in ("resnet2d", "semt"):
        stage1 = build_network("resnet2d", init=cfg.init)
        stage1 = run_stage("stage1", stage1, data("train", ()), data("val", ()), cfg, out, s1_epochs, False, False,
                           progress, device)
    train, val, test = data("train", vf_names), data("val", vf_names), data("test", vf_names)
    if variant == "semt":
        _, _, feats = predict_volumes(stage1, train, device)
        ids = [str(r.path.relative_to(Path(cfg.data).parent)) if r.path.is_relative_to(Path(cfg.data).parent)
               else str(r.path) for r in train.records]
        filled, table = assign_surrogates(ids, feats, train.labels, train.vf, vf_names)
        train.vf = filled.astype(np.float32)
        if dist.is_main():
            with open(out / "surrogates.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["volume", "index", "source", "distance", "class"])
                w.writeheader()
                w.writerows(table)
        progress.log(stage="surrogates", event="assigned", n=len(table))
    if variant == "resnet2d":
        network = stage1
    else:
        params = {"reg_channels": cfg.reg_channels} if variant in ("mt", "semt") else {}
        network = build_network(variant, vf_names=vf_names, init=cfg.init if not is_3d(variant) else None, **params)
        if variant == "semt":  # start stage 2 from the stage-1 backbone
            network.backbone.load_state_dict(stage1.backbone.state_dict())
        network = run_stage("stage2", network, train, val, cfg, out, cfg.epochs, variant in ("mt", "semt"), True,
                            progress, device)
    if dist.world() > 1:  # each rank records a checksum of its weights: DDP must keep them identical
        (out / "ranks").mkdir(exist_ok=True)
        total = sum(float(v.double().sum()) for v in network.state_dict().values() if v.is_floating_point())
        (out / "ranks" / f"rank{dist.rank()}.json").write_text(json.dumps({"weight_sum": total}))
    report = {}
    if dist.is_main():
        val_p, _, _ = predict_volumes(network, val, device)
        threshold = pick_threshold(val.labels, val_p)
        test_p, test_vf, _ = predict_volumes(network, test, device)
        vf_clinical = {n: unscale_vf(n, test_vf[:, j]) for j, n in enumerate(vf_names)}
        report = evaluate_split(test.records, test_p, vf_clinical, threshold)
        report.update(variant=variant, requested_variant=cfg.variant, splits=counts, synthetic_data=synthetic,
                      test_volumes=[{"path": str(r.path), "probability": float(p)}
                                    for r, p in zip(test.records, test_p)])
        meta = default_metadata(variant, vf_names=vf_names, preprocess=pre)
        if variant in ("mt", "semt"):
            meta["network"]["reg_channels"] = cfg.reg_channels
        meta.update(name=f"{variant}-{Path(cfg.data).parent.name}", threshold=threshold, synthetic_data=synthetic)
        metrics = {k: report[k] for k in ("image_level", "case_level", "vf_mae")}
        meta["provenance"].update(data={"manifest": str(cfg.data), "splits": counts}, split_seed=cfg.seed,
                                  config=asdict(cfg), test_metrics=metrics)
        save_model(out / "model.safetensors", network.cpu(), meta, half=cfg.half)
        (out / "report.json").write_text(json.dumps(report, indent=2))
        (out / "report.md").write_text(markdown_table({variant: report}, synthetic))
        reliability_png(report["image_level"]["reliability"], out / "reliability.png",
                        f"{variant}, test split, image level" + (" (SYNTHETIC)" if synthetic else ""))
        progress.log(stage="done", event="finished", model=str(out / "model.safetensors"),
                     image_auc=report["image_level"]["auc"])
    dist.cleanup()
    return report
