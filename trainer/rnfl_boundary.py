"""Train the RNFL outer boundary net (octviewer/structure/rnfl_net.py) on SYNTHETIC B-scans (and one real tracing).

    python -m trainer.rnfl_boundary --out resources/models/rnfl_boundary.safetensors [--cache /tmp/rnfl_data]
    python -m trainer.rnfl_boundary --out OUT --init WEIGHTS --real-tracing \
        $OCTVIEWER_SAMPLES/real_tracings/OCTseg-Zeiss_train_img_im00001.png --real-weight W --steps N --lr LR

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

``--real-tracing``: fine-tune (``--init``: the weights to start from) on the synthetic cubes with one real
Zeiss Cirrus B-scan traced by a person mixed in (the OCTseg-Zeiss tracings, MIT licensed: weights trained
on them may ship, the images are read from the samples folder and never copied). Each step adds
``--real-weight`` x the loss on that B-scan (augmented: mirrored, grey gain/offset/gamma, noise, the crop
shifted by an A-scan and trimmed at its ends; continued past its ends as at inference) to the synthetic
batch's loss; with ``--synthetic-targets init`` the synthetic batch's target is the ``--init`` net's own output
(not the truth), so the net keeps what it had learnt wherever the real B-scan does not pull it (fine-tuned on
the truth alone it drifted). ``--real-columns left|right|all`` learns
from one half of the B-scan only (the other half then validates). Why: the synthetic B-scans and the real
ones disagree on where the RNFL ends (docs/structure.md, "Tried in session 15").

Reproducible: fixed seeds, one CPU thread (torch.set_num_threads(1)), deterministic algorithms.
The weights (a few thousand float32) go to a safetensors file with the architecture and the
provenance in its metadata; octviewer reads it without executing code and without torch.
"""

from __future__ import annotations

if __name__ == "__main__":  # a stop while the imports below load: one line, exit 130 (attack run 12, A12-5)
    from octviewer.core.stop import run_module

    run_module("trainer.rnfl_boundary")

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


# OCTseg-Zeiss masks: one label per layer from the ILM down (RNFL 0, GCL+IPL 30, INL 60, OPL 90, ...);
# a boundary is the top of the layer below it
TRACING_LABELS = {"ILM": 0, "RNFL_GCL": 30, "IPL_INL": 60, "INL_OPL": 90}
CIRRUS_UM_Z, CIRRUS_UM_X = 2000.0 / 1024, 30.0  # Cirrus Optic Disc Cube: 2 mm in 1024 px, 6 mm in 200 A-scans


def tracing_samples(img_path: Path) -> list[dict]:
    """One traced real B-scan cut into the net's band under OUR ILM, as at inference, twice (the crop
    starting at the first and at the second A-scan: columns average two A-scans): a list of
    {"x": (1, 3, ROWS, cols), "rows": (1, len(TARGETS), cols), "a0": first A-scan} (rows NaN where untraced)."""
    from PIL import Image
    from scipy import ndimage

    from octviewer.core import OctVolume, Spacing
    from octviewer.structure.segmentation import _segment_own

    img = np.asarray(Image.open(img_path).convert("L"))
    mask = np.asarray(Image.open(str(img_path).replace("_img_", "_mask_")).convert("L"))
    if img.shape != mask.shape:
        raise ValueError(f"{Path(img_path).name}: image and mask differ in size")
    out = []
    for a0 in (0, 1):
        im, ma = img[:, a0:], mask[:, a0:]
        volume = OctVolume(data=im[None].copy(), spacing=Spacing(bscan_mm=0.0, depth_mm=CIRRUS_UM_Z / 1000.0,
                                                                  ascan_mm=CIRRUS_UM_X / 1000.0),
                           scan_pattern="line", device="Zeiss Cirrus (traced B-scan)", source=Path(img_path).name)
        seg = _segment_own(volume)
        ilm, bm = _filled(seg.ilm), _filled(seg.bm)
        x, _, _ = rnfl_net.band(volume.display(), ilm, bm, CIRRUS_UM_Z, CIRRUS_UM_X, periodic=False)
        pick, size, _ = rnfl_net.columns(im.shape[1], CIRRUS_UM_X)
        rows = []
        for name in TARGETS:
            hit = ma == TRACING_LABELS[name]
            top = np.where(hit.any(axis=0), np.argmax(hit, axis=0) - 0.5, np.nan)[None]
            under = (top - ilm) * CIRRUS_UM_Z / rnfl_net.SAMPLE_UM + rnfl_net.ABOVE
            missing = ndimage.uniform_filter1d((~np.isfinite(under)).astype(np.float32), size, axis=1,
                                               mode="nearest")[:, pick] > 0
            under = ndimage.uniform_filter1d(np.nan_to_num(under).astype(np.float32), size, axis=1,
                                             mode="nearest")[:, pick]
            under[missing | (under < 0) | (under > rnfl_net.ROWS - 1)] = np.nan
            rows.append(under)
        out.append({"x": x, "rows": np.stack(rows, axis=1).astype(np.float32), "a0": a0, "size": size})
    return out


