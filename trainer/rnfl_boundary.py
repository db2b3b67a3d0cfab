"""Train the RNFL outer boundary net (octviewer/structure/rnfl_net.py) on SYNTHETIC B-scans only.

    python -m trainer.rnfl_boundary --out resources/models/rnfl_boundary.safetensors [--cache /tmp/rnfl_data]

Data: cubes of the project's generator at the Cirrus grid (2 um pixels, 30 um between A-scans), most with
the Cirrus look (single frame, speckle), a quarter (``SPECTRALIS_SHARE``) with the Spectralis look; eyes and
acquisitions drawn from the cohort's population (``random_eye``, ``random_acquisition``: glaucoma, low
signal, motion, clipping). Each cube is segmented by our own path search, and every second B-scan is cut
into the net's band under OUR ILM (as at inference); the targets are the generator's true boundaries in
that band: the RNFL/GCL boundary, and as help for training the IPL/INL and INL/OPL boundaries (the net
has to find the INL to place the RNFL above it). Outside the disc only.

Domain randomisation, so that the net does not rely on what the generator holds fixed and real eyes and
devices do not share: each cube's layer reflectivities are scaled by a random factor (log-normal,
``--reflectivity-sd``), the RNFL's attenuation is drawn anew (``RNFL_ATTENUATION``) and the five layers
under the RNFL are each thickened or thinned (``THICKNESS_FACTOR``); grey levels get a random gamma, gain
and offset, and B-scans are mirrored left-right at random. Why each is there: docs/structure.md, "A learned
RNFL boundary".

Reproducible: fixed seeds, one CPU thread (torch.set_num_threads(1)), deterministic algorithms.
The weights (a few thousand float32) go to a safetensors file with the architecture and the
provenance in its metadata; octviewer reads it without executing code and without torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from octviewer.structure import rnfl_net

TARGETS = ("RNFL_GCL", "IPL_INL", "INL_OPL")
TARGET_WEIGHTS = (1.0, 0.5, 0.5)
DILATIONS = (1, 2, 4, 8, 16, 1)
CHANNELS = 8
RNFL_ATTENUATION = (0.5, 6.0)  # 1/mm, log-uniform (the generator's own: 4.5, van der Schoot et al. 2012)
SPECTRALIS_SHARE = 0.25  # cubes rendered with the Spectralis look (another grey scale and speckle)
THICKNESS_VARIES, THICKNESS_FACTOR = ("gcl", "ipl", "inl", "opl", "onl"), (0.5, 1.5)  # per layer, log-uniform
GAMMA = (0.7, 1.4)  # grey-level augmentation: |g| ** gamma, log-uniform


@contextlib.contextmanager
def _randomised_layers(rng: np.random.Generator, sd: float):
    """For one cube: the renderer's layer reflectivities scaled at random, the RNFL's attenuation drawn
    anew (``RNFL_ATTENUATION``) and the layers under the RNFL thickened or thinned (``THICKNESS_FACTOR``
    each): neither how much the RNFL fades with depth nor a fixed GCL+IPL thickness over the INL may
    tell the net where the RNFL ends (the generator draws every eye's GCL, IPL, INL... equally thick)."""
    from octviewer.synth import render

    refl, att, thickness = render.REFLECTIVITY, render.ATTENUATION, dict(render.OUTER_THICKNESS_UM)
    try:  # the renderer reads these module tables at each call; they are put back below
        render.REFLECTIVITY = (refl * np.exp(rng.normal(0.0, sd, refl.shape))).astype(np.float32)
        render.ATTENUATION = att.copy()
        render.ATTENUATION[1] = np.exp(rng.uniform(*np.log(RNFL_ATTENUATION)))
        for name in THICKNESS_VARIES:
            render.OUTER_THICKNESS_UM[name] = thickness[name] * np.exp(rng.uniform(*np.log(THICKNESS_FACTOR)))
        yield
    finally:
        render.REFLECTIVITY, render.ATTENUATION = refl, att
        render.OUTER_THICKNESS_UM.update(thickness)


def cube_samples(index: int, seed: int, reflectivity_sd: float, every: int = 2) -> dict:
    """One synthetic Cirrus-look cube cut into bands: x (n, 3, ROWS, cols) float16, target rows
    (n, len(TARGETS), cols) float32 (NaN where not to be learnt)."""
    from scipy import ndimage

    from octviewer.structure.segmentation import _segment_own
    from octviewer.synth import random_acquisition, random_eye, synth_scan

    rng = np.random.default_rng([seed, index])
    eye = random_eye(rng, "OD" if rng.random() < 0.5 else "OS", glaucoma=bool(rng.random() < 0.5))
    acquisition = random_acquisition(rng)
    device = "spectralis" if rng.random() < SPECTRALIS_SHARE else "cirrus"
    with _randomised_layers(rng, reflectivity_sd):
        scan = synth_scan(eye, "cirrus", seed=int(rng.integers(1 << 31)), acquisition=acquisition, device=device)
    volume = scan.volume
    # our ILM and Bruch's membrane as the net sees them at inference (segmentation._rnfl_learned runs before
    # the disc is found, so before Bruch's membrane is drawn across the opening: segment() would differ there)
    seg = _segment_own(volume)
    um_z = volume.spacing.depth_mm * 1000.0
    um_x = volume.spacing.ascan_mm * 1000.0
    names = list(scan.truth["boundary_names"])
    truth = scan.truth["boundaries"]
    keep = np.arange(int(rng.integers(every)), volume.n_bscans, every)
    ilm = _filled(seg.ilm[keep])
    bm = _filled(seg.bm[keep])
    x, _, _ = rnfl_net.band(volume.display()[keep], ilm, bm, um_z, um_x, periodic=False)
    pick, size, _ = rnfl_net.columns(volume.shape[2], um_x)
    # columns to learn from: outside the disc (and 0.1 mm from it), our ILM within 30 um of the truth's
    disc = ndimage.binary_dilation(scan.truth["disc_mask"], iterations=max(1, int(round(100.0 / um_x))))[keep]
    bad = disc | ~(np.abs(seg.ilm[keep] - truth[names.index("ILM")][keep]) * um_z <= 30.0)

    def per_column(a):  # (a running mean: a NaN would spread along the whole B-scan)
        return ndimage.uniform_filter1d(a.astype(np.float32), size, axis=1, mode="nearest")[:, pick]

    rows = []
    for name in TARGETS:
        under = (truth[names.index(name)][keep] - ilm) * um_z / rnfl_net.SAMPLE_UM + rnfl_net.ABOVE
        missing = per_column(bad | ~np.isfinite(under)) > 0
        under = per_column(np.nan_to_num(under))
        under[missing | (under < 0) | (under > rnfl_net.ROWS - 1)] = np.nan
        rows.append(under)
    return {"x": x.astype(np.float16), "rows": np.stack(rows, axis=1).astype(np.float32)}


def _filled(a: np.ndarray) -> np.ndarray:
    a = np.array(a, np.float32)
    x = np.arange(a.shape[1])
    for b in range(a.shape[0]):
        ok = np.isfinite(a[b])
        a[b] = np.interp(x, x[ok], a[b, ok]) if ok.any() else 0.0
    return a


def dataset(cache: Path, first: int, count: int, seed: int, reflectivity_sd: float) -> dict:
    """Cubes ``first`` .. ``first + count - 1``, each cached as an .npz (rendering and segmenting is the slow part)."""
    cache.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(first, first + count):
        path = cache / f"cube_v3_{seed}_{i:04d}_{reflectivity_sd:g}.npz"
        if not path.exists():
            t0 = time.time()
            np.savez(path, **cube_samples(i, seed, reflectivity_sd))
            print(f"cube {i}: {time.time() - t0:.1f} s", flush=True)
        with np.load(path) as f:
            parts.append({k: f[k] for k in f.files})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def build_net(torch):
    layers, c_in = [], 3
    for d in DILATIONS:
        layers += [torch.nn.Conv2d(c_in, CHANNELS, 3, padding=d, dilation=d), torch.nn.ReLU()]
        c_in = CHANNELS
    layers.append(torch.nn.Conv2d(CHANNELS, len(TARGETS), 1))
    return torch.nn.Sequential(*layers)


def loss_fn(torch, logits, rows):
    """Cross-entropy over depth per column, against the true row split between its two neighbours."""
    logp = torch.log_softmax(logits, dim=2)  # (b, targets, ROWS, cols)
    ok = torch.isfinite(rows)
    r = torch.where(ok, rows, torch.zeros_like(rows))
    lo = r.floor().long().clamp(0, rnfl_net.ROWS - 1)
    hi = (lo + 1).clamp(0, rnfl_net.ROWS - 1)
    frac = r - lo.float()
    nll = -((1 - frac) * logp.gather(2, lo[:, :, None]).squeeze(2) + frac * logp.gather(2, hi[:, :, None]).squeeze(2))
    w = torch.tensor(TARGET_WEIGHTS)[None, :, None] * ok
    return (nll * w).sum() / w.sum().clamp(min=1.0)


def train(data: dict, val: dict, epochs: int, seed: int, batch: int = 16, lr: float = 2e-3):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = build_net(torch)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(data["x"])
    steps = epochs * (n // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n)
        total, t0 = 0.0, time.time()
        for s in range(n // batch):
            idx = order[s * batch:(s + 1) * batch]
            x = data["x"][idx].astype(np.float32)
            rows = data["rows"][idx].copy()
            # grey augmentation: gain and offset; mirrored B-scans
            gamma = np.exp(rng.uniform(*np.log(GAMMA), (len(idx), 1, 1)))
            x[:, 0] = np.sign(x[:, 0]) * np.abs(x[:, 0]) ** gamma
            x[:, 0] = x[:, 0] * rng.uniform(0.8, 1.25, (len(idx), 1, 1)) + rng.uniform(-0.1, 0.1, (len(idx), 1, 1))
            flip = rng.random(len(idx)) < 0.5
            x[flip] = x[flip][..., ::-1]
            rows[flip] = rows[flip][..., ::-1]
            loss = loss_fn(torch, net(torch.from_numpy(np.ascontiguousarray(x))), torch.from_numpy(
                np.ascontiguousarray(rows)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{epochs}: train loss {total / max(1, n // batch):.3f}, "
              f"validation loss {evaluate(torch, net, val):.3f} ({time.time() - t0:.0f} s)", flush=True)
    return net


def evaluate(torch, net, val: dict) -> float:
    net.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(val["x"]), 32):
            x = torch.from_numpy(val["x"][s:s + 32].astype(np.float32))
            total += float(loss_fn(torch, net(x), torch.from_numpy(val["rows"][s:s + 32]))) * len(x)
            count += len(x)
    return total / max(count, 1)


def export(net, path: Path, meta: dict) -> None:
    from safetensors.numpy import save_file

    convs = [m for m in net if hasattr(m, "weight")]
    tensors = {}
    for i, m in enumerate(convs):
        tensors[f"{i}.weight"] = m.weight.detach().numpy().astype(np.float32)
        tensors[f"{i}.bias"] = m.bias.detach().numpy().astype(np.float32)
    meta = {**{k: str(v) for k, v in meta.items()}, "layers": json.dumps([*DILATIONS, 1]),
            "outputs": json.dumps(TARGETS), "band": json.dumps({"sample_um": rnfl_net.SAMPLE_UM,
                                                                 "column_um": rnfl_net.COLUMN_UM,
                                                                 "above": rnfl_net.ABOVE, "rows": rnfl_net.ROWS})}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rnfl_boundary_data"))
    parser.add_argument("--cubes", type=int, default=120)
    parser.add_argument("--val-cubes", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2812)
    parser.add_argument("--reflectivity-sd", type=float, default=0.25)
    args = parser.parse_args(argv)
    from octviewer.synth import GENERATOR_VERSION

    t0 = time.time()
    data = dataset(args.cache, 0, args.cubes, args.seed, args.reflectivity_sd)
    val = dataset(args.cache, 100000, args.val_cubes, args.seed, args.reflectivity_sd)
    print(f"{len(data['x'])} training, {len(val['x'])} validation B-scans ({time.time() - t0:.0f} s)", flush=True)
    net = train(data, val, args.epochs, args.seed)
    command = "python -m trainer.rnfl_boundary " + " ".join(sys.argv[1:] if argv is None else argv)
    export(net, args.out, {"what": "RNFL outer boundary cost net (octviewer/structure/rnfl_net.py); SYNTHETIC "
                                   "training data only", "generator": GENERATOR_VERSION,
                           "device_look": "cirrus, spectralis", "cubes": args.cubes, "epochs": args.epochs,
                           "seed": args.seed, "reflectivity_sd": args.reflectivity_sd,
                           "rnfl_attenuation_per_mm": RNFL_ATTENUATION, "spectralis_share": SPECTRALIS_SHARE,
                           "gamma": GAMMA, "layer_thickness_factor": THICKNESS_FACTOR, "command": command})
    print(f"written {args.out} ({args.out.stat().st_size} bytes, {time.time() - t0:.0f} s in all)")


if __name__ == "__main__":
    main()