def real_batch(samples: list[dict], which: str, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One augmented copy of the traced B-scan: ``which`` half's columns (or all), its ends trimmed by 0-4
    columns, continued past its ends by ``k`` columns as its mirror image (as ``rnfl_net.logits`` does at
    inference; the continuation is never learnt from), mirrored, grey levels |g|^gamma x gain + offset and noise."""
    s = samples[int(rng.integers(len(samples)))]
    x, rows = s["x"], s["rows"].copy()
    cols = x.shape[-1]
    # (a half leaves out the middle column: with the crop shifted by an A-scan it averages one of the other half)
    lo, hi = {"left": (0, cols // 2 - 1), "right": (cols // 2 + 1, cols), "all": (0, cols)}[which]
    lo, hi = lo + int(rng.integers(0, 5)), hi - int(rng.integers(0, 5))
    x, rows = x[..., lo:hi], rows[..., lo:hi]
    x = rnfl_net.pad_columns(x, k, False).copy()
    pad = np.full(rows.shape[:-1] + (k,), np.nan, np.float32)
    rows = np.concatenate([pad, rows, pad], axis=-1)
    if rng.random() < 0.5:
        x, rows = x[..., ::-1].copy(), rows[..., ::-1].copy()
    gamma = np.exp(rng.uniform(*np.log(GAMMA)))
    x[:, 0] = np.sign(x[:, 0]) * np.abs(x[:, 0]) ** gamma
    x[:, 0] = x[:, 0] * rng.uniform(0.8, 1.25) + rng.uniform(-0.1, 0.1)
    x[:, 0] += rng.normal(0.0, rng.uniform(0.0, 0.1), x[:, 0].shape).astype(np.float32)
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(rows)


def load_torch(torch, path: Path):
    """The net with the weights of an exported file (to fine-tune from them)."""
    from safetensors.numpy import load_file

    net = build_net(torch)
    tensors = load_file(str(path))
    convs = [m for m in net if hasattr(m, "weight")]
    with torch.no_grad():
        for i, m in enumerate(convs):
            m.weight.copy_(torch.from_numpy(tensors[f"{i}.weight"]))
            m.bias.copy_(torch.from_numpy(tensors[f"{i}.bias"]))
    return net


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


def distil_loss(torch, logits, teacher_logits):
    """Kullback-Leibler divergence over depth per column from the ``--init`` net's output to the net's, every
    column, weighted as ``loss_fn``. Why: fine-tuned on the synthetic truth alone (with no real B-scan) the net
    drifted from the shipped one (bands cut under today's ILM; the SYNTHETIC eyes 0.1-0.4 um worse, docs/
    structure.md "Session 16"); against the shipped net's own output it stays where it was wherever the real
    tracing does not pull it ("learning without forgetting", Li & Hoiem 2016)."""
    logq = torch.log_softmax(logits, dim=2)
    logp = torch.log_softmax(teacher_logits, dim=2)
    kl = (logp.exp() * (logp - logq)).sum(dim=2)  # (b, targets, cols)
    w = torch.tensor(TARGET_WEIGHTS)[None, :, None].expand_as(kl)
    return (kl * w).sum() / w.sum()


def train(data: dict, val: dict, epochs: int, seed: int, batch: int = 16, lr: float = 2e-3,
          init: Path | None = None, real: list[dict] | None = None, real_weight: float = 0.0,
          real_columns: str = "all", steps: int | None = None, synthetic_targets: str = "truth"):
    """``steps``: stop after that many steps (the one-cycle schedule spread over them); ``real``: the traced
    B-scan's samples (``tracing_samples``), their loss x ``real_weight`` added at every step;
    ``synthetic_targets="init"``: on the synthetic B-scans the net learns ``init``'s own output (``distil_loss``)
    instead of the truth."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    net = build_net(torch) if init is None else load_torch(torch, init)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    teacher = None
    if synthetic_targets == "init":
        teacher = load_torch(torch, init).eval()
        teacher.requires_grad_(False)
    n = len(data["x"])
    per_epoch = n // batch
    steps = steps or epochs * per_epoch
    epochs = -(-steps // per_epoch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(seed)
    real_rng = np.random.default_rng([seed, 1])
    k = sum(DILATIONS)  # columns the net sees either side (rnfl_net.reach)
    done = 0
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n)
        total, total_real, t0 = 0.0, 0.0, time.time()
        for s in range(min(per_epoch, steps - done)):
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
            xt = torch.from_numpy(np.ascontiguousarray(x))
            if teacher is None:
                loss = loss_fn(torch, net(xt), torch.from_numpy(np.ascontiguousarray(rows)))
            else:
                loss = distil_loss(torch, net(xt), teacher(xt))
            total += loss.item()
            if real and real_weight > 0:
                xr, rr = real_batch(real, real_columns, real_rng, k)
                loss_real = loss_fn(torch, net(torch.from_numpy(xr)), torch.from_numpy(rr))
                loss = loss + real_weight * loss_real
                total_real += loss_real.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            done += 1
        print(f"epoch {epoch + 1}/{epochs} ({done} steps): train loss {total / max(1, s + 1):.3f}, real "
              f"{total_real / max(1, s + 1):.3f}, validation loss {evaluate(torch, net, val):.3f} "
              f"({time.time() - t0:.0f} s)", flush=True)
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
    parser.add_argument("--init", type=Path, default=None, help="fine-tune from these weights")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: --epochs epochs)")
    parser.add_argument("--real-tracing", type=Path, default=None,
                        help="a traced real B-scan (OCTseg-Zeiss *_img_*.png, its *_mask_* beside it) to mix in")
    parser.add_argument("--real-weight", type=float, default=1.0)
    parser.add_argument("--real-columns", choices=("left", "right", "all"), default="all")
    parser.add_argument("--synthetic-targets", choices=("truth", "init"), default="truth",
                        help="what the net learns on the synthetic B-scans: their truth, or the --init net's output")
    args = parser.parse_args(argv)
    if args.synthetic_targets == "init" and args.init is None:
        parser.error("--synthetic-targets init needs --init (the net whose output is learnt)")
    from octviewer.synth import GENERATOR_VERSION

    t0 = time.time()
    data = dataset(args.cache, 0, args.cubes, args.seed, args.reflectivity_sd)
    val = dataset(args.cache, 100000, args.val_cubes, args.seed, args.reflectivity_sd)
    print(f"{len(data['x'])} training, {len(val['x'])} validation B-scans ({time.time() - t0:.0f} s)", flush=True)
    real = tracing_samples(args.real_tracing) if args.real_tracing else None
    net = train(data, val, args.epochs, args.seed, lr=args.lr, init=args.init, real=real,
                real_weight=args.real_weight, real_columns=args.real_columns, steps=args.steps,
                synthetic_targets=args.synthetic_targets)
    command = "python -m trainer.rnfl_boundary " + " ".join(sys.argv[1:] if argv is None else argv)
    what = ("RNFL outer boundary cost net (octviewer/structure/rnfl_net.py); " + (
        "SYNTHETIC training data only" if real is None else
        f"SYNTHETIC training data and one real traced B-scan ({args.real_tracing.name}, OCTseg-Zeiss, MIT licence; "
        f"{args.real_columns} columns)"))
    export(net, args.out, {"what": what, "generator": GENERATOR_VERSION, "init": args.init or "",
                           "real_weight": args.real_weight if real else 0, "lr": args.lr, "steps": args.steps or "",
                           "synthetic_targets": args.synthetic_targets,
                           "device_look": "cirrus, spectralis", "cubes": args.cubes, "epochs": args.epochs,
                           "seed": args.seed, "reflectivity_sd": args.reflectivity_sd,
                           "rnfl_attenuation_per_mm": RNFL_ATTENUATION, "spectralis_share": SPECTRALIS_SHARE,
                           "gamma": GAMMA, "layer_thickness_factor": THICKNESS_FACTOR, "command": command})
    print(f"written {args.out} ({args.out.stat().st_size} bytes, {time.time() - t0:.0f} s in all)")

